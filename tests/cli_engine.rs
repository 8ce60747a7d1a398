//! `integ run` and `integ test` through the built binary, against servers on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod common;

use common::{integ, text, workdir};
use integ::mock::{MockResponse, MockServer, Route};
use serde_json::json;
use std::path::Path;
use std::process::{Command, Output};

const SPEC: &str = r#"integration notes {
  connection api { base_url env("NOTES_API_URL", "https://notes.example.com") auth bearer secret("NOTES_TOKEN") }
  trigger manual
  step contact = api GET "/contacts/{{ event.id }}"
  step note = api POST "/notes" { idempotency_key "note-{{ event.id }}" body { email = $contact.email } }
  test "a note is written for the contact" {
    event { id: 9 }
    mock api GET "/contacts/9" 200 { email: "ada@example.com" }
    mock api POST "/notes" 201 { id: 1 }
    expect api POST "/notes" where $.email == "ada@example.com" times 1
    expect step note succeeded
  }
}
"#;

#[test]
fn the_example_specs_pass_their_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = integ(&["test", "specs/"], root, &[]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let stderr = text(&output.stderr);
    assert!(stderr.trim_end().ends_with(" passed, 0 failed"), "{stderr}");
    assert!(
        text(&output.stdout).contains("✓ specs/hubspot_to_outreach.integ › a new lead is enrolled")
    );
}

#[test]
fn a_failing_test_exits_one_and_says_what_it_received() {
    let dir = workdir("failing-test");
    std::fs::write(
        dir.join("notes.integ"),
        SPEC.replace("ada@example.com\" times 1", "bob@example.com\" times 1"),
    )
    .unwrap();
    let output = integ(&["test", "--format", "json", "notes.integ"], &dir, &[]);
    assert_eq!(output.status.code(), Some(1));
    let record: serde_json::Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
    assert_eq!(record["passed"], false);
    let failure = record["failures"][0].as_str().unwrap();
    assert!(
        failure.starts_with(
            "expected api POST /notes matching its `where` 1 time(s); it was 0 time(s)"
        ),
        "{failure}"
    );
    assert!(
        failure.contains(r#"received POST /notes {"email":"ada@example.com"}"#),
        "{failure}"
    );
}

#[test]
fn a_dry_run_prints_requests_and_needs_no_secrets() {
    let dir = workdir("dry-run");
    std::fs::write(dir.join("notes.integ"), SPEC).unwrap();
    std::fs::write(dir.join("event.json"), r#"{"id": 9}"#).unwrap();
    let output = integ(
        &["run", "notes.integ", "--input", "event.json", "--dry-run"],
        &dir,
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let out = text(&output.stdout);
    assert!(
        out.contains("GET https://notes.example.com/contacts/9"),
        "{out}"
    );
    assert!(
        out.contains("POST https://notes.example.com/notes"),
        "{out}"
    );
    assert!(out.contains("Idempotency-Key: note-9"), "{out}");
    // The later step's body comes from the spec's mock of the first step's response, and
    // each made-up response says where it came from.
    assert!(out.contains(r#"{"email":"ada@example.com"}"#), "{out}");
    assert!(
        out.contains(
            r#"← invented: 200 from the mock in test "a note is written for the contact""#
        ),
        "{out}"
    );
    assert!(out.contains("Content-Type: application/json"), "{out}");
}

#[test]
fn a_dry_run_that_misses_a_value_exits_one() {
    let dir = workdir("dry-run-missing");
    std::fs::write(dir.join("notes.integ"), SPEC).unwrap();
    let output = integ(&["run", "notes.integ", "--dry-run"], &dir, &[]);
    let out = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(out.contains("event.id"), "{out}");
}

#[test]
fn a_test_whose_step_fails_fails_unless_it_declares_the_outcome() {
    let dir = workdir("undeclared-failure");
    // Without the mock of the note, its POST gets a 404 and the step dead-letters, though
    // the request the test expects was sent.
    let spec = SPEC
        .replace("    mock api POST \"/notes\" 201 { id: 1 }\n", "")
        .replace("    expect step note succeeded\n", "");
    std::fs::write(dir.join("notes.integ"), &spec).unwrap();
    let output = integ(&["test", "notes.integ"], &dir, &[]);
    let out = text(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{out}");
    assert!(
        out.contains("step `note` dead_lettered: status 404"),
        "{out}"
    );
    // Declared, the same outcome passes, once the failure is mocked: a request that no mock
    // answers fails the test whatever the outcomes declared.
    let declared = spec.replace(
        "times 1\n",
        "times 1\n    mock api POST \"/notes\" 422 { error: \"invalid\" }\n    expect step note dead_lettered\n",
    );
    std::fs::write(dir.join("notes.integ"), declared).unwrap();
    let output = integ(&["test", "notes.integ"], &dir, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
}

#[test]
fn lint_and_test_of_a_folder_without_specs_exit_two() {
    let dir = workdir("no-specs");
    std::fs::create_dir_all(dir.join("empty")).unwrap();
    for command in ["lint", "test"] {
        let output = integ(&[command, "empty"], &dir, &[]);
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert_eq!(
            text(&output.stderr),
            "error: no .integ files found in `empty`\n",
            "{command}"
        );
    }
}

#[test]
fn a_run_without_its_secrets_exits_two_naming_them() {
    let dir = workdir("no-secrets");
    std::fs::write(dir.join("notes.integ"), SPEC).unwrap();
    let output = integ(&["run", "notes.integ"], &dir, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output.stderr).contains("secret `NOTES_TOKEN` is not set"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn a_spec_with_errors_does_not_run() {
    let dir = workdir("broken-run");
    std::fs::write(
        dir.join("broken.integ"),
        "integration x { trigger manual step s = nowhere GET \"/\" }",
    )
    .unwrap();
    let output = integ(&["run", "broken.integ", "--dry-run"], &dir, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output.stderr).contains("unknown connection `nowhere`"));
}

/// `a[4000000000] = 1` once linted clean and aborted even a dry run on a 128 GB allocation.
#[test]
fn a_huge_body_list_index_is_refused_by_lint_and_never_allocated() {
    let dir = workdir("huge-index");
    std::fs::write(
        dir.join("huge.integ"),
        "integration huge {\n  connection api { base_url \"https://api.example.com\" }\n  trigger manual\n  step s = api POST \"/x\" { body { a[4000000000] = 1 } }\n}\n",
    )
    .unwrap();
    let lint = integ(&["lint", "huge.integ"], &dir, &[]);
    assert_eq!(lint.status.code(), Some(1), "{}", text(&lint.stdout));
    assert!(
        text(&lint.stdout).contains("E208"),
        "{}",
        text(&lint.stdout)
    );
    let run = integ(&["run", "huge.integ", "--dry-run"], &dir, &[]);
    assert_eq!(run.status.code(), Some(2), "{}", text(&run.stderr));
}

/// `"{{ event.id }}}}"` is `{{ event.id }}` then the text `}}`: lint read it so, but the plan
/// compiled it as one typed expression and `integ run` refused a spec lint had passed.
#[test]
fn a_template_lint_passes_compiles_for_run() {
    let dir = workdir("braces");
    std::fs::write(
        dir.join("braces.integ"),
        "integration braces {\n  connection api { base_url \"https://api.example.com\" }\n  trigger manual\n  step s = api POST \"/x\" { idempotency_key \"k\" body { a = \"{{ event.id }}}}\" } }\n}\n",
    )
    .unwrap();
    std::fs::write(dir.join("event.json"), r#"{"id": 3}"#).unwrap();
    let lint = integ(&["lint", "braces.integ"], &dir, &[]);
    assert_eq!(lint.status.code(), Some(0), "{}", text(&lint.stdout));
    let run = integ(
        &["run", "braces.integ", "--input", "event.json", "--dry-run"],
        &dir,
        &[],
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stderr));
    assert!(
        text(&run.stdout).contains(r#"{"a":"3}}"}"#),
        "{}",
        text(&run.stdout)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_run_calls_the_api_and_reports_json() {
    let api = MockServer::start(vec![
        Route {
            method: "GET".into(),
            path: "/contacts/9".into(),
            responses: vec![MockResponse::json(200, json!({"email": "ada@example.com"}))],
        },
        Route {
            method: "POST".into(),
            path: "/notes".into(),
            responses: vec![MockResponse::json(201, json!({"id": 1}))],
        },
    ])
    .await
    .unwrap();
    let dir = workdir("real-run");
    // A run reads neither the webhook's signing secret, nor the credentials of a connection
    // only a poll uses, nor the test blocks' fixtures: it resolves only what it uses, so
    // none of them needs to be there.
    let spec = SPEC
        .replace(
            "trigger manual",
            r#"trigger webhook "/hooks/notes" { signature github secret("NOTES_HOOK_SECRET") }
  connection source { base_url "https://source.example.com" auth bearer secret("SOURCE_TOKEN") }
  trigger poll source GET "/notes" { every 1m items $.notes[*] dedupe $.id }"#,
        )
        .replace(
            r#"test "a note"#,
            r#"test "from a fixture" { event file("fixtures/absent.json") }
  test "a note"#,
        );
    std::fs::write(dir.join("notes.integ"), spec).unwrap();
    std::fs::write(dir.join("secrets.env"), "NOTES_TOKEN=tok-from-file\n").unwrap();
    let url = api.url();
    let output = tokio::task::spawn_blocking(move || {
        let args = [
            "run",
            "notes.integ",
            "--input",
            "-",
            "--secrets",
            "secrets.env",
            "--format",
            "json",
        ];
        let mut child = Command::new(env!("CARGO_BIN_EXE_integ"))
            .args(args)
            .current_dir(&dir)
            .env("NOTES_API_URL", url)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(br#"{"id": 9}"#)
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let report: serde_json::Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["steps"][1]["requests"][0]["status"], 201);
    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer tok-from-file")
    );
    assert_eq!(requests[1].body, json!({"email": "ada@example.com"}));
    assert!(!text(&output.stdout).contains("tok-from-file"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dead_lettered_event_is_kept_with_its_context_and_no_secrets() {
    let canary = "CANARY-dead-letter-7731";
    let api = MockServer::start(vec![
        Route {
            method: "GET".into(),
            path: "/contacts/9".into(),
            responses: vec![MockResponse::json(200, json!({"email": "ada@example.com"}))],
        },
        Route {
            method: "POST".into(),
            path: "/notes".into(),
            responses: vec![MockResponse::json(
                422,
                json!({"error": "email already noted", "token": canary}),
            )],
        },
    ])
    .await
    .unwrap();
    let dir = workdir("dead-letter");
    std::fs::write(dir.join("notes.integ"), SPEC).unwrap();
    std::fs::write(
        dir.join("event.json"),
        format!(r#"{{"id": 9, "note": "{canary}"}}"#),
    )
    .unwrap();
    let url = api.url();
    let run_dir = dir.clone();
    let output = tokio::task::spawn_blocking(move || {
        let args = [
            "run",
            "notes.integ",
            "--input",
            "event.json",
            "--state",
            "state/integ.db",
        ];
        integ(
            &args,
            &run_dir,
            &[("NOTES_API_URL", url.as_str()), ("NOTES_TOKEN", canary)],
        )
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output.stderr).contains("dead letter #1 kept in state/integ.db"),
        "{}",
        text(&output.stderr)
    );
    let store = integ::store::SqliteStore::open(&dir.join("state/integ.db")).unwrap();
    let letters = integ::store::Records::dead_letters(&store).unwrap();
    let (id, letter) = &letters[0];
    assert_eq!(*id, 1);
    assert_eq!(
        (letter.integration.as_str(), letter.step.as_str()),
        ("notes", "note")
    );
    assert_eq!(letter.status, Some(422));
    assert_eq!(letter.attempts, 1);
    assert!(letter.error.contains("email already noted"), "{letter:?}");
    assert_eq!(letter.requests, [format!("POST {}/notes", api.url())]);
    assert_eq!(letter.event["id"], 9);
    let stored = format!("{letter:?}");
    assert!(!stored.contains(canary), "{stored}");
    assert!(!text(&output.stdout).contains(canary) && !text(&output.stderr).contains(canary));
    drop(store);

    // The operations commands read the same file.
    let state = ["--state", "state/integ.db", "--format", "json"];
    let listed = integ(&[&["dlq", "list"][..], &state[..]].concat(), &dir, &[]);
    assert_eq!(listed.status.code(), Some(0));
    let record: serde_json::Value = serde_json::from_str(text(&listed.stdout).trim()).unwrap();
    assert_eq!(
        (
            record["id"].as_i64(),
            record["step"].as_str(),
            record["status"].as_u64()
        ),
        (Some(1), Some("note"), Some(422))
    );
    let human = integ(&["dlq", "list", "--state", "state/integ.db"], &dir, &[]);
    let lines: Vec<String> = text(&human.stdout).lines().map(String::from).collect();
    assert_eq!(lines.len(), 1, "one line per dead letter: {lines:?}");
    assert!(lines[0].starts_with("#1  20"), "with its time: {lines:?}");
    assert!(
        lines[0].contains("  notes  step note  status 422  status 422: "),
        "{lines:?}"
    );
    assert_eq!(
        integ(&[&["dlq", "show", "1"][..], &state[..]].concat(), &dir, &[])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        integ(&[&["dlq", "show", "9"][..], &state[..]].concat(), &dir, &[])
            .status
            .code(),
        Some(1)
    );
    let replayed = integ(
        &[&["dlq", "replay", "1"][..], &state[..]].concat(),
        &dir,
        &[],
    );
    assert_eq!(
        text(&replayed.stdout).trim(),
        r#"{"missing":[],"replayed":[1]}"#
    );
    let empty = integ(&[&["dlq", "list"][..], &state[..]].concat(), &dir, &[]);
    assert_eq!(text(&empty.stdout), "");
    let runs = integ(
        &[
            "runs",
            "--failed",
            "--state",
            "state/integ.db",
            "--format",
            "json",
        ],
        &dir,
        &[],
    );
    let run: serde_json::Value = serde_json::from_str(text(&runs.stdout).trim()).unwrap();
    assert_eq!(
        (run["integration"].as_str(), run["outcome"].as_str()),
        (Some("notes"), Some("dead_lettered"))
    );
    assert_eq!(run["attempts"], 2, "one GET, one POST");
    assert_eq!((run["id"].as_i64(), run["event"].as_i64()), (Some(1), None));
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .starts_with("note: status 422"),
        "{run}"
    );
    let other = integ(
        &[
            "runs",
            "--integration",
            "other",
            "--state",
            "state/integ.db",
        ],
        &dir,
        &[],
    );
    assert_eq!(text(&other.stdout), "");
    let recent = [
        "runs",
        "--since",
        "1h",
        "--limit",
        "1",
        "--state",
        "state/integ.db",
    ];
    let recent = text(&integ(&recent, &dir, &[]).stdout);
    assert!(
        recent.starts_with("#1  20") && recent.contains("  notes  dead_lettered"),
        "{recent}"
    );
    let future = ["runs", "--since", "2999-01-01", "--state", "state/integ.db"];
    assert_eq!(text(&integ(&future, &dir, &[]).stdout), "");
    for bad in [["--since", ""], ["--limit", "0"]] {
        let args = [&["runs"][..], &bad[..], &["--state", "state/integ.db"][..]].concat();
        assert_eq!(integ(&args, &dir, &[]).status.code(), Some(2), "{bad:?}");
    }
    let store = integ::store::SqliteStore::open(&dir.join("state/integ.db")).unwrap();
    let back = common::claim(&store, 1, &["notes"]).await.remove(0);
    assert_eq!(
        (back.integration.as_str(), &back.event["id"]),
        ("notes", &json!(9)),
        "replayed into the inbox"
    );
}

/// Runs `integ` with `args` in `dir`; kills it after `limit` (then the code is `None`).
fn integ_within(
    args: &[&str],
    dir: &Path,
    env: &[(&str, &str)],
    limit: std::time::Duration,
) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_integ"));
    command
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() && started.elapsed() < limit {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    child.wait_with_output().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_told_to_wait_longer_than_its_largest_delay_fails_at_once_saying_so() {
    for (name, asked) in [
        ("Retry-After", "100000"),
        ("Retry-After", "18446744073709551615"),
        ("X-RateLimit-Reset", "99999999999"),
    ] {
        let api = MockServer::start(vec![Route {
            method: "GET".into(),
            path: "/things".into(),
            responses: vec![MockResponse::json(429, json!({})).with_header(name, asked)],
        }])
        .await
        .unwrap();
        let dir = workdir("run-retry-after");
        let spec = r#"integration limited {
  connection api { base_url env("API_URL") }
  trigger manual
  step things = api GET "/things" { retry 3 constant 1s }
}
"#;
        std::fs::write(dir.join("limited.integ"), spec).unwrap();
        let url = api.url();
        // What an `integ serve` left running by another test (a failed one, or another
        // checkout's) sends to the port its sink had, which this mock may have now.
        integ::engine::install_crypto_provider();
        let stray = reqwest::Client::new().post(format!("{url}/report")).send();
        stray.await.unwrap();
        let output = tokio::task::spawn_blocking(move || {
            let args = ["run", "limited.integ", "--format", "json"];
            integ_within(
                &args,
                &dir,
                &[("API_URL", &url)],
                std::time::Duration::from_secs(20),
            )
        })
        .await
        .unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{name}: {asked}: {}",
            text(&output.stderr)
        );
        let report: serde_json::Value = serde_json::from_str(text(&output.stdout).trim()).unwrap();
        let error = report["steps"][0]["error"].as_str().unwrap();
        assert!(
            error.contains("the API asked to wait") && error.contains("largest retry delay (1s)"),
            "{error}"
        );
        if name == "Retry-After" {
            assert!(error.contains(&format!("{asked}s")), "{error}");
        }
        // Only this run's requests count: the port is the machine's, not this test's.
        // Only this run's requests count: the port is the machine's, not this test's.
        let asked_things = api
            .requests()
            .iter()
            .filter(|r| r.path == "/things")
            .count();
        assert_eq!(asked_things, 1, "{name}: {asked}");
    }
}

/// The HubSpot example's poll yields contacts (`id`), not webhook events (`objectId`): a
/// polled contact, as HubSpot's list call returns it, runs through every step. The example's
/// URLs are pointed at the stand-in with `env(...)` alone, without editing the spec.
#[tokio::test(flavor = "multi_thread")]
async fn a_polled_hubspot_contact_becomes_an_enrolled_prospect() {
    let contact = json!({
        "id": "512",
        "properties": {"email": "bcooper@biglytics.net", "firstname": "Bryan",
                       "lastname": "Cooper", "company": "Biglytics", "lifecyclestage": "lead"}
    });
    let api = MockServer::start(vec![
        Route {
            method: "GET".into(),
            path: "/crm/v3/objects/contacts/512".into(),
            responses: vec![MockResponse::json(200, contact)],
        },
        Route {
            method: "POST".into(),
            path: "/oauth/token".into(),
            responses: vec![MockResponse::json(
                200,
                json!({"access_token": "at-1", "token_type": "bearer", "expires_in": 7200}),
            )],
        },
        Route {
            method: "POST".into(),
            path: "/api/v2/prospects".into(),
            responses: vec![MockResponse::json(201, json!({"data": {"id": 7}}))],
        },
        Route {
            method: "POST".into(),
            path: "/api/v2/sequenceStates".into(),
            responses: vec![MockResponse::json(201, json!({"data": {"id": 3}}))],
        },
    ])
    .await
    .unwrap();
    let dir = workdir("hubspot-poll");
    std::fs::write(
        dir.join("secrets.env"),
        "HUBSPOT_TOKEN=t\nOUTREACH_CLIENT_ID=c\nOUTREACH_CLIENT_SECRET=s\nOUTREACH_REFRESH_TOKEN=r\n",
    )
    .unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let spec = root.join("specs/hubspot_to_outreach.integ");
    let input = root.join("specs/fixtures/hubspot-contact-polled.json");
    let url = api.url();
    let (outreach, token) = (format!("{url}/api/v2"), format!("{url}/oauth/token"));
    let output = tokio::task::spawn_blocking(move || {
        integ(
            &[
                "run",
                spec.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--secrets",
                "secrets.env",
                "--format",
                "json",
            ],
            &dir,
            &[
                ("HUBSPOT_URL", url.as_str()),
                ("OUTREACH_API_URL", outreach.as_str()),
                ("OUTREACH_TOKEN_URL", token.as_str()),
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stdout));
    let requests = api.requests();
    let prospect = requests
        .iter()
        .find(|r| r.path == "/api/v2/prospects")
        .expect("a prospect is created");
    assert_eq!(
        prospect.body["data"]["attributes"]["emails"],
        json!(["bcooper@biglytics.net"])
    );
    assert!(requests.iter().any(|r| r.path == "/api/v2/sequenceStates"));
}
