//! `integ serve` as a real process, for the tests that run the binary: started on ports of
//! its own, its JSON log (and anything it prints) appended to `serve.log` in its folder, up
//! once it said where it listens and answers there, and killed when dropped.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take: long on a loaded machine, not forever.
const START: Duration = Duration::from_secs(60);

/// A running `integ serve`, killed (SIGKILL) and reaped when dropped: a test that fails must
/// not leave it posting every second to a port that another test's mock may have next.
pub struct Serving {
    child: Child,
    /// The webhook listener's port (with `/livez`, `/readyz`, `/healthz`).
    pub port: u16,
    /// The webhook listener, `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin listener (`/metrics`), `http://127.0.0.1:PORT`.
    pub admin: String,
}

impl Serving {
    /// `integ serve ARGS` in `dir`, on ports the system picks.
    pub async fn start(dir: &Path, args: &[&str]) -> Serving {
        Self::launch(dir, 0, args, &[]).await
    }

    /// `integ serve ARGS` in `dir`, its webhooks on `port` (a restarted process keeps the
    /// port its senders know; 0: any).
    pub async fn start_on(dir: &Path, port: u16, args: &[&str]) -> Serving {
        Self::launch(dir, port, args, &[]).await
    }

    /// `integ serve ARGS` in `dir` with `env` added to its environment.
    pub async fn start_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Serving {
        Self::launch(dir, 0, args, env).await
    }

    async fn launch(dir: &Path, port: u16, args: &[&str], env: &[(&str, &str)]) -> Serving {
        integ::engine::install_crypto_provider();
        let log = dir.join("serve.log");
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        // This process's lines are the ones after what earlier ones wrote.
        let from = file.metadata().unwrap().len();
        let child = Command::new(env!("CARGO_BIN_EXE_integ"))
            .arg("serve")
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--admin-listen", "127.0.0.1:0", "--log-format", "json"])
            .envs(env.iter().copied())
            .current_dir(dir)
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        let mut serving = Serving {
            child,
            port: 0,
            url: String::new(),
            admin: String::new(),
        };
        let (public, admin) = serving.listening(&log, from).await;
        serving.port = public.rsplit(':').next().unwrap().parse().unwrap();
        serving.url = format!("http://{public}");
        serving.admin = format!("http://{admin}");
        // Bound before that line was logged: it answers once it accepts.
        let started = Instant::now();
        let client = reqwest::Client::new();
        while client
            .get(format!("{}/livez", serving.url))
            .send()
            .await
            .is_err()
        {
            assert!(started.elapsed() < START, "integ serve does not answer");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        serving
    }

    /// Waits for the line saying where it listens; fails at once if it exited instead.
    async fn listening(&mut self, log: &Path, from: u64) -> (String, String) {
        let started = Instant::now();
        loop {
            let lines = read_from(log, from);
            for line in lines.lines() {
                let Ok(line) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let fields = &line["fields"];
                if fields["message"] == "integ serve started" {
                    let address = |key: &str| fields[key].as_str().unwrap().to_string();
                    return (address("listen"), address("admin"));
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("integ serve exited ({status}) before it listened:\n{lines}");
            }
            assert!(
                started.elapsed() < START,
                "integ serve did not start within {START:?}:\n{lines}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends SIGTERM: it drains and exits.
    pub fn terminate(&self) {
        let signalled = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(signalled.success());
    }
}

/// What `log` holds past byte `from`.
fn read_from(log: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = std::fs::File::open(log)
        && file.seek(SeekFrom::Start(from)).is_ok()
    {
        let _ = file.read_to_string(&mut text);
    }
    text
}

impl std::ops::Deref for Serving {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for Serving {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
