//! The fast checking sink, in a process of its own (the bench re-executed as the `sink`
//! role), as the shared harness's `sink`: `POST /SOURCE/prospects` checks the prospect
//! exactly, counts it, times it end to end from its `sentAt`, and answers 201 at once (with
//! the harness sink's small JSON body). Each sender posts under a `SOURCE` of its own, so
//! that a bench can wait until the sink has every event one of them accepted.
//! `GET /stats` returns the counts (`?reset=1` also starts a new window).

use super::child::Child;
use super::w2h;
use axum::Json as Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What `GET /stats` answers.
#[derive(Debug, Serialize, Deserialize)]
pub struct Stats {
    /// Prospects received from each source since the sink started.
    pub totals: BTreeMap<String, u64>,
    /// Prospects received in the window.
    pub accepted: u64,
    /// Of those, the ones that are not what the mapping must make of their contact.
    pub shape_errors: u64,
    /// The first shape error of the window.
    pub first_error: Option<String>,
    /// End-to-end latency (sink's clock minus the contact's `sentAt`) in the window.
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Stats {
    /// Prospects received from `source` since the sink started.
    pub fn total(&self, source: &str) -> u64 {
        self.totals.get(source).copied().unwrap_or(0)
    }
}

/// The bench's handle on the sink process.
pub struct Sink {
    child: Child,
    /// `http://127.0.0.1:PORT`
    base: String,
    client: reqwest::Client,
}

impl Sink {
    pub fn start() -> Sink {
        let (child, port) = Child::role("sink", None);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client");
        Sink {
            child,
            base: format!("http://127.0.0.1:{port}"),
            client,
        }
    }

    /// The base URL of `source`'s connection to the sink: it POSTs to `/prospects` under it.
    pub fn base_url(&self, source: &str) -> String {
        format!("{}/{source}", self.base)
    }

    /// The counts so far; with `reset`, a new window starts.
    pub async fn stats(&mut self, reset: bool) -> Stats {
        let query = if reset { "?reset=1" } else { "" };
        let answer = self
            .client
            .get(format!("{}/stats{query}", self.base))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        match answer {
            Ok(response) => response.json().await.expect("the sink's stats"),
            Err(e) => {
                self.child.check_alive();
                panic!("the sink's stats: {e}");
            }
        }
    }
}

/// The sink's own side: its routes.
pub fn app() -> axum::Router {
    let counts = Arc::new(Mutex::new(Counts {
        totals: BTreeMap::new(),
        window: Window::new(),
    }));
    axum::Router::new()
        .route("/{source}/prospects", post(prospect))
        .route("/stats", get(stats))
        .with_state(counts)
}

type Shared = Arc<Mutex<Counts>>;

struct Counts {
    totals: BTreeMap<String, u64>,
    window: Window,
}

struct Window {
    accepted: u64,
    shape_errors: u64,
    first_error: Option<String>,
    latency_us: Histogram<u64>,
}

impl Window {
    fn new() -> Window {
        Window {
            accepted: 0,
            shape_errors: 0,
            first_error: None,
            // 1 µs to 1 h, 3 significant digits; longer ones are recorded as 1 h.
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds"),
        }
    }
}

/// What the sink answers, as the harness's does (a client may parse it).
const ANSWER: &str = r#"{"data":{"type":"prospect","id":1}}"#;

async fn prospect(
    State(counts): State<Shared>,
    Path(source): Path<String>,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    let checked = serde_json::from_slice::<Json>(&body)
        .map_err(|e| format!("the body is not JSON: {e}"))
        .and_then(|prospect| w2h::check(&prospect));
    let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    *counts.totals.entry(source).or_insert(0) += 1;
    let window = &mut counts.window;
    window.accepted += 1;
    match checked {
        Ok(sent_at) => {
            let micros = ((w2h::now_ms() - sent_at) * 1000.0).max(1.0) as u64;
            window.latency_us.saturating_record(micros);
        }
        Err(reason) => {
            window.shape_errors += 1;
            window.first_error.get_or_insert(reason);
        }
    }
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        ANSWER,
    )
}

#[derive(Deserialize)]
struct StatsQuery {
    reset: Option<u8>,
}

async fn stats(State(counts): State<Shared>, Query(q): Query<StatsQuery>) -> Body<Stats> {
    let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
    let totals = counts.totals.clone();
    let window = &mut counts.window;
    let ms = |q: f64| window.latency_us.value_at_quantile(q) as f64 / 1000.0;
    let stats = Stats {
        totals,
        accepted: window.accepted,
        shape_errors: window.shape_errors,
        first_error: window.first_error.clone(),
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
    };
    if q.reset == Some(1) {
        *window = Window::new();
    }
    Body(stats)
}
