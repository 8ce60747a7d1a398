//! The canary test: a failing OAuth2 integration under the real `integ serve`, against an
//! API that echoes every credential it receives and a token endpoint that rotates the
//! refresh token. Afterwards no form of any canary (the client secret, the refresh tokens
//! old and new, the access tokens; raw, base64, percent-encoded, as a Bearer header) may be
//! anywhere: in any column of any table of the state file, in the files of its folder, on
//! stdout, or in the JSON logs on stderr.

#![allow(clippy::unwrap_used)]

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine as _;
use common::serving::Serving;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn sign(body: &[u8]) -> String {
    common::github_signature(WEBHOOK_SECRET, body)
}

const WEBHOOK_SECRET: &str = "canary-webhook-signing";
/// Characters that percent-encoding and base64 change, so each form is its own text.
const CLIENT_SECRET: &str = "canary-client/secret+1=";

fn access_token(n: usize) -> String {
    format!("canary-access/{n}+tok=")
}

fn refresh_token(n: usize) -> String {
    format!("canary-refresh/{n}+tok=")
}

/// How many token requests came, and the refresh token each sent.
type Issued = Arc<(AtomicUsize, std::sync::Mutex<Vec<String>>)>;

/// The token endpoint: every answer rotates the refresh token; the third request is
/// refused with the request (client secret and refresh token) echoed in its description.
async fn token(
    State(issued): State<Issued>,
    form: String,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let sent = form_urlencoded::parse(form.as_bytes())
        .find(|(k, _)| k == "refresh_token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    issued.1.lock().unwrap().push(sent);
    let n = issued.0.fetch_add(1, Ordering::SeqCst) + 1;
    if n == 3 {
        let refused = serde_json::json!({"error": "invalid_grant", "error_description": form});
        return (StatusCode::BAD_REQUEST, axum::Json(refused));
    }
    let answer = serde_json::json!({
        "access_token": access_token(n),
        "refresh_token": refresh_token(n + 1),
        "token_type": "Bearer",
        "expires_in": 3600,
    });
    (StatusCode::OK, axum::Json(answer))
}

/// The API: echoes the request (headers, query, body) in every answer. `/first` refuses
/// the first access token (401), so the engine refreshes with the rotated refresh token,
/// then succeeds; `/second` fails (422) for event 1, so it dead-letters, and refuses the
/// token (401) for event 2, whose refresh the token endpoint then refuses.
async fn api(uri: Uri, headers: HeaderMap, body: String) -> (StatusCode, String) {
    let authorization = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let all: Vec<String> = headers
        .iter()
        .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(v.as_bytes())))
        .collect();
    let echo = serde_json::json!({
        "authorization": authorization,
        "headers": all,
        "uri": uri.to_string(),
        "body": body,
    })
    .to_string();
    let status = match uri.path() {
        "/first" if authorization == format!("Bearer {}", access_token(1)) => {
            StatusCode::UNAUTHORIZED
        }
        "/first" => StatusCode::OK,
        "/second" if body.contains("\"id\":2") => StatusCode::UNAUTHORIZED,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    (status, echo)
}

/// Every form a canary may take on the way out.
fn forms(canary: &str) -> Vec<String> {
    let standard = base64::engine::general_purpose::STANDARD_NO_PAD.encode(canary);
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(canary);
    let component =
        percent_encoding::utf8_percent_encode(canary, percent_encoding::NON_ALPHANUMERIC)
            .to_string();
    let form: String = form_urlencoded::byte_serialize(canary.as_bytes()).collect();
    let json = serde_json::to_string(canary).unwrap();
    vec![
        canary.to_string(),
        format!("Bearer {canary}"),
        standard,
        url_safe,
        component,
        form,
        json[1..json.len() - 1].to_string(),
    ]
}

fn canaries() -> Vec<String> {
    let mut all = vec![CLIENT_SECRET.to_string()];
    for n in 1..=4 {
        all.extend([access_token(n), refresh_token(n)]);
    }
    all.push(
        base64::engine::general_purpose::STANDARD.encode(format!("canary-client:{CLIENT_SECRET}")),
    );
    all
}

/// The canaries' forms found in `text`.
fn found_in(text: &[u8]) -> Vec<String> {
    forms_of_in(&canaries(), text)
}

/// The forms of `canaries` found in `text`.
fn forms_of_in(canaries: &[String], text: &[u8]) -> Vec<String> {
    canaries
        .iter()
        .flat_map(|c| forms(c))
        .filter(|form| text.windows(form.len()).any(|w| w == form.as_bytes()))
        .collect()
}

/// Every value of every column of every table, as text.
fn every_table(path: &Path) -> Vec<(String, Vec<u8>)> {
    let db = rusqlite::Connection::open(path).unwrap();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut values = Vec::new();
    for table in tables {
        let mut statement = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = statement.column_count();
        let mut rows = statement.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for column in 0..columns {
                use rusqlite::types::ValueRef;
                let bytes = match row.get_ref(column).unwrap() {
                    ValueRef::Null => Vec::new(),
                    ValueRef::Integer(n) => n.to_string().into_bytes(),
                    ValueRef::Real(r) => r.to_string().into_bytes(),
                    ValueRef::Text(t) | ValueRef::Blob(t) => t.to_vec(),
                };
                values.push((table.clone(), bytes));
            }
        }
    }
    values
}

fn dead_letters(state: &Path) -> usize {
    rusqlite::Connection::open(state)
        .and_then(|db| {
            db.query_row("SELECT COUNT(*) FROM dead_letters", [], |r| {
                r.get::<_, i64>(0)
            })
        })
        .map(|n| n as usize)
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn no_form_of_any_canary_is_kept_printed_or_logged() {
    integ::engine::install_crypto_provider();
    let issued: Issued = Arc::default();
    let app = axum::Router::new()
        .route("/token", axum::routing::post(token))
        .with_state(issued.clone())
        .fallback(api);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("canary");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!(
        r#"integration canary {{
  connection crm {{
    base_url "{api_url}"
    auth oauth2 {{
      token_url "{api_url}/token"
      client_id secret("CLIENT_ID")
      client_secret secret("CLIENT_SECRET")
      refresh_token secret("REFRESH_TOKEN")
    }}
  }}
  trigger webhook "/hooks/canary" {{
    signature hmac_sha256 secret("WEBHOOK_SECRET") {{ header "X-Signature" prefix "sha256=" }}
  }}
  step first = crm GET "/first"
  step second = crm POST "/second" {{
    body {{ id = $.id, seen = $first.authorization }}
    on_error dead_letter
  }}
}}"#
    );
    std::fs::write(dir.join("canary.integ"), spec).unwrap();
    std::fs::write(
        dir.join("secrets.env"),
        format!(
            "CLIENT_ID=canary-client\nCLIENT_SECRET='{CLIENT_SECRET}'\nREFRESH_TOKEN='{}'\nWEBHOOK_SECRET={WEBHOOK_SECRET}\n",
            refresh_token(1)
        ),
    )
    .unwrap();
    // Its output goes to a file, not a pipe nobody reads while it runs (debug logs fill
    // one, and a process blocked on writing its logs stops).
    let args = [
        "canary.integ",
        "--secrets",
        "secrets.env",
        "--state",
        "state/state.db",
    ];
    let mut server = Serving::start_with_env(&dir, &args, &[("INTEG_LOG", "debug")]).await;
    let client = reqwest::Client::new();
    let state = dir.join("state/state.db");
    for id in [1, 2] {
        let body = format!(r#"{{"id": {id}}}"#);
        let accepted = client
            .post(format!("{}/hooks/canary", server.url))
            .header("X-Signature", sign(body.as_bytes()))
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status(), 202);
        // One at a time, so the token calls come in the order the test expects. Waited
        // for, a minute at most.
        let started = Instant::now();
        while dead_letters(&state) < id && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(dead_letters(&state), id, "event {id} dead-letters");
    }
    // The runs went as planned: a token, a 401, a refresh with the rotated token; then a
    // 401 and a refused refresh with the next rotated one.
    assert_eq!(
        *issued.1.lock().unwrap(),
        [refresh_token(1), refresh_token(2), refresh_token(3)],
        "each refresh sends the token the one before rotated to"
    );
    server.terminate();
    server.wait().unwrap();
    // What it printed and logged, in one file (outside the state folder).
    let output = std::fs::read(dir.join("serve.log")).unwrap();

    let mut leaks = Vec::new();
    for (table, value) in every_table(&state) {
        for form in found_in(&value) {
            leaks.push(format!("table {table}: {form}"));
        }
    }
    for file in std::fs::read_dir(dir.join("state")).unwrap() {
        let file = file.unwrap().path();
        for form in found_in(&std::fs::read(&file).unwrap()) {
            leaks.push(format!("file {}: {form}", file.display()));
        }
    }
    for form in found_in(&output) {
        leaks.push(format!("output or logs: {form}"));
    }
    let logs = String::from_utf8_lossy(&output);
    assert!(leaks.is_empty(), "{leaks:#?}\n{logs}");
    // And the logs did say what failed, redacted.
    assert!(logs.contains("[redacted]"), "{logs}");
    assert!(logs.contains("\"outcome\":\"dead_lettered\""), "{logs}");
    assert!(logs.contains("invalid_grant"), "{logs}");
}

#[test]
fn a_secrets_file_line_that_does_not_parse_is_named_never_shown() {
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("canary-env");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("spec.integ"),
        r#"integration env_file {
  connection api { base_url "http://127.0.0.1:9" auth bearer secret("API_KEY") }
  trigger manual
  step ping = api GET "/ping"
}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("bad.env"),
        "# keys\nOTHER=\"fine value\"\nAPI_KEY=canary live key 42\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_integ"))
        .args(["run", "spec.integ", "--secrets", "bad.env", "--dry-run"])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("line 3 (`API_KEY`)"), "{stderr}");
    for shown in [&output.stdout, &output.stderr] {
        let text = String::from_utf8_lossy(shown);
        assert!(
            !text.contains("canary live") && !text.contains("key 42"),
            "{text}"
        );
    }
    // Quoted, the same value is read as written.
    std::fs::write(dir.join("good.env"), "API_KEY='canary live key 42'\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_integ"))
        .args(["run", "spec.integ", "--secrets", "good.env", "--dry-run"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A key sent with literal text around it (Klaviyo's `Authorization: Klaviyo-API-Key <key>`)
/// by the real `integ run`, to an API that refuses it and echoes every header back: the API
/// got the composed header, and no form of the key is on stdout, in the logs or anywhere
/// in the state file, where the dead letter and the run record went.
#[tokio::test(flavor = "multi_thread")]
async fn a_secret_sent_with_text_around_it_arrives_whole_and_is_never_shown() {
    const KEY: &str = "pk_canary/klaviyo+key=";
    let received: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let seen = received.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let authorization = headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            seen.lock().unwrap().push(authorization.clone());
            let echo = serde_json::json!({"detail": format!("bad key: {authorization}")});
            (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(echo))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("canary-composed");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!(
        r#"integration klaviyo_canary {{
  connection klaviyo {{
    base_url "{api_url}"
    auth api_key header "Authorization" secret("KLAVIYO_KEY", "Klaviyo-API-Key {{}}")
  }}
  trigger manual
  step profile = klaviyo POST "/profiles" {{
    idempotency_key "p-1"
    body {{ email = "ada@example.com" }}
    on_error dead_letter
  }}
}}"#
    );
    std::fs::write(dir.join("spec.integ"), spec).unwrap();
    std::fs::write(dir.join("secrets.env"), format!("KLAVIYO_KEY='{KEY}'\n")).unwrap();
    let dir_for_run = dir.clone();
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_integ"))
            .args(["run", "spec.integ", "--secrets", "secrets.env"])
            .args(["--state", "state/state.db", "--format", "json"])
            .env("INTEG_LOG", "debug")
            .current_dir(&dir_for_run)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(
        *received.lock().unwrap(),
        [format!("Klaviyo-API-Key {KEY}")],
        "the header went out composed, once"
    );
    let canaries = [KEY.to_string()];
    let mut leaks = Vec::new();
    for (table, value) in every_table(&dir.join("state/state.db")) {
        for form in forms_of_in(&canaries, &value) {
            leaks.push(format!("table {table}: {form}"));
        }
    }
    for form in forms_of_in(&canaries, &output.stdout) {
        leaks.push(format!("stdout: {form}"));
    }
    for form in forms_of_in(&canaries, &output.stderr) {
        leaks.push(format!("logs: {form}"));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(leaks.is_empty(), "{leaks:#?}\n{stdout}");
    // The failure was reported, with the credential redacted where the API echoed it.
    assert!(
        stdout.contains("bad key: [redacted]"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(dead_letters(&dir.join("state/state.db")), 1);
}

/// A query string can carry what a spec did not declare secret (here a value read with
/// `env()`, which is not redacted): the run history keeps each URL without its query, and
/// so must the dead letter, which `integ dlq` and the admin pages show.
#[tokio::test(flavor = "multi_thread")]
async fn a_query_string_is_kept_neither_in_the_runs_nor_in_the_dead_letters() {
    const KEY: &str = "canary-query-key-5c1e";
    use integ::mock::{MockResponse, MockServer, Route};
    let api = MockServer::start(vec![Route {
        method: "POST".into(),
        path: "/notes".into(),
        responses: vec![MockResponse::json(
            422,
            serde_json::json!({"error": "refused"}),
        )],
    }])
    .await
    .unwrap();
    let dir = common::workdir("canary-query");
    let spec = format!(
        r#"integration notes {{
  connection api {{ base_url "{}" }}
  trigger manual
  step note = api POST "/notes" {{
    idempotency_key "note-{{{{ event.id }}}}"
    query {{ partner_ref = env("PARTNER_REF") }}
    body {{ id = $.id }}
  }}
}}"#,
        api.url()
    );
    std::fs::write(dir.join("notes.integ"), spec).unwrap();
    std::fs::write(dir.join("event.json"), r#"{"id": 7}"#).unwrap();
    let run_dir = dir.clone();
    let ran = tokio::task::spawn_blocking(move || {
        let args = ["run", "notes.integ", "--input", "event.json"];
        let args = [&args[..], &["--state", "state.db"]].concat();
        common::integ(&args, &run_dir, &[("PARTNER_REF", KEY)])
    })
    .await
    .unwrap();
    assert_eq!(ran.status.code(), Some(1), "{}", common::text(&ran.stderr));
    // The key did go out: what is kept is what must not hold it.
    assert_eq!(api.requests()[0].query_param("partner_ref"), Some(KEY));
    assert_eq!(dead_letters(&dir.join("state.db")), 1);
    let canaries = [KEY.to_string()];
    let mut leaks = Vec::new();
    for (table, value) in every_table(&dir.join("state.db")) {
        for form in forms_of_in(&canaries, &value) {
            leaks.push(format!("table {table}: {form}"));
        }
    }
    let listed = common::integ(
        &["dlq", "list", "--state", "state.db", "--format", "json"],
        &dir,
        &[],
    );
    assert_eq!(listed.status.code(), Some(0));
    for form in forms_of_in(&canaries, &listed.stdout) {
        leaks.push(format!("integ dlq: {form}"));
    }
    let letter: serde_json::Value =
        serde_json::from_str(common::text(&listed.stdout).trim()).unwrap();
    assert!(leaks.is_empty(), "{leaks:#?}\n{letter}");
    // What the request was is kept all the same, its query marked as left out.
    assert_eq!(
        letter["requests"],
        serde_json::json!([format!("POST {}/notes?…", api.url())])
    );
}
