//! The ceiling: the w2h job done by a bare axum + reqwest handler in a process of its own
//! (the bench re-executed as the `forwarder` role), as the shared harness's `limit`
//! forwarder: receive the contact, map it with typed serde, POST the prospect to the sink,
//! answer 200 once the sink accepted it (502 otherwise).

use super::w2h;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::routing::post;
use std::sync::Arc;
use std::time::Duration;

struct Forwarder {
    client: reqwest::Client,
    sink: String,
}

/// The forwarder's routes, posting to `sink`.
pub fn app(sink: String) -> axum::Router {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
    axum::Router::new()
        .route("/webhook/w2h", post(webhook))
        .with_state(Arc::new(Forwarder { client, sink }))
}

async fn webhook(State(app): State<Arc<Forwarder>>, body: axum::body::Bytes) -> StatusCode {
    let Ok(prospect) = w2h::prospect(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    let sent = app
        .client
        .post(&app.sink)
        .header(header::CONTENT_TYPE, "application/json")
        .body(prospect)
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => StatusCode::OK,
        _ => StatusCode::BAD_GATEWAY,
    }
}
