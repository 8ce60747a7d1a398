//! The engine's own share of the cost: `integ::engine::Engine` running the shared
//! harness's w2h job (`common/w2h.integ`: map a contact to a prospect, POST it) against a
//! bare reqwest loop doing the same job by hand (typed serde, as the harness's forwarder),
//! both posting to the same fast checking sink in a process of its own, in one run.
//!
//! `cargo bench --bench engine` measures, at each concurrency level (events in flight),
//! the bare loop and then the engine, each for a bounded window after a warm-up, and
//! prints events/s of each with the ratio, the CPU per event of this process (the same
//! event generation on both sides, the sink is elsewhere) with the ratio, and the
//! end-to-end latency at the sink. No store, no webhook intake: what `integ serve` adds
//! on top is `benches/serve.rs`'s.
//!
//! Knobs (environment): `INTEG_BENCH_CONC` ("1 32"), `INTEG_BENCH_SECS` (5, the window
//! per level and side), `INTEG_BENCH_WARMUP_SECS` (1), `INTEG_BENCH_METRICS` (`on`: the
//! Prometheus recorder is installed, as `integ serve` does, so the engine's metrics are
//! recorded; `off`: no recorder, as `integ run`).

mod common;

use common::child::cpu_seconds;
use common::load::{Tally, drive, levels, seconds};
use common::sink::{Sink, Stats};
use common::w2h;
use integ::engine::{Engine, Options, RunOutcome};
use integ::secrets::Secrets;
use serde_json::Value as Json;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// What the spec reads the sink's base URL from; the bench writes the URL in instead.
const SINK_URL: &str = r#"env("SINK_URL", "http://127.0.0.1:9100")"#;

/// The w2h spec, planned, posting to `base_url`.
fn engine(base_url: &str) -> Arc<Engine> {
    assert!(w2h::SPEC.contains(SINK_URL), "the spec reads SINK_URL");
    let text = w2h::SPEC.replace(SINK_URL, &format!("{base_url:?}"));
    let mut files = integ::lint::lint_sources(vec![(PathBuf::from("w2h.integ"), text)]);
    let model = files
        .pop()
        .and_then(|f| f.model)
        .expect("the w2h spec is clean");
    let plan = integ::plan::compile(&model, None, Path::new(".")).expect("plan");
    Arc::new(Engine::new(Arc::new(plan), Secrets::default(), Options::default()).expect("engine"))
}

/// One side's figures at one level.
struct Side {
    per_s: f64,
    cpu_us: f64,
    stats: Stats,
    failed: u64,
}

/// `job` in `level` loops for the window, after a warm-up; `true` is an event delivered.
async fn measure<F, Fut>(
    sink: &mut Sink,
    level: usize,
    window: Duration,
    warmup: Duration,
    job: F,
) -> Side
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = bool> + Send,
{
    drive(level, warmup, job.clone()).await;
    sink.stats(true).await;
    let cpu = cpu_seconds(std::process::id());
    let tally: Tally<bool> = drive(level, window, job).await;
    let cpu = cpu_seconds(std::process::id()) - cpu;
    let stats = sink.stats(false).await;
    Side {
        per_s: tally.rate(&true),
        cpu_us: cpu * 1e6 / tally.count(&true).max(1) as f64,
        stats,
        failed: tally.count(&false),
    }
}

fn main() {
    common::child::play_role_if_asked();
    integ::engine::install_crypto_provider();
    let metrics = std::env::var("INTEG_BENCH_METRICS").map_or(true, |v| v != "off");
    if metrics {
        integ::telemetry::install().expect("the metrics recorder");
    }
    println!("metrics: {}", if metrics { "on" } else { "off" });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let window = seconds("SECS", 5.0);
    let warmup = seconds("WARMUP_SECS", 1.0);
    let mut sink = Sink::start();
    let engine = engine(&sink.base_url("engine"));
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let bare_url: Arc<str> = format!("{}/prospects", sink.base_url("bare")).into();
    println!(
        "engine w2h: the engine against a bare reqwest loop, {:.1} s per level and side after {:.1} s of warm-up",
        window.as_secs_f64(),
        warmup.as_secs_f64()
    );
    for level in levels() {
        let bare = measure(&mut sink, level, window, warmup, {
            let (client, url) = (client.clone(), bare_url.clone());
            move |id| bare_job(client.clone(), url.clone(), id)
        })
        .await;
        let engine = measure(&mut sink, level, window, warmup, {
            let engine = engine.clone();
            move |id| engine_job(engine.clone(), id)
        })
        .await;
        println!(
            "c={level:<3} bare loop   {:>8.1} events/s; CPU {:.0} us/event; e2e p50 {:.2} ms, p99 {:.2} ms",
            bare.per_s, bare.cpu_us, bare.stats.p50_ms, bare.stats.p99_ms
        );
        println!(
            "c={level:<3} engine      {:>8.1} events/s = {:.1} % of the bare loop",
            engine.per_s,
            100.0 * engine.per_s / bare.per_s
        );
        println!(
            "c={level:<3} engine CPU  {:>8.0} us/event = {:.1}x the bare loop's",
            engine.cpu_us,
            engine.cpu_us / bare.cpu_us
        );
        println!(
            "c={level:<3} engine e2e  p50 {:.2} ms, p99 {:.2} ms",
            engine.stats.p50_ms, engine.stats.p99_ms
        );
        report_failures(level, "bare loop", &bare);
        report_failures(level, "engine", &engine);
    }
}

/// The job by hand: map with typed serde, POST, check the status.
async fn bare_job(client: reqwest::Client, url: Arc<str>, id: u64) -> bool {
    let Ok(prospect) = w2h::prospect(&w2h::contact(id)) else {
        return false;
    };
    let sent = client
        .post(&*url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(prospect)
        .send()
        .await;
    match sent {
        Ok(response) => {
            let ok = response.status().is_success();
            // Read the answer, as the engine does.
            ok && response.bytes().await.is_ok()
        }
        Err(_) => false,
    }
}

/// The job by the engine, from the same bytes.
async fn engine_job(engine: Arc<Engine>, id: u64) -> bool {
    let Ok(event) = serde_json::from_slice::<Json>(&w2h::contact(id)) else {
        return false;
    };
    engine.run(event).await.outcome == RunOutcome::Succeeded
}

/// Prints the events a side failed and the prospects the sink found wrong, if any.
fn report_failures(level: usize, who: &str, side: &Side) {
    if side.failed > 0 || side.stats.shape_errors > 0 {
        println!(
            "c={level:<3} {who}: {} events failed, {} prospects of the wrong shape (first: {})",
            side.failed,
            side.stats.shape_errors,
            side.stats.first_error.as_deref().unwrap_or("-")
        );
    }
}
