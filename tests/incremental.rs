//! Incremental polls under `integ serve`, in process, against a stand-in CRM over real
//! sockets and a real SQLite file. The failures peers' users reported, each made
//! impossible: a mark moved before the pass ended (dlt: state saved too early; a crash
//! skips the rest of the pass), a mark taken from the clock at the end of a round (Nango's
//! `lastSyncDate`), a bound that skips rows stamped equal to the mark, rows committed late
//! with an older time (dlt#2269, Airbyte's `lookback_window`), answers out of order, and
//! an item whose mark cannot be read (delivered, and said, never silent).

#![allow(clippy::unwrap_used)]

mod common;

use common::crm::{Crm, START};
use integ::engine::{Engine, Options};
use integ::secrets::Secrets;
use integ::serve::{Service, keep_health, work};
use integ::store::{Position, Records, SqliteStore};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn fresh_store(name: &str) -> Arc<SqliteStore> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    Arc::new(SqliteStore::open(&dir.join("state.db")).unwrap())
}

/// A serving process on `store`: its workers, its polls and its health writer.
fn serve(spec: &str, store: &Arc<SqliteStore>) -> Arc<Service> {
    let mut files = integ::lint::lint_sources(vec![(PathBuf::from("spec.integ"), spec.into())]);
    let model = files.pop().and_then(|f| f.model).unwrap();
    let plan = Arc::new(integ::plan::compile(&model, None, Path::new(".")).unwrap());
    let engine = Arc::new(Engine::new(plan, Secrets::default(), Options::default()).unwrap());
    let service = Service::new(vec![engine], store.clone());
    tokio::spawn(work(service.clone(), 2));
    tokio::spawn(integ::serve::poll(service.clone()));
    tokio::spawn(keep_health(service.clone()));
    service
}

/// Waits for `done`, a minute at most (a loaded machine is slow, not stuck).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1200 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Lets `rounds` more searches happen, so that a duplicate would have had its chance.
async fn rounds_pass(crm: &Crm, rounds: usize) {
    let seen = crm.searches().len();
    until("more rounds", || crm.searches().len() >= seen + rounds).await;
}

fn position(store: &SqliteStore) -> Position {
    store.position("crm_sync", "poll 0").unwrap().unwrap()
}

fn delivered_once(crm: &Crm) -> HashMap<(i64, String), usize> {
    let mut counts = HashMap::new();
    for delivery in crm.delivered() {
        *counts.entry(delivery).or_insert(0) += 1;
    }
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered twice: {twice:?}");
    counts
}

fn has(crm: &Crm, id: i64, updated: &str) -> bool {
    crm.delivered().contains(&(id, updated.to_string()))
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_equal_to_the_mark_late_rows_and_changed_rows_are_each_delivered_once() {
    let crm = Crm::start().await;
    crm.put(1, "2020-06-01T10:00:01Z");
    crm.put(2, "2020-06-01T10:00:02Z");
    crm.put(3, "2020-06-01T10:00:02Z");
    crm.put(4, "2020-06-01T10:00:02Z");
    crm.put(5, "2020-06-01T10:00:03Z");
    let store = fresh_store("incremental-equal-late");
    let service = serve(&crm.spec(), &store);
    until("the first pass", || crm.delivered().len() == 5).await;
    // The first pass ends at its first page's largest time (what was there when it
    // began); the next, which knows all the first one saw, at the largest time seen.
    until("the mark at the largest time", || {
        position(&store).mark.as_deref() == Some("2020-06-01T10:00:03Z")
    })
    .await;
    // Stamped exactly the mark, committed after the pass (an exclusive bound skips it).
    crm.put(6, "2020-06-01T10:00:03Z");
    // Committed late with a time before the mark, within the look-back.
    crm.put(7, "2020-06-01T10:00:00Z");
    // Changed again: a new version, delivered again.
    crm.put(1, "2020-06-01T10:05:00Z");
    until("the new rows", || {
        has(&crm, 6, "2020-06-01T10:00:03Z")
            && has(&crm, 7, "2020-06-01T10:00:00Z")
            && has(&crm, 1, "2020-06-01T10:05:00Z")
    })
    .await;
    let asked = || -> Vec<String> {
        crm.searches()
            .iter()
            .map(|s| s["since"].as_str().unwrap().to_string())
            .collect()
    };
    until("a search from the newest time less a minute", || {
        asked().last().map(String::as_str) == Some("2020-06-01T10:04:00Z")
    })
    .await;
    rounds_pass(&crm, 3).await;
    service.shut_down();
    let counts = delivered_once(&crm);
    assert_eq!(counts.len(), 8, "{counts:?}");
    // Every search asked from the mark less the look-back, never from a clock reading.
    let asked = asked();
    assert_eq!(asked[0], "2020-05-31T23:59:00Z", "the start less a minute");
    assert!(asked.iter().all(|s| s.starts_with("2020-")), "{asked:?}");
    // The trigger's own retention: each key is kept 7 days from when it was seen.
    let db = rusqlite::Connection::open(store_path("incremental-equal-late")).unwrap();
    let kept: Vec<i64> = db
        .prepare("SELECT keep_until - seen_at FROM dedupe")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(kept.len(), 8);
    assert!(kept.iter().all(|k| *k == 7 * 24 * 3600), "{kept:?}");
}

fn store_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(name)
        .join("state.db")
}

/// The answers come newest first, so the first pages hold the largest times. A mark moved
/// with each page would have skipped the last page's rows when the round failed there and
/// a new process took over: the mark stays where the pass started until the pass ends.
#[tokio::test(flavor = "multi_thread")]
async fn a_pass_that_fails_after_page_2_resumes_at_page_3_from_the_mark_it_started_with() {
    let crm = Crm::start().await;
    crm.descending();
    for id in 1..=6 {
        crm.put(id, &format!("2020-06-01T10:00:0{id}Z"));
    }
    crm.fail_after(Some(3));
    let store = fresh_store("incremental-resume");
    let first = serve(&crm.spec(), &store);
    let mut error = String::new();
    until("page 3 to fail, twice, and say so", || {
        let health = store.triggers().unwrap();
        error = health
            .first()
            .and_then(|h| h.last_error.clone())
            .unwrap_or_default();
        crm.failures() >= 2 && !error.is_empty()
    })
    .await;
    let stuck = position(&store);
    assert_eq!(
        stuck,
        Position {
            page: Some("2020-06-01T10:00:03+00:00|3".into()),
            mark: Some(START.into()),
            high: Some("2020-06-01T10:00:06Z".into()),
            known: Some("2020-06-01T10:00:06Z".into()),
        },
        "pages 1 and 2 committed with the next page; the mark has not moved"
    );
    let delivered: Vec<i64> = crm.delivered().iter().map(|(id, _)| *id).collect();
    assert!(delivered.iter().all(|id| *id >= 3), "{delivered:?}");
    assert!(error.contains("400"), "{error}");
    first.shut_down();

    // Another process, the API back.
    crm.fail_after(None);
    let second = serve(&crm.spec(), &store);
    until("the rest of the pass", || crm.delivered().len() >= 6).await;
    rounds_pass(&crm, 3).await;
    second.shut_down();
    assert_eq!(delivered_once(&crm).len(), 6);
    let resumed = &crm.searches()[crm.searches().len() - 4..];
    assert!(
        crm.searches()
            .iter()
            .any(|s| s["after"] == "2020-06-01T10:00:03+00:00|3"
                && s["since"] == "2020-05-31T23:59:00Z"),
        "the pass went on from page 3 with its own mark: {resumed:?}"
    );
    assert_eq!(
        position(&store).mark.as_deref(),
        Some("2020-06-01T10:00:06Z")
    );
}

/// A pass that lasts: its first page read, it fails at its second, round after round.
/// Meanwhile a row is committed late behind its cursor (3 s before the newest row then,
/// within the minute of look-back) and a new row comes, 5 minutes later. The pass's largest
/// time was not there when the pass began: a mark moved to it made every later pass ask
/// from past the late row, skipped for good (the flake of `tests/crash.rs`'s
/// `sigkill_while_polling_incrementally…`, whose first pass chased new rows for longer
/// than the look-back). The mark moves only as far as what was there when the pass began.
#[tokio::test(flavor = "multi_thread")]
async fn a_row_committed_late_behind_a_long_pass_is_asked_for_by_the_next_pass() {
    let crm = Crm::start().await;
    for id in 1..=4 {
        crm.put(id, &format!("2020-06-01T10:00:0{id}Z"));
    }
    crm.fail_after(Some(2));
    let store = fresh_store("incremental-long-pass");
    let service = serve(&crm.spec(), &store);
    until("page 2 to fail", || crm.failures() >= 1).await;
    crm.put(1000, "2020-06-01T10:00:01Z");
    crm.put(5, "2020-06-01T10:05:00Z");
    crm.fail_after(None);
    until("the late row", || has(&crm, 1000, "2020-06-01T10:00:01Z")).await;
    rounds_pass(&crm, 3).await;
    service.shut_down();
    assert_eq!(delivered_once(&crm).len(), 6);
}

/// A row whose mark is not a time is still delivered; it does not move the
/// mark, and the trigger says how many and why.
#[tokio::test(flavor = "multi_thread")]
async fn an_item_without_a_readable_mark_is_delivered_and_the_trigger_says_so() {
    let crm = Crm::start().await;
    crm.put(1, "2020-06-01T10:00:01Z");
    crm.put(2, "last tuesday");
    crm.put_row(serde_json::json!({ "id": 3, "updated": 1591005601 }));
    let store = fresh_store("incremental-unreadable");
    let service = serve(&crm.spec(), &store);
    until("every row", || crm.delivered().len() == 3).await;
    let mut error = String::new();
    until("the trigger's error", || {
        let health = store.triggers().unwrap();
        error = health
            .first()
            .and_then(|h| h.last_error.clone())
            .unwrap_or_default();
        error.contains("without a readable mark")
    })
    .await;
    // The rows without a time sort first: the first pass knows of no time there when it
    // began, the next one does (row 1's).
    until("the mark at row 1's time", || {
        position(&store).mark.as_deref() == Some("2020-06-01T10:00:01Z")
    })
    .await;
    rounds_pass(&crm, 2).await;
    service.shut_down();
    assert!(error.contains("is not an RFC 3339 time"), "{error}");
    assert_eq!(
        position(&store).mark.as_deref(),
        Some("2020-06-01T10:00:01Z"),
        "the unreadable rows did not move it"
    );
    assert_eq!(delivered_once(&crm).len(), 3);
}
