//! `integ serve` against a bare forwarder on the shared harness's w2h job (a contact
//! webhook mapped to a prospect POSTed to a sink), in one run, as `../shared/bench` does.
//!
//! `cargo bench --bench serve` starts the fast checking sink and the bare forwarder
//! (axum and reqwest), each in a process of its own (this binary re-executed in a role, see
//! `common/`), and the real `integ serve` binary on `common/w2h.integ` with a fresh state
//! file. At each concurrency level it drives the forwarder, then integ, each for a bounded
//! window after a warm-up, and prints one line per figure with its ratio to the forwarder:
//! integ's accepted/s, delivered/s in the window, sustained/s (accepted / (window + the
//! time until the sink has every accepted event)), the CPU per event of each process
//! (utime + stime, from the window's start to the end of the drain), and end-to-end
//! latency at the sink (from the contact's `sentAt`).
//!
//! Then the overload: more loops than integ can serve, unpaced, for twice the window, on a
//! fresh state file, with `--max-pending` when `integ serve --help` lists it; it prints
//! the webhooks refused with 503 (with and without `Retry-After`), the backlog at the end,
//! the drain time, end-to-end p50/p99, and integ's memory.
//!
//! Knobs (environment): `INTEG_BENCH_CONC` ("1 32"), `INTEG_BENCH_SECS` (5, the window
//! per level), `INTEG_BENCH_WARMUP_SECS` (1), `INTEG_BENCH_DRAIN_SECS` (120, the longest
//! wait for a backlog), `INTEG_BENCH_INTEG_ARGS` (extra `integ serve` flags, e.g.
//! `--workers 16`), `INTEG_BENCH_DIR` (where the state file and logs go; a tmpfs such as
//! `/dev/shm` takes the disk's syncs away), `INTEG_BENCH_OVERLOAD_CONC` (64),
//! `INTEG_BENCH_MAX_PENDING` (1000). The machine's other load moves every figure: read
//! the ratios, measured in the same run.

mod common;

use common::child::{Child, rss_mb};
use common::load::{Tally, drive, knob, levels, seconds};
use common::sink::Sink;
use common::w2h;
use reqwest::header;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const INTEG: &str = env!("CARGO_BIN_EXE_integ");
const WEBHOOK: &str = "/webhook/w2h";
/// A webhook not answered within this is counted unreachable (the harness's wrk timeout).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long integ may take to answer its first webhook.
const START_BOUND: Duration = Duration::from_secs(60);

/// How a webhook was answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Answer {
    /// 2xx: the forwarder delivered it, or integ committed it to its inbox.
    Accepted,
    /// 503 with `Retry-After`: back-pressure.
    Busy,
    /// 503 without `Retry-After`.
    BusyWithoutRetryAfter,
    /// Any other status.
    Status(u16),
    /// No answer: refused connection, reset, or timeout.
    Unreachable,
}

/// Posts contacts to one webhook URL.
#[derive(Clone)]
struct Poster {
    client: reqwest::Client,
    url: Arc<str>,
}

impl Poster {
    fn new(client: &reqwest::Client, url: String) -> Poster {
        Poster {
            client: client.clone(),
            url: url.into(),
        }
    }

    async fn post(&self, id: u64) -> Answer {
        let sent = self
            .client
            .post(&*self.url)
            .header(header::CONTENT_TYPE, "application/json")
            .body(w2h::contact(id))
            .send()
            .await;
        let Ok(response) = sent else {
            // A dead peer refuses at once: do not spin on it until the window closes.
            tokio::time::sleep(Duration::from_millis(10)).await;
            return Answer::Unreachable;
        };
        let status = response.status();
        let retry_after = response.headers().contains_key(header::RETRY_AFTER);
        // Read the answer so that the connection is reused.
        let _ = response.bytes().await;
        match status.as_u16() {
            200..=299 => Answer::Accepted,
            503 if retry_after => Answer::Busy,
            503 => Answer::BusyWithoutRetryAfter,
            other => Answer::Status(other),
        }
    }

    /// `loops` loops posting for `window`.
    async fn load(&self, loops: usize, window: Duration) -> Tally<Answer> {
        let poster = self.clone();
        drive(loops, window, move |id| {
            let poster = poster.clone();
            async move { poster.post(id).await }
        })
        .await
    }
}

/// A folder for state files and logs, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let parent: PathBuf = knob("DIR", std::env::temp_dir());
        let dir = parent.join(format!("integ-bench-serve-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the bench's folder");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `integ serve` and the webhooks it has accepted so far.
struct Integ {
    child: Child,
    poster: Poster,
    /// Its name at the sink.
    source: &'static str,
    accepted: u64,
}

/// How a wait for the sink to have every accepted event ended.
struct Drain {
    waited: Duration,
    /// Events still undelivered when the wait gave up (0: drained).
    left: u64,
}

impl Integ {
    /// Serves the w2h spec from `dir` (a fresh state file there), delivering to `sink`
    /// as `source`.
    async fn start(
        dir: &Path,
        source: &'static str,
        sink: &Sink,
        client: &reqwest::Client,
        flags: &[String],
    ) -> Integ {
        std::fs::create_dir_all(dir).expect("create integ's folder");
        let spec = dir.join("w2h.integ");
        std::fs::write(&spec, w2h::SPEC).expect("write the spec");
        let port = free_port();
        let mut command = Command::new(INTEG);
        command
            .arg("serve")
            .arg(&spec)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .arg("--state")
            .arg(dir.join("state.db"))
            .args(flags)
            .env("SINK_URL", sink.base_url(source))
            .stdin(Stdio::null());
        let child = Child::spawn("integ serve", command, Some(&dir.join("integ.log")));
        let poster = Poster::new(client, format!("http://127.0.0.1:{port}{WEBHOOK}"));
        let mut integ = Integ {
            child,
            poster,
            source,
            accepted: 0,
        };
        integ.wait_ready().await;
        integ
    }

    /// Until a webhook is accepted.
    async fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < START_BOUND {
            self.child.check_alive();
            if self.poster.post(0).await == Answer::Accepted {
                self.accepted += 1;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("integ serve accepted no webhook within {START_BOUND:?}");
    }

    /// `loops` loops posting for `window`.
    async fn load(&mut self, loops: usize, window: Duration) -> Tally<Answer> {
        let tally = self.poster.load(loops, window).await;
        self.accepted += tally.count(&Answer::Accepted);
        self.child.check_alive();
        tally
    }

    /// Until the sink has received every event integ accepted, or `bound` has passed.
    async fn drain(&mut self, sink: &mut Sink, bound: Duration) -> Drain {
        let started = Instant::now();
        loop {
            let left = self
                .accepted
                .saturating_sub(sink.stats(false).await.total(self.source));
            if left == 0 || started.elapsed() >= bound {
                return Drain {
                    waited: started.elapsed(),
                    left,
                };
            }
            self.child.check_alive();
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A port of 127.0.0.1 free a moment ago.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Whether this integ has back-pressure (`--max-pending`).
fn has_max_pending() -> bool {
    let help = Command::new(INTEG)
        .args(["serve", "--help"])
        .output()
        .expect("run integ serve --help");
    String::from_utf8_lossy(&help.stdout).contains("--max-pending")
}

/// The run's settings.
struct Settings {
    window: Duration,
    warmup: Duration,
    drain: Duration,
    flags: Vec<String>,
}

impl Settings {
    fn from_env() -> Settings {
        let flags: String = knob("INTEG_ARGS", String::new());
        Settings {
            window: seconds("SECS", 5.0),
            warmup: seconds("WARMUP_SECS", 1.0),
            drain: seconds("DRAIN_SECS", 120.0),
            flags: flags.split_whitespace().map(str::to_string).collect(),
        }
    }
}

/// What the forwarder did at one level.
struct Ceiling {
    per_s: f64,
    cpu_us: f64,
}

fn main() {
    common::child::play_role_if_asked();
    integ::engine::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(Settings::from_env()));
}

async fn run(settings: Settings) {
    let scratch = Scratch::new();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("http client");
    let mut sink = Sink::start();
    let (mut forwarder, port) = Child::role(
        "forwarder",
        Some(&format!("{}/prospects", sink.base_url("forwarder"))),
    );
    let to_forwarder = Poster::new(&client, format!("http://127.0.0.1:{port}{WEBHOOK}"));
    let flags = match settings.flags.join(" ") {
        none if none.is_empty() => "(default flags)".to_string(),
        flags => flags,
    };
    println!(
        "serve w2h: integ serve {flags} against the bare forwarder, {:.1} s per level after {:.1} s of warm-up",
        settings.window.as_secs_f64(),
        settings.warmup.as_secs_f64()
    );
    {
        let mut integ = Integ::start(
            &scratch.0.join("levels"),
            "integ",
            &sink,
            &client,
            &settings.flags,
        )
        .await;
        for level in levels() {
            let ceiling =
                measure_forwarder(&mut forwarder, &to_forwarder, &mut sink, level, &settings).await;
            measure_integ(&mut integ, &mut sink, level, &settings, &ceiling).await;
        }
    }
    overload(&scratch.0.join("overload"), &mut sink, &client, &settings).await;
}

async fn measure_forwarder(
    forwarder: &mut Child,
    poster: &Poster,
    sink: &mut Sink,
    level: usize,
    settings: &Settings,
) -> Ceiling {
    poster.load(level, settings.warmup).await;
    sink.stats(true).await;
    let cpu = forwarder.cpu_seconds();
    let tally = poster.load(level, settings.window).await;
    let cpu = forwarder.cpu_seconds() - cpu;
    forwarder.check_alive();
    let stats = sink.stats(false).await;
    let ceiling = Ceiling {
        per_s: stats.accepted as f64 / tally.elapsed.as_secs_f64(),
        cpu_us: per_event_us(cpu, stats.accepted),
    };
    println!(
        "c={level:<3} forwarder         {:>8.1}/s delivered; CPU {:.0} us/event; e2e p50 {:.1} ms, p99 {:.1} ms",
        ceiling.per_s, ceiling.cpu_us, stats.p50_ms, stats.p99_ms
    );
    let who = format!("c={level} forwarder");
    report_refusals(&who, &tally);
    report_shape(&who, &stats);
    ceiling
}

async fn measure_integ(
    integ: &mut Integ,
    sink: &mut Sink,
    level: usize,
    settings: &Settings,
    ceiling: &Ceiling,
) {
    integ.load(level, settings.warmup).await;
    let warm = integ.drain(sink, settings.drain).await;
    if warm.left > 0 {
        println!(
            "c={level:<3} integ: {} warm-up events still undelivered after {:.0} s; measuring anyway",
            warm.left,
            warm.waited.as_secs_f64()
        );
    }
    sink.stats(true).await;
    let cpu = integ.child.cpu_seconds();
    let tally = integ.load(level, settings.window).await;
    let in_window = sink.stats(false).await;
    let drain = integ.drain(sink, settings.drain).await;
    let cpu = integ.child.cpu_seconds() - cpu;
    let all = sink.stats(false).await;
    let window = tally.elapsed.as_secs_f64();
    let accepted = tally.count(&Answer::Accepted);
    let ratio = |per_s: f64| 100.0 * per_s / ceiling.per_s;
    let accepted_per_s = tally.rate(&Answer::Accepted);
    println!(
        "c={level:<3} integ accepted    {accepted_per_s:>8.1}/s = {:.1} % of the forwarder",
        ratio(accepted_per_s)
    );
    let delivered_per_s = in_window.accepted as f64 / window;
    println!(
        "c={level:<3} integ delivered   {delivered_per_s:>8.1}/s in the window = {:.1} % of the forwarder; backlog at the window's end {}",
        ratio(delivered_per_s),
        accepted.saturating_sub(in_window.accepted)
    );
    let sustained = all.accepted as f64 / (window + drain.waited.as_secs_f64());
    println!(
        "c={level:<3} integ sustained   {sustained:>8.1}/s = {:.1} % of the forwarder (window {window:.1} s + drain {:.1} s)",
        ratio(sustained),
        drain.waited.as_secs_f64()
    );
    if drain.left > 0 {
        println!(
            "c={level:<3} integ: {} events still undelivered when the wait gave up after {:.0} s: sustained/s counts the delivered ones",
            drain.left,
            drain.waited.as_secs_f64()
        );
    }
    let cpu_us = per_event_us(cpu, all.accepted);
    println!(
        "c={level:<3} integ CPU         {cpu_us:>8.0} us/event = {:.1}x the forwarder's",
        cpu_us / ceiling.cpu_us
    );
    println!(
        "c={level:<3} integ e2e         p50 {:.1} ms, p99 {:.1} ms",
        all.p50_ms, all.p99_ms
    );
    let who = format!("c={level} integ");
    report_refusals(&who, &tally);
    report_shape(&who, &all);
}

/// More than integ can serve, for twice the window, on a fresh state file.
async fn overload(dir: &Path, sink: &mut Sink, client: &reqwest::Client, settings: &Settings) {
    let loops: usize = knob("OVERLOAD_CONC", 64);
    let window = settings.window * 2;
    let mut flags = settings.flags.clone();
    let max_pending = if has_max_pending() {
        let max: u64 = knob("MAX_PENDING", 1000);
        flags.extend(["--max-pending".to_string(), max.to_string()]);
        format!("--max-pending {max}")
    } else {
        "back-pressure absent (`integ serve --help` lists no --max-pending)".to_string()
    };
    println!(
        "overload: c={loops}, unpaced, for {:.1} s; {max_pending}",
        window.as_secs_f64()
    );
    let mut integ = Integ::start(dir, "integ-overload", sink, client, &flags).await;
    integ.drain(sink, settings.drain).await;
    sink.stats(true).await;
    let pid = integ.child.pid();
    let sampling = Arc::new(AtomicBool::new(true));
    let peak_rss = tokio::spawn(sample_rss(pid, sampling.clone()));
    let tally = integ.load(loops, window).await;
    let at_end = sink.stats(false).await;
    let drain = integ.drain(sink, settings.drain).await;
    let all = sink.stats(false).await;
    sampling.store(false, Ordering::Relaxed);
    let peak_rss = peak_rss.await.expect("the memory sampler");
    let answered: u64 = tally.ends.values().sum();
    let busy = tally.count(&Answer::Busy);
    println!(
        "overload webhooks   {:.1}/s offered: {} accepted, {busy} refused 503 with Retry-After ({:.1} %), {} refused 503 without it, {} other, {} unanswered",
        answered as f64 / tally.elapsed.as_secs_f64(),
        tally.count(&Answer::Accepted),
        100.0 * busy as f64 / answered.max(1) as f64,
        tally.count(&Answer::BusyWithoutRetryAfter),
        tally
            .ends
            .iter()
            .filter(|(a, _)| matches!(a, Answer::Status(_)))
            .map(|(_, n)| n)
            .sum::<u64>(),
        tally.count(&Answer::Unreachable),
    );
    println!(
        "overload delivered  {:.1}/s during the overload",
        at_end.accepted as f64 / tally.elapsed.as_secs_f64()
    );
    println!(
        "overload backlog    {} events at the end; drained in {:.1} s{}",
        tally
            .count(&Answer::Accepted)
            .saturating_sub(at_end.accepted),
        drain.waited.as_secs_f64(),
        if drain.left > 0 {
            format!(" (gave up with {} left)", drain.left)
        } else {
            String::new()
        }
    );
    println!(
        "overload e2e        p50 {:.1} ms, p99 {:.1} ms (every accepted event)",
        all.p50_ms, all.p99_ms
    );
    println!(
        "overload integ RSS  peak {peak_rss:.1} MB, {:.1} MB after the drain",
        rss_mb(pid)
    );
    report_shape("overload", &all);
}

/// The largest resident memory of `pid` while `sampling` holds.
async fn sample_rss(pid: u32, sampling: Arc<AtomicBool>) -> f64 {
    let mut peak: f64 = 0.0;
    while sampling.load(Ordering::Relaxed) {
        peak = peak.max(rss_mb(pid));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    peak
}

fn per_event_us(cpu_seconds: f64, events: u64) -> f64 {
    cpu_seconds * 1e6 / events.max(1) as f64
}

/// Prints the webhooks that were not accepted, if any.
fn report_refusals(who: &str, tally: &Tally<Answer>) {
    let refused: Vec<String> = tally
        .ends
        .iter()
        .filter(|(answer, _)| **answer != Answer::Accepted)
        .map(|(answer, n)| format!("{n} {answer:?}"))
        .collect();
    if !refused.is_empty() {
        println!("{who}: webhooks not accepted: {}", refused.join(", "));
    }
}

/// Prints the prospects the sink found wrong, if any.
fn report_shape(who: &str, stats: &common::sink::Stats) {
    if stats.shape_errors > 0 {
        println!(
            "{who}: {} prospects of the wrong shape, the first: {}",
            stats.shape_errors,
            stats.first_error.as_deref().unwrap_or("?")
        );
    }
}
