//! `--state` through the built binary: every command opens the state store the same way,
//! from a file path or a URL, and refuses a store it cannot open with the reason.

#![allow(clippy::unwrap_used)]

mod common;

use common::{integ, text, workdir};
use integ::mock::{MockResponse, MockServer, Route};
use integ::store::{self, DeadLetter, Location, RunRecord, TriggerHealth};
use serde_json::json;
use std::path::Path;
use std::process::Output;

/// The JSON lines a command printed, with the integration each names.
fn integrations(output: &Output) -> Vec<String> {
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .map(|record| record["integration"].as_str().unwrap().to_string())
        .collect()
}

/// A store at `state/integ.db` in `dir` with one run, one dead letter and one trigger.
fn filled_store(dir: &Path) {
    let store = store::open(&Location::Sqlite(dir.join("state/integ.db"))).unwrap();
    let run = RunRecord {
        integration: "demo".into(),
        outcome: "failed".into(),
        started_at: 1_700_000_000,
        duration_ms: 3,
        attempts: 1,
        retries: 0,
        rate_limited: 0,
        error: None,
        event: None,
        reason: None,
        ..RunRecord::default()
    };
    store.record_run(&run).unwrap();
    let letter = DeadLetter {
        integration: "demo".into(),
        step: "post".into(),
        event: json!({"id": 1}),
        requests: Vec::new(),
        status: Some(422),
        error: "no".into(),
        attempts: 1,
        failed_at: 1_700_000_000,
        ..DeadLetter::default()
    };
    store.dead_letter(&letter).unwrap();
    let trigger = TriggerHealth {
        integration: "demo".into(),
        trigger: "poll 0".into(),
        ..TriggerHealth::default()
    };
    store.save_triggers(&[trigger]).unwrap();
}

#[test]
fn the_commands_that_read_the_state_take_a_path_or_a_sqlite_url() {
    let dir = workdir("state-forms");
    filled_store(&dir);
    let absolute = format!("sqlite://{}", dir.join("state/integ.db").display());
    for state in [
        "state/integ.db",
        "sqlite:state/integ.db",
        "sqlite://state/integ.db",
        &absolute,
    ] {
        for command in [&["runs"][..], &["dlq", "list"], &["triggers"]] {
            let flags = ["--state", state, "--format", "json"];
            let output = integ(&[command, &flags[..]].concat(), &dir, &[]);
            assert_eq!(integrations(&output), ["demo"], "{command:?} {state}");
        }
    }
}

/// A reason is the record of why: one with nothing to read is refused (exit 2), and the
/// letter stays open; as is a replay or discard that names no letter and no `--all`.
#[test]
fn a_blank_reason_or_no_letter_is_refused_and_the_letter_stays_open() {
    let dir = workdir("state-blank-reason");
    filled_store(&dir);
    let state = ["--state", "state/integ.db"];
    let refused = [
        &["dlq", "discard", "1", "--reason", ""][..],
        &["dlq", "discard", "1", "--reason", "  \t "],
        &["dlq", "discard", "--all", "--reason", " "],
        &["dlq", "replay", "1", "--reason", " "],
        &["dlq", "discard", "--reason", "a test order"],
        &["dlq", "replay"],
    ];
    for args in refused {
        let output = integ(&[args, &state[..]].concat(), &dir, &[]);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let said = text(&output.stderr);
        assert!(
            said.contains("say why") || said.contains("<IDS>"),
            "{args:?}: {said}"
        );
    }
    let open = integ(
        &[&["dlq", "list", "--format", "json"][..], &state].concat(),
        &dir,
        &[],
    );
    assert_eq!(integrations(&open), ["demo"], "still open");
    let discard = ["dlq", "discard", "1", "--reason", " a test order "];
    let output = integ(
        &[&discard[..], &state, &["--format", "json"]].concat(),
        &dir,
        &[],
    );
    assert_eq!(
        text(&output.stdout).trim(),
        r#"{"discarded":[1],"missing":[]}"#
    );
    let all = ["dlq", "list", "--show", "all", "--format", "json"];
    let kept = integ(&[&all[..], &state].concat(), &dir, &[]);
    assert!(
        text(&kept.stdout).contains(r#""reason":"a test order""#),
        "{}",
        text(&kept.stdout)
    );
}

#[test]
fn a_missing_store_is_not_created_by_the_commands_that_read_it() {
    let dir = workdir("state-missing");
    for command in [&["runs"][..], &["dlq", "list"], &["triggers"]] {
        let flags = ["--state", "sqlite:nothing/here.db"];
        let output = integ(&[command, &flags[..]].concat(), &dir, &[]);
        assert_eq!(output.status.code(), Some(2), "{command:?}");
        assert!(
            text(&output.stderr).contains("no state store at `nothing/here.db`"),
            "{}",
            text(&output.stderr)
        );
    }
    assert!(!dir.join("nothing").exists());
}

#[test]
fn other_stores_are_refused_by_every_command_with_the_reason_and_no_password() {
    let dir = workdir("state-refused");
    std::fs::write(dir.join("ping.integ"), PING).unwrap();
    let password = "hunter2-state-url";
    let redis = format!("redis://:{password}@127.0.0.1:6379/0");
    let postgres = format!("postgres://integ:{password}@127.0.0.1/integ");
    let commands: [&[&str]; 5] = [
        &["runs"],
        &["dlq", "list"],
        &["triggers"],
        &["run", "ping.integ", "--dry-run"],
        &["serve", "ping.integ", "--listen", "127.0.0.1:0"],
    ];
    for command in commands {
        for (state, says) in [
            (redis.as_str(), "the `redis` store is not available yet"),
            (
                postgres.as_str(),
                "`postgres:` is not a kind of state store",
            ),
            ("sqlite:", "`sqlite:` needs the path of a file"),
            (
                "sqlite://state.db?mode=rwc",
                "a `sqlite:` URL is a path alone",
            ),
        ] {
            let output = integ(&[command, &["--state", state][..]].concat(), &dir, &[]);
            let stderr = text(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{command:?} {state}: {stderr}"
            );
            assert!(stderr.contains(says), "{command:?}: {stderr}");
            assert!(
                stderr.contains("--state takes a file path, `sqlite:PATH` or `sqlite://PATH`"),
                "{stderr}"
            );
            assert!(!stderr.contains(password), "{stderr}");
            assert!(!text(&output.stdout).contains(password));
        }
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        1,
        "nothing was created beside the spec"
    );
}

const PING: &str = r#"integration ping {
  connection api { base_url env("PING_URL", "https://ping.example.com") }
  trigger manual
  step ping = api GET "/ping"
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_run_keeps_its_record_in_the_store_a_sqlite_url_names() {
    let api = MockServer::start(vec![Route {
        method: "GET".into(),
        path: "/ping".into(),
        responses: vec![MockResponse::json(200, json!({"ok": true}))],
    }])
    .await
    .unwrap();
    let dir = workdir("state-run");
    std::fs::write(dir.join("ping.integ"), PING).unwrap();
    let url = api.url();
    let run_dir = dir.clone();
    let output = tokio::task::spawn_blocking(move || {
        let args = ["run", "ping.integ", "--state", "sqlite://kept/run.db"];
        integ(&args, &run_dir, &[("PING_URL", url.as_str())])
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let runs = integ(
        &["runs", "--state", "kept/run.db", "--format", "json"],
        &dir,
        &[],
    );
    assert_eq!(integrations(&runs), ["ping"]);
}
