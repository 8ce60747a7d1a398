//! Schedule policies through the real `integ serve`, over a real SQLite file: overlap (a tick
//! during a run is skipped and recorded, waits, or runs beside it) and missed runs across a
//! SIGKILL and a restart (none, the latest, or all within a window made up), each made-up
//! run with the time of its occurrence.

#![allow(clippy::unwrap_used)]

mod common;

use common::serving::Serving;
use common::{integ, text, workdir};
use integ::mock::{MockResponse, MockServer, Route};
use serde_json::{Value as Json, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// A sink that answers each report after `delay`.
async fn sink(delay: Duration) -> MockServer {
    MockServer::start(vec![Route {
        method: "POST".into(),
        path: "/report".into(),
        responses: vec![MockResponse::json(200, json!({"ok": true})).after(delay)],
    }])
    .await
    .unwrap()
}

/// A folder holding `report.integ`: schedule `cron` with `policies`, each run posting its
/// occurrence to `sink`.
fn report_dir(name: &str, sink: &MockServer, cron: &str, policies: &str) -> std::path::PathBuf {
    let dir = workdir(name);
    let spec = format!(
        r#"integration report {{
  connection sink {{ base_url "{}" auth none }}
  trigger schedule "{cron}" {{
    {policies}
    event {{ kind: "report" }}
  }}
  step post = sink POST "/report" {{
    idempotency_key "report-{{{{ event.scheduled_at }}}}"
    body {{ at = $.scheduled_at }}
  }}
}}"#,
        sink.url()
    );
    std::fs::write(dir.join("report.integ"), spec).unwrap();
    dir
}

/// `integ serve` in `dir`, once it answers (its state file is open and migrated then:
/// `integ runs` may read it).
async fn serve(dir: &Path) -> Serving {
    let args = ["report.integ", "--state", "state.db", "--workers", "4"];
    Serving::start(dir, &args).await
}

/// Waits (a minute at most: it does not hang) for `done`.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what}: not within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The occurrence each report was for, in Unix seconds, in the order they arrived.
fn reported(sink: &MockServer) -> Vec<i64> {
    sink.requests()
        .iter()
        .map(|r| {
            let at = r.body["at"].as_str().unwrap();
            chrono::DateTime::parse_from_rfc3339(at)
                .unwrap()
                .timestamp()
        })
        .collect()
}

/// `integ runs --format json` of the folder's state.
fn runs(dir: &Path) -> Vec<Json> {
    if !dir.join("state.db").exists() {
        return Vec::new();
    }
    let output = integ(
        &["runs", "--state", "state.db", "--format", "json"],
        dir,
        &[],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The reasons of the skipped runs.
fn skips(dir: &Path) -> Vec<String> {
    runs(dir)
        .iter()
        .filter(|run| run["outcome"] == "skipped")
        .map(|run| run["reason"].as_str().unwrap().to_string())
        .collect()
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_a_tick_during_a_run_is_skipped_and_shown_in_integ_runs() {
    // Each run takes 2.5 s, the schedule ticks every second: before the policy, runs
    // piled up three at a time.
    let sink = sink(Duration::from_millis(2_500)).await;
    let dir = report_dir("schedule-overlap-skip", &sink, "* * * * * *", "");
    let mut child = serve(&dir).await;
    until("three reports", || sink.requests().len() >= 3).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let requests = sink.requests();
    for pair in requests.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(2_400),
            "a run started {gap:?} after the one before, which took 2.5 s"
        );
    }
    let skipped = skips(&dir);
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("is pending or running") && s.contains("`overlap skip`")),
        "{skipped:?}"
    );
    let output = integ(&["runs", "--state", "state.db"], &dir, &[]);
    assert!(
        text(&output.stdout).contains("skipped"),
        "{}",
        text(&output.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn overlap_allow_runs_beside_the_run_in_progress() {
    let sink = sink(Duration::from_millis(2_500)).await;
    let dir = report_dir(
        "schedule-overlap-allow",
        &sink,
        "* * * * * *",
        "overlap allow",
    );
    let mut child = serve(&dir).await;
    until("four reports", || sink.requests().len() >= 4).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let skipped = skips(&dir);
    assert!(
        !skipped.iter().any(|s| s.contains("pending or running")),
        "{skipped:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn overlap_queue_keeps_one_occurrence_waiting_and_it_survives_a_sigkill() {
    // Runs of 6 s, a tick a second: killed while one occurrence waits, well before the
    // run it waits for ends.
    let sink = sink(Duration::from_secs(6)).await;
    let dir = report_dir(
        "schedule-overlap-queue",
        &sink,
        "* * * * * *",
        "overlap queue",
    );
    let mut child = serve(&dir).await;
    until("an occurrence waiting", || waiting(&dir).len() == 1).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let waiting = waiting(&dir);
    assert_eq!(waiting.len(), 1, "one occurrence waits, no more");
    let mut child = serve(&dir).await;
    // The run killed runs again first (6 s), then the one waiting.
    until("the waiting occurrence reported after the restart", || {
        reported(&sink).contains(&waiting[0])
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let skipped = skips(&dir);
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("`overlap queue` keeps one occurrence waiting")),
        "{skipped:?}"
    );
}

/// The occurrences waiting, as the state file holds them.
fn waiting(dir: &Path) -> Vec<i64> {
    let Ok(state) = rusqlite::Connection::open(dir.join("state.db")) else {
        return Vec::new();
    };
    let waiting: Option<String> = state
        .query_row("SELECT waiting FROM schedules", [], |row| row.get(0))
        .ok();
    waiting.map_or_else(Vec::new, |w| serde_json::from_str(&w).unwrap())
}

/// A daily schedule of three occurrences (seconds 0, 20 and 40 of one minute) that all fell
/// three minutes ago or more, with the state file holding the first as the last handled: what
/// a process SIGKILLed after its run leaves. The two others fell while no process served, long
/// enough before the restart not to be on time: the restart handles them by `missed`. No clock
/// is raced: every time is in the past before the process starts. Answers the reports and the
/// skipped runs' reasons once the restarted process handled them, and the three occurrences.
async fn three_occurrences_two_while_down(
    name: &str,
    missed: &str,
) -> (Vec<i64>, Vec<String>, [i64; 3]) {
    let sink = sink(Duration::ZERO).await;
    let minute = (now() / 60 - 3) * 60;
    let times = [minute, minute + 20, minute + 40];
    let cron = format!("0,20,40 {} * * *", hour_minute(minute));
    let dir = report_dir(name, &sink, &cron, missed);
    handled(&dir, &cron, times[0]);
    let mut child = serve(&dir).await;
    // The restart handles them at once: made up, or recorded as skipped.
    until("the missed occurrences handled", || {
        last_handled(&dir) == Some(times[2])
    })
    .await;
    // Whatever is made up is enqueued in that write: wait for its delivery, or a second.
    let expected = match missed {
        "missed latest" => 1,
        m if m.starts_with("missed all") => 2,
        _ => 0,
    };
    until("the made-up reports", || sink.requests().len() >= expected).await;
    // They were enqueued in that write: once none is left to run, none more comes.
    until("every run enqueued ended", || unfinished(&dir) == 0).await;
    child.kill().unwrap();
    child.wait().unwrap();
    (reported(&sink), skips(&dir), times)
}

/// Events of the state file's inbox still to run, or running.
fn unfinished(dir: &Path) -> i64 {
    let state = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    state
        .query_row(
            "SELECT count(*) FROM inbox WHERE status IN ('pending', 'running')",
            [],
            |row| row.get(0),
        )
        .unwrap()
}

/// The cron fields `MINUTE HOUR` (UTC) of the minute at Unix seconds `at`.
fn hour_minute(at: i64) -> String {
    let at = chrono::DateTime::from_timestamp(at, 0).unwrap();
    at.format("%-M %-H").to_string()
}

/// Writes in `dir`'s state file (creating it) what a process leaves once it handled the
/// occurrence at `at` of the first schedule, `cron` in UTC, and its run ended.
fn handled(dir: &Path, cron: &str, at: i64) {
    drop(integ::store::SqliteStore::open(&dir.join("state.db")).unwrap());
    let state = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    state
        .execute(
            "INSERT INTO schedules (integration, trigger, schedule, occurrence, event, waiting)
             VALUES ('report', 'schedule 0', ?1, ?2, NULL, '[]')",
            rusqlite::params![format!("{cron} UTC"), at],
        )
        .unwrap();
}

/// The last occurrence handled, as the state file holds it.
fn last_handled(dir: &Path) -> Option<i64> {
    let state = rusqlite::Connection::open(dir.join("state.db")).ok()?;
    state
        .query_row("SELECT occurrence FROM schedules", [], |row| row.get(0))
        .ok()
}

#[tokio::test(flavor = "multi_thread")]
async fn missed_occurrences_are_skipped_by_default_across_a_sigkill_and_said_so() {
    let (reported, skipped, _) = three_occurrences_two_while_down("schedule-missed-skip", "").await;
    assert_eq!(reported, Vec::<i64>::new(), "nothing made up");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(
        skipped[0].contains("2 occurrence(s) missed while no process served the schedule"),
        "{skipped:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn missed_latest_makes_up_the_latest_once_across_a_sigkill() {
    let (reported, skipped, times) =
        three_occurrences_two_while_down("schedule-missed-latest", "missed latest").await;
    assert_eq!(reported, vec![times[2]], "the latest, with its own time");
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert!(skipped[0].starts_with("schedule `"), "{skipped:?}");
    assert!(skipped[0].contains("1 occurrence(s) missed"), "{skipped:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn missed_all_makes_up_each_within_the_window_across_a_sigkill() {
    let (reported, skipped, times) =
        three_occurrences_two_while_down("schedule-missed-all", "missed all within 1h max 5").await;
    assert_eq!(reported, times[1..], "each in turn, with its own time");
    assert!(skipped.is_empty(), "{skipped:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigkills_at_any_moment_neither_lose_nor_double_an_occurrence() {
    // Every occurrence is made up (within an hour), so every second from the first to the
    // last handled must be in the inbox exactly once, however the kills fall.
    let sink = sink(Duration::from_millis(20)).await;
    let dir = report_dir(
        "schedule-sigkills",
        &sink,
        "* * * * * *",
        "overlap allow\n    missed all within 1h max 100",
    );
    let mut rng = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..6 {
        let mut child = serve(&dir).await;
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        tokio::time::sleep(Duration::from_millis(1_200 + rng % 1_500)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        tokio::time::sleep(Duration::from_millis(rng % 700)).await;
    }
    let state = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    let last: i64 = state
        .query_row("SELECT occurrence FROM schedules", [], |row| row.get(0))
        .unwrap();
    let mut statement = state
        .prepare("SELECT json_extract(event, '$.scheduled_at') FROM inbox")
        .unwrap();
    let mut enqueued: Vec<i64> = statement
        .query_map([], |row| row.get::<_, String>(0))
        .unwrap()
        .map(|at| {
            chrono::DateTime::parse_from_rfc3339(&at.unwrap())
                .unwrap()
                .timestamp()
        })
        .collect();
    enqueued.sort_unstable();
    let first = enqueued[0];
    let every: Vec<i64> = (first..=last).collect();
    assert_eq!(
        enqueued, every,
        "each occurrence from the first to the last, once"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_cron_makes_up_nothing_of_the_old_one_and_fires_on_its_own() {
    // n8n (#23711): after a schedule was changed, its trigger dropped occurrences for good.
    // The mark of the old cron is not the new one's: nothing before the restart is missed.
    // Runs may overlap: the run the kill interrupted runs again after the restart, and a
    // tick meanwhile would be skipped under `overlap skip` (the default), which is not
    // what this test is about (under load, the rerun may well take a tick's time).
    let sink = sink(Duration::ZERO).await;
    let every = "overlap allow\n    missed all within 1h max 100";
    let dir = report_dir("schedule-changed", &sink, "* * * * * *", every);
    let mut child = serve(&dir).await;
    until("a report of the old cron", || !sink.requests().is_empty()).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = sink.requests().len();
    let spec = std::fs::read_to_string(dir.join("report.integ")).unwrap();
    let spec = spec.replace(r#""* * * * * *""#, r#""*/2 * * * * *""#);
    std::fs::write(dir.join("report.integ"), spec).unwrap();
    let restarted = now();
    let mut child = serve(&dir).await;
    until("two reports of the new cron", || {
        sink.requests().len() >= before + 2
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let new = &reported(&sink)[before..];
    assert!(
        // A run the kill interrupted runs again, with its old time.
        new.iter()
            .all(|at| *at <= killed || (*at >= restarted && at % 2 == 0)),
        "only occurrences of the new cron after the restart: {new:?} (killed at {killed}, \
         restarted at {restarted})"
    );
    assert!(skips(&dir).is_empty(), "{:?}", skips(&dir));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_a_sigkill_interrupted_still_holds_off_the_next_ticks_after_the_restart() {
    // The run in progress is the store's to know, not the process's: after a restart the
    // interrupted run runs again, and ticks that come meanwhile are skipped.
    let sink = sink(Duration::from_secs(4)).await;
    let dir = report_dir("schedule-overlap-restart", &sink, "* * * * * *", "");
    let mut child = serve(&dir).await;
    until("a run in progress", || !sink.requests().is_empty()).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let interrupted = reported(&sink)[0];
    let mut child = serve(&dir).await;
    until("the interrupted run and the next", || {
        sink.requests().len() >= 3
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let requests = sink.requests();
    assert_eq!(reported(&sink)[1], interrupted, "the interrupted run first");
    let gap = requests[2].at - requests[1].at;
    assert!(
        gap >= Duration::from_millis(3_900),
        "the next run started {gap:?} into the one before, which took 4 s"
    );
    assert!(
        skips(&dir)
            .iter()
            .any(|s| s.contains("is pending or running")),
        "{:?}",
        skips(&dir)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_occurrence_seconds_before_a_restart_runs_on_time_not_missed() {
    // A deploy at 09:00:03: the daily 09:00 report of that day runs, under the default
    // `missed skip` too (Quartz's misfire threshold). Yesterday's was the last handled.
    let sink = sink(Duration::ZERO).await;
    let at = now() - 2;
    let cron = format!("{} {} * * *", at % 60, hour_minute(at));
    let dir = report_dir("schedule-restart-grace", &sink, &cron, "");
    handled(&dir, &cron, at - 86_400);
    let mut child = serve(&dir).await;
    until("the occurrence handled", || last_handled(&dir) == Some(at)).await;
    until("its report or its skip", || {
        !sink.requests().is_empty() || !skips(&dir).is_empty()
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(reported(&sink), vec![at], "run with its own time");
    assert!(skips(&dir).is_empty(), "{:?}", skips(&dir));
}
