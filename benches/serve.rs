//! Webhooks through `integ serve` with the durable inbox, against a bare forwarder.
//!
//! `cargo bench --bench serve` posts 2 000 signed webhooks (16 in flight) and reports:
//! the accept latency (p50, p99) and rate of the durable inbox (202 after the SQLite
//! commit), and the end-to-end rate (webhook, map, POST to a local sink) of integ serve
//! against a bare forwarder (an axum handler that maps and POSTs before answering), in the
//! same run. Goal: integ at 40 % of the bare forwarder or better. A second scenario adds a
//! lookup (GET) before the POST, on both sides, so that integ also checkpoints a step.

use futures_util::StreamExt;
use hmac::{KeyInit, Mac};
use integ::engine::{Engine, Options};
use integ::mock::{MockResponse, MockServer, Route};
use integ::secrets::Secrets;
use integ::serve::{Service, router, work};
use integ::store::SqliteStore;
use serde_json::{Value as Json, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EVENTS: usize = 2_000;
const IN_FLIGHT: usize = 16;
const SECRET: &str = "bench-secret";

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What each event does at the sink.
#[derive(Clone, Copy, Debug)]
enum Shape {
    /// Map and POST.
    Post,
    /// GET a lookup, then map and POST: two calls, and a checkpoint in between.
    LookupThenPost,
}

impl Shape {
    fn calls(self) -> usize {
        match self {
            Shape::Post => 1,
            Shape::LookupThenPost => 2,
        }
    }
}

async fn sink() -> MockServer {
    let route = |method: &str, path: &str| Route {
        method: method.into(),
        path: path.into(),
        responses: vec![MockResponse::json(200, json!({"ok": true, "owner": "ada"}))],
    };
    MockServer::start(vec![route("POST", "/sink"), route("GET", "/lookup")])
        .await
        .expect("sink")
}

/// Posts every event and returns each accept latency.
async fn post_all(url: &str) -> Vec<Duration> {
    let client = reqwest::Client::new();
    futures_util::stream::iter(0..EVENTS)
        .map(|id| {
            let client = client.clone();
            let url = url.to_string();
            async move {
                let body = json!({"id": id, "contact": {"email": format!("u{id}@example.com"), "first": "Ada"}}).to_string();
                let started = Instant::now();
                let response = client
                    .post(url)
                    .header("X-Hub-Signature-256", sign(body.as_bytes()))
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .expect("post");
                assert!(response.status().is_success(), "status {}", response.status());
                started.elapsed()
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await
}

async fn delivered(sink: &MockServer, shape: Shape, started: Instant) -> Duration {
    while sink.request_count() < EVENTS * shape.calls() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}

async fn integ_run(shape: Shape) -> (Vec<Duration>, f64) {
    let sink = sink().await;
    let (lookup, owner) = match shape {
        Shape::Post => ("", ""),
        Shape::LookupThenPost => (
            r#"step lookup = sink GET "/lookup" { query { id = $.id } }"#,
            "owner = $lookup.owner",
        ),
    };
    let spec = format!(
        r#"integration relay {{
  connection sink {{ base_url "{}" }}
  trigger webhook "/hooks/relay" {{ signature github secret("SECRET") dedupe $.id }}
  {lookup}
  step forward = sink POST "/sink" {{
    idempotency_key "evt-{{{{ event.id }}}}"
    body {{ id = $.id email = $.contact.email name = "{{{{ event.contact.first }}}}" {owner} }}
  }}
}}"#,
        sink.url()
    );
    let mut files = integ::lint::lint_sources(vec![(PathBuf::from("relay.integ"), spec)]);
    let model = files.pop().and_then(|f| f.model).expect("clean spec");
    let plan = integ::plan::compile(&model, None, std::path::Path::new(".")).expect("plan");
    let engine = Arc::new(
        Engine::new(
            Arc::new(plan),
            Secrets::from_pairs([("SECRET", SECRET)]),
            Options::default(),
        )
        .expect("engine"),
    );
    let dir = std::env::temp_dir().join(format!("integ-bench-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Arc::new(SqliteStore::open(&dir.join("state.db")).expect("store"));
    let service = Service::new(vec![engine], store);
    let url = serve(router(service.clone(), &Default::default())).await;
    tokio::spawn(work(service.clone(), 8));
    let started = Instant::now();
    let latencies = post_all(&url).await;
    let total = delivered(&sink, shape, started).await;
    service.shut_down();
    let _ = std::fs::remove_dir_all(&dir);
    (latencies, EVENTS as f64 / total.as_secs_f64())
}

async fn bare_run(shape: Shape) -> f64 {
    let sink = sink().await;
    let base = sink.url();
    let client = reqwest::Client::new();
    let app = axum::Router::new().route(
        "/hooks/relay",
        axum::routing::post(move |body: axum::body::Bytes| {
            let (client, base) = (client.clone(), base.clone());
            async move {
                let event: Json = serde_json::from_slice(&body).unwrap_or_default();
                let mut mapped = json!({"id": event["id"], "email": event["contact"]["email"], "name": event["contact"]["first"]});
                if let Shape::LookupThenPost = shape {
                    let lookup = client.get(format!("{base}/lookup")).query(&[("id", event["id"].to_string())]).send().await;
                    let found: Json = match lookup {
                        Ok(response) => response.json().await.unwrap_or_default(),
                        Err(_) => Json::Null,
                    };
                    mapped["owner"] = found["owner"].clone();
                }
                let target = format!("{base}/sink");
                let key = format!("evt-{}", event["id"]);
                let _ = client.post(target).header("Idempotency-Key", key).json(&mapped).send().await;
                "ok"
            }
        }),
    );
    let url = serve(app).await;
    let started = Instant::now();
    post_all(&url).await;
    let total = delivered(&sink, shape, started).await;
    EVENTS as f64 / total.as_secs_f64()
}

/// Serves `app` on a free port of 127.0.0.1; returns its webhook URL.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/hooks/relay",
        listener.local_addr().expect("addr")
    );
    tokio::spawn(axum::serve(listener, app).into_future());
    url
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        integ::engine::install_crypto_provider();
        for shape in [Shape::Post, Shape::LookupThenPost] {
            compare(shape).await;
        }
    });
}

/// Three rounds of integ serve against the bare forwarder for one shape of event.
async fn compare(shape: Shape) {
    let mut ratios = Vec::new();
    for round in 1..=3 {
        let bare = bare_run(shape).await;
        let (mut latencies, rate) = integ_run(shape).await;
        latencies.sort();
        let accept_rate =
            EVENTS as f64 / latencies.iter().sum::<Duration>().as_secs_f64() * IN_FLIGHT as f64;
        println!(
            "{shape:?} round {round}: accept p50 {:.1} ms, p99 {:.1} ms (~{accept_rate:.0}/s); end to end integ {rate:.0} events/s, bare forwarder {bare:.0} events/s, ratio {:.0} %",
            percentile(&latencies, 0.5).as_secs_f64() * 1e3,
            percentile(&latencies, 0.99).as_secs_f64() * 1e3,
            100.0 * rate / bare
        );
        ratios.push(rate / bare);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "{shape:?}: integ serve / bare forwarder, median of 3: {:.0} % ({EVENTS} webhooks, {IN_FLIGHT} in flight)",
        100.0 * ratios[1]
    );
}
