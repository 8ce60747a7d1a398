//! OAuth2 against real token endpoints on 127.0.0.1: rotated refresh tokens kept (sealed) in
//! a real state file and used after a restart, retries, RFC 6749 errors, short-lived tokens,
//! the response size cap, and every token redacted from the moment it is obtained.

// Test helpers unwrap: a failure there is a test failure, reported with its panic.
#![allow(clippy::unwrap_used)]

mod common;

use common::{ok, route};
use integ::engine::{Engine, Options, RunOutcome};
use integ::mock::{MockResponse, MockServer, Recorded};
use integ::secrets::Secrets;
use integ::store::SqliteStore;
use serde_json::{Value as Json, json};
use std::path::PathBuf;
use std::sync::Arc;

/// A connection `crm` to `api` with OAuth2 (the refresh token grant when `refresh` is
/// set), and one step per path in `paths`.
fn engine(api: &MockServer, refresh: Option<&str>, paths: &[&str], options: Options) -> Engine {
    engine_with(api, refresh, paths, options, "")
}

/// `engine`, with `setting` added to the connection.
fn engine_with(
    api: &MockServer,
    refresh: Option<&str>,
    paths: &[&str],
    options: Options,
    setting: &str,
) -> Engine {
    let refresh_line = if refresh.is_some() {
        r#"refresh_token secret("REFRESH")"#
    } else {
        ""
    };
    let steps: String = paths
        .iter()
        .enumerate()
        .map(|(i, path)| format!("  step s{i} = crm GET \"{path}\"\n"))
        .collect();
    let spec = format!(
        r#"integration demo {{
  connection crm {{
    base_url "{url}"
    {setting}
    auth oauth2 {{
      token_url "{url}/token"
      client_id secret("ID")
      client_secret secret("SECRET")
      {refresh_line}
    }}
  }}
  trigger manual
{steps}}}"#,
        url = api.url()
    );
    let mut files = integ::lint::lint_sources(vec![(PathBuf::from("spec.integ"), spec)]);
    let file = files.pop().unwrap();
    let Some(model) = &file.model else {
        panic!("spec has errors: {:?}", file.diagnostics)
    };
    let plan = integ::plan::compile(model, None, std::path::Path::new(".")).unwrap();
    let mut secrets = vec![("ID", "client-id"), ("SECRET", "client-secret-1")];
    if let Some(refresh) = refresh {
        secrets.push(("REFRESH", refresh));
    }
    Engine::new(Arc::new(plan), Secrets::from_pairs(secrets), options).unwrap()
}

fn token_requests(api: &MockServer) -> Vec<Recorded> {
    api.requests()
        .into_iter()
        .filter(|r| r.path == "/token")
        .collect()
}

fn sent_refresh_tokens(api: &MockServer) -> Vec<String> {
    token_requests(api)
        .iter()
        .map(|r| r.body["refresh_token"].as_str().unwrap_or("").to_string())
        .collect()
}

fn state_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("integ-oauth2-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[tokio::test]
async fn a_rotated_refresh_token_is_kept_sealed_and_sent_after_a_restart() {
    let api = MockServer::start(vec![
        route(
            "POST",
            "/token",
            vec![
                // Expires at once, so the next step refreshes again.
                ok(json!({"access_token": "at-1", "refresh_token": "rt-2", "expires_in": 0})),
                // No refresh_token: the current one stays.
                ok(json!({"access_token": "at-2", "expires_in": 0})),
                ok(json!({"access_token": "at-3", "refresh_token": "rt-3", "expires_in": 3600})),
            ],
        ),
        route("GET", "/a", vec![ok(json!({}))]),
    ])
    .await
    .unwrap();
    let dir = state_dir("rotate");
    let store = Arc::new(SqliteStore::open(&dir.join("state.db")).unwrap());
    // Fresh options for each engine: a new process shares nothing in memory.
    let options = || Options {
        refresh_tokens: Some(store.clone()),
        ..Options::default()
    };
    let first = engine(&api, Some("rt-1"), &["/a", "/a"], options());
    let report = first.run(json!({})).await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    assert_eq!(sent_refresh_tokens(&api), ["rt-1", "rt-2"]);
    drop(first);
    // A new process on the same state file sends the rotated token, not the spent one.
    let restarted = engine(&api, Some("rt-1"), &["/a"], options());
    restarted.run(json!({})).await;
    assert_eq!(sent_refresh_tokens(&api), ["rt-1", "rt-2", "rt-2"]);
    // Kept sealed: the state file holds no form of it.
    drop(restarted);
    let raw = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    let sealed: Vec<u8> = raw
        .query_row("SELECT sealed FROM refresh_tokens", [], |row| row.get(0))
        .unwrap();
    assert!(
        !sealed.windows(4).any(|w| w == b"rt-3"),
        "sealed, not clear"
    );
    // An operator who authorises again puts a new refresh token in the secrets: it wins
    // over the stored one, which it cannot open.
    let reauthorised = engine(&api, Some("rt-new"), &["/a"], options());
    reauthorised.run(json!({})).await;
    assert_eq!(
        sent_refresh_tokens(&api).last().map(String::as_str),
        Some("rt-new")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_token_endpoint_5xx_is_retried_and_a_400_keeps_the_oauth_error() {
    let api = MockServer::start(vec![
        route(
            "POST",
            "/token",
            vec![
                MockResponse::json(503, json!({"error": "temporarily_unavailable"})),
                ok(json!({"access_token": "at-1", "expires_in": 3600})),
            ],
        ),
        route("GET", "/a", vec![ok(json!({}))]),
    ])
    .await
    .unwrap();
    let report = engine(&api, None, &["/a"], Options::default())
        .run(json!({}))
        .await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    assert_eq!(token_requests(&api).len(), 2, "the 503 was tried again");

    let refused = MockServer::start(vec![route(
        "POST",
        "/token",
        vec![MockResponse::json(
            400,
            json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."}),
        )],
    )])
    .await
    .unwrap();
    let report = engine(&refused, Some("rt-spent"), &["/a"], Options::default())
        .run(json!({}))
        .await;
    let error = report.steps[0].error.clone().unwrap_or_default();
    assert!(
        error.contains("status 400: invalid_grant: Token has been expired or revoked."),
        "{error}"
    );
    assert_eq!(
        token_requests(&refused).len(),
        1,
        "a 400 is not tried again"
    );
}

#[tokio::test]
async fn a_token_request_that_times_out_is_tried_again() {
    let api = MockServer::start(vec![
        route(
            "POST",
            "/token",
            vec![
                ok(json!({"access_token": "at-late"})).after(std::time::Duration::from_secs(3)),
                ok(json!({"access_token": "at-1", "expires_in": 3600})),
            ],
        ),
        route("GET", "/a", vec![ok(json!({}))]),
    ])
    .await
    .unwrap();
    let report = engine_with(&api, None, &["/a"], Options::default(), "timeout 500ms")
        .run(json!({}))
        .await;
    assert_eq!(report.outcome, RunOutcome::Succeeded, "{report:#?}");
    assert_eq!(
        token_requests(&api).len(),
        2,
        "the silent one was tried again"
    );
    let calls: Vec<Option<String>> = api
        .requests()
        .iter()
        .filter(|r| r.path == "/a")
        .map(|r| r.header("authorization").map(String::from))
        .collect();
    assert_eq!(calls, [Some("Bearer at-1".to_string())]);
}

#[tokio::test]
async fn a_token_good_for_30_seconds_is_reused() {
    let api = MockServer::start(vec![
        route(
            "POST",
            "/token",
            vec![ok(json!({"access_token": "at-short", "expires_in": 30}))],
        ),
        route("GET", "/a", vec![ok(json!({}))]),
    ])
    .await
    .unwrap();
    let engine = engine(&api, None, &["/a"], Options::default());
    for _ in 0..32 {
        let report = engine.run(json!({})).await;
        assert_eq!(report.outcome, RunOutcome::Succeeded);
    }
    // 32 before: the 30 s margin left it no lifetime. It is good for 24 s now; a loaded
    // machine may need a second one, never one per event.
    assert!(
        token_requests(&api).len() <= 2,
        "{}",
        token_requests(&api).len()
    );
}

#[tokio::test]
async fn the_token_answer_is_read_under_the_size_cap() {
    let api = MockServer::start(vec![route(
        "POST",
        "/token",
        vec![ok(
            json!({"access_token": "at-1", "padding": "x".repeat(20_000)}),
        )],
    )])
    .await
    .unwrap();
    let options = Options {
        max_response_bytes: Some(10_000),
        ..Options::default()
    };
    let report = engine(&api, None, &["/a"], options).run(json!({})).await;
    let error = report.steps[0].error.clone().unwrap_or_default();
    assert!(error.contains("larger than 10000 bytes"), "{error}");
}

#[tokio::test]
async fn tokens_are_redacted_from_the_moment_they_are_obtained() {
    use base64::Engine as _;
    let echoed = format!(
        "Bearer at-canary-1 rt-canary-2 {} {}",
        base64::engine::general_purpose::STANDARD.encode("at-canary-1"),
        "client-secret-1"
    );
    let api = MockServer::start(vec![
        route(
            "POST",
            "/token",
            vec![ok(
                json!({"access_token": "at-canary-1", "refresh_token": "rt-canary-2", "expires_in": 3600}),
            )],
        ),
        route(
            "GET",
            "/a",
            vec![MockResponse::json(400, json!({ "echo": echoed }))],
        ),
    ])
    .await
    .unwrap();
    let engine = engine(&api, Some("rt-canary-1"), &["/a"], Options::default());
    let report = engine.run(json!({})).await;
    let shown = serde_json::to_string(&report).unwrap();
    assert!(shown.contains("[redacted]"), "{shown}");
    for canary in [
        "at-canary-1",
        "rt-canary-2",
        "client-secret-1",
        "YXQtY2FuYXJ5LTE",
    ] {
        assert!(!shown.contains(canary), "{canary} in {shown}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn integ_run_keeps_the_rotated_refresh_token_in_its_state_file() {
    let api = MockServer::start(vec![
        route(
            "POST",
            "/token",
            vec![
                ok(json!({"access_token": "at-1", "refresh_token": "rt-2", "expires_in": 3600})),
                ok(json!({"access_token": "at-2", "refresh_token": "rt-3", "expires_in": 3600})),
            ],
        ),
        route("GET", "/a", vec![ok(json!({}))]),
    ])
    .await
    .unwrap();
    let dir = state_dir("cli");
    std::fs::create_dir_all(&dir).unwrap();
    let spec = refreshing_spec("demo", &api.url(), &format!("{}/token", api.url()));
    std::fs::write(dir.join("spec.integ"), spec).unwrap();
    std::fs::write(
        dir.join("secrets.env"),
        "ID=client-id\nSECRET=client-secret-1\nREFRESH=rt-1\n",
    )
    .unwrap();
    for _ in 0..2 {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_integ"))
            .args(["run", "spec.integ", "--secrets", "secrets.env"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // The second process sent what the first one was given, from .integ/state.db.
    assert_eq!(sent_refresh_tokens(&api), ["rt-1", "rt-2"]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A strict token endpoint: it accepts only the current refresh token, rotates it on each
/// use, and refuses a spent one with `invalid_grant`.
async fn strict_token(
    axum::extract::State(current): axum::extract::State<Arc<std::sync::Mutex<u32>>>,
    form: String,
) -> (axum::http::StatusCode, axum::Json<Json>) {
    let sent = form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == "refresh_token")
        .map(|(_, v)| v.into_owned());
    let mut current = current.lock().unwrap();
    if sent != Some(format!("rt-{current}")) {
        let refused = json!({"error": "invalid_grant", "error_description": "spent"});
        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(refused));
    }
    *current += 1;
    let answer = json!({"access_token": format!("at-{current}"), "refresh_token": format!("rt-{current}"), "expires_in": 0});
    (axum::http::StatusCode::OK, axum::Json(answer))
}

#[tokio::test]
async fn connections_with_one_refresh_token_share_one_client_and_never_spend_it_twice() {
    let current = Arc::new(std::sync::Mutex::new(1));
    let token = axum::Router::new()
        .route("/token", axum::routing::post(strict_token))
        .with_state(current.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, token).await });
    let api = MockServer::start(vec![route("GET", "/a", vec![ok(json!({}))])])
        .await
        .unwrap();
    // Two integrations served together, each with a connection holding the same refresh
    // token, and engines made with the same options (as integ serve makes them).
    let options = Options::default();
    let spec = |name: &str| refreshing_spec(name, &api.url(), &token_url);
    let engines: Vec<Engine> = ["first", "second"]
        .iter()
        .map(|name| {
            let mut files =
                integ::lint::lint_sources(vec![(PathBuf::from("spec.integ"), spec(name))]);
            let file = files.pop().unwrap();
            let model = file.model.as_ref().unwrap();
            let plan = integ::plan::compile(model, None, std::path::Path::new(".")).unwrap();
            let secrets = Secrets::from_pairs([
                ("ID", "client-id"),
                ("SECRET", "client-secret-1"),
                ("REFRESH", "rt-1"),
            ]);
            Engine::new(Arc::new(plan), secrets, options.clone()).unwrap()
        })
        .collect();
    for round in 0..2 {
        for engine in &engines {
            let report = engine.run(json!({})).await;
            assert_eq!(
                report.outcome,
                RunOutcome::Succeeded,
                "round {round}: {report:#?}"
            );
        }
    }
    assert_eq!(
        *current.lock().unwrap(),
        5,
        "four refreshes, each with the current token"
    );
}

/// Integration `name` whose connection `crm` at `url` refreshes its OAuth2 token at
/// `token_url` (secrets `ID`, `SECRET`, `REFRESH`), with one step `a` reading `/a`.
fn refreshing_spec(name: &str, url: &str, token_url: &str) -> String {
    format!(
        r#"integration {name} {{
  connection crm {{
    base_url "{url}"
    auth oauth2 {{
      token_url "{token_url}"
      client_id secret("ID")
      client_secret secret("SECRET")
      refresh_token secret("REFRESH")
    }}
  }}
  trigger manual
  step a = crm GET "/a"
}}"#
    )
}
