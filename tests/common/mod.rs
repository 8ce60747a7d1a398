//! Helpers shared by the integration tests. Each test file compiles this module on its own
//! and uses part of it, hence `dead_code` allowed here.

#![allow(dead_code, clippy::unwrap_used)]

use hmac::{KeyInit, Mac};
use integ::mock::{MockResponse, Route};
use serde_json::Value as Json;

/// A mock route answering `responses` in turn.
pub fn route(method: &str, path: &str, responses: Vec<MockResponse>) -> Route {
    Route {
        method: method.into(),
        path: path.into(),
        responses,
    }
}

/// A `200` with a JSON body.
pub fn ok(body: Json) -> MockResponse {
    MockResponse::json(200, body)
}

/// GitHub's `X-Hub-Signature-256` of `body` under `secret`.
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A port nothing listens on at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
