//! The run-history pages of the admin listener, in process over real sockets and a real
//! SQLite file: each page as HTML and as the JSON its command prints (compared with the
//! built `integ`), the filters, the guards (CSRF, token, loopback host), no secret on any
//! page, and a dead letter replayed from the pages in a real headless browser.

#![allow(clippy::unwrap_used)]

mod common;

use common::json_ids;
use integ::engine::{Engine, Options};
use integ::mock::{MockResponse, MockServer};
use integ::secrets::Secrets;
use integ::serve::admin::{Guard, router};
use integ::serve::{Service, work};
use integ::store::{Inbox, NewEvents, Records, RunQuery, SqliteStore};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// A credential the API echoes back in its error: no page may show it.
const CANARY: &str = "canary-admin-7f3e9c21";
const HOOK: &str = "webhook POST /hooks/orders";

struct Admin {
    url: String,
    api: MockServer,
    store: Arc<SqliteStore>,
    state: PathBuf,
    service: Arc<Service>,
}

/// Serves integration `orders` whose API refuses the first call (echoing the token, as
/// some APIs do) and accepts the next, with the run-history pages guarded by `token`; one
/// event has come from its webhook and been dead-lettered.
async fn start(name: &str, token: Option<&str>) -> Admin {
    let refuses_once = vec![
        MockResponse::json(
            400,
            json!({"error": format!("bad request for token {CANARY}")}),
        ),
        MockResponse::json(200, json!({"ok": true})),
    ];
    let admin = launch(name, token, refuses_once, "on_error dead_letter").await;
    until(|| admin.store.dead_letters().unwrap().len() == 1).await;
    admin
}

/// Serves integration `orders`, whose API answers `answers` in turn and whose one step has
/// `policy`, with one event from its webhook in the inbox.
async fn launch(
    name: &str,
    token: Option<&str>,
    answers: Vec<MockResponse>,
    policy: &str,
) -> Admin {
    let api = MockServer::start(vec![common::route("POST", "/orders", answers)])
        .await
        .unwrap();
    let spec = format!(
        r#"integration orders {{
  connection shop {{
    base_url "{}"
    auth bearer secret("SHOP_TOKEN")
  }}
  trigger manual
  step send = shop POST "/orders" {{
    idempotency_key "order-{{{{ event.id }}}}"
    body {{ id = $.id, note = $.note }}
    {policy}
  }}
}}"#,
        api.url()
    );
    let mut files = integ::lint::lint_sources(vec![(PathBuf::from("spec.integ"), spec)]);
    let model = files.pop().and_then(|f| f.model).unwrap();
    let plan = Arc::new(integ::plan::compile(&model, None, std::path::Path::new(".")).unwrap());
    let secrets = Secrets::from_pairs([("SHOP_TOKEN", CANARY)]);
    let engine = Arc::new(Engine::new(plan, secrets, Options::default()).unwrap());
    let dir = common::workdir(name);
    let state = dir.join("state.db");
    let store = Arc::new(SqliteStore::open(&state).unwrap());
    let events = [(
        json!({"id": 7, "note": format!("sent with {CANARY}")}),
        None,
    )];
    store
        .enqueue(NewEvents::of("orders", &events).from_webhook(HOOK))
        .await
        .unwrap();
    let service = Service::new(vec![engine], store.clone());
    tokio::spawn(work(service.clone(), 2));
    let admin = integ::serve::admin::Admin {
        service: service.clone(),
        exporter: None,
    };
    let app = router(admin, Guard::new(token.map(String::from)).unwrap()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app).into_future());
    Admin {
        url,
        api,
        store,
        state,
        service,
    }
}

/// Waits for `done`, for up to 30 s: a loaded machine may be slow, never this slow.
async fn until(mut done: impl FnMut() -> bool) {
    for _ in 0..600 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting");
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(url: &str) -> (u16, String) {
    let response = client().get(url).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// What the built `integ` prints for `args` on this state file.
fn cli(admin: &Admin, args: &[&str]) -> String {
    let state = admin.state.to_str().unwrap();
    let dir = admin.state.parent().unwrap();
    let output = common::integ(
        &[args, &["--state", state, "--format", "json"]].concat(),
        dir,
        &[],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        common::text(&output.stderr)
    );
    common::text(&output.stdout)
}

/// The link to a page's next page, unescaped.
fn next_link(page: &str) -> String {
    page.split("rel=\"next\" href=\"")
        .nth(1)
        .expect("a next page")
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

/// GET `path` with `headers` added.
async fn get_with(admin: &Admin, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = client().get(format!("{}{path}", admin.url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

/// The form token of the page at `url`.
async fn form_token(url: &str) -> String {
    let (_, html) = get(url).await;
    let at = html.find("name=\"form_token\" value=\"").expect("a form") + 25;
    html[at..].split('"').next().unwrap().to_string()
}

async fn post(
    admin: &Admin,
    path: &str,
    origin: Option<&str>,
    form: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = client().post(format!("{}{path}", admin.url)).form(form);
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    request.send().await.unwrap()
}

fn letter_id(admin: &Admin) -> i64 {
    admin.store.dead_letters().unwrap()[0].0
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_answers_the_json_its_command_prints() {
    let admin = start("admin-json", None).await;
    let id = letter_id(&admin);
    let run = admin.store.runs(&RunQuery::default()).unwrap()[0].0;
    let run_text = run.to_string();
    let id_text = id.to_string();
    let pairs: [(String, &[&str]); 7] = [
        ("/runs?format=json".into(), &["runs"]),
        (
            "/runs?integration=orders&outcome=dead_lettered&since=1h&limit=5".into(),
            &[
                "runs",
                "--integration",
                "orders",
                "--outcome",
                "dead_lettered",
                "--since",
                "1h",
                "--limit",
                "5",
            ],
        ),
        (format!("/runs/{run}"), &["runs", "--id", &run_text]),
        ("/dead-letters".into(), &["dlq", "list"]),
        (
            "/dead-letters?show=all&integration=orders".into(),
            &["dlq", "list", "--show", "all", "--integration", "orders"],
        ),
        (format!("/dead-letters/{id}"), &["dlq", "show", &id_text]),
        (
            format!("/runs?trigger={}", HOOK.replace(' ', "+")),
            &["runs", "--trigger", HOOK],
        ),
    ];
    for (path, args) in &pairs {
        let response = client()
            .get(format!("{}{path}", admin.url))
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let page = response.text().await.unwrap();
        assert!(!page.trim().is_empty(), "{path} answered nothing");
        assert_eq!(page, cli(&admin, args), "{path} against integ {args:?}");
    }
    let (status, runs) = get(&format!("{}/runs?format=json", admin.url)).await;
    assert_eq!(status, 200);
    let first: serde_json::Value = serde_json::from_str(runs.lines().next().unwrap()).unwrap();
    assert_eq!(first["trigger"], HOOK, "the run names its trigger");
    assert_eq!(
        first["steps"][0]["requests"][0]["status"], 400,
        "and its steps"
    );
    admin.service.shut_down();
}

/// A request retried after a 503 shows each attempt on its run's page and in `integ runs`:
/// when it began, its status and the start of a failed answer, a secret in it redacted.
#[tokio::test(flavor = "multi_thread")]
async fn a_retried_request_shows_each_attempt_its_status_and_answer() {
    let busy_then_created = vec![
        MockResponse::json(503, json!({"error": format!("busy, token {CANARY}")})),
        MockResponse::json(201, json!({"id": "ord_1"})),
    ];
    let policy = "retry 3 constant 300ms..1s on 5xx";
    let admin = launch("admin-tries", None, busy_then_created, policy).await;
    let succeeded = || {
        let runs = admin.store.runs(&RunQuery::default()).unwrap();
        runs.into_iter()
            .find(|(_, run)| run.outcome == "succeeded")
            .map(|(id, _)| id)
    };
    until(|| succeeded().is_some()).await;
    let run = succeeded().unwrap().to_string();
    let record: serde_json::Value =
        serde_json::from_str(&cli(&admin, &["runs", "--id", &run])).unwrap();
    let request = &record["steps"][0]["requests"][0];
    let tries = request["tries"].as_array().expect("the attempts");
    assert_eq!(tries.len(), 2, "{request}");
    assert_eq!(
        (&tries[0]["status"], &tries[1]["status"]),
        (&json!(503), &json!(201))
    );
    assert!(
        tries[1]["at"].as_u64().unwrap() >= 300,
        "after the backoff: {request}"
    );
    let busy = tries[0]["answer"].as_str().unwrap_or_default();
    assert!(busy.contains("busy, token [redacted]"), "{request}");
    assert_eq!(
        tries[1].get("answer"),
        None,
        "a success's body may be customer data: {request}"
    );
    assert!(
        request["at_ms"].is_u64(),
        "where the request starts in the run: {request}"
    );
    let (_, page) = get(&format!("{}/runs/{run}", admin.url)).await;
    let shown = page
        .split("<ol class=\"tries\">")
        .nth(1)
        .expect("a list of attempts");
    assert!(
        shown.contains("503") && shown.contains("201") && shown.contains("busy, token"),
        "{page}"
    );
    assert!(!page.contains("ord_1"), "{page}");
    assert!(!page.contains(CANARY), "{page}");
    admin.service.shut_down();
}

/// The overview counts what happened: a dead-lettered run and a successful one give two
/// runs, one failure, one open dead letter and a last success, and its picture draws the
/// failure in red.
#[tokio::test(flavor = "multi_thread")]
async fn the_overview_counts_runs_failures_dead_letters_and_the_last_success() {
    let admin = start("admin-overview", None).await;
    let events = [(json!({"id": 8, "note": "second"}), None)];
    admin
        .store
        .enqueue(NewEvents::of("orders", &events).from_webhook(HOOK))
        .await
        .unwrap();
    let ended = || admin.store.runs(&RunQuery::default()).unwrap().len() == 2;
    until(ended).await;
    let (status, body) = get(&format!("{}/?format=json", admin.url)).await;
    assert_eq!(status, 200, "{body}");
    let overview: serde_json::Value = serde_json::from_str(&body).unwrap();
    let orders = &overview["integrations"][0];
    assert_eq!(orders["name"], "orders", "{orders}");
    let counted = [
        &orders["runs_hour"],
        &orders["failures_hour"],
        &orders["runs_day"],
        &orders["failures_day"],
        &orders["dead_letters"],
        &orders["pending"],
    ];
    assert_eq!(
        counted,
        [
            &json!(2),
            &json!(1),
            &json!(2),
            &json!(1),
            &json!(1),
            &json!(0)
        ],
        "{orders}"
    );
    assert!(orders["last_success"].as_i64().is_some(), "{orders}");
    let (_, html) = get(&format!("{}/", admin.url)).await;
    assert!(
        html.contains("fill=\"#c22\""),
        "the failure, red in the picture:\n{html}"
    );
    admin.service.shut_down();
}

#[tokio::test(flavor = "multi_thread")]
async fn every_page_renders_as_html_without_a_secret() {
    let admin = start("admin-html", None).await;
    let id = letter_id(&admin);
    let run = admin.store.runs(&RunQuery::default()).unwrap()[0].0;
    let pages = [
        ("/", "orders"),
        ("/runs", "dead_lettered"),
        (
            "/runs?integration=orders&outcome=dead_lettered&trigger=webhook+POST+%2Fhooks%2Forders",
            &format!("/runs/{run}"),
        ),
        (&format!("/runs/{run}"), "POST http:"),
        ("/dead-letters", &format!("/dead-letters/{id}")),
        (&format!("/dead-letters/{id}"), "Replay"),
    ];
    for (path, shows) in pages {
        let (status, html) = get(&format!("{}{path}", admin.url)).await;
        assert_eq!(status, 200, "{path}: {html}");
        assert!(html.starts_with("<!doctype html>"), "{path}");
        assert!(
            html.contains(shows),
            "{path} does not show {shows}:\n{html}"
        );
        assert!(!html.contains(CANARY), "{path} shows the secret:\n{html}");
        let (_, json) = get(&format!(
            "{}{path}{}format=json",
            admin.url,
            if path.contains('?') { '&' } else { '?' }
        ))
        .await;
        assert!(
            !json.contains(CANARY),
            "{path} as JSON shows the secret:\n{json}"
        );
    }
    let (_, run_page) = get(&format!("{}/runs/{run}", admin.url)).await;
    assert!(
        run_page.contains("[redacted]"),
        "the echoed token, redacted:\n{run_page}"
    );
    assert!(
        run_page.contains("<svg") || run_page.contains("class=\"lane\""),
        "a timeline"
    );
    let (_, overview) = get(&format!("{}/", admin.url)).await;
    assert!(overview.contains("<svg"), "the overview's picture of runs");
    assert!(
        overview.contains("none declared"),
        "the alerts' slot says the integration declares none"
    );
    let (status, _) = get(&format!("{}/runs?outcome=maybe", admin.url)).await;
    assert_eq!(status, 400, "an unknown outcome is refused, not ignored");
    let (status, _) = get(&format!("{}/runs?since=yesterday-ish", admin.url)).await;
    assert_eq!(status, 400);
    let (status, _) = get(&format!("{}/runs/999999", admin.url)).await;
    assert_eq!(status, 404);
    admin.service.shut_down();
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_are_filtered_and_paged() {
    let admin = start("admin-filters", None).await;
    for n in 0..3 {
        let record = integ::store::RunRecord {
            integration: "orders".into(),
            outcome: "succeeded".into(),
            started_at: 1_700_000_000 + n,
            trigger: Some("poll 0".into()),
            ..Default::default()
        };
        admin.store.record_run(&record).unwrap();
    }
    let (_, all) = get(&format!("{}/runs?format=json", admin.url)).await;
    assert_eq!(json_ids(&all).len(), 4);
    let (_, polled) = get(&format!("{}/runs?format=json&trigger=poll+0", admin.url)).await;
    assert_eq!(json_ids(&polled).len(), 3);
    let (_, old) = get(&format!(
        "{}/runs?format=json&until=2023-11-14T22:13:22Z",
        admin.url
    ))
    .await;
    assert_eq!(
        json_ids(&old).len(),
        2,
        "until is exclusive: 1 700 000 000 and 001"
    );
    let (_, failed) = get(&format!("{}/runs?format=json&failed=true", admin.url)).await;
    assert_eq!(json_ids(&failed).len(), 1);
    let (_, page) = get(&format!("{}/runs?trigger=poll+0&limit=2", admin.url)).await;
    let next = next_link(&page);
    assert!(
        next.contains("trigger=poll+0"),
        "the next page keeps the filters: {next}"
    );
    let (_, rest) = get(&format!("{}{next}&format=json", admin.url)).await;
    assert_eq!(json_ids(&rest).len(), 1, "the third, on the next page");
    admin.service.shut_down();
}

/// Adds `n` open dead letters of integration `orders` to the state file at once.
fn many_letters(admin: &Admin, n: u32) {
    let file = rusqlite::Connection::open(&admin.state).unwrap();
    file.busy_timeout(Duration::from_secs(20)).unwrap();
    file.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO dead_letters (integration, step, event, requests, error, attempts, failed_at)
         SELECT 'orders', 'send', '{}', '[]', 'refused', 1, 1700000000 + i FROM n",
        [n],
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dead_letters_are_listed_a_page_at_a_time_json_and_integ_dlq_list_included() {
    let admin = start("admin-letter-pages", None).await;
    many_letters(&admin, 1_000);
    // 1001 open letters: JSON, as the command, lists the oldest 1000 and names the next page.
    let response = client()
        .get(format!("{}/dead-letters?format=json", admin.url))
        .send()
        .await
        .unwrap();
    let next = response.headers()["link"].to_str().unwrap().to_string();
    let first = response.text().await.unwrap();
    assert_eq!(json_ids(&first).len(), 1_000, "a hard cap on the JSON list");
    assert_eq!(first, cli(&admin, &["dlq", "list"]));
    let last = *json_ids(&first).last().unwrap();
    assert_eq!(
        next,
        format!("</dead-letters?after={last}&format=json>; rel=\"next\"")
    );
    let after = last.to_string();
    let (_, rest) = get(&format!(
        "{}/dead-letters?after={last}&format=json",
        admin.url
    ))
    .await;
    assert_eq!(json_ids(&rest).len(), 1, "the newest, on the next page");
    assert_eq!(rest, cli(&admin, &["dlq", "list", "--after", &after]));
    // The page: a link to the next, keeping the filters and the size.
    let (_, page) = get(&format!(
        "{}/dead-letters?integration=orders&limit=2",
        admin.url
    ))
    .await;
    let next = next_link(&page);
    assert!(
        next.contains("integration=orders") && next.contains("limit=2"),
        "the next page keeps the filters: {next}"
    );
    let (_, second) = get(&format!("{}{next}&format=json", admin.url)).await;
    let (_, both) = get(&format!("{}/dead-letters?format=json&limit=4", admin.url)).await;
    assert_eq!(json_ids(&second), json_ids(&both)[2..].to_vec());
    admin.service.shut_down();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_without_this_pages_origin_and_form_token_is_refused() {
    let admin = start("admin-csrf", None).await;
    let id = letter_id(&admin).to_string();
    let token = form_token(&format!("{}/dead-letters/{id}", admin.url)).await;
    let ours = admin.url.clone();
    let form = [
        ("form_token", token.as_str()),
        ("id", id.as_str()),
        ("scope", "selected"),
    ];
    let refused = [
        (None, &form[..]),
        (Some("http://evil.example"), &form[..]),
        (Some("null"), &form[..]),
        (Some(ours.as_str()), &form[1..]),
        (
            Some(ours.as_str()),
            &[
                ("form_token", "0000"),
                ("id", id.as_str()),
                ("scope", "selected"),
            ][..],
        ),
    ];
    for (origin, form) in refused {
        let response = post(&admin, "/dead-letters/replay", origin, form).await;
        assert_eq!(response.status(), 403, "{origin:?} {form:?}");
        let response = post(
            &admin,
            "/dead-letters/discard",
            origin,
            &[form, &[("reason", "x")]].concat(),
        )
        .await;
        assert_eq!(response.status(), 403, "{origin:?} {form:?}");
    }
    let (status, _) = get(&format!(
        "{}/dead-letters/replay?id={id}&form_token={token}",
        admin.url
    ))
    .await;
    assert_eq!(status, 405, "no change through GET");
    // A replay is put in the inbox before its answer: none waits or runs, none will.
    assert_eq!(admin.store.dead_letters().unwrap().len(), 1, "still open");
    let queued = admin.store.backlog().unwrap();
    assert!(
        queued.iter().all(|b| b.pending + b.running == 0),
        "nothing to send again: {queued:?}"
    );
    assert_eq!(admin.api.requests().len(), 1, "nothing sent again");

    let response = post(&admin, "/dead-letters/discard", Some(&ours), &form).await;
    assert_eq!(response.status(), 400, "a discard needs a reason");
    let blank = [&form[..], &[("reason", " \t ")]].concat();
    let response = post(&admin, "/dead-letters/discard", Some(&ours), &blank).await;
    assert_eq!(response.status(), 400, "a blank reason is none");
    let with_reason = [&form[..], &[("reason", "a test order")]].concat();
    let response = post(&admin, "/dead-letters/discard", Some(&ours), &with_reason).await;
    assert_eq!(response.status(), 303);
    assert!(admin.store.dead_letters().unwrap().is_empty());
    let (_, page) = get(&format!("{}/dead-letters/{id}", admin.url)).await;
    assert!(
        page.contains("a test order"),
        "kept, with its reason:\n{page}"
    );
    admin.service.shut_down();
}

/// The hidden fields of the form on `html`, unescaped.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    html.split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|rest| {
            let (name, rest) = rest.split_once('"').unwrap();
            let value = rest
                .split("value=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let value = value.replace("&#x2f;", "/").replace("&amp;", "&");
            (name.to_string(), value)
        })
        .collect()
}

/// Replaying all that match a filter is confirmed first: the count and the filter with its
/// times as instants, carried by the form, so that a letter failing meanwhile is not
/// replayed; and a reason is required (operations-and-docs.md B7).
#[tokio::test(flavor = "multi_thread")]
async fn replay_from_the_list_makes_a_new_run_linked_both_ways() {
    let admin = start("admin-replay", None).await;
    let id = letter_id(&admin);
    let original = admin.store.runs(&RunQuery::default()).unwrap()[0].0;
    let token = form_token(&format!("{}/dead-letters", admin.url)).await;
    let ours = admin.url.clone();
    let asked = [
        ("form_token", token.as_str()),
        ("scope", "matching"),
        ("integration", "orders"),
        ("since", "2h"),
    ];
    let confirm = post(&admin, "/dead-letters/replay", Some(&ours), &asked).await;
    assert_eq!(confirm.status(), 200, "a confirmation first");
    let page = confirm.text().await.unwrap();
    assert!(page.contains("Replay 1 dead letter(s)?"), "{page}");
    let hidden = hidden_fields(&page);
    let field = |name: &str| {
        hidden
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {hidden:?}"))
    };
    for name in ["since", "until"] {
        let instant = field(name);
        assert!(
            chrono::DateTime::parse_from_rfc3339(&instant).is_ok(),
            "{name} resolved to an instant: {instant}"
        );
        assert!(page.contains(&format!(">{instant}<")), "and shown: {page}");
    }
    assert_eq!(field("confirmed"), "1");
    assert_eq!(admin.store.dead_letters().unwrap().len(), 1, "nothing yet");
    // A letter failing after the confirmation is not among those confirmed.
    let later = integ::store::now() + 60;
    let file = rusqlite::Connection::open(&admin.state).unwrap();
    file.busy_timeout(Duration::from_secs(20)).unwrap();
    file.execute(
        "INSERT INTO dead_letters (integration, step, event, requests, error, attempts, failed_at)
         VALUES ('orders', 'send', '{}', '[]', 'refused', 1, ?1)",
        [later],
    )
    .unwrap();
    let form: Vec<(&str, &str)> = hidden
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let unexplained = post(&admin, "/dead-letters/replay", Some(&ours), &form).await;
    assert_eq!(unexplained.status(), 400, "a reason is required");
    let blank = [&form[..], &[("reason", "   ")]].concat();
    let unexplained = post(&admin, "/dead-letters/replay", Some(&ours), &blank).await;
    assert_eq!(unexplained.status(), 400, "a blank reason is none");
    let relative: Vec<(&str, &str)> = form
        .iter()
        .map(|&(n, v)| if n == "since" { (n, "2h") } else { (n, v) })
        .chain([("reason", "API-395: blip")])
        .collect();
    let reread = post(&admin, "/dead-letters/replay", Some(&ours), &relative).await;
    assert_eq!(
        reread.status(),
        400,
        "a time ago is never read again at the POST"
    );
    let later: Vec<(&str, &str)> = form
        .iter()
        .map(|&(n, v)| {
            if n == "until" {
                (n, "2999-01-01T00:00:00Z")
            } else {
                (n, v)
            }
        })
        .chain([("reason", "API-395: blip")])
        .collect();
    let unseen = post(&admin, "/dead-letters/replay", Some(&ours), &later).await;
    assert_eq!(
        unseen.status(),
        400,
        "an until to come takes in letters nobody saw"
    );
    assert_eq!(
        admin.store.dead_letters().unwrap().len(),
        2,
        "nothing replayed"
    );
    let confirmed = [&form[..], &[("reason", "API-395: blip")]].concat();
    let response = post(&admin, "/dead-letters/replay", Some(&ours), &confirmed).await;
    assert_eq!(response.status(), 303);
    let back = response.headers()["location"].to_str().unwrap().to_string();
    assert!(
        back.starts_with("/dead-letters?integration=orders"),
        "{back}"
    );
    let open = admin.store.dead_letters().unwrap();
    assert_eq!(open.len(), 1, "the later letter stays open");
    assert_ne!(open[0].0, id);
    until(|| admin.store.runs(&RunQuery::default()).unwrap().len() == 2).await;
    let (replay, record) = admin.store.runs(&RunQuery::default()).unwrap().remove(0);
    assert_eq!(
        (record.outcome.as_str(), record.replay_of),
        ("succeeded", Some(id))
    );
    let (_, page) = get(&format!("{}/runs/{original}", admin.url)).await;
    assert!(
        page.contains(&format!("href=\"/runs/{replay}\"")),
        "the original links to its replay"
    );
    let (_, page) = get(&format!("{}/runs/{replay}", admin.url)).await;
    assert!(
        page.contains(&format!("href=\"/runs/{original}\"")),
        "the replay links to its original"
    );
    let (_, page) = get(&format!("{}/dead-letters/{id}", admin.url)).await;
    assert!(
        page.contains("API-395: blip") && page.contains(&format!("/runs/{replay}")),
        "{page}"
    );
    admin.service.shut_down();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_admin_token_guards_every_page_and_the_cookie_is_not_the_token() {
    let secret = "admin-token-5d1c";
    let admin = start("admin-token", Some(secret)).await;
    let bearer = |token: &str| format!("Bearer {token}");
    let html = ("Accept", "text/html,application/xhtml+xml");
    let response = get_with(&admin, "/runs", &[html]).await;
    assert_eq!(response.status(), 303, "a browser is sent to sign in");
    assert_eq!(response.headers()["location"], "/login");
    let metrics = get_with(&admin, "/metrics", &[]).await;
    assert_eq!(
        metrics.status(),
        401,
        "a scraper without the token is told why"
    );
    let metrics = get_with(&admin, "/metrics", &[("Authorization", &bearer(secret))]).await;
    assert_ne!(metrics.status(), 401, "and served with it");
    let asked = [
        (None, 401),
        (Some(secret), 200),
        (Some("admin-token-wrong"), 401),
    ];
    for (token, status) in asked {
        let header = token.map(|t| ("Authorization", bearer(t)));
        let headers: Vec<(&str, &str)> = header.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let response = get_with(&admin, "/runs?format=json", &headers).await;
        assert_eq!(response.status(), status, "{token:?}");
    }

    let token = form_token(&format!("{}/login", admin.url)).await;
    let url = admin.url.clone();
    let wrong = post(
        &admin,
        "/login",
        Some(&url),
        &[("form_token", &token), ("token", "nope")],
    )
    .await;
    assert_eq!(wrong.headers()["location"], "/login?wrong=1");
    assert!(wrong.headers().get("set-cookie").is_none());
    let foreign = post(
        &admin,
        "/login",
        Some("http://evil.example"),
        &[("form_token", &token), ("token", secret)],
    )
    .await;
    assert_eq!(foreign.status(), 403);
    let signed = post(
        &admin,
        "/login",
        Some(&url),
        &[("form_token", &token), ("token", secret)],
    )
    .await;
    assert_eq!(signed.status(), 303);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        !cookie.contains(secret),
        "the cookie is not the token: {cookie}"
    );
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(cookie.contains("Max-Age=43200"), "it ends: {cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain HTTP on loopback: a Secure cookie would not be kept: {cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let response = get_with(&admin, "/dead-letters", &[("Cookie", &session)]).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    let html = response.text().await.unwrap();
    assert!(!html.contains(secret));

    // Behind a TLS proxy the cookie is Secure; by another name in clear, no sign-in at all.
    let form = [("form_token", token.as_str()), ("token", secret)];
    let via = |origin: &'static str, host: &'static str| {
        client()
            .post(format!("{}/login", admin.url))
            .header("Origin", origin)
            .header("Host", host)
            .form(&form)
            .send()
    };
    let proxied = via("https://integ-admin.example", "integ-admin.example")
        .await
        .unwrap();
    assert_eq!(proxied.status(), 303);
    let cookie = proxied.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.ends_with("; Secure"), "{cookie}");
    let clear = via("http://10.1.2.3:9464", "10.1.2.3:9464").await.unwrap();
    assert_eq!(clear.status(), 400);
    assert!(clear.headers().get("set-cookie").is_none());
    assert!(clear.text().await.unwrap().contains("HTTPS"));
    admin.service.shut_down();
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_token_only_loopback_names_are_answered() {
    let admin = start("admin-loopback", None).await;
    for host in ["evil.example", "evil.example:9464", "10.1.2.3:9464"] {
        let response = client()
            .get(format!("{}/runs", admin.url))
            .header("Host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            403,
            "{host}: a name re-pointed at 127.0.0.1 reaches nothing"
        );
    }
    let port = admin.url.rsplit(':').next().unwrap().to_string();
    let response = client()
        .get(format!("{}/runs", admin.url))
        .header("Host", format!("localhost:{port}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    admin.service.shut_down();
}

/// The flow people follow, in a real headless Chromium: a failed run shows in the list,
/// its dead letter is replayed from its page, and the replay's run, which the API now
/// accepts, links back to it. Skipped, saying why, where no browser is installed.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_is_replayed_from_the_pages_in_a_real_browser() {
    // First: the engine installs the TLS provider every HTTP client here needs.
    let admin = start("admin-browser", None).await;
    let browser = match common::browser::Browser::start().await {
        Ok(browser) => browser,
        Err(reason) => {
            println!(
                "skipped: no headless browser here ({reason}); .ci/run installs chromium and chromium-driver"
            );
            admin.service.shut_down();
            return;
        }
    };
    let id = letter_id(&admin);
    browser.open(&format!("{}/runs", admin.url)).await;
    assert!(
        browser
            .find("tr.run[data-outcome='dead_lettered']")
            .await
            .is_some(),
        "the failed run is listed:\n{}",
        browser.source().await
    );
    browser.open(&format!("{}/dead-letters", admin.url)).await;
    browser
        .click(&format!("a[href='/dead-letters/{id}']"))
        .await;
    browser
        .type_into("input[name='reason']", "the API is back")
        .await;
    browser.click("#replay").await;
    assert!(browser.url().await.contains(&format!("/dead-letters/{id}")));
    assert_eq!(browser.text("#done").await, "1 dead letter(s) replayed");
    // The replay runs on the server's workers: the page shows its run once it ended.
    let mut linked = false;
    for _ in 0..100 {
        browser
            .open(&format!("{}/dead-letters/{id}", admin.url))
            .await;
        if browser.find("a.replay-run").await.is_some() {
            linked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        linked,
        "the replay's run is linked:\n{}",
        browser.source().await
    );
    browser.click("a.replay-run").await;
    assert_eq!(browser.text("h1 span").await, "succeeded");
    assert!(
        browser
            .text("#replay-of")
            .await
            .contains(&format!("dead letter #{id}"))
    );
    browser.click("#replay-of a").await;
    assert!(
        browser.text("#replayed-by").await.contains("run #"),
        "and back"
    );
    assert_eq!(
        admin.api.requests().len(),
        2,
        "the API got the event twice: failed, then accepted"
    );
    assert!(!browser.source().await.contains(CANARY));
    // Every letter matching, through the confirmation page.
    many_letters(&admin, 1);
    browser.open(&format!("{}/dead-letters", admin.url)).await;
    browser.click("#replay-matching").await;
    assert_eq!(browser.text("h1").await, "Replay 1 dead letter(s)?");
    assert!(browser.text("#until").await.ends_with('Z'), "an instant");
    browser
        .type_into("input[name='reason']", "backlog after the outage")
        .await;
    browser.click("#confirm").await;
    assert_eq!(browser.text("#done").await, "1 dead letter(s) replayed");
    browser.quit().await;
    admin.service.shut_down();
}

/// `integ serve` refuses an admin listener other machines can reach without a token, and
/// a token too short to hold, without echoing it.
#[test]
fn serve_refuses_an_open_admin_listener_without_a_token() {
    let dir = common::workdir("admin-open");
    std::fs::write(
        dir.join("spec.integ"),
        "integration quiet {\n  connection api { base_url \"http://127.0.0.1:9\" }\n  trigger manual\n  step ping = api GET \"/ping\"\n}\n",
    )
    .unwrap();
    let serve = |admin: &str, env: &[(&str, &str)]| {
        let args = [
            "serve",
            "spec.integ",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            admin,
        ];
        common::integ(&args, &dir, env)
    };
    let open = serve("0.0.0.0:0", &[]);
    assert_eq!(open.status.code(), Some(2));
    assert!(
        common::text(&open.stderr).contains("--admin-token"),
        "{}",
        common::text(&open.stderr)
    );
    let short = serve("0.0.0.0:0", &[("INTEG_ADMIN_TOKEN", "hunter2-short")]);
    assert_eq!(short.status.code(), Some(2));
    let said = common::text(&short.stderr);
    assert!(
        said.contains("shorter than 16") && !said.contains("hunter2"),
        "{said}"
    );
}
