//! `integ serve`'s webhooks and workers, in process, over real sockets and a real SQLite
//! file: 202 only once events are committed, every 4xx enqueues nothing, duplicates run
//! once.

#![allow(clippy::unwrap_used)]

mod common;

use hmac::{KeyInit, Mac};
use integ::engine::{Engine, Options};
use integ::mock::{MockResponse, MockServer, Route};
use integ::secrets::Secrets;
use integ::serve::{Service, router, work};
use integ::store::{Inbox, Records, RunQuery, SqliteStore};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

fn sign(body: &[u8]) -> String {
    common::github_signature(SECRET, body)
}

const SECRET: &str = "gh-webhook-secret";

/// The plan of a spec that must be clean.
fn plan(spec: String) -> Arc<integ::plan::Plan> {
    let mut files = integ::lint::lint_sources(vec![(PathBuf::from("spec.integ"), spec)]);
    let model = files.pop().and_then(|f| f.model).unwrap();
    Arc::new(integ::plan::compile(&model, None, std::path::Path::new(".")).unwrap())
}

fn engine_of(plan: Arc<integ::plan::Plan>, secrets: Secrets) -> Arc<Engine> {
    Arc::new(Engine::new(plan, secrets, Options::default()).unwrap())
}

/// The state file of test `name`.
fn state_file(name: &str) -> PathBuf {
    std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(name)
        .join("state.db")
}

/// A fresh state store in the test's own folder.
fn fresh_store(name: &str) -> Arc<SqliteStore> {
    let _ = std::fs::remove_dir_all(state_file(name).parent().unwrap());
    Arc::new(SqliteStore::open(&state_file(name)).unwrap())
}

/// Serves `service`'s webhooks with `options` on a fresh port of 127.0.0.1; its address.
async fn listen(
    service: Arc<Service>,
    options: &integ::serve::HttpOptions,
) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, router(service, options)).into_future());
    address
}

struct Running {
    url: String,
    sink: MockServer,
    store: Arc<SqliteStore>,
    service: Arc<Service>,
}

async fn start(name: &str) -> Running {
    let sink = MockServer::start(vec![Route {
        method: "POST".into(),
        path: "/announce".into(),
        responses: vec![MockResponse::json(200, json!({"ok": true}))],
    }])
    .await
    .unwrap();
    let spec = format!(
        r#"integration releases {{
  connection slack {{ base_url "{}" }}
  trigger webhook "/hooks/github" {{
    signature github secret("GITHUB_WEBHOOK_SECRET")
    when $.action == "published"
    dedupe $.release.id
  }}
  step announce = slack POST "/announce" {{
    idempotency_key "release-{{{{ event.release.id }}}}"
    body {{ text = "{{{{ event.release.tag_name }}}} is out" }}
  }}
}}"#,
        sink.url()
    );
    let engine = engine_of(
        plan(spec),
        Secrets::from_pairs([("GITHUB_WEBHOOK_SECRET", SECRET)]),
    );
    let store = fresh_store(name);
    let service = Service::new(vec![engine], store.clone());
    let url = format!(
        "http://{}",
        listen(service.clone(), &Default::default()).await
    );
    tokio::spawn(work(service.clone(), 2));
    Running {
        url,
        sink,
        store,
        service,
    }
}

async fn post(url: &str, body: &[u8], signature: Option<String>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("X-Hub-Signature-256", signature);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// Waits for `done`, for up to 30 s: a loaded machine may be slow, never this slow.
async fn until(mut done: impl FnMut() -> bool) {
    // A minute at most: a loaded machine is slow, not stuck.
    for _ in 0..1200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting");
}

fn release(id: u64, action: &str) -> Vec<u8> {
    json!({"action": action, "release": {"id": id, "tag_name": format!("v{id}")}})
        .to_string()
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_signed_webhook_is_committed_then_delivered_once() {
    let running = start("serve-delivered").await;
    let hook = format!("{}/hooks/github", running.url);
    let body = release(7, "published");
    let (status, answer) = post(&hook, &body, Some(sign(&body))).await;
    assert_eq!(
        (status, answer),
        (202, json!({"accepted": 1, "duplicates": 0}))
    );
    until(|| running.sink.requests().len() == 1).await;
    let delivered = &running.sink.requests()[0];
    assert_eq!(delivered.body, json!({"text": "v7 is out"}));
    assert_eq!(delivered.header("idempotency-key"), Some("release-7"));
    // The same delivery again is accepted but not enqueued twice.
    let (status, answer) = post(&hook, &body, Some(sign(&body))).await;
    assert_eq!(
        (status, answer),
        (202, json!({"accepted": 0, "duplicates": 1}))
    );
    // An event `when` filters out is answered and dropped.
    let draft = release(8, "created");
    let (status, answer) = post(&hook, &draft, Some(sign(&draft))).await;
    assert_eq!(
        (status, answer),
        (202, json!({"accepted": 0, "duplicates": 0}))
    );
    // The one event finished: every call of its run is made, and there was no other.
    until(|| running.store.inbox_counts().unwrap() == [("done".to_string(), 1)]).await;
    assert_eq!(running.sink.requests().len(), 1);
    // Its run names the inbox event it ran.
    let runs = running.store.runs(&RunQuery::default()).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1.event, Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_a_4xx_and_enqueue_nothing() {
    let running = start("serve-refused").await;
    let hook = format!("{}/hooks/github", running.url);
    let body = release(9, "published");
    let tampered = release(10, "published");
    assert_eq!(
        post(&hook, &tampered, Some(sign(&body))).await.0,
        401,
        "tampered body"
    );
    assert_eq!(post(&hook, &body, None).await.0, 401, "missing signature");
    let not_json = b"{not json";
    let (status, answer) = post(&hook, not_json, Some(sign(not_json))).await;
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("the body is not valid JSON"),
        "{answer}"
    );
    assert_eq!(
        post(
            &format!("{}/hooks/nowhere", running.url),
            &body,
            Some(sign(&body))
        )
        .await
        .0,
        404
    );
    let response = reqwest::Client::new()
        .put(&hook)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 405);
    let huge = vec![b' '; integ::serve::MAX_BODY_BYTES + 1];
    assert_eq!(post(&hook, &huge, Some(sign(&huge))).await.0, 413);
    assert!(
        running.store.inbox_counts().unwrap().is_empty(),
        "nothing was enqueued"
    );
    assert!(running.sink.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn health_readiness_and_shutdown() {
    let running = start("serve-shutdown").await;
    let status = |path: &str| {
        let url = format!("{}{path}", running.url);
        async move { reqwest::get(url).await.unwrap().status().as_u16() }
    };
    assert_eq!(status("/healthz").await, 200);
    assert_eq!(status("/readyz").await, 200);
    running.service.shut_down();
    assert_eq!(status("/readyz").await, 503);
    let body = release(11, "published");
    assert_eq!(
        post(
            &format!("{}/hooks/github", running.url),
            &body,
            Some(sign(&body))
        )
        .await
        .0,
        503
    );
    assert!(running.store.inbox_counts().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cron_schedule_fires_and_its_runs_are_delivered() {
    let sink = MockServer::start(vec![Route {
        method: "POST".into(),
        path: "/report".into(),
        responses: vec![MockResponse::json(200, json!({}))],
    }])
    .await
    .unwrap();
    let spec = format!(
        r#"integration report {{
  connection slack {{ base_url "{}" }}
  trigger schedule "* * * * * *" {{ timezone "Europe/Paris" event {{ kind: "tick" }} }}
  step post = slack POST "/report" {{
    idempotency_key "tick-{{{{ event.scheduled_at }}}}"
    body {{ kind = $.kind at = $.scheduled_at }}
  }}
}}"#,
        sink.url()
    );
    let engine = engine_of(plan(spec), Secrets::default());
    let store = fresh_store("serve-schedule");
    let service = Service::new(vec![engine], store.clone());
    tokio::spawn(work(service.clone(), 1));
    tokio::spawn(integ::serve::schedule(service.clone()));
    until(|| sink.requests().len() >= 2).await;
    service.shut_down();
    let requests = sink.requests();
    assert_eq!(requests[0].body["kind"], "tick");
    let (first, second) = (
        requests[0].body["at"].as_str().unwrap(),
        requests[1].body["at"].as_str().unwrap(),
    );
    assert!(first < second, "{first} then {second}");
    assert!(
        first.ends_with("+01:00") || first.ends_with("+02:00"),
        "Paris time: {first}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn polling_commits_pages_with_their_cursor_and_resumes_after_a_restart() {
    let api = MockServer::start(vec![
        Route {
            method: "GET".into(),
            path: "/contacts".into(),
            responses: vec![
                MockResponse::json(
                    200,
                    json!({"results": [{"id": 1}, {"id": 2}], "next": "c2"}),
                ),
                MockResponse::json(200, json!({"results": [{"id": 3}], "next": null})),
            ],
        },
        Route {
            method: "POST".into(),
            path: "/prospects".into(),
            responses: vec![MockResponse::json(201, json!({}))],
        },
    ])
    .await
    .unwrap();
    let spec = format!(
        r#"integration sync {{
  connection crm {{ base_url "{}" }}
  trigger poll crm GET "/contacts" {{
    every 200ms
    items $.results[*]
    cursor $.next into "after"
    dedupe $.id
  }}
  step prospect = crm POST "/prospects" {{ idempotency_key "p-{{{{ event.id }}}}" body {{ id = $.id }} }}
}}"#,
        api.url()
    );
    let plan = plan(spec);
    let store = fresh_store("serve-poll");
    let posts = || api.requests().iter().filter(|r| r.method == "POST").count();

    let engine = engine_of(plan.clone(), Secrets::default());
    let first = Service::new(vec![engine], store.clone());
    tokio::spawn(work(first.clone(), 1));
    let polling = tokio::spawn(integ::serve::poll(first.clone()));
    until(|| posts() == 3).await;
    assert_eq!(
        store
            .position("sync", "poll 0")
            .unwrap()
            .and_then(|p| p.page)
            .as_deref(),
        Some("c2")
    );
    first.shut_down();
    polling.await.unwrap();
    let before = api.requests().iter().filter(|r| r.method == "GET").count();

    // A new process on the same state starts at the stored cursor and runs nothing twice.
    let engine = engine_of(plan, Secrets::default());
    let second = Service::new(vec![engine], store.clone());
    tokio::spawn(work(second.clone(), 1));
    tokio::spawn(integ::serve::poll(second.clone()));
    until(|| api.requests().iter().filter(|r| r.method == "GET").count() > before).await;
    let resumed = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET")
        .nth(before)
        .unwrap();
    assert_eq!(resumed.query_param("after"), Some("c2"));
    // Wait for the record: a later round means the resumed one committed its page, and
    // nothing is pending or running; only then is the absence of a fourth post meaningful.
    let gets = || api.requests().iter().filter(|r| r.method == "GET").count();
    until(|| gets() > before + 1).await;
    until(|| {
        let counts = store.inbox_counts().unwrap();
        counts.iter().all(|(status, _)| status == "done")
    })
    .await;
    second.shut_down();
    assert_eq!(posts(), 3, "each contact ran once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replayed_dead_letter_is_delivered() {
    let sink = MockServer::start(vec![Route {
        method: "POST".into(),
        path: "/announce".into(),
        responses: vec![
            MockResponse::json(400, json!({"error": "channel archived"})),
            MockResponse::json(200, json!({})),
        ],
    }])
    .await
    .unwrap();
    let spec = format!(
        r#"integration notify {{
  connection slack {{ base_url "{}" }}
  trigger manual
  step announce = slack POST "/announce" {{ idempotency_key "n-{{{{ event.id }}}}" body {{ id = $.id }} }}
}}"#,
        sink.url()
    );
    let engine = engine_of(plan(spec), Secrets::default());
    let store = fresh_store("serve-replay");
    common::enqueue(&*store, "notify", &[(json!({"id": 5}), None)]).await;
    let service = Service::new(vec![engine], store.clone());
    tokio::spawn(work(service.clone(), 1));
    until(|| store.dead_letters().unwrap().len() == 1).await;
    let (id, letter) = store.dead_letters().unwrap().remove(0);
    assert_eq!(
        (letter.step.as_str(), letter.status),
        ("announce", Some(400))
    );
    assert_eq!(store.replay(Some(&[id])).unwrap(), [id]);
    until(|| sink.requests().len() == 2).await;
    until(|| {
        store.inbox_counts().unwrap() == [("dead_lettered".to_string(), 1), ("done".to_string(), 1)]
    })
    .await;
    assert!(store.dead_letters().unwrap().is_empty());
    assert_eq!(sink.requests()[1].body, json!({"id": 5}));
    service.shut_down();
}

/// How long the slow sink takes to answer. Timing assertions compare with it, not with a
/// tight bound: a run that overlapped another began before it was answered, a run that did
/// not had to wait for it.
const SLOW: Duration = Duration::from_secs(1);

/// A sink whose `/slow` answers after `SLOW` and `/fast` at once.
async fn slow_sink() -> MockServer {
    let route = |path: &str, delay| Route {
        method: "POST".into(),
        path: path.into(),
        responses: vec![MockResponse::json(200, json!({})).after(delay)],
    };
    MockServer::start(vec![route("/slow", SLOW), route("/fast", Duration::ZERO)])
        .await
        .unwrap()
}

/// An integration posting each event's id to `path`, with the given header lines.
fn poster(name: &str, header: &str, sink: &MockServer, path: &str) -> Arc<Engine> {
    let spec = format!(
        r#"integration {name} {{
  {header}
  connection api {{ base_url "{}" }}
  trigger manual
  step call = api POST "{path}" {{ idempotency_key "s-{{{{ event.id }}}}" body {{ id = $.id }} }}
}}"#,
        sink.url()
    );
    engine_of(plan(spec), Secrets::default())
}

/// Enqueues events `{"id": n}` for each n, of which the first `left_running` are claimed
/// by a process that then died; runs them with `workers` workers until the sink saw every
/// one, and returns the requests' paths, ids and arrival times.
async fn run_burst(
    name: &str,
    engines: Vec<Arc<Engine>>,
    events: &[(&str, u64)],
    left_running: usize,
    workers: usize,
    sink: &MockServer,
) -> Vec<(String, u64, std::time::Instant)> {
    let store = fresh_store(name);
    for (integration, id) in events {
        common::enqueue(&*store, integration, &[(json!({ "id": id }), None)]).await;
    }
    let names: Vec<&str> = events.iter().map(|(integration, _)| *integration).collect();
    common::claim(&*store, left_running, &names).await;
    let service = Service::new(engines, store.clone());
    tokio::spawn(work(service.clone(), workers));
    until(|| sink.requests().len() == events.len()).await;
    service.shut_down();
    let mut requests: Vec<_> = sink
        .requests()
        .into_iter()
        .map(|r| (r.path.clone(), r.body["id"].as_u64().unwrap(), r.at))
        .collect();
    requests.sort_by_key(|r| r.2);
    requests
}

#[tokio::test(flavor = "multi_thread")]
async fn a_waiting_burst_spreads_over_the_workers() {
    let sink = slow_sink().await;
    let engine = poster("slow", "", &sink, "/slow");
    let events = [("slow", 0), ("slow", 1), ("slow", 2)];
    let requests = run_burst("serve-burst", vec![engine], &events, 0, 3, &sink).await;
    // Each worker takes its share: the three calls to a slow API overlap instead of
    // queueing behind one worker (then the third would come at least 2 × SLOW after the
    // first).
    let spread = requests[2].2.duration_since(requests[0].2);
    assert!(spread < SLOW, "the burst ran one after another: {spread:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_integration_runs_no_more_events_at_once_than_its_concurrency() {
    let sink = slow_sink().await;
    let engine = poster("ordered", "concurrency 1", &sink, "/slow");
    let events = [("ordered", 0), ("ordered", 1), ("ordered", 2)];
    // Two of them were left running by a process that died: recovered events are bound
    // by the concurrency too.
    let requests = run_burst("serve-concurrency", vec![engine], &events, 2, 3, &sink).await;
    // The same burst as above, on as many workers, now runs one event at a time, in the
    // order the events came.
    let ids: Vec<u64> = requests.iter().map(|r| r.1).collect();
    assert_eq!(ids, [0, 1, 2]);
    for pair in requests.windows(2) {
        let gap = pair[1].2.duration_since(pair[0].2);
        assert!(gap >= SLOW.mul_f64(0.9), "overlapping runs: {gap:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_integration_does_not_hold_up_the_others() {
    let sink = slow_sink().await;
    let busy = poster("busy", "concurrency 1", &sink, "/slow");
    let other = poster("other", "", &sink, "/fast");
    // The other integration's event comes last, behind four of the busy one's.
    let events = [
        ("busy", 0),
        ("busy", 1),
        ("busy", 2),
        ("busy", 3),
        ("other", 9),
    ];
    let requests = run_burst("serve-fairness", vec![busy, other], &events, 0, 2, &sink).await;
    let first = requests[0].2;
    let other = requests.iter().find(|r| r.0 == "/fast").unwrap();
    // It runs on the second worker at once, not after the busy integration's backlog
    // (then it would come at least SLOW after the first).
    let waited = other.2.duration_since(first);
    assert!(
        waited < SLOW,
        "waited {waited:?} behind another integration"
    );
}

/// Header lines a provider sends.
type Signed = Vec<(&'static str, String)>;

/// One signature preset as a provider applies it: the spec's `signature` line and the
/// headers a provider sends for `body` at time `at` (seconds) to `url`.
struct Preset {
    name: &'static str,
    signature: &'static str,
    signs_time: bool,
    sign: fn(body: &[u8], at: u64, url: &str) -> Signed,
}

fn mac(parts: &[&[u8]]) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().to_vec()
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

const PRESETS: &[Preset] = &[
    Preset {
        name: "github",
        signature: "github",
        signs_time: false,
        sign: |body, _, _| vec![("X-Hub-Signature-256", sign(body))],
    },
    Preset {
        name: "shopify",
        signature: "shopify",
        signs_time: false,
        sign: |body, _, _| vec![("X-Shopify-Hmac-Sha256", base64(&mac(&[body])))],
    },
    Preset {
        name: "generic",
        signature: r#"hmac_sha256 secret("SIGNING_SECRET") { header "X-Signature" encoding base64 prefix "v1=" }"#,
        signs_time: false,
        sign: |body, _, _| vec![("X-Signature", format!("v1={}", base64(&mac(&[body]))))],
    },
    Preset {
        name: "stripe",
        signature: "stripe",
        signs_time: true,
        sign: |body, at, _| {
            let v1 = hex::encode(mac(&[at.to_string().as_bytes(), b".", body]));
            vec![("Stripe-Signature", format!("t={at},v1={v1}"))]
        },
    },
    Preset {
        name: "hubspot",
        signature: "hubspot_v3",
        signs_time: true,
        sign: |body, at, url| {
            let millis = (at * 1000).to_string();
            let v3 = base64(&mac(&[b"POST", url.as_bytes(), body, millis.as_bytes()]));
            vec![
                ("X-HubSpot-Signature-v3", v3),
                ("X-HubSpot-Request-Timestamp", millis),
            ]
        },
    },
];

async fn post_signed(url: &str, body: &[u8], headers: &[(&str, String)]) -> u16 {
    let mut request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_signature_preset_over_http_valid_tampered_stale_and_missing() {
    let engines = PRESETS
        .iter()
        .map(|preset| {
            let signature = if preset.signature.contains("secret(") {
                preset.signature.to_string()
            } else {
                format!(r#"{} secret("SIGNING_SECRET")"#, preset.signature)
            };
            let spec = format!(
                "integration {name} {{\n  trigger webhook \"/hooks/{name}\" {{ signature {signature} }}\n}}",
                name = preset.name
            );
            engine_of(
                plan(spec),
                Secrets::from_pairs([("SIGNING_SECRET", SECRET)]),
            )
        })
        .collect();
    let store = fresh_store("serve-signatures");
    let service = Service::new(engines, store.clone());
    let address = listen(service.clone(), &Default::default()).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for preset in PRESETS {
        // Providers sign the URL they call: here, the listener's own.
        let url = format!("http://{address}/hooks/{}", preset.name);
        let body = br#"{"id": 1}"#;
        let signed = (preset.sign)(body, now, &url);
        let name = preset.name;
        assert_eq!(post_signed(&url, body, &signed).await, 202, "{name} valid");
        assert_eq!(
            post_signed(&url, br#"{"id": 2}"#, &signed).await,
            401,
            "{name} tampered body"
        );
        assert_eq!(post_signed(&url, body, &[]).await, 401, "{name} missing");
        if preset.signs_time {
            let stale = (preset.sign)(body, now - 3600, &url);
            assert_eq!(post_signed(&url, body, &stale).await, 401, "{name} stale");
        }
    }
    // Exactly the valid request of each preset reached the inbox, claimed by the server
    // (no workers run here): another process takes them over.
    assert_eq!(
        store.inbox_counts().unwrap(),
        [("running".to_string(), PRESETS.len())]
    );
    store.recover(common::owner()).await.unwrap();
    let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
    let mut integrations: Vec<String> = common::claim(&*store, 10, &names)
        .await
        .into_iter()
        .map(|item| item.integration)
        .collect();
    integrations.sort();
    assert_eq!(
        integrations,
        ["generic", "github", "hubspot", "shopify", "stripe"]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_of_an_integration_no_longer_served_wait_in_the_inbox() {
    let sink = slow_sink().await;
    let served = poster("served", "", &sink, "/fast");
    let store = fresh_store("serve-unserved");
    // Enqueued while a spec named `retired` was served; it is not any more.
    common::enqueue(&*store, "retired", &[(json!({ "id": 1 }), None)]).await;
    common::enqueue(&*store, "served", &[(json!({ "id": 2 }), None)]).await;
    let service = Service::new(vec![served], store.clone());
    tokio::spawn(work(service.clone(), 2));
    until(|| sink.requests().len() == 1).await;
    until(|| {
        store
            .inbox_counts()
            .unwrap()
            .iter()
            .any(|(s, _)| s == "done")
    })
    .await;
    service.shut_down();
    // Nothing is failed for want of a spec: serving it again runs the event.
    assert_eq!(
        store.inbox_counts().unwrap(),
        [("done".to_string(), 1), ("pending".to_string(), 1)]
    );
}

/// Header values that overflow a timestamp once were a panic in the handler (the
/// connection dropped, no answer); each is a 401 that says what is wrong.
#[tokio::test(flavor = "multi_thread")]
async fn an_out_of_range_signed_timestamp_is_a_401_not_a_panic() {
    let engines = [("stripe", "stripe"), ("hubspot", "hubspot_v3")]
        .iter()
        .map(|(name, preset)| {
            let spec = format!(
                "integration {name} {{\n  trigger webhook \"/hooks/{name}\" {{ signature {preset} secret(\"SIGNING_SECRET\") }}\n}}"
            );
            engine_of(plan(spec), Secrets::from_pairs([("SIGNING_SECRET", SECRET)]))
        })
        .collect();
    let store = fresh_store("serve-overflow");
    let service = Service::new(engines, store.clone());
    let address = listen(service.clone(), &Default::default()).await;
    let body = br#"{"id": 1}"#;
    // Route, headers, and what the refusal must say.
    type Case = (&'static str, Vec<(&'static str, String)>, &'static str);
    let cases: [Case; 3] = [
        (
            "stripe",
            vec![("Stripe-Signature", "t=18446744073709551615,v1=00".into())],
            "malformed `Stripe-Signature` header: `t=` is not a time",
        ),
        (
            "hubspot",
            vec![
                ("X-HubSpot-Signature-v3", "AA==".into()),
                ("X-HubSpot-Request-Timestamp", u64::MAX.to_string()),
            ],
            "outside the 300s tolerance",
        ),
        (
            "hubspot",
            vec![
                ("X-HubSpot-Signature-v3", "AA==".into()),
                ("X-HubSpot-Request-Timestamp", "-1".into()),
            ],
            "malformed `X-HubSpot-Request-Timestamp` header",
        ),
    ];
    for (name, headers, expected) in cases {
        let mut request = reqwest::Client::new()
            .post(format!("http://{address}/hooks/{name}"))
            .body(body.to_vec());
        for (header, value) in &headers {
            request = request.header(*header, value);
        }
        let response = request
            .send()
            .await
            .expect("an answer, not a dropped connection");
        assert_eq!(response.status().as_u16(), 401, "{name} {headers:?}");
        let answer: serde_json::Value = response.json().await.unwrap();
        let reason = answer["error"].as_str().unwrap();
        assert!(reason.contains(expected), "{reason}");
    }
    assert!(store.inbox_counts().unwrap().is_empty());
}

/// The inbox cannot take the event (another process holds SQLite's write lock): the
/// sender hears 503 within the request timeout, not after SQLite's own 5 s wait.
#[tokio::test(flavor = "multi_thread")]
async fn a_request_not_handled_within_the_request_timeout_is_a_503() {
    let spec = r#"integration locked {
  trigger webhook "/hooks/locked" { signature github secret("SIGNING_SECRET") }
}"#;
    let engine = engine_of(
        plan(spec.into()),
        Secrets::from_pairs([("SIGNING_SECRET", SECRET)]),
    );
    let store = fresh_store("serve-request-timeout");
    let service = Service::new(vec![engine], store.clone());
    let options = integ::serve::HttpOptions {
        request_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let address = listen(service.clone(), &options).await;
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("serve-request-timeout")
        .join("state.db");
    let other = rusqlite::Connection::open(path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let body = br#"{"id": 1}"#;
    let started = std::time::Instant::now();
    let (status, answer) = post(
        &format!("http://{address}/hooks/locked"),
        body,
        Some(sign(body)),
    )
    .await;
    let waited = started.elapsed();
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["error"], "the request was not handled within 300ms");
    assert!(waited >= Duration::from_millis(300), "{waited:?}");
}

/// A HubSpot v3 webhook served with `public_url`; its address.
async fn hubspot_served(name: &str, public_url: integ::serve::PublicUrl) -> std::net::SocketAddr {
    let spec = r#"integration hubspot {
  trigger webhook "/hooks/hubspot" { signature hubspot_v3 secret("SIGNING_SECRET") }
}"#;
    let engine = engine_of(
        plan(spec.into()),
        Secrets::from_pairs([("SIGNING_SECRET", SECRET)]),
    );
    let service = Service::new(vec![engine], fresh_store(name));
    let options = integ::serve::HttpOptions {
        public_url,
        ..Default::default()
    };
    listen(service, &options).await
}

/// Posts to `url` a body HubSpot signed for `signed_for`, with `extra` headers.
async fn hubspot_post(url: &str, signed_for: &str, extra: &[(&str, String)]) -> u16 {
    let hubspot = PRESETS.iter().find(|p| p.name == "hubspot").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let body = br#"[{"eventId": 1}]"#;
    let mut headers = (hubspot.sign)(body, now, signed_for);
    headers.extend(extra.iter().cloned());
    post_signed(url, body, &headers).await
}

#[tokio::test(flavor = "multi_thread")]
async fn hubspot_v3_checks_the_url_the_sender_called() {
    use integ::serve::PublicUrl;
    // Without flags: the listener's own URL, plain http; forwarding headers are ignored.
    let address = hubspot_served("serve-url-listener", PublicUrl::Listener).await;
    let local = format!("http://{address}/hooks/hubspot");
    assert_eq!(
        hubspot_post(&local, &local, &[]).await,
        202,
        "signed for http"
    );
    let https = format!("https://{address}/hooks/hubspot");
    assert_eq!(
        hubspot_post(&local, &https, &[]).await,
        401,
        "signed for https"
    );
    let forged = [("X-Forwarded-Proto", "https".to_string())];
    assert_eq!(
        hubspot_post(&local, &https, &forged).await,
        401,
        "a forged X-Forwarded-Proto"
    );
    // HubSpot decodes `%40` and its kin before signing; other escapes stay as sent.
    let query = format!("{local}?email=a%40b.com&name=a%20b");
    let decoded = format!("{local}?email=a@b.com&name=a%20b");
    assert_eq!(
        hubspot_post(&query, &decoded, &[]).await,
        202,
        "decoded as HubSpot does"
    );

    // --public-url: the fixed base and its path prefix, whatever the request says.
    let fixed = PublicUrl::fixed("https://hooks.example.com/integ/").unwrap();
    let address = hubspot_served("serve-url-fixed", fixed).await;
    let local = format!("http://{address}/hooks/hubspot");
    let public = "https://hooks.example.com/integ/hooks/hubspot";
    assert_eq!(
        hubspot_post(&local, public, &[]).await,
        202,
        "signed for the public URL"
    );
    assert_eq!(
        hubspot_post(&local, &local, &[]).await,
        401,
        "signed for the local URL"
    );

    // --trust-forwarded-headers: the proxy's scheme and host.
    let address = hubspot_served("serve-url-forwarded", PublicUrl::Forwarded).await;
    let local = format!("http://{address}/hooks/hubspot");
    let proxy = [
        ("X-Forwarded-Proto", "https".to_string()),
        ("X-Forwarded-Host", "hooks.example.com".to_string()),
    ];
    let public = "https://hooks.example.com/hooks/hubspot";
    assert_eq!(
        hubspot_post(&local, public, &proxy).await,
        202,
        "forwarded, trusted"
    );
    assert_eq!(
        hubspot_post(&local, &local, &[]).await,
        202,
        "no proxy headers: the listener's"
    );
}

/// A graceful stop gives back the events claimed ahead but never started, without counting
/// that claim: only runs the process stopped during count toward dead-lettering an event.
#[tokio::test(flavor = "multi_thread")]
async fn a_graceful_stop_gives_back_unstarted_claims_uncounted() {
    let sink = slow_sink().await;
    let store = fresh_store("serve-unclaim");
    for id in 1..=3 {
        common::enqueue(&*store, "slow", &[(json!({ "id": id }), None)]).await;
    }
    let service = Service::new(vec![poster("slow", "", &sink, "/slow")], store.clone());
    let working = tokio::spawn(work(service.clone(), 1));
    // One runs; the dispatcher claims the next ahead.
    until(|| sink.requests().len() == 1).await;
    until(|| {
        store
            .inbox_counts()
            .unwrap()
            .iter()
            .any(|(status, n)| status == "running" && *n == 2)
    })
    .await;
    service.shut_down();
    tokio::time::timeout(Duration::from_secs(20), working)
        .await
        .unwrap()
        .unwrap();
    let next = common::claim(&*store, 3, &["slow"]).await;
    let ids: Vec<(serde_json::Value, u32)> = next
        .iter()
        .map(|i| (i.event["id"].clone(), i.attempts))
        .collect();
    // Event 2 was claimed before the stop, but never started: its claim is not counted.
    assert_eq!(ids, [(json!(2), 1), (json!(3), 1)]);
}

/// Rows of `sql` (one integer column, or NULL) in the state file of test `store`.
fn column(store: &str, sql: &str) -> Vec<Option<i64>> {
    let path = state_file(store);
    let connection = rusqlite::Connection::open(path).unwrap();
    let mut statement = connection.prepare(sql).unwrap();
    let rows = statement.query_map([], |row| row.get(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn deferring(plan: Arc<integ::plan::Plan>) -> Arc<Engine> {
    let options = Options {
        defer_long_waits: true,
        ..Options::default()
    };
    Arc::new(Engine::new(plan, Secrets::default(), options).unwrap())
}

/// An API whose `/first` answers 200 and whose `/limited` answers `limited` in turn.
async fn limited_api(limited: Vec<MockResponse>) -> MockServer {
    MockServer::start(vec![
        Route {
            method: "POST".into(),
            path: "/first".into(),
            responses: vec![MockResponse::json(200, json!({"ok": 1}))],
        },
        Route {
            method: "POST".into(),
            path: "/limited".into(),
            responses: limited,
        },
    ])
    .await
    .unwrap()
}

/// Integration `name` calling `/first`, then `/limited` with `retry`.
fn two_steps(name: &str, api: &MockServer, retry: &str) -> Arc<Engine> {
    deferring(plan(format!(
        r#"integration {name} {{
  connection api {{ base_url "{}" }}
  trigger manual
  step first = api POST "/first" {{ idempotency_key "f-{{{{ event.id }}}}" }}
  step limited = api POST "/limited" {{ idempotency_key "l-{{{{ event.id }}}}" {retry} }}
}}"#,
        api.url()
    )))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_retry_after_puts_the_event_back_and_frees_the_worker() {
    let hostile = limited_api(vec![
        MockResponse::json(429, json!({})).with_header("Retry-After", "100000"),
    ])
    .await;
    let sink = slow_sink().await;
    let store = fresh_store("serve-retry-after");
    // Two hostile events first, for both workers, then another integration's.
    for (integration, id) in [("hostile", 1), ("hostile", 2), ("other", 9)] {
        common::enqueue(&*store, integration, &[(json!({ "id": id }), None)]).await;
    }
    let engines = vec![
        two_steps("hostile", &hostile, "retry 3 constant 1s"),
        poster("other", "", &sink, "/fast"),
    ];
    let service = Service::new(engines, store.clone());
    tokio::spawn(work(service.clone(), 2));
    until(|| sink.requests().len() == 1).await;
    let pending =
        "SELECT not_before FROM inbox WHERE integration = 'hostile' AND status = 'pending'";
    until(|| {
        column("serve-retry-after", pending)
            .iter()
            .flatten()
            .count()
            == 2
    })
    .await;
    // Back in the inbox until the API's wait, cut to the hour, is over.
    for not_before in column("serve-retry-after", pending).into_iter().flatten() {
        assert!(not_before >= unix_now() + 3_000, "{not_before}");
    }
    // Each completed step is kept, and no worker slept on the wait: one call asked for it,
    // and the other event may have found the connection paused without asking again.
    let calls = |path: &str| hostile.requests().iter().filter(|r| r.path == path).count();
    let checkpoints = "SELECT inbox_id FROM checkpoints WHERE step = 'first'";
    assert_eq!(
        column("serve-retry-after", checkpoints).len(),
        calls("/first")
    );
    assert!(
        (1..=2).contains(&calls("/limited")),
        "{}",
        calls("/limited")
    );
    assert!(common::claim(&*store, 10, &["hostile"]).await.is_empty());
    service.shut_down();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deferred_event_resumes_at_its_step_once_the_wait_is_over() {
    let api = limited_api(vec![
        MockResponse::json(429, json!({})).with_header("Retry-After", "2"),
        MockResponse::json(200, json!({})),
    ])
    .await;
    let store = fresh_store("serve-deferred-resume");
    common::enqueue(&*store, "resumes", &[(json!({"id": 1}), None)]).await;
    let engine = two_steps("resumes", &api, "retry 3 constant 10ms");
    let service = Service::new(vec![engine], store.clone());
    tokio::spawn(work(service.clone(), 1));
    let done = ("done".to_string(), 1);
    until(|| store.inbox_counts().unwrap().contains(&done)).await;
    let requests = api.requests();
    let limited: Vec<_> = requests.iter().filter(|r| r.path == "/limited").collect();
    assert_eq!(limited.len(), 2);
    let gap = limited[1].at.duration_since(limited[0].at);
    assert!(gap >= Duration::from_secs(1), "asked again after {gap:?}");
    // The step completed before the wait was not repeated.
    assert_eq!(requests.iter().filter(|r| r.path == "/first").count(), 1);
    service.shut_down();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_whose_cursor_cycles_stops_its_round() {
    // c1, c2, c1, c2... for as long as anyone asks.
    let cycle = (0..300).map(|n| {
        let next = if n % 2 == 0 { "c1" } else { "c2" };
        MockResponse::json(200, json!({"results": [], "next": next}))
    });
    let api = MockServer::start(vec![Route {
        method: "GET".into(),
        path: "/contacts".into(),
        responses: cycle.collect(),
    }])
    .await
    .unwrap();
    let spec = format!(
        r#"integration cycling {{
  connection crm {{ base_url "{}" }}
  trigger poll crm GET "/contacts" {{ every 1h items $.results[*] cursor $.next into "after" dedupe $.id }}
  step noop = crm GET "/contacts"
}}"#,
        api.url()
    );
    let store = fresh_store("serve-poll-cycle");
    let service = Service::new(vec![engine_of(plan(spec), Secrets::default())], store);
    tokio::spawn(integ::serve::poll(service.clone()));
    until(|| api.request_count() >= 3).await;
    // The round ends at the repeat: no more requests until the next round, an hour away.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(api.request_count(), 3);
    service.shut_down();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_an_api_keeps_deferring_past_a_day_is_dead_lettered() {
    let hostile = limited_api(vec![
        MockResponse::json(429, json!({})).with_header("Retry-After", "100000"),
    ])
    .await;
    let name = "serve-deferred-too-long";
    let store = fresh_store(name);
    common::enqueue(&*store, "stale", &[(json!({"id": 1}), None)]).await;
    // The event came a day ago: another deferral would keep it past 24 h.
    let path = state_file(name);
    rusqlite::Connection::open(path)
        .unwrap()
        .execute("UPDATE inbox SET created_at = created_at - 86400", [])
        .unwrap();
    let engine = two_steps("stale", &hostile, "retry 3 constant 10ms");
    let service = Service::new(vec![engine], store.clone());
    tokio::spawn(work(service.clone(), 1));
    let dead = ("dead_lettered".to_string(), 1);
    until(|| store.inbox_counts().unwrap().contains(&dead)).await;
    let letters = store.dead_letters().unwrap();
    assert!(
        letters[0].1.error.contains("past 24 h"),
        "{:?}",
        letters[0].1.error
    );
    service.shut_down();
}

/// Integration `backlog`: its webhook `/hooks/in` (unsigned) posts each event's id to the
/// sink's `/fast`.
fn forwarding(sink: &MockServer) -> Arc<Engine> {
    let spec = format!(
        r#"integration backlog {{
  connection api {{ base_url "{}" }}
  trigger webhook "/hooks/in" {{ signature none }}
  step call = api POST "/fast" {{ body {{ id = $.id }} }}
}}"#,
        sink.url()
    );
    engine_of(plan(spec), Secrets::default())
}

/// Posts `body` until it is answered 202, for up to 30 s; the last status.
async fn accepted_soon(url: &str, body: &[u8]) -> u16 {
    let mut answered = 0;
    for _ in 0..600 {
        answered = post(url, body, None).await.0;
        if answered == 202 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    answered
}

#[tokio::test(flavor = "multi_thread")]
async fn past_max_pending_webhooks_get_a_503_with_retry_after_and_readiness_holds() {
    let sink = slow_sink().await;
    let engine = forwarding(&sink);
    let store = fresh_store("serve-backpressure");
    let service = Service::with_max_pending(vec![engine], store.clone(), 2);
    let address = listen(service.clone(), &Default::default()).await;
    let (url, ready) = (
        format!("http://{address}/hooks/in"),
        format!("http://{address}/readyz"),
    );
    let body = |id: u64| json!({ "id": id }).to_string().into_bytes();
    // No workers yet: the backlog only grows.
    for id in 0..2 {
        assert_eq!(post(&url, &body(id), None).await.0, 202);
    }
    let refused = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(body(2))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 503);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let reason = refused.json::<serde_json::Value>().await.unwrap();
    assert!(
        reason["error"].as_str().unwrap().contains("--max-pending"),
        "{reason}"
    );
    // A backlog is what the inbox is for (an API down, the workers behind): readiness
    // does not fail on it, or the load balancer would take the process out for the
    // senders' webhooks, which the 503 already holds back. It informs.
    let readiness = reqwest::get(format!("{ready}?verbose")).await.unwrap();
    assert_eq!(readiness.status().as_u16(), 200);
    let verbose = readiness.text().await.unwrap();
    assert!(
        verbose.contains("[i]backlog: 2 events due of --max-pending 2: webhooks are answered 503"),
        "{verbose}"
    );
    // The refused event was not enqueued: the sender keeps it and retries.
    assert_eq!(store.inbox_counts().unwrap(), [("running".to_string(), 2)]);
    tokio::spawn(work(service.clone(), 2));
    until(|| sink.requests().len() == 2).await;
    // Once the backlog drains, webhooks are taken again.
    assert_eq!(accepted_soon(&url, &body(2)).await, 202);
    assert_eq!(reqwest::get(&ready).await.unwrap().status().as_u16(), 200);
    until(|| sink.requests().len() == 3).await;
    service.shut_down();
}

/// Events an integration no longer served left in the inbox wait there for a start that
/// serves it: this process never runs them, so they must not count toward `--max-pending`,
/// or a few thousand of them would refuse every webhook of every other integration for good.
#[tokio::test(flavor = "multi_thread")]
async fn events_of_an_integration_no_longer_served_do_not_count_toward_max_pending() {
    let sink = slow_sink().await;
    let engine = forwarding(&sink);
    let store = fresh_store("serve-backpressure-unserved");
    // Enqueued while a spec named `retired` was served; it is not any more.
    for id in 0..2 {
        common::enqueue(&*store, "retired", &[(json!({ "id": id }), None)]).await;
    }
    // One of the served integration's, waiting too: once it is delivered, the workers
    // have started and counted the inbox.
    common::enqueue(&*store, "backlog", &[(json!({ "id": 10 }), None)]).await;
    let service = Service::with_max_pending(vec![engine], store.clone(), 2);
    let address = listen(service.clone(), &Default::default()).await;
    tokio::spawn(work(service.clone(), 2));
    until(|| sink.requests().len() == 1).await;
    let url = format!("http://{address}/hooks/in");
    let body = json!({ "id": 11 }).to_string().into_bytes();
    // Nothing of the served integration waits or runs (or soon will not): it is taken.
    let answered = accepted_soon(&url, &body).await;
    assert_eq!(answered, 202, "refused for events this process never runs");
    until(|| sink.requests().len() == 2).await;
    service.shut_down();
}

/// A write that ends a run can fail (a disk full or busy for a while, an I/O error): the
/// event must not stay `running` under this live process, which never runs it again,
/// heartbeats its claim and counts it in the backlog until a restart.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_whose_end_the_store_refused_once_is_not_left_running() {
    let sink = slow_sink().await;
    let name = "serve-end-refused";
    let store = fresh_store(name);
    common::enqueue(&*store, "refused", &[(json!({ "id": 1 }), None)]).await;
    let path = state_file(name);
    let raw = rusqlite::Connection::open(&path).unwrap();
    // The store refuses to end any event, as a failing disk would, until it is mended.
    raw.execute_batch(
        "CREATE TRIGGER refuse_ends BEFORE UPDATE OF status ON inbox
         WHEN NEW.status IN ('done', 'failed', 'dead_lettered')
         BEGIN SELECT RAISE(ABORT, 'the disk is failing'); END",
    )
    .unwrap();
    let service = Service::new(vec![poster("refused", "", &sink, "/fast")], store.clone());
    let probes = listen(service.clone(), &integ::serve::HttpOptions::default()).await;
    let ready = format!("http://{probes}/readyz?verbose");
    tokio::spawn(work(service.clone(), 1));
    until(|| sink.requests().len() == 1).await;
    // The run's end is refused right after its request: the store's half of readiness
    // fails (the process cannot durably take work), then holds again once it is mended.
    let readiness = || async {
        let answer = reqwest::get(&ready).await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    };
    let mut refused = readiness().await;
    for _ in 0..400 {
        if refused.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        refused = readiness().await;
    }
    assert_eq!(refused.0, 503, "{}", refused.1);
    assert!(refused.1.contains("[-]store failed"), "{}", refused.1);
    raw.execute_batch("DROP TRIGGER refuse_ends").unwrap();
    until(|| store.inbox_counts().unwrap() == [("done".to_string(), 1)]).await;
    let (status, body) = readiness().await;
    assert_eq!(status, 200, "ready again once a write went through: {body}");
    service.shut_down();
}

/// A deferred event keeps its checkpoints in the state file until it resumes: what a
/// completed step got back (here an API that echoes the credential) is kept redacted.
#[tokio::test(flavor = "multi_thread")]
async fn the_checkpoints_a_deferred_event_keeps_hold_no_secret() {
    const TOKEN: &str = "canary-deferred-7f3a9c51";
    let api = MockServer::start(vec![
        Route {
            method: "POST".into(),
            path: "/first".into(),
            responses: vec![MockResponse::json(200, json!({ "echo": TOKEN }))],
        },
        Route {
            method: "POST".into(),
            path: "/limited".into(),
            responses: vec![
                MockResponse::json(429, json!({})).with_header("Retry-After", "100000"),
            ],
        },
    ])
    .await
    .unwrap();
    let spec = format!(
        r#"integration echoes {{
  connection api {{ base_url "{}" auth bearer secret("API_TOKEN") }}
  trigger manual
  step first = api POST "/first" {{ idempotency_key "f-{{{{ event.id }}}}" }}
  step limited = api POST "/limited" {{ idempotency_key "l-{{{{ event.id }}}}" retry 3 constant 10ms }}
}}"#,
        api.url()
    );
    let options = Options {
        defer_long_waits: true,
        ..Options::default()
    };
    let secrets = Secrets::from_pairs([("API_TOKEN", TOKEN)]);
    let engine = Arc::new(Engine::new(plan(spec), secrets, options).unwrap());
    let name = "serve-deferred-redacted";
    let store = fresh_store(name);
    common::enqueue(&*store, "echoes", &[(json!({ "id": 1 }), None)]).await;
    let service = Service::new(vec![engine], store.clone());
    tokio::spawn(work(service.clone(), 1));
    let folder = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let deferred = "SELECT COUNT(*) FROM inbox WHERE status = 'pending' AND not_before > 0";
    until(|| column(name, deferred) == [Some(1)]).await;
    service.shut_down();
    // The step's result is there, redacted, and no byte of the folder holds the token.
    let raw = rusqlite::Connection::open(folder.join("state.db")).unwrap();
    let result: String = raw
        .query_row("SELECT result FROM checkpoints", [], |row| row.get(0))
        .unwrap();
    assert!(
        result.contains("echo") && !result.contains(TOKEN),
        "{result}"
    );
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let found = bytes.windows(TOKEN.len()).any(|w| w == TOKEN.as_bytes());
        assert!(!found, "the token is in {}", path.display());
    }
}

/// GitHub names the event in `X-GitHub-Event` and the delivery in `X-GitHub-Delivery`: a
/// trigger filters on the one and dedupes on the other, its names written in any case (a
/// peer's rule on `X-GitHub-Event` missed `X-Github-Event`); a `ping` is dropped, a
/// redelivery is a duplicate, a new delivery of the same release runs.
#[tokio::test(flavor = "multi_thread")]
async fn webhook_headers_filter_and_dedupe_the_events_at_intake() {
    let sink = MockServer::start(vec![Route {
        method: "POST".into(),
        path: "/announce".into(),
        responses: vec![MockResponse::json(200, json!({"ok": true}))],
    }])
    .await
    .unwrap();
    let spec = format!(
        r#"integration releases {{
  connection slack {{ base_url "{}" auth none }}
  trigger webhook "/hooks/github" {{
    signature github secret("GITHUB_WEBHOOK_SECRET")
    when header("x-github-event") == "release" and $.action == "published"
    dedupe header("X-GITHUB-DELIVERY")
  }}
  step announce = slack POST "/announce" {{
    idempotency_key "release-{{{{ event.release.id }}}}"
    body {{ text = "{{{{ event.release.tag_name }}}} is out" }}
  }}
}}"#,
        sink.url()
    );
    let engine = engine_of(
        plan(spec),
        Secrets::from_pairs([("GITHUB_WEBHOOK_SECRET", SECRET)]),
    );
    let store = fresh_store("serve-webhook-headers");
    let service = Service::new(vec![engine], store.clone());
    let url = format!(
        "http://{}/hooks/github",
        listen(service.clone(), &Default::default()).await
    );
    tokio::spawn(work(service.clone(), 2));
    let deliver = |event: &'static str, delivery: &'static str, body: Vec<u8>| {
        let url = url.clone();
        async move {
            let signature = sign(&body);
            let response = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .header("X-Hub-Signature-256", signature)
                .header("X-GitHub-Event", event)
                .header("X-GitHub-Delivery", delivery)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            (status, response.json::<serde_json::Value>().await.unwrap())
        }
    };
    let accepted =
        |n: u64, duplicates: u64| (202, json!({"accepted": n, "duplicates": duplicates}));
    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1}).to_string();
    assert_eq!(
        deliver("ping", "d-0", ping.into_bytes()).await,
        accepted(0, 0)
    );
    assert_eq!(
        deliver("release", "d-1", release(7, "published")).await,
        accepted(1, 0)
    );
    // GitHub's redelivery keeps the delivery's GUID.
    assert_eq!(
        deliver("release", "d-1", release(7, "published")).await,
        accepted(0, 1)
    );
    assert_eq!(
        deliver("release", "d-2", release(8, "published")).await,
        accepted(1, 0)
    );
    until(|| store.inbox_counts().unwrap() == [("done".to_string(), 2)]).await;
    let texts: Vec<_> = sink
        .requests()
        .iter()
        .map(|r| r.body["text"].clone())
        .collect();
    assert_eq!(texts, [json!("v7 is out"), json!("v8 is out")]);
}
