//! Alerts under the real `integ serve`, against receivers the tests start (HTTP and SMTP, on
//! real sockets): fired once and re-armed only once cleared, resolved, a Slack 429 waited
//! out without a loop or a new alert, state kept across a SIGKILL (nothing sent twice,
//! nothing lost), the target URL redacted everywhere, and `integ run` and `integ test`
//! without the alerts' secrets.

#![allow(clippy::unwrap_used)]

mod common;

use common::alerting::{
    Serve, alert_rows, ok, received, receiver, route, rows_until, run_once, said, shop, sink,
    states, write_shop,
};
use common::{free_port, integ, text, workdir};
use integ::mock::{MockResponse, MockServer};
use serde_json::json;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_fires_once_re_arms_only_once_cleared_and_says_resolved() {
    let sink = sink().await;
    let receiver = receiver("/alert", vec![ok()]).await;
    let dir = shop(
        "alerts-fire-once",
        &sink,
        r#"  alert when dead_letters > 0 in 3s notify webhook secret("ALERT_URL")"#,
        &format!("ALERT_URL={}/alert\n", receiver.url()),
    );
    let serve = Serve::start(&dir, &["--admin-url", "http://admin.example"]).await;
    // Two dead letters in a row: one firing message, not one per dead letter or evaluation.
    serve.order(1).await;
    serve.order(2).await;
    let first = received(&receiver, 2).await;
    assert_eq!(states(&first), ["firing", "resolved"], "{first:?}");
    let firing = &first[0].body;
    assert_eq!(firing["integration"], "shop");
    assert_eq!(firing["metric"], "dead_letters");
    assert_eq!(
        (firing["operator"].as_str(), firing["threshold"].as_f64()),
        (Some(">"), Some(0.0))
    );
    assert_eq!(
        (firing["window"].as_str(), firing["window_seconds"].as_u64()),
        (Some("3s"), Some(3))
    );
    assert!(firing["value"].as_u64().unwrap() >= 1, "{firing}");
    assert_eq!(
        firing["runbook"],
        "docs/integrations/shop.md#rb-dead-letters"
    );
    assert_eq!(
        firing["runs_url"],
        "http://admin.example/runs?integration=shop"
    );
    assert_eq!(first[1].body["value"], 0);
    // Re-armed: the next dead letter fires again, and it clears again.
    serve.order(3).await;
    let all = received(&receiver, 4).await;
    assert_eq!(states(&all), ["firing", "resolved", "firing", "resolved"]);
    // Past the window and the messages' recording, nothing more is owed.
    rows_until(&dir, |rows| rows.iter().all(|r| r.notified == "ok")).await;
    serve.evaluated(4).await;
    assert_eq!(receiver.request_count(), 4, "{:?}", receiver.requests());
    serve.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slack_429_is_waited_out_sent_once_counted_nowhere_and_not_resent_at_restart() {
    let sink = sink().await;
    let limited = MockResponse::json(429, json!("rate_limited")).with_header("Retry-After", "1");
    let slack = receiver("/slack", vec![limited, ok()]).await;
    let ops = receiver("/ops", vec![ok()]).await;
    // Were a failed delivery counted as a rate-limited call or a retry, these would fire.
    let alerts = r#"  alert when dead_letters > 0 in 1h notify slack secret("SLACK_URL")
  alert when rate_limited > 0 in 1h notify webhook secret("OPS_URL")
  alert when retries > 0 in 1h notify webhook secret("OPS_URL")"#;
    let secrets = format!(
        "SLACK_URL={}/slack\nOPS_URL={}/ops\n",
        slack.url(),
        ops.url()
    );
    let dir = shop("alerts-slack-429", &sink, alerts, &secrets);
    let serve = Serve::start(&dir, &[]).await;
    serve.order(1).await;
    let posts = received(&slack, 2).await;
    assert!(
        posts[1].at.duration_since(posts[0].at) >= Duration::from_millis(900),
        "Retry-After was not waited for"
    );
    for post in &posts {
        let message = post.body["text"].as_str().unwrap();
        assert!(
            message.starts_with("[FIRING] shop: dead_letters > 0 in 1h (now 1)"),
            "{message}"
        );
        assert!(
            message.contains("docs/integrations/shop.md#rb-dead-letters"),
            "{message}"
        );
        // Without --admin-url, the run history is linked on the admin listener.
        let runs = format!("<{}/runs?integration=shop|Run history>", serve.0.admin);
        assert!(message.contains(&runs), "{message}");
    }
    let notified = |rows: &[common::alerting::Row]| {
        rows.iter()
            .any(|r| r.alert == "dead_letters/slack" && r.notified == "firing")
    };
    rows_until(&dir, notified).await;
    serve.evaluated(2).await;
    assert_eq!(
        slack.request_count(),
        2,
        "sent again: {:?}",
        slack.requests()
    );
    assert_eq!(ops.request_count(), 0, "{:?}", ops.requests());
    let firing = "integ_alerts_firing";
    let alert = |key| [("integration", "shop"), ("alert", key)];
    assert_eq!(
        serve.metric(firing, &alert("dead_letters/slack")).await,
        1.0
    );
    assert_eq!(
        serve.metric(firing, &alert("rate_limited/webhook")).await,
        0.0
    );
    let sent = "integ_alert_notifications_total";
    let result = |key, result| [("integration", "shop"), ("alert", key), ("result", result)];
    let dead_letters = "dead_letters/slack";
    assert_eq!(
        serve.metric(sent, &result(dead_letters, "error")).await,
        1.0
    );
    assert_eq!(serve.metric(sent, &result(dead_letters, "ok")).await, 1.0);
    assert_eq!(
        serve
            .metric(sent, &result("retries/webhook", "error"))
            .await,
        0.0
    );
    // A restart finds it notified: it is neither sent again nor resolved.
    serve.kill();
    let again = Serve::start(&dir, &[]).await;
    again.evaluated(2).await;
    assert_eq!(
        slack.request_count(),
        2,
        "sent again: {:?}",
        slack.requests()
    );
    assert_eq!(ops.request_count(), 0, "{:?}", ops.requests());
    again.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_alert_being_sent_when_the_process_is_killed_is_sent_after_the_restart() {
    let sink = sink().await;
    let slow = ok().after(Duration::from_secs(60));
    let receiver = receiver("/alert", vec![slow, ok()]).await;
    let dir = shop(
        "alerts-restart",
        &sink,
        r#"  alert when dead_letters > 0 in 1h notify webhook secret("ALERT_URL")"#,
        &format!("ALERT_URL={}/alert\n", receiver.url()),
    );
    let serve = Serve::start(&dir, &[]).await;
    serve.order(1).await;
    received(&receiver, 1).await;
    serve.kill();
    let again = Serve::start(&dir, &[]).await;
    let posts = received(&receiver, 2).await;
    assert_eq!(states(&posts), ["firing", "firing"]);
    rows_until(&dir, |rows| rows.iter().all(|r| r.notified == "firing")).await;
    again.evaluated(2).await;
    assert_eq!(receiver.request_count(), 2, "{:?}", receiver.requests());
    again.kill();
}

/// A message the channel took before a SIGTERM is recorded before the process exits: the
/// next start does not send it again (argoproj-labs/argocd-notifications#211).
#[tokio::test(flavor = "multi_thread")]
async fn an_alert_the_channel_took_during_the_shutdown_is_not_sent_again() {
    let sink = sink().await;
    let slow = ok().after(Duration::from_secs(3));
    let receiver = receiver("/alert", vec![slow, ok()]).await;
    let dir = shop(
        "alerts-shutdown",
        &sink,
        r#"  alert when dead_letters > 0 in 1h notify webhook secret("ALERT_URL")"#,
        &format!("ALERT_URL={}/alert\n", receiver.url()),
    );
    let mut serve = Serve::start(&dir, &[]).await;
    serve.order(1).await;
    received(&receiver, 1).await;
    serve.0.terminate();
    let started = Instant::now();
    while serve.0.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "no exit");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = alert_rows(&dir);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].notified, "firing", "recorded before the exit");
    let again = Serve::start(&dir, &[]).await;
    again.evaluated(2).await;
    assert_eq!(receiver.request_count(), 1, "{:?}", receiver.requests());
    again.kill();
}

/// An alert is known by its metric and channel: editing its threshold, window or target
/// keeps its state (no second firing message, and the edit that clears it resolves it),
/// and the state of an alert no longer declared is forgotten at start.
#[tokio::test(flavor = "multi_thread")]
async fn editing_an_alert_keeps_its_state_and_a_removed_one_is_forgotten() {
    let sink = sink().await;
    let receiver = MockServer::start(vec![
        route("/alert", vec![ok()]),
        route("/other", vec![ok()]),
    ])
    .await
    .unwrap();
    let secrets = format!("ALERT_URL={0}/alert\nOTHER_URL={0}/other\n", receiver.url());
    let dir = shop(
        "alerts-edited",
        &sink,
        r#"  alert when dead_letters > 0 in 1h notify webhook secret("ALERT_URL")
  alert when failed_runs > 0 in 1h notify webhook secret("ALERT_URL")"#,
        &secrets,
    );
    let serve = Serve::start(&dir, &[]).await;
    serve.order(1).await;
    assert_eq!(states(&received(&receiver, 2).await), ["firing", "firing"]);
    rows_until(&dir, |rows| rows.iter().all(|r| r.notified == "firing")).await;
    serve.kill();
    // Threshold, window and target edited (the condition holds still), one alert removed.
    let edited = r#"  alert when dead_letters >= 1 in 2h notify webhook secret("OTHER_URL")"#;
    write_shop(&dir, &sink, edited);
    let again = Serve::start(&dir, &[]).await;
    again.evaluated(2).await;
    let rows = alert_rows(&dir);
    let keys: Vec<&str> = rows.iter().map(|r| r.alert.as_str()).collect();
    assert_eq!(keys, ["dead_letters/webhook"], "{rows:?}");
    assert_eq!(
        (rows[0].status.as_str(), rows[0].notified.as_str()),
        ("firing", "firing")
    );
    assert_eq!(receiver.request_count(), 2, "{:?}", receiver.requests());
    let logs = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert!(
        logs.contains("an alert no longer declared was firing"),
        "{logs}"
    );
    again.kill();
    // Edited so that it no longer holds: the firing alert resolves, at its new target.
    let cleared = r#"  alert when dead_letters > 5 in 2h notify webhook secret("OTHER_URL")"#;
    write_shop(&dir, &sink, cleared);
    let cleared = Serve::start(&dir, &[]).await;
    let posts = received(&receiver, 3).await;
    assert_eq!(states(&posts), ["firing", "firing", "resolved"]);
    assert_eq!(posts[2].path, "/other");
    cleared.kill();
}

/// A state file from before alerts were keyed by metric and channel keeps a firing alert
/// under its written condition and target: the first start moves it to its key of now,
/// so the upgrade sends no second firing message (nor leaves the first unresolved).
#[tokio::test(flavor = "multi_thread")]
async fn an_upgrade_keeps_a_firing_alert_kept_under_its_earlier_key() {
    let sink = sink().await;
    let receiver = receiver("/alert", vec![ok()]).await;
    let dir = shop(
        "alerts-upgraded",
        &sink,
        r#"  alert when dead_letters > 0 in 1h notify webhook secret("ALERT_URL")"#,
        &format!("ALERT_URL={}/alert\n", receiver.url()),
    );
    let serve = Serve::start(&dir, &[]).await;
    serve.order(1).await;
    assert_eq!(states(&received(&receiver, 1).await), ["firing"]);
    rows_until(&dir, |rows| rows.iter().all(|r| r.notified == "firing")).await;
    serve.kill();
    // The key the earlier version wrote.
    let state = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    let earlier = r#"dead_letters > 0 in 1h notify webhook secret("ALERT_URL")"#;
    let moved = state
        .execute("UPDATE alerts SET alert = ?1", [earlier])
        .unwrap();
    assert_eq!(moved, 1);
    drop(state);
    let again = Serve::start(&dir, &[]).await;
    again.evaluated(2).await;
    let rows = alert_rows(&dir);
    let keys: Vec<&str> = rows.iter().map(|r| r.alert.as_str()).collect();
    assert_eq!(keys, ["dead_letters/webhook"], "{rows:?}");
    assert_eq!(rows[0].notified, "firing", "{rows:?}");
    assert_eq!(receiver.request_count(), 1, "{:?}", receiver.requests());
    again.kill();
}

/// A condition that came true while no `integ serve` ran is a change, and is sent at start
/// (home-assistant/core#59812: an alert true at a reboot never fired).
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_recorded_while_serve_was_down_fires_at_start() {
    let sink = sink().await;
    let receiver = receiver("/alert", vec![ok()]).await;
    let dir = shop(
        "alerts-while-down",
        &sink,
        r#"  alert when dead_letters > 0 in 1h notify webhook secret("ALERT_URL")"#,
        &format!("ALERT_URL={}/alert\n", receiver.url()),
    );
    let output = run_once(&dir);
    assert!(said(&output).contains("dead"), "{}", said(&output));
    let serve = Serve::start(&dir, &[]).await;
    let posts = received(&receiver, 1).await;
    assert_eq!(states(&posts), ["firing"]);
    assert_eq!(posts[0].body["value"], 1);
    // The run-history overview shows it firing, by its condition and channel.
    let overview = format!("{}/?format=json", serve.0.admin);
    let overview: serde_json::Value = reqwest::get(overview).await.unwrap().json().await.unwrap();
    assert_eq!(
        overview["integrations"][0]["alerts"],
        json!(["dead_letters > 0 in 1h notify webhook"]),
        "{overview}"
    );
    serve.kill();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_alert_url_appears_in_no_log_state_or_output() {
    const CANARY: &str = "T0CANARY/B0CANARY/xoxb-canary-7f3a9c";
    let sink = sink().await;
    let path = format!("/services/{CANARY}");
    let refusals = vec![
        MockResponse::json(500, json!("oops")),
        MockResponse::json(404, json!("no_service")),
    ];
    let receiver = receiver(&path, refusals).await;
    let dir = shop(
        "alerts-canary",
        &sink,
        r#"  alert when dead_letters > 0 in 1h notify slack secret("SLACK_URL")"#,
        &format!("SLACK_URL={}{path}\n", receiver.url()),
    );
    let serve = Serve::start(&dir, &[]).await;
    serve.order(1).await;
    received(&receiver, 2).await;
    // Given up on (a 404 is final) and recorded so.
    let started = Instant::now();
    let logs = loop {
        let logs = std::fs::read_to_string(dir.join("serve.log")).unwrap();
        if logs.contains("cannot send the alert; given up")
            || started.elapsed() > Duration::from_secs(20)
        {
            break logs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(logs.contains("status 404"), "{logs}");
    rows_until(&dir, |rows| rows.iter().any(|r| r.error.is_some())).await;
    serve.evaluated(1).await;
    serve.kill();
    let logs = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert!(!logs.contains("CANARY"), "{logs}");
    for file in ["state.db", "state.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.join(file)) {
            let found = bytes.windows(b"CANARY".len()).any(|w| w == b"CANARY");
            assert!(!found, "the URL is in {file}");
        }
    }
    for command in [&["runs"][..], &["dlq", "list"][..], &["triggers"][..]] {
        let output = integ(
            &[command, &["--state", "state.db", "--format", "json"]].concat(),
            &dir,
            &[],
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        let shown = text(&output.stdout) + &text(&output.stderr);
        assert!(!shown.contains("CANARY"), "{shown}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_email_alert_goes_through_the_smtp_server() {
    let sink = sink().await;
    let smtp = Smtp::start().await;
    let dir = shop(
        "alerts-email",
        &sink,
        r#"  alert when failed_runs >= 1 in 1h notify email "Shop Ops <ops@example.com>""#,
        &format!("INTEG_SMTP_URL=smtp://127.0.0.1:{}\n", smtp.port),
    );
    let serve = Serve::start(&dir, &["--alert-from", "integ@example.com"]).await;
    serve.order(1).await;
    let started = Instant::now();
    while smtp.messages().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no e-mail after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rows_until(&dir, |rows| rows.iter().all(|r| r.notified == "firing")).await;
    serve.evaluated(2).await;
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let message = &messages[0];
    assert!(
        message.contains("MAIL FROM:<integ@example.com>"),
        "{message}"
    );
    assert!(message.contains("RCPT TO:<ops@example.com>"), "{message}");
    assert!(
        message.contains("Subject: [FIRING] shop: failed_runs >= 1 in 1h (now 1)"),
        "{message}"
    );
    assert!(
        message.contains("docs/integrations/shop.md#rb-failed-runs"),
        "{message}"
    );
    // The address is no label (operations-and-docs.md B2) and no log line's.
    let (metrics, _) = serve.metrics().await;
    assert!(metrics.contains("alert=\"failed_runs/email\""), "{metrics}");
    serve.kill();
    let logs = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    for shown in [&metrics, &logs] {
        assert!(!shown.contains("ops@example.com"), "{shown}");
        assert!(!shown.contains("Shop Ops"), "{shown}");
    }
}

#[test]
fn an_email_alert_without_an_smtp_server_stops_serve_from_starting() {
    let dir = workdir("alerts-no-smtp");
    std::fs::write(
        dir.join("shop.integ"),
        r#"integration shop {
  connection sink { base_url "http://127.0.0.1:9" }
  trigger webhook "/hooks/shop" { signature none }
  step forward = sink POST "/orders" { body { id = $.id } }
  alert when dead_letters > 0 in 1h notify email "ops@example.com"
}"#,
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let mut serve = Command::new(env!("CARGO_BIN_EXE_integ"))
        .args([
            "serve",
            "shop.integ",
            "--state",
            "state.db",
            "--listen",
            &listen,
        ])
        .args(["--admin-listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A serve that started anyway would never exit: bounded.
    let started = Instant::now();
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = serve.kill();
            panic!("integ serve started with an e-mail alert it cannot send");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = text(&serve.wait_with_output().unwrap().stderr);
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("INTEG_SMTP_URL"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn run_and_test_need_none_of_the_alerts_secrets() {
    let api = receiver("/orders", vec![ok()]).await;
    let dir = workdir("alerts-run-test");
    let spec = format!(
        r#"integration shop {{
  connection sink {{ base_url "{}" }}
  trigger manual
  step forward = sink POST "/orders" {{ body {{ id = $.id }} }}
  alert when dead_letters > 0 in 1h notify slack secret("SLACK_ALERTS_URL")
  alert when failed_runs > 0 in 1h notify webhook env("OPS_ALERTS_URL")
  alert when retries > 5 in 1h notify email "ops@example.com"
  test "an order is forwarded" {{
    event {{ id: 7 }}
    mock sink POST "/orders" 200 {{ ok: true }}
    expect step forward succeeded
  }}
}}"#,
        api.url()
    );
    std::fs::write(dir.join("shop.integ"), spec).unwrap();
    std::fs::write(dir.join("event.json"), r#"{"id": 7}"#).unwrap();
    let run = integ(&["run", "shop.integ", "--input", "event.json"], &dir, &[]);
    assert!(
        run.status.success(),
        "{}{}",
        text(&run.stdout),
        text(&run.stderr)
    );
    assert_eq!(api.request_count(), 1);
    let test = integ(&["test", "shop.integ"], &dir, &[]);
    assert!(
        test.status.success(),
        "{}{}",
        text(&test.stdout),
        text(&test.stderr)
    );
}

/// A local SMTP server that accepts every message and keeps each session's lines.
struct Smtp {
    port: u16,
    sessions: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Smtp {
    async fn start() -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sessions = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = sessions.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let mut session = String::new();
                    let _ = write.write_all(b"220 localhost ESMTP test\r\n").await;
                    let mut in_data = false;
                    while let Ok(Some(line)) = lines.next_line().await {
                        session.push_str(&line);
                        session.push('\n');
                        let answer: &[u8] = if in_data {
                            if line != "." {
                                continue;
                            }
                            in_data = false;
                            kept.lock().unwrap().push(std::mem::take(&mut session));
                            b"250 queued\r\n"
                        } else {
                            match line.get(..4).unwrap_or("").to_ascii_uppercase().as_str() {
                                "EHLO" | "HELO" => b"250 localhost\r\n",
                                "DATA" => {
                                    in_data = true;
                                    b"354 go on\r\n"
                                }
                                "QUIT" => {
                                    let _ = write.write_all(b"221 bye\r\n").await;
                                    break;
                                }
                                _ => b"250 ok\r\n",
                            }
                        };
                        let _ = write.write_all(answer).await;
                    }
                });
            }
        });
        Self { port, sessions }
    }

    fn messages(&self) -> Vec<String> {
        self.sessions.lock().unwrap().clone()
    }
}

/// What `rate_limited` and `retries` count is recorded with each run: a 429 then a 200
/// is one retry and one rate-limited attempt, kept in the run history and alerted on.
#[tokio::test(flavor = "multi_thread")]
async fn a_429_answered_run_is_counted_as_rate_limited_and_retried() {
    let limited =
        MockResponse::json(429, json!({"error": "slow down"})).with_header("Retry-After", "0");
    let api = receiver("/orders", vec![limited, ok()]).await;
    let receiver = receiver("/alert", vec![ok()]).await;
    let dir = shop(
        "alerts-rate-limited",
        &api,
        r#"  alert when rate_limited >= 1 in 1h notify webhook secret("ALERT_URL")"#,
        &format!("ALERT_URL={}/alert\n", receiver.url()),
    );
    let output = run_once(&dir);
    assert!(output.status.success(), "{}", said(&output));
    let runs = integ(
        &["runs", "--state", "state.db", "--format", "json"],
        &dir,
        &[],
    );
    let record: serde_json::Value = serde_json::from_str(text(&runs.stdout).trim()).unwrap();
    assert_eq!(
        (record["retries"].as_u64(), record["rate_limited"].as_u64()),
        (Some(1), Some(1)),
        "{record}"
    );
    let serve = Serve::start(&dir, &[]).await;
    let posts = received(&receiver, 1).await;
    assert_eq!(states(&posts), ["firing"]);
    assert_eq!(
        (
            posts[0].body["metric"].as_str(),
            posts[0].body["value"].as_u64()
        ),
        (Some("rate_limited"), Some(1))
    );
    serve.kill();
}
