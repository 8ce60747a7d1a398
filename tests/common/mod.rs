//! Helpers shared by the integration tests. Each test file compiles this module on its own
//! and uses part of it, hence `dead_code` allowed here.

#![allow(dead_code, clippy::unwrap_used)]

pub mod alerting;
pub mod browser;
pub mod crm;
pub mod serving;

use hmac::{KeyInit, Mac};
use integ::mock::{MockResponse, Route};
use integ::store::{Inbox, InboxItem, NewEvents, Owner};
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

/// The owner of the claims a test makes: another process than the server under test.
pub fn owner() -> &'static Owner {
    static OWNER: std::sync::OnceLock<Owner> = std::sync::OnceLock::new();
    OWNER.get_or_init(|| Owner::new(std::time::Duration::from_secs(60)))
}

/// Enqueues events to be claimed, as another process's trigger would; returns how many
/// were enqueued and dropped as duplicates.
pub async fn enqueue(
    store: &dyn Inbox,
    integration: &str,
    events: &[(Json, Option<String>)],
) -> (usize, usize) {
    let enqueued = store
        .enqueue(NewEvents::of(integration, events))
        .await
        .unwrap();
    (enqueued.accepted(), enqueued.duplicates())
}

/// Claims events as another process would.
pub async fn claim(store: &dyn Inbox, limit: usize, from: &[&str]) -> Vec<InboxItem> {
    let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
    store.claim(owner(), limit, &from).await.unwrap()
}

/// A fresh folder for a test, under the target's temporary folder.
pub fn workdir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` to `dir/name`, creating the folders on the way.
pub fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the built `integ` in `dir` with `env` added (and `NO_COLOR` unset: output to a
/// pipe is plain anyway).
pub fn integ(args: &[&str], dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_integ"));
    command.args(args).current_dir(dir).env_remove("NO_COLOR");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// The `id` of each JSON line of `text`.
pub fn json_ids(text: &str) -> Vec<i64> {
    text.lines()
        .map(|line| {
            serde_json::from_str::<Json>(line).unwrap()["id"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
