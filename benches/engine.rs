//! Engine throughput against a bare reqwest forwarder doing the same work, in one run.
//!
//! The work per event: GET a lookup from a local sink, then POST a body mapped from the
//! event and the lookup. Both sides run the same number of events with the same number in
//! flight against the same server on 127.0.0.1. `cargo bench --bench engine` prints events/s
//! of each and the ratio (goal: the engine at 60 % of the bare forwarder or better).

use futures_util::StreamExt;
use integ::engine::{Engine, Options, RunOutcome};
use integ::mock::{MockResponse, MockServer, Route};
use integ::secrets::Secrets;
use serde_json::{Value as Json, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const EVENTS: usize = 2_000;
const IN_FLIGHT: usize = 32;

const SPEC: &str = r#"integration bench {
  connection sink { base_url "{url}" auth bearer secret("TOKEN") }
  trigger manual
  step lookup = sink GET "/lookup/{{ event.id }}"
  step forward = sink POST "/sink" {
    idempotency_key "fwd-{{ event.id }}"
    body {
      data.id = $.id
      data.email = $lookup.email
      data.name = "{{ lookup.first }} {{ lookup.last }}"
      data.plan = $lookup.plan ?? "free"
    }
  }
}"#;

fn events() -> Vec<Json> {
    (0..EVENTS).map(|i| json!({"id": i % 50})).collect()
}

fn routes() -> Vec<Route> {
    let lookups = (0..50).map(|i| Route {
        method: "GET".into(),
        path: format!("/lookup/{i}"),
        responses: vec![MockResponse::json(
            200,
            json!({"email": format!("u{i}@example.com"), "first": "Ada", "last": "Lovelace"}),
        )],
    });
    let sink = Route {
        method: "POST".into(),
        path: "/sink".into(),
        responses: vec![MockResponse::json(201, json!({"ok": true}))],
    };
    lookups.chain([sink]).collect()
}

async fn engine_rate(url: &str) -> f64 {
    let text = SPEC.replace("{url}", url);
    let mut files = integ::lint::lint_sources(vec![(PathBuf::from("bench.integ"), text)]);
    let model = files
        .pop()
        .and_then(|f| f.model)
        .expect("the bench spec is clean");
    let plan = integ::plan::compile(&model, None, std::path::Path::new(".")).expect("plan");
    let secrets = Secrets::from_pairs([("TOKEN", "bench-token")]);
    let engine =
        Arc::new(Engine::new(Arc::new(plan), secrets, Options::default()).expect("engine"));
    let started = Instant::now();
    let outcomes: Vec<RunOutcome> = futures_util::stream::iter(events())
        .map(|event| {
            let engine = engine.clone();
            async move { engine.run(event).await.outcome }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let elapsed = started.elapsed();
    assert!(
        outcomes.iter().all(|o| *o == RunOutcome::Succeeded),
        "every engine run succeeds"
    );
    EVENTS as f64 / elapsed.as_secs_f64()
}

/// The same work written by hand: what a team would write instead of a spec.
async fn bare_rate(url: &str) -> f64 {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let statuses: Vec<u16> = futures_util::stream::iter(events())
        .map(|event| {
            let client = client.clone();
            async move {
                let id = event["id"].as_u64().unwrap_or_default();
                let lookup: Json = client
                    .get(format!("{url}/lookup/{id}"))
                    .bearer_auth("bench-token")
                    .send()
                    .await
                    .expect("lookup")
                    .json()
                    .await
                    .expect("lookup body");
                let body = json!({"data": {
                    "id": id,
                    "email": lookup["email"],
                    "name": format!("{} {}", lookup["first"].as_str().unwrap_or(""), lookup["last"].as_str().unwrap_or("")),
                    "plan": lookup.get("plan").cloned().unwrap_or(json!("free")),
                }});
                let response = client
                    .post(format!("{url}/sink"))
                    .bearer_auth("bench-token")
                    .header("Idempotency-Key", format!("fwd-{id}"))
                    .json(&body)
                    .send()
                    .await
                    .expect("post");
                response.status().as_u16()
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let elapsed = started.elapsed();
    assert!(statuses.iter().all(|s| *s == 201), "every forward succeeds");
    EVENTS as f64 / elapsed.as_secs_f64()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut ratios = Vec::new();
        // Alternate the two, three rounds each, so that a noisy neighbour hits both alike.
        for round in 1..=3 {
            let server = MockServer::start(routes()).await.expect("sink");
            let bare = bare_rate(&server.url()).await;
            let server = MockServer::start(routes()).await.expect("sink");
            let engine = engine_rate(&server.url()).await;
            println!("round {round}: bare forwarder {bare:.0} events/s, engine {engine:.0} events/s, ratio {:.0} %", 100.0 * engine / bare);
            ratios.push(engine / bare);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        ratios.sort_by(f64::total_cmp);
        println!("engine/bare median ratio over 3 rounds: {:.0} % ({EVENTS} events, {IN_FLIGHT} in flight)", 100.0 * ratios[1]);
    });
}
