//! Operating `integ serve`, through the real binary: `/metrics` on the admin listener (read
//! with a Prometheus text-format parser), and the probes `/livez`, `/healthz`, `/readyz`.

#![allow(clippy::unwrap_used)]

mod common;

use common::serving::Serving;
use common::{free_port, workdir};
use integ::mock::{MockResponse, MockServer, Route};
use prometheus_parse::{Sample, Scrape, Value};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SECRET: &str = "operations-secret";

/// A relay: a signed webhook forwarded to `sink`'s `/sink`.
fn relay(name: &str, sink: &str) -> PathBuf {
    let dir = workdir(name);
    let spec = format!(
        r#"integration relay {{
  connection sink {{ base_url "{sink}" }}
  trigger webhook "/hooks/relay" {{
    signature hmac_sha256 secret("RELAY_SECRET") {{ header "X-Signature" prefix "sha256=" }}
    dedupe $.id
  }}
  step forward = sink POST "/sink" {{
    idempotency_key "evt-{{{{ event.id }}}}"
    body {{ id = $.id }}
    retry 3 exponential 50ms..1s on 5xx, timeout, network
  }}
}}"#
    );
    std::fs::write(dir.join("relay.integ"), spec).unwrap();
    std::fs::write(dir.join("secrets.env"), format!("RELAY_SECRET={SECRET}\n")).unwrap();
    dir
}

/// `integ serve` on the relay of `dir` (killed when dropped), and a client.
struct Relay {
    serving: Serving,
    /// The webhook listener's URL.
    public: String,
    /// The admin listener's URL.
    admin: String,
    client: reqwest::Client,
}

async fn serve(dir: &Path) -> Relay {
    serve_spec(dir, "relay.integ", &[]).await
}

/// `integ serve` on `spec` in `dir`, with `dir`'s secrets file and `extra` arguments.
async fn serve_spec(dir: &Path, spec: &str, extra: &[&str]) -> Relay {
    let args = [spec, "--secrets", "secrets.env"];
    let serving = Serving::start(
        dir,
        &[&args[..], &["--state", "state.db", "--workers", "4"], extra].concat(),
    )
    .await;
    Relay {
        public: serving.url.clone(),
        admin: serving.admin.clone(),
        serving,
        client: reqwest::Client::new(),
    }
}

impl Relay {
    /// The status and body of a GET, or `None` when nothing answers.
    async fn get(&self, base: &str, path: &str) -> Option<(u16, String)> {
        let response = self.client.get(format!("{base}{path}")).send().await.ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.unwrap_or_default()))
    }

    async fn post(&self, id: u64) -> u16 {
        let body = json!({ "id": id }).to_string();
        self.client
            .post(format!("{}/hooks/relay", self.public))
            .header("content-type", "application/json")
            .header(
                "X-Signature",
                common::github_signature(SECRET, body.as_bytes()),
            )
            .body(body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn scrape(&self) -> Scrape {
        let (status, text) = self.get(&self.admin, "/metrics").await.unwrap();
        assert_eq!(status, 200, "{text}");
        Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).unwrap()
    }

    /// The verbose answer of `/readyz` once it fails (polled); fails the test if the
    /// listener closes first, or after 20 s.
    async fn unready(&self) -> String {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            match self.get(&self.public, "/readyz?verbose").await {
                Some((503, body)) => return body,
                Some(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                None => panic!("the listener closed before /readyz answered 503"),
            }
        }
        panic!("/readyz did not fail within 20 s");
    }

    /// Sends SIGTERM.
    fn terminate(&self) {
        self.serving.terminate();
    }
}

/// The samples of `metric` whose labels include every pair of `labels`.
fn samples<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

/// The one sample of `metric` with `labels`.
fn sample<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> &'a Sample {
    let found = samples(scrape, metric, labels);
    assert_eq!(found.len(), 1, "{metric} {labels:?}: {found:#?}");
    found[0]
}

/// Waits for `api`'s first request, for up to 20 s.
async fn sent(api: &MockServer) {
    let started = Instant::now();
    while api.request_count() == 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "not sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sink(responses: Vec<MockResponse>) -> Route {
    Route {
        method: "POST".into(),
        path: "/sink".into(),
        responses,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_served_on_the_admin_listener_and_not_on_the_webhooks_one() {
    let api = MockServer::start(vec![sink(vec![MockResponse::json(201, json!({}))])])
        .await
        .unwrap();
    let dir = relay("operations-metrics", &api.url());
    let serving = serve(&dir).await;
    let scrape = serving.scrape().await;
    let info = sample(&scrape, "integ_build_info", &[("store", "sqlite")]);
    assert_eq!(info.value, Value::Gauge(1.0));
    assert_eq!(info.labels.get("version"), Some(env!("CARGO_PKG_VERSION")));
    assert!(scrape.docs.contains_key("integ_build_info"), "no # HELP");
    // Every store operation is there from the start, at 0, as a histogram with buckets.
    for op in [
        "enqueue",
        "claim",
        "checkpoint",
        "finish",
        "heartbeat",
        "unclaim",
    ] {
        assert_eq!(
            sample(&scrape, "integ_store_errors_total", &[("op", op)]).value,
            Value::Counter(0.0)
        );
    }
    assert_eq!(serving.post(1).await, 202);
    sent(&api).await;
    let scrape = serving.scrape().await;
    let enqueue = sample(
        &scrape,
        "integ_store_operation_duration_seconds",
        &[("op", "enqueue")],
    );
    let Value::Histogram(buckets) = &enqueue.value else {
        panic!("not a histogram: {enqueue:?}");
    };
    assert_eq!(buckets.len(), 18, "17 bounds and +Inf: {buckets:?}");
    assert_eq!(buckets.last().unwrap().count, 1.0);
    // The public listener has no /metrics: it is the internet's side.
    let (status, _) = serving.get(&serving.public, "/metrics").await.unwrap();
    assert_eq!(status, 404);
}

#[test]
fn the_admin_listener_refuses_the_webhook_port() {
    let dir = relay("operations-same-port", "http://127.0.0.1:9");
    let port = free_port().to_string();
    let output = Command::new(env!("CARGO_BIN_EXE_integ"))
        .args(["serve", "relay.integ", "--secrets", "secrets.env"])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--admin-listen", &format!("localhost:{port}")])
        .current_dir(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("is the webhook port"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probes_answer_ok_and_list_their_checks_when_asked() {
    let dir = relay("operations-probes", "http://127.0.0.1:9");
    let serving = serve(&dir).await;
    for path in ["/livez", "/healthz", "/readyz"] {
        let answer = serving.get(&serving.public, path).await.unwrap();
        assert_eq!(answer, (200, "ok".to_string()), "{path}");
    }
    let (status, live) = serving
        .get(&serving.public, "/livez?verbose")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(live, "[+]ping ok\n[+]dispatcher ok\nlivez check passed\n");
    let (status, ready) = serving
        .get(&serving.public, "/readyz?verbose")
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        ready,
        "[+]plan ok\n[+]store ok\n[+]draining ok\n[i]backlog: 0 events due of --max-pending 10000\nreadyz check passed\n"
    );
    // The probes are the webhooks listener's; the admin one has none.
    let (status, _) = serving.get(&serving.admin, "/readyz").await.unwrap();
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_fails_while_draining_after_sigterm_and_the_listener_stays_up_meanwhile() {
    // The API takes 4 s, so the drain has an event in flight for that long.
    let slow = MockResponse::json(201, json!({})).after(Duration::from_secs(4));
    let api = MockServer::start(vec![sink(vec![slow])]).await.unwrap();
    let dir = relay("operations-drain", &api.url());
    // No delay: webhooks are refused from the signal on.
    let serving = serve_spec(&dir, "relay.integ", &["--drain-delay", "0s"]).await;
    assert_eq!(serving.post(1).await, 202);
    sent(&api).await;
    serving.terminate();
    let body = serving.unready().await;
    assert!(body.contains("[-]draining failed: shutting down"), "{body}");
    assert!(body.contains("[+]store ok"), "{body}");
    assert!(body.ends_with("readyz check failed\n"), "{body}");
    // Webhooks are refused meanwhile: the sender keeps the event and retries elsewhere.
    assert_eq!(serving.post(2).await, 503);
}

/// An idle process must not close its listener at SIGTERM: a load balancer has to see
/// `/readyz` fail before the webhooks are refused, so for `--drain-delay` (5 s by default)
/// readiness fails while webhooks are still taken and run.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_process_fails_readiness_for_the_drain_delay_and_still_takes_webhooks() {
    let api = MockServer::start(vec![sink(vec![MockResponse::json(201, json!({}))])])
        .await
        .unwrap();
    let dir = relay("operations-drain-delay", &api.url());
    let mut serving = serve(&dir).await;
    let signalled = Instant::now();
    serving.terminate();
    let body = serving.unready().await;
    assert!(body.contains("[-]draining failed: "), "{body}");
    assert!(body.ends_with("readyz check failed\n"), "{body}");
    // The delay is for the load balancer to notice; the inbox still takes what comes.
    assert_eq!(serving.post(1).await, 202);
    sent(&api).await;
    let status = loop {
        if let Some(status) = serving.serving.try_wait().unwrap() {
            break status;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(40),
            "still running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        signalled.elapsed() >= Duration::from_secs(5),
        "stopped {:?} after the signal, before the drain delay ended",
        signalled.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_that_pauses_a_connection_does_not_fail_readiness() {
    // A 429 asking for a minute: the connection pauses and the event is put back for
    // later, while the inbox goes on taking webhooks.
    let throttled = MockResponse::json(429, json!({})).with_header("Retry-After", "60");
    let api = MockServer::start(vec![sink(vec![throttled])])
        .await
        .unwrap();
    let dir = relay("operations-paused", &api.url());
    let serving = serve(&dir).await;
    assert_eq!(serving.post(1).await, 202);
    let started = Instant::now();
    let body = loop {
        let (status, body) = serving
            .get(&serving.public, "/readyz?verbose")
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
        if body.contains("[i]connection") {
            break body;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        body.contains("[i]connection relay/sink paused for "),
        "{body}"
    );
    assert!(body.ends_with("readyz check passed\n"), "{body}");
    assert_eq!(serving.post(2).await, 202);
}

/// A run that dead-letters is counted so once its dead letter is kept: while the store
/// refuses the write, the refusal is counted (and logged), not a dead letter that is not
/// there; once it takes it, the run counts once.
#[tokio::test(flavor = "multi_thread")]
async fn a_dead_letter_the_store_refuses_is_not_counted_until_it_is_kept() {
    let api = MockServer::start(vec![sink(vec![MockResponse::json(422, json!({}))])])
        .await
        .unwrap();
    let dir = relay("operations-letter-refused", &api.url());
    let state = dir.join("state.db");
    drop(integ::store::SqliteStore::open(&state).unwrap());
    let raw = rusqlite::Connection::open(&state).unwrap();
    raw.execute_batch(
        "CREATE TRIGGER refuse_letters BEFORE INSERT ON dead_letters
         BEGIN SELECT RAISE(ABORT, 'the disk is failing'); END",
    )
    .unwrap();
    let serving = serve(&dir).await;
    assert_eq!(serving.post(1).await, 202);
    let relay = [("integration", "relay")];
    let dead_lettered = [("integration", "relay"), ("outcome", "dead_lettered")];
    let started = Instant::now();
    let scrape = loop {
        let scrape = serving.scrape().await;
        if value(sample(
            &scrape,
            "integ_store_errors_total",
            &[("op", "finish")],
        )) >= 1.0
        {
            break scrape;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        value(sample(&scrape, "integ_runs_total", &dead_lettered)),
        0.0
    );
    let letters: f64 = samples(&scrape, "integ_dead_letters_total", &relay)
        .iter()
        .map(|s| value(s))
        .sum();
    assert_eq!(letters, 0.0);
    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    assert!(log.contains("cannot record the end of the run"), "{log}");
    // The disk is mended: the next try keeps the letter, and the run counts once.
    raw.execute_batch("DROP TRIGGER refuse_letters").unwrap();
    loop {
        let scrape = serving.scrape().await;
        if value(sample(&scrape, "integ_runs_total", &dead_lettered)) == 1.0 {
            let letters: f64 = samples(&scrape, "integ_dead_letters_total", &relay)
                .iter()
                .map(|s| value(s))
                .sum();
            assert_eq!(letters, 1.0);
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "never kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(api.request_count(), 1, "the event ran once");
}

/// A relay whose webhook drops events marked `skip` (its `when`), its connection with a
/// circuit breaker.
fn filtering_relay(name: &str, sink: &str) -> PathBuf {
    let dir = relay(name, sink);
    let spec = std::fs::read_to_string(dir.join("relay.integ")).unwrap();
    let spec = spec
        .replace(
            "    dedupe $.id\n",
            "    when $.skip != true\n    dedupe $.id\n",
        )
        .replace(
            &format!("connection sink {{ base_url \"{sink}\" }}"),
            &format!("connection sink {{\n    base_url \"{sink}\"\n    circuit_breaker {{\n      failures 5\n    }}\n  }}"),
        );
    std::fs::write(dir.join("relay.integ"), spec).unwrap();
    dir
}

fn value(sample: &Sample) -> f64 {
    match &sample.value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        other => panic!("{} is not a number: {other:?}", sample.metric),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_scrape_after_real_runs_counts_what_happened_and_shows_every_known_series() {
    // The API fails once with a 503, then takes the event: one retry.
    let api = MockServer::start(vec![sink(vec![
        MockResponse::json(503, json!({})),
        MockResponse::json(201, json!({})),
    ])])
    .await
    .unwrap();
    let dir = filtering_relay("operations-scrape", &api.url());
    let serving = serve(&dir).await;
    // Before anything happens, every series the spec makes known is there, at 0.
    let before = serving.scrape().await;
    let relay = [("integration", "relay")];
    let hook = [
        ("integration", "relay"),
        ("trigger", "webhook POST /hooks/relay"),
    ];
    let sink_labels = [("integration", "relay"), ("connection", "sink")];
    for outcome in ["succeeded", "failed", "dead_lettered", "deferred"] {
        let labels = [relay[0], ("outcome", outcome)];
        assert_eq!(value(sample(&before, "integ_runs_total", &labels)), 0.0);
    }
    let forward = [relay[0], ("step", "forward"), ("error_type", "http_5xx")];
    assert_eq!(
        value(sample(&before, "integ_dead_letters_total", &forward)),
        0.0
    );
    let retries = [sink_labels[0], sink_labels[1], ("reason", "5xx")];
    assert_eq!(
        value(sample(&before, "integ_http_client_retries_total", &retries)),
        0.0
    );
    let breaker = [sink_labels[0], sink_labels[1], ("state", "closed")];
    assert_eq!(
        value(sample(&before, "integ_circuit_breaker_state", &breaker)),
        1.0
    );
    // The workers, all idle; the integration served, with its spec's fingerprint.
    let workers =
        |scrape: &Scrape, state: &str| value(sample(scrape, "integ_workers", &[("state", state)]));
    assert_eq!(
        (workers(&before, "busy"), workers(&before, "idle")),
        (0.0, 4.0)
    );
    let text = std::fs::read_to_string(dir.join("relay.integ")).unwrap();
    let fingerprint = integ::doc::spec_sha256(&text);
    let info = [
        relay[0],
        ("spec_sha256", &fingerprint),
        ("environment", "_none"),
    ];
    assert_eq!(value(sample(&before, "integ_integration_info", &info)), 1.0);
    // A duration series for the one method the spec sends on the connection, no other.
    let post = [sink_labels[0], sink_labels[1], ("method", "POST")];
    sample(&before, "integ_http_client_request_duration_seconds", &post);
    let durations = samples(
        &before,
        "integ_http_client_request_duration_seconds",
        &sink_labels,
    );
    assert_eq!(durations.len(), 1, "{durations:#?}");
    assert_eq!(
        value(sample(
            &before,
            "integ_http_client_in_flight_requests",
            &sink_labels
        )),
        0.0
    );
    // The process's own, read at the scrape.
    assert!(value(sample(&before, "process_resident_memory_bytes", &[])) > 1e6);
    assert!(value(sample(&before, "process_open_fds", &[])) >= 3.0);
    assert!(value(sample(&before, "process_start_time_seconds", &[])) > 1.7e9);
    assert!(value(sample(&before, "process_cpu_seconds_total", &[])) >= 0.0);
    // Only an OAuth2 connection refreshes tokens, and only a spec with alerts has alerts.
    let known = integ::telemetry::METRICS.iter().filter(|m| {
        m.name != "integ_oauth_token_refreshes_total" && !m.name.starts_with("integ_alert")
    });
    for metric in known {
        assert!(
            before.docs.contains_key(metric.name),
            "{} has no # HELP",
            metric.name
        );
        assert!(
            before.samples.iter().any(|s| s.metric == metric.name),
            "{} has no series before the first event",
            metric.name
        );
    }

    // One event delivered, its duplicate, one filtered, two forgeries, one stray request.
    assert_eq!(serving.post(1).await, 202);
    assert_eq!(serving.post(1).await, 202);
    let skipped = json!({ "id": 3, "skip": true }).to_string();
    let signed = common::github_signature(SECRET, skipped.as_bytes());
    let send = |body: String, signature: Option<String>| {
        let mut request = serving
            .client
            .post(format!("{}/hooks/relay", serving.public))
            .header("content-type", "application/json")
            .body(body);
        if let Some(signature) = signature {
            request = request.header("X-Signature", signature);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(send(skipped, Some(signed)).await, 202);
    assert_eq!(send("{}".into(), Some("sha256=00".into())).await, 401);
    assert_eq!(send("{}".into(), None).await, 401);
    let stray = serving.client.post(format!("{}/nowhere", serving.public));
    assert_eq!(stray.send().await.unwrap().status().as_u16(), 404);

    // Counted once its run has ended.
    let started = Instant::now();
    let runs = [relay[0], ("outcome", "succeeded")];
    let scrape = loop {
        let scrape = serving.scrape().await;
        if value(sample(&scrape, "integ_runs_total", &runs)) == 1.0 {
            break scrape;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no run counted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let count = |metric: &str, labels: &[(&str, &str)]| value(sample(&scrape, metric, labels));
    assert_eq!(
        count(
            "integ_webhook_requests_total",
            &[hook[0], hook[1], ("code", "202")]
        ),
        3.0
    );
    assert_eq!(
        count(
            "integ_webhook_requests_total",
            &[hook[0], hook[1], ("code", "401")]
        ),
        2.0
    );
    let unrouted = [
        ("integration", "_none"),
        ("trigger", "_none"),
        ("code", "404"),
    ];
    assert_eq!(count("integ_webhook_requests_total", &unrouted), 1.0);
    for reason in ["mismatch", "missing"] {
        let labels = [hook[0], hook[1], ("reason", reason)];
        assert_eq!(
            count("integ_webhook_signature_failures_total", &labels),
            1.0,
            "{reason}"
        );
    }
    assert_eq!(count("integ_events_received_total", &hook), 1.0);
    for reason in ["duplicate", "filtered"] {
        let labels = [hook[0], hook[1], ("reason", reason)];
        assert_eq!(
            count("integ_events_discarded_total", &labels),
            1.0,
            "{reason}"
        );
    }
    assert!(count("integ_trigger_last_success_timestamp_seconds", &hook) > 1.7e9);
    let step = [relay[0], ("step", "forward"), ("outcome", "succeeded")];
    assert_eq!(count("integ_step_runs_total", &step), 1.0);
    for (class, n) in [("5xx", 1.0), ("2xx", 1.0), ("none", 0.0)] {
        let labels = [sink_labels[0], sink_labels[1], ("code_class", class)];
        assert_eq!(
            count("integ_http_client_requests_total", &labels),
            n,
            "{class}"
        );
    }
    assert_eq!(count("integ_http_client_retries_total", &retries), 1.0);
    assert!(count("integ_run_last_success_timestamp_seconds", &relay) > 1.7e9);
    let histogram = |metric: &str, labels: &[(&str, &str)]| {
        let found = sample(&scrape, metric, labels);
        let Value::Histogram(buckets) = &found.value else {
            panic!("{metric} is not a histogram: {found:?}");
        };
        buckets.last().unwrap().count
    };
    assert_eq!(histogram("integ_event_latency_seconds", &relay), 1.0);
    assert_eq!(histogram("integ_run_duration_seconds", &relay), 1.0);
    assert_eq!(
        histogram("integ_http_client_request_duration_seconds", &post),
        2.0
    );
    // Both answers' bodies ("{}"), in byte buckets.
    let body = sample(
        &scrape,
        "integ_http_client_response_body_bytes",
        &sink_labels,
    );
    let Value::Histogram(buckets) = &body.value else {
        panic!("not a histogram: {body:?}");
    };
    assert_eq!(buckets.len(), 10, "9 bounds and +Inf: {buckets:?}");
    assert_eq!((buckets[0].less_than, buckets[0].count), (256.0, 2.0));
    let bytes = sample(
        &scrape,
        "integ_http_client_response_body_bytes_sum",
        &sink_labels,
    );
    assert_eq!(value(bytes), 4.0);
    assert_eq!(
        count("integ_http_client_in_flight_requests", &sink_labels),
        0.0
    );
    assert_eq!(workers(&scrape, "busy") + workers(&scrape, "idle"), 4.0);
    assert_eq!(
        histogram("integ_webhook_request_duration_seconds", &hook),
        5.0
    );
    // No label took a value from an event: the ids and the forged signature are nowhere.
    for sample in &scrape.samples {
        for (name, value) in sample.labels.iter() {
            assert!(!value.contains("sha256"), "{name}={value}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_in_flight_shows_as_a_busy_worker_and_a_request_in_flight() {
    // The API answers after a minute: the scrapes meanwhile see the call under way (the
    // scrape test sees both gauges back at 0 once its calls are answered).
    let slow = MockResponse::json(201, json!({})).after(Duration::from_secs(60));
    let api = MockServer::start(vec![sink(vec![slow])]).await.unwrap();
    let dir = relay("operations-in-flight", &api.url());
    let serving = serve(&dir).await;
    let sink_labels = [("integration", "relay"), ("connection", "sink")];
    let gauges = |scrape: &Scrape| {
        let in_flight = sample(scrape, "integ_http_client_in_flight_requests", &sink_labels);
        let busy = sample(scrape, "integ_workers", &[("state", "busy")]);
        let idle = sample(scrape, "integ_workers", &[("state", "idle")]);
        (value(in_flight), value(busy), value(idle))
    };
    assert_eq!(gauges(&serving.scrape().await), (0.0, 0.0, 4.0));
    assert_eq!(serving.post(1).await, 202);
    sent(&api).await;
    assert_eq!(gauges(&serving.scrape().await), (1.0, 1.0, 3.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_from_the_admin_pages_is_counted() {
    // The API refuses the event (a 400 is not retried: dead-lettered), then takes it.
    let api = MockServer::start(vec![sink(vec![
        MockResponse::json(400, json!({})),
        MockResponse::json(201, json!({})),
    ])])
    .await
    .unwrap();
    let dir = relay("operations-replays", &api.url());
    let serving = serve(&dir).await;
    let relay = [("integration", "relay")];
    let replays =
        |scrape: &Scrape| value(sample(scrape, "integ_dead_letter_replays_total", &relay));
    assert_eq!(replays(&serving.scrape().await), 0.0);
    assert_eq!(serving.post(1).await, 202);
    let runs = |scrape: &Scrape, outcome: &str| {
        value(sample(
            scrape,
            "integ_runs_total",
            &[relay[0], ("outcome", outcome)],
        ))
    };
    let started = Instant::now();
    while runs(&serving.scrape().await, "dead_lettered") < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "not dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let no_redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // The run is counted before its dead letter is written: replay until there was one.
    loop {
        let (_, page) = serving.get(&serving.admin, "/dead-letters").await.unwrap();
        let at = page.find("name=\"form_token\" value=\"").expect("a form") + 25;
        let token = page[at..].split('"').next().unwrap();
        // As confirmed: the filter's times as instants (none to come), and a reason.
        let until = (chrono::Utc::now() + chrono::Duration::seconds(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let form = [
            ("form_token", token),
            ("scope", "matching"),
            ("integration", "relay"),
            ("until", until.as_str()),
            ("confirmed", "1"),
            ("reason", "counted"),
        ];
        let answer = no_redirect
            .post(format!("{}/dead-letters/replay", serving.admin))
            .header("Origin", &serving.admin)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 303);
        let back = answer.headers()["location"].to_str().unwrap().to_string();
        if back.contains("done=1+dead") {
            break;
        }
        assert!(back.contains("done=0+dead"), "{back}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no dead letter"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let scrape = serving.scrape().await;
    assert_eq!(replays(&scrape), 1.0);
    // The replay's run counts as a run, not as another replay.
    while runs(&serving.scrape().await, "succeeded") < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the replay did not run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(replays(&serving.scrape().await), 1.0);
}

/// An OAuth2 connection's token refreshes are exported at 0, ok and error, before the
/// first token is fetched: an alert on `increase(...{result="error"})` sees the first
/// failure.
#[tokio::test(flavor = "multi_thread")]
async fn an_oauth2_connection_exports_its_token_refreshes_at_zero_before_any_run() {
    let dir = workdir("operations-oauth2-zero");
    let spec = r#"integration crm_sync {
  connection crm {
    base_url "http://127.0.0.1:9"
    auth oauth2 {
      token_url "http://127.0.0.1:9/token"
      client_id secret("ID")
      client_secret secret("SECRET")
    }
  }
  trigger manual
  step get = crm GET "/contacts"
}"#;
    common::write(&dir, "crm.integ", spec);
    common::write(&dir, "secrets.env", "ID=id\nSECRET=secret\n");
    let relay = serve_spec(&dir, "crm.integ", &[]).await;
    let scrape = relay.scrape().await;
    let labels = [("integration", "crm_sync"), ("connection", "crm")];
    for result in ["ok", "error"] {
        let labels = [labels[0], labels[1], ("result", result)];
        let refreshes = sample(&scrape, "integ_oauth_token_refreshes_total", &labels);
        assert_eq!(value(refreshes), 0.0, "{result}");
    }
}

/// The admin token may come from the secrets file: the pages then ask for it.
#[tokio::test(flavor = "multi_thread")]
async fn the_admin_token_may_come_from_the_secrets_file() {
    let dir = relay("operations-admin-token-file", "http://127.0.0.1:9");
    let token = "token-from-the-secrets-file-5d1c";
    let secrets = std::fs::read_to_string(dir.join("secrets.env")).unwrap();
    common::write(
        &dir,
        "secrets.env",
        &format!("{secrets}INTEG_ADMIN_TOKEN={token}\n"),
    );
    let relay = serve(&dir).await;
    let runs = format!("{}/runs?format=json", relay.admin);
    let status = |request: reqwest::RequestBuilder| async move {
        request.send().await.unwrap().status().as_u16()
    };
    assert_eq!(status(relay.client.get(&runs)).await, 401, "no token");
    assert_eq!(
        status(relay.client.get(&runs).bearer_auth(token)).await,
        200
    );
}
