//! The processes a bench starts: its own binary re-executed in a role (the sink, the
//! forwarder) and `integ serve`. Each is killed when its handle drops, so that a panic
//! leaves nothing running; a role also exits when its end of the pipe to the bench closes,
//! which covers the bench itself being killed.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Set on a re-executed bench binary: which role it plays.
const ROLE: &str = "INTEG_BENCH_ROLE";
/// Where the forwarder POSTs its prospects.
const SINK_URL: &str = "INTEG_BENCH_SINK_URL";
/// How long a role may take to say which port it listens on.
const START_BOUND: Duration = Duration::from_secs(30);
/// `/proc/PID/stat` counts CPU time in USER_HZ ticks, 100 a second on Linux.
const TICKS_PER_SECOND: f64 = 100.0;

/// When this binary was started as a role, plays it and exits; otherwise returns.
pub fn play_role_if_asked() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    integ::engine::install_crypto_provider();
    let app = match role.as_str() {
        "sink" => super::sink::app(),
        "forwarder" => {
            let sink = std::env::var(SINK_URL).expect("the forwarder is given its sink's URL");
            super::forwarder::app(sink)
        }
        other => panic!("unknown {ROLE} {other:?}"),
    };
    serve_role(app);
    std::process::exit(0);
}

/// Serves `app` on a free port of 127.0.0.1 and tells the bench the port on stdout.
fn serve_role(app: axum::Router) {
    // The bench holds our stdin open while it lives: end with it, whatever ended it.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1");
        let port = listener.local_addr().expect("local address").port();
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{port}")
            .and_then(|()| stdout.flush())
            .expect("tell the bench the port");
        axum::serve(listener, app).await.expect("serve");
    });
}

/// A process the bench started, killed when dropped.
pub struct Child {
    name: String,
    process: std::process::Child,
    /// Where its stderr goes, if not to the bench's own.
    log: Option<PathBuf>,
}

impl Child {
    /// Starts this bench binary as `role` (`sink`, or `forwarder` posting to `sink_url`);
    /// returns it and the port it listens on.
    pub fn role(role: &str, sink_url: Option<&str>) -> (Child, u16) {
        let exe = std::env::current_exe().expect("the bench's own path");
        let mut command = Command::new(exe);
        command
            .env(ROLE, role)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = sink_url {
            command.env(SINK_URL, url);
        }
        let mut child = Child::spawn(role, command, None);
        let stdout = child.process.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(START_BOUND).unwrap_or_default();
        let Ok(port) = line.trim().parse() else {
            child.check_alive();
            panic!("the {role} did not say its port within {START_BOUND:?} (said {line:?})");
        };
        (child, port)
    }

    /// Starts `command` with stdout and stderr into `log` (or inherited with no log).
    pub fn spawn(name: &str, mut command: Command, log: Option<&Path>) -> Child {
        if let Some(log) = log {
            let file = std::fs::File::create(log).expect("create the child's log");
            let copy = file.try_clone().expect("clone the log's handle");
            command.stdout(copy).stderr(file);
        }
        let process = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the {name}: {e}"));
        Child {
            name: name.to_string(),
            process,
            log: log.map(Path::to_path_buf),
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Panics, with the end of its log, if the process has exited.
    pub fn check_alive(&mut self) {
        let Ok(Some(status)) = self.process.try_wait() else {
            return;
        };
        let tail = self.log.as_deref().map(log_tail).unwrap_or_default();
        panic!("the {} exited ({status}){tail}", self.name);
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(self.pid())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// The last 2 KB of a log, to show why a child stopped.
fn log_tail(log: &Path) -> String {
    let mut text = Vec::new();
    if std::fs::File::open(log)
        .and_then(|mut f| f.read_to_end(&mut text))
        .is_err()
    {
        return String::new();
    }
    let start = text.len().saturating_sub(2048);
    format!(
        "; the end of {}:\n{}",
        log.display(),
        String::from_utf8_lossy(&text[start..])
    )
}

/// CPU time (user + system) process `pid` has used so far, from `/proc/PID/stat`.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces: count fields after its closing paren,
    // where utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    ticks as f64 / TICKS_PER_SECOND
}

/// Resident memory of process `pid`, in MB, from `/proc/PID/status`.
pub fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
