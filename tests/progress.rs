//! Progress through many items: `integ run` over many events (a JSON array or JSON lines)
//! and a poll's first backfill under `integ serve`; plain lines on a pipe, a bar on a
//! terminal, and nothing but the reports on standard output with `--format json`.

#![allow(clippy::unwrap_used)]

mod common;

use common::crm::Crm;
use common::serving::Serving;
use integ::engine::{Engine, Options};
use integ::mock::{MockResponse, MockServer};
use integ::secrets::Secrets;
use integ::serve::{Backfill, Service, work};
use integ::store::SqliteStore;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An API that accepts orders but refuses order 2, and a spec sending each event to it.
async fn shop(dir: &Path) -> MockServer {
    let answer = |status| vec![MockResponse::json(status, json!({"status": status}))];
    let api = MockServer::start(vec![
        common::route("POST", "/orders/1", answer(200)),
        common::route("POST", "/orders/2", answer(422)),
        common::route("POST", "/orders/3", answer(200)),
    ])
    .await
    .unwrap();
    let spec = format!(
        r#"integration orders {{
  connection shop {{ base_url "{}" }}
  trigger manual
  step send = shop POST "/orders/{{{{ event.id }}}}" {{
    idempotency_key "order-{{{{ event.id }}}}"
    body {{ id = $.id }}
    on_error dead_letter
  }}
}}"#,
        api.url()
    );
    std::fs::write(dir.join("orders.integ"), spec).unwrap();
    api
}

fn run(dir: &Path, input: &str, format: &str) -> std::process::Output {
    let args = [
        "run",
        "orders.integ",
        "--input",
        input,
        "--format",
        format,
        "--state",
        "state.db",
    ];
    common::integ(&args, dir, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn many_events_run_one_by_one_with_progress_lines_on_a_pipe() {
    let dir = common::workdir("progress-array");
    let _api = shop(&dir).await;
    std::fs::write(
        dir.join("events.json"),
        r#"[{"id": 1}, {"id": 2}, {"id": 3}]"#,
    )
    .unwrap();
    let output = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || run(&dir, "events.json", "human")
    })
    .await
    .unwrap();
    let (stdout, stderr) = (common::text(&output.stdout), common::text(&output.stderr));
    assert_eq!(
        output.status.code(),
        Some(1),
        "one failed: {stdout}{stderr}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("event 1  succeeded"), "{stdout}");
    assert!(
        lines[1].starts_with("event 2  dead_lettered") && lines[1].contains("dead letter #"),
        "{stdout}"
    );
    assert!(lines[2].starts_with("event 3  succeeded"), "{stdout}");
    assert!(
        stderr.contains("3/3 events 2 succeeded, 1 dead-lettered"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "plain lines on a pipe: {stderr:?}"
    );
    let runs = common::integ(
        &["runs", "--state", "state.db", "--format", "json"],
        &dir,
        &[],
    );
    assert_eq!(
        common::text(&runs.stdout).lines().count(),
        3,
        "each a run of its own"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn json_lines_in_give_only_json_lines_out() {
    let dir = common::workdir("progress-jsonl");
    let _api = shop(&dir).await;
    std::fs::write(dir.join("events.jsonl"), "{\"id\": 1}\n{\"id\": 3}\n").unwrap();
    let output = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || run(&dir, "events.jsonl", "json")
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = common::text(&output.stdout);
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 2, "{stdout}");
    assert!(reports.iter().all(|r| r["outcome"] == "succeeded"));
    assert!(
        common::text(&output.stderr).contains("2/2 events"),
        "the progress goes to standard error"
    );
    // One object is one event, as before.
    std::fs::write(dir.join("one.json"), r#"{"id": 1}"#).unwrap();
    let one = run(&dir, "one.json", "json");
    let report: serde_json::Value = serde_json::from_slice(&one.stdout).unwrap();
    assert_eq!(report["outcome"], "succeeded");
    assert!(
        common::text(&one.stderr).is_empty(),
        "no progress for one event"
    );
}

/// On a terminal (a pseudo-terminal from `script`), the progress is a bar, drawn and
/// cleared with terminal codes, and the lines stay readable.
#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_gets_a_bar() {
    let dir = common::workdir("progress-tty");
    let _api = shop(&dir).await;
    std::fs::write(dir.join("events.json"), r#"[{"id": 1}, {"id": 3}]"#).unwrap();
    let command = format!(
        "{} run orders.integ --input events.json --state state.db",
        env!("CARGO_BIN_EXE_integ")
    );
    let output = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            std::process::Command::new("script")
                .args(["-qec", &command, "/dev/null"])
                .current_dir(&dir)
                .output()
        }
    })
    .await
    .unwrap();
    let Ok(output) = output else {
        println!("skipped: no `script` to give the run a terminal");
        return;
    };
    let shown = common::text(&output.stdout);
    assert!(shown.contains("event 2  succeeded"), "{shown}");
    assert!(
        shown.contains("\u{1b}["),
        "a bar drawn with terminal codes: {shown:?}"
    );
    assert!(
        !shown.contains("2/2 events 2 succeeded\r\n"),
        "no plain progress line on a terminal: {shown:?}"
    );
}

/// Records what backfills report.
#[derive(Debug, Default)]
struct Heard(Mutex<Vec<String>>);

impl Backfill for Heard {
    fn page(&self, integration: &str, trigger: &str, pages: u64, events: u64) {
        let said = format!("{integration} {trigger}: {pages} page(s), {events} event(s)");
        self.0.lock().unwrap().push(said);
    }

    fn ended(&self, integration: &str, trigger: &str) {
        self.0
            .lock()
            .unwrap()
            .push(format!("{integration} {trigger}: ended"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_polls_first_round_reports_its_backfill_page_by_page() {
    let crm = Crm::start().await;
    for id in 1..=5 {
        crm.put(id, &format!("2021-01-0{id}T00:00:00Z"));
    }
    let dir = common::workdir("progress-backfill");
    let store = Arc::new(SqliteStore::open(&dir.join("state.db")).unwrap());
    let mut files = integ::lint::lint_sources(vec![(PathBuf::from("crm.integ"), crm.spec())]);
    let model = files.pop().and_then(|f| f.model).unwrap();
    let plan = Arc::new(integ::plan::compile(&model, None, Path::new(".")).unwrap());
    let engine = Arc::new(Engine::new(plan, Secrets::default(), Options::default()).unwrap());
    let service = Service::new(vec![engine], store.clone());
    let heard = Arc::new(Heard::default());
    service.report_backfill(heard.clone());
    tokio::spawn(work(service.clone(), 2));
    tokio::spawn(integ::serve::poll(service.clone()));
    for _ in 0..400 {
        if crm.searches().len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.shut_down();
    let heard = heard.0.lock().unwrap().clone();
    let first_end = heard.iter().position(|h| h.ends_with("ended")).unwrap();
    assert_eq!(
        heard[..=first_end],
        [
            "crm_sync poll 0: 1 page(s), 2 event(s)",
            "crm_sync poll 0: 2 page(s), 4 event(s)",
            "crm_sync poll 0: 3 page(s), 5 event(s)",
            "crm_sync poll 0: ended",
        ],
        "{heard:?}"
    );
    assert!(
        heard[first_end + 1..].iter().all(|h| h.ends_with("ended")),
        "later rounds, from a stored position, are no backfill: {heard:?}"
    );
}

/// `integ serve` with its log on a file (no terminal): a poll's backfill is told in log
/// lines, the last one with its totals.
#[tokio::test(flavor = "multi_thread")]
async fn integ_serve_on_a_pipe_logs_a_polls_backfill_and_its_end() {
    let crm = Crm::start().await;
    for id in 1..=5 {
        crm.put(id, &format!("2021-01-0{id}T00:00:00Z"));
    }
    let dir = common::workdir("progress-backfill-log");
    common::write(&dir, "crm.integ", &crm.spec());
    let _serving = Serving::start(&dir, &["crm.integ", "--state", "state.db"]).await;
    let log = dir.join("serve.log");
    let ended = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["fields"]["message"] == "backfill: the poll's first round ended")
    };
    for _ in 0..600 {
        if ended().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let line = ended().expect("a log line when the backfill ended");
    let fields = &line["fields"];
    assert_eq!(
        (
            &fields["integration"],
            &fields["trigger"],
            &fields["pages"],
            &fields["events"]
        ),
        (&json!("crm_sync"), &json!("poll 0"), &json!(3), &json!(5)),
        "{line}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("backfill: the poll's first round goes on"),
        "a line while it went on:\n{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no spinner drawn on a file:\n{text}"
    );
}
