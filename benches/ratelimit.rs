//! Scenario 'ratelimit': a local API that allows 50 requests in any second and answers
//! 429 with `Retry-After` above that (and `X-RateLimit-Limit: 50` on every answer).
//!
//! `cargo bench --bench ratelimit` runs 2 000 events through the engine twice: with the
//! declaration matching the API (`rate_limit 50 per 1s`), reporting the share of the allowed
//! rate used and the 429s received; and with a declaration twice too high (`100 per 1s`),
//! reporting how long the 429s go on (the time to converge). Nothing may be lost. Then it
//! measures what a declared but non-binding limit costs the engine's throughput.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use futures_util::StreamExt;
use integ::engine::{Engine, Options, RunOutcome};
use integ::secrets::Secrets;
use serde_json::json;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const EVENTS: usize = 2_000;
const ALLOWED: usize = 50;

#[derive(Default)]
struct Api {
    /// Accepted requests of the last second.
    window: VecDeque<Instant>,
    accepted: Vec<Instant>,
    refused: Vec<Instant>,
}

async fn item(State(api): State<Arc<Mutex<Api>>>) -> impl IntoResponse {
    let now = Instant::now();
    let Ok(mut api) = api.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    while api
        .window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
    {
        api.window.pop_front();
    }
    let limit = [("x-ratelimit-limit", ALLOWED.to_string())];
    if api.window.len() >= ALLOWED {
        api.refused.push(now);
        let wait = api.window.front().map_or(1, |t| {
            (Duration::from_secs(1) - now.duration_since(*t)).as_secs() + 1
        });
        let headers = [("retry-after", wait.to_string()), limit[0].clone()];
        return (StatusCode::TOO_MANY_REQUESTS, headers, "slow down").into_response();
    }
    api.window.push_back(now);
    api.accepted.push(now);
    (StatusCode::OK, limit, axum::Json(json!({"ok": true}))).into_response()
}

async fn serve() -> (String, Arc<Mutex<Api>>) {
    let api = Arc::new(Mutex::new(Api::default()));
    let app = axum::Router::new()
        .route("/item/{id}", axum::routing::get(item))
        .with_state(api.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, api)
}

fn engine(url: &str, rate: &str) -> Arc<Engine> {
    let spec = format!(
        r#"integration limited {{
  connection api {{ base_url "{url}" {rate} }}
  trigger manual
  step get = api GET "/item/{{{{ event.id }}}}" {{ retry 10 exponential 100ms..5s on 429 }}
}}"#
    );
    let mut files = integ::lint::lint_sources(vec![(PathBuf::from("limited.integ"), spec)]);
    let model = files
        .pop()
        .and_then(|f| f.model)
        .expect("the bench spec is clean");
    let plan = integ::plan::compile(&model, None, std::path::Path::new(".")).expect("plan");
    Arc::new(Engine::new(Arc::new(plan), Secrets::default(), Options::default()).expect("engine"))
}

async fn run_all(engine: Arc<Engine>, events: usize, in_flight: usize) -> (Duration, usize) {
    let started = Instant::now();
    let outcomes: Vec<RunOutcome> = futures_util::stream::iter(0..events)
        .map(|id| {
            let engine = engine.clone();
            async move { engine.run(json!({ "id": id })).await.outcome }
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    let lost = outcomes
        .iter()
        .filter(|o| **o != RunOutcome::Succeeded)
        .count();
    (started.elapsed(), lost)
}

async fn scenario(rate: &str) -> (f64, usize, Duration, usize) {
    let (url, api) = serve().await;
    let (elapsed, lost) = run_all(engine(&url, rate), EVENTS, 64).await;
    let api = api
        .lock()
        .map(|a| (a.accepted.clone(), a.refused.clone()))
        .unwrap_or_default();
    let (accepted, refused) = api;
    let first = accepted.first().copied().unwrap_or_else(Instant::now);
    let last = accepted.last().copied().unwrap_or(first);
    // Accepted requests after the first, over the time they took, against the allowed rate.
    let used =
        (accepted.len() - 1) as f64 / last.duration_since(first).as_secs_f64() / ALLOWED as f64;
    let converged = refused
        .last()
        .map_or(Duration::ZERO, |t| t.duration_since(first));
    let _ = elapsed;
    (used, refused.len(), converged, lost)
}

async fn throughput(rate: &str) -> f64 {
    let (url, _api) = serve_open().await;
    let (elapsed, lost) = run_all(engine(&url, rate), EVENTS, 32).await;
    assert_eq!(lost, 0);
    EVENTS as f64 / elapsed.as_secs_f64()
}

/// The same API without its limit, to measure the engine's own cost of a declared limit.
async fn serve_open() -> (String, ()) {
    let app = axum::Router::new().route(
        "/item/{id}",
        axum::routing::get(|| async { axum::Json(json!({"ok": true})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, ())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let (used, refused, _, lost) = scenario("rate_limit 50 per 1s").await;
        println!(
            "declared = API limit (50/s): {:.1} % of the allowed rate used, {refused} 429s, {lost} events lost",
            100.0 * used
        );
        let (used, refused, converged, lost) = scenario("rate_limit 100 per 1s").await;
        println!(
            "declared twice the API limit (100/s): converged after {:.2} s ({refused} 429s), then {:.1} % of the allowed rate, {lost} events lost",
            converged.as_secs_f64(),
            100.0 * used
        );
        let mut ratios = Vec::new();
        for _ in 0..3 {
            let bare = throughput("").await;
            let limited = throughput("rate_limit 1000000 per 1s").await;
            ratios.push(limited / bare);
        }
        ratios.sort_by(f64::total_cmp);
        println!("a declared, non-binding limit keeps {:.0} % of the engine's throughput (median of 3)", 100.0 * ratios[1]);
    });
}
