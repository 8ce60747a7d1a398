//! No trigger fails silently: a poll answered 422, a `when` that fails, a `dedupe` that
//! finds no key and a schedule whose event cannot be made are each logged and counted,
//! and `integ triggers` shows each trigger's health. In process over real sockets and a
//! real SQLite file, and through the real binary.

#![allow(clippy::unwrap_used)]

mod common;

use integ::engine::{Engine, Options};
use integ::mock::{MockResponse, MockServer, Route};
use integ::secrets::Secrets;
use integ::serve::{Service, keep_health, poll, router, work};
use integ::store::{Records, SqliteStore, TriggerHealth};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn plan(spec: String) -> Arc<integ::plan::Plan> {
    let mut files = integ::lint::lint_sources(vec![(PathBuf::from("spec.integ"), spec)]);
    let model = files.pop().and_then(|f| f.model).unwrap();
    Arc::new(integ::plan::compile(&model, None, Path::new(".")).unwrap())
}

fn fresh_store(name: &str) -> Arc<SqliteStore> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    Arc::new(SqliteStore::open(&dir.join("state.db")).unwrap())
}

/// The service of `spec`, its webhooks on a local port, its workers and its health writer.
async fn serve(name: &str, spec: String) -> (String, Arc<SqliteStore>, Arc<Service>) {
    let engine = Arc::new(Engine::new(plan(spec), Secrets::default(), Options::default()).unwrap());
    let store = fresh_store(name);
    let service = Service::new(vec![engine], store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, router(service.clone(), &Default::default())).into_future());
    tokio::spawn(work(service.clone(), 1));
    tokio::spawn(keep_health(service.clone()));
    (url, store, service)
}

/// Waits (20 s at most) for the stored health of `trigger` to satisfy `done`.
async fn health_until(
    store: &SqliteStore,
    trigger: &str,
    done: impl Fn(&TriggerHealth) -> bool,
) -> TriggerHealth {
    let mut last = None;
    for _ in 0..1200 {
        let found = store
            .triggers()
            .unwrap()
            .into_iter()
            .find(|t| t.trigger == trigger);
        if let Some(health) = &found
            && done(health)
        {
            return health.clone();
        }
        last = found;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the health of {trigger} never got there: {last:?}");
}

async fn post(url: &str, body: serde_json::Value) -> u16 {
    reqwest::Client::new()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn pending(store: &SqliteStore) -> usize {
    store.inbox_counts().unwrap().iter().map(|(_, n)| n).sum()
}

/// A `when` that fails on a body used to answer 202 and drop the event. It is now a 500
/// (the sender delivers again), nothing is enqueued, and the trigger says why.
#[tokio::test(flavor = "multi_thread")]
async fn a_when_that_fails_answers_500_enqueues_nothing_and_is_counted() {
    let spec = r#"integration issues {
  connection tracker { base_url "http://127.0.0.1:9" }
  trigger webhook "/hooks/issues" {
    when "{{ event.issue.state }}-x" == "open-x"
  }
  step note = tracker POST "/notes" { idempotency_key "n-{{ event.issue.id }}" body { id = $.issue.id } }
}"#;
    let (url, store, service) = serve("triggers-when", spec.into()).await;
    let hook = format!("{url}/hooks/issues");
    assert_eq!(
        post(&hook, json!({"issue": {"id": 1, "state": "open"}})).await,
        202
    );
    // No `state`: the text template cannot be rendered.
    assert_eq!(post(&hook, json!({"issue": {"id": 2}})).await, 500);
    let health = health_until(&store, "webhook POST /hooks/issues", |h| h.failures == 1).await;
    service.shut_down();
    assert_eq!(health.successes, 1);
    assert_eq!(health.consecutive_failures, 1);
    let error = health.last_error.unwrap();
    assert!(error.starts_with("`when` failed:"), "{error}");
    assert_eq!(pending(&store), 1, "only the first event was enqueued");
}

/// A typo in `dedupe` (`$.isue.id`) turned deduplication off without a word. The events
/// still run (a duplicate may run twice rather than an event never), and the trigger says so.
#[tokio::test(flavor = "multi_thread")]
async fn a_dedupe_that_finds_no_key_is_counted_and_the_event_still_enqueued() {
    let spec = r#"integration issues {
  connection tracker { base_url "http://127.0.0.1:9" }
  trigger webhook "/hooks/issues" { dedupe $.isue.id }
  step note = tracker POST "/notes" { idempotency_key "n-{{ event.issue.id }}" body { id = $.issue.id } }
}"#;
    let (url, store, service) = serve("triggers-dedupe", spec.into()).await;
    let hook = format!("{url}/hooks/issues");
    assert_eq!(post(&hook, json!({"issue": {"id": 1}})).await, 202);
    let health = health_until(&store, "webhook POST /hooks/issues", |h| h.failures == 1).await;
    service.shut_down();
    let error = health.last_error.unwrap();
    assert!(
        error.contains("1 event(s) enqueued without a dedupe key")
            && error.contains("`dedupe` found no key"),
        "{error}"
    );
    assert_eq!(pending(&store), 1);
}

/// A schedule whose `event` cannot be computed used to enqueue an event without its
/// fields, silently; it now enqueues nothing and the trigger says why.
#[tokio::test(flavor = "multi_thread")]
async fn a_schedule_whose_event_fails_is_counted() {
    let spec = r#"integration report {
  connection slack { base_url "http://127.0.0.1:9" }
  trigger schedule "* * * * * *" { event { region: env("INTEG_TEST_UNSET_REGION") } }
  step post = slack POST "/report" { idempotency_key "r-{{ event.scheduled_at }}" body { at = $.scheduled_at } }
}"#;
    let (_, store, service) = serve("triggers-schedule", spec.into()).await;
    tokio::spawn(integ::serve::schedule(service.clone()));
    let health = health_until(&store, "schedule 0", |h| h.failures >= 1).await;
    service.shut_down();
    let error = health.last_error.unwrap();
    assert!(error.contains("INTEG_TEST_UNSET_REGION"), "{error}");
    assert_eq!(pending(&store), 0);
}

/// A poll answered 422 every round logged nothing. Through the real binary: the log line
/// names the integration and trigger, and `integ triggers` shows it failing.
#[tokio::test(flavor = "multi_thread")]
async fn a_poll_answered_422_is_logged_and_shown_by_integ_triggers() {
    let api = MockServer::start(vec![Route {
        method: "GET".into(),
        path: "/contacts".into(),
        responses: vec![MockResponse::json(422, json!({"error": "bad filter"}))],
    }])
    .await
    .unwrap();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("triggers-poll");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!(
        r#"integration sync {{
  connection crm {{ base_url "{}" }}
  trigger poll crm GET "/contacts" {{ every 200ms items $.results[*] dedupe $.id }}
  step prospect = crm POST "/prospects" {{ idempotency_key "p-{{{{ event.id }}}}" body {{ id = $.id }} }}
}}"#,
        api.url()
    );
    std::fs::write(dir.join("sync.integ"), spec).unwrap();
    // Its logs go to a file: a pipe nobody reads while it runs fills, and stops it.
    let server =
        common::serving::Serving::start(&dir, &["sync.integ", "--state", "state.db"]).await;
    let triggers = |format: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_integ"))
            .args(["triggers", "--state", "state.db", "--format", format])
            .current_dir(&dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let mut record = json!(null);
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        let listed = triggers("json");
        record = serde_json::from_str(listed.lines().next().unwrap_or("null")).unwrap_or_default();
        if record["consecutive_failures"].as_u64().unwrap_or(0) >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let human = triggers("human");
    drop(server);
    let logs = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert_eq!(record["integration"], "sync", "{record}");
    assert_eq!(record["trigger"], "poll 0", "{record}");
    assert!(
        record["consecutive_failures"].as_u64().unwrap() >= 2,
        "{record}"
    );
    assert_eq!(record["successes"], 0, "{record}");
    assert!(
        record["last_error"].as_str().unwrap().contains("422"),
        "{record}"
    );
    assert!(human.starts_with("sync  poll 0"), "{human}");
    assert!(human.contains("FAILING"), "{human}");
    let logged = logs
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["message"] == "trigger failed")
        .unwrap_or_else(|| panic!("no log line: {logs}"));
    assert_eq!(logged["fields"]["integration"], "sync");
    assert_eq!(logged["fields"]["trigger"], "poll 0");
    assert!(logged["fields"]["error"].as_str().unwrap().contains("422"));
}

/// Slack answers `200 {"ok": false}` when it refuses a call. A connection's rules were
/// for its steps only: a poll round so refused passed as a round with no items, and the
/// trigger looked healthy. The round now fails with the rule's message.
#[tokio::test(flavor = "multi_thread")]
async fn a_poll_refused_in_a_200_fails_by_its_connections_rules() {
    let api = MockServer::start(vec![Route {
        method: "GET".into(),
        path: "/conversations.history".into(),
        responses: vec![MockResponse::json(
            200,
            json!({"ok": false, "error": "invalid_auth"}),
        )],
    }])
    .await
    .unwrap();
    let spec = format!(
        r#"integration history {{
  connection slack {{
    base_url "{}"
    rules {{ when $.ok == false fail "Slack refused the call: {{{{ body.error }}}}" }}
  }}
  trigger poll slack "/conversations.history" {{ every 100ms items $.messages[*] dedupe $.ts }}
  step log = slack POST "/chat.postMessage" {{ idempotency_key "m-{{{{ event.ts }}}}" body {{ text = $.text }} }}
}}"#,
        api.url()
    );
    let (_, store, service) = serve("triggers-poll-rules", spec).await;
    tokio::spawn(poll(service.clone()));
    let health = health_until(&store, "poll 0", |h| h.consecutive_failures >= 2).await;
    service.shut_down();
    assert_eq!(health.successes, 0, "{health:?}");
    let error = health.last_error.unwrap();
    assert!(
        error.contains("Slack refused the call: invalid_auth"),
        "{error}"
    );
    assert_eq!(pending(&store), 0);
}

/// A poll's own rules come before its connection's: here a `404` means "no messages
/// yet", a round with no items, where the status alone fails the round.
#[tokio::test(flavor = "multi_thread")]
async fn a_polls_own_rule_reads_a_404_as_a_round_with_no_items() {
    let api = MockServer::start(vec![Route {
        method: "GET".into(),
        path: "/feed".into(),
        responses: vec![MockResponse::json(404, json!({"items": [{"id": 1}]}))],
    }])
    .await
    .unwrap();
    let spec = format!(
        r#"integration feed {{
  connection api {{ base_url "{}" rules {{ 404 fail "the connection's rule" }} }}
  trigger poll api "/feed" {{ every 100ms items $.items[*] dedupe $.id rules {{ 404 empty }} }}
  step log = api POST "/log" {{ idempotency_key "l-{{{{ event.id }}}}" body {{ id = $.id }} }}
}}"#,
        api.url()
    );
    let (_, store, service) = serve("triggers-poll-own-rules", spec).await;
    tokio::spawn(poll(service.clone()));
    let health = health_until(&store, "poll 0", |h| h.successes >= 2).await;
    service.shut_down();
    assert_eq!(health.failures, 0, "{health:?}");
    assert_eq!(pending(&store), 0, "an empty answer has no items");
}
