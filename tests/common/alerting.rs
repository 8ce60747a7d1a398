//! What the alert tests share: a shop whose sink refuses every order (so each is
//! dead-lettered), `integ serve` on it evaluating alerts every second, receivers' requests
//! awaited, the evaluations counted on `/metrics` (so that a test waits for a record, then
//! asserts absence) and the alerts' rows read from the state file.

use super::serving::Serving;
use super::{integ, text, workdir};
use integ::mock::{MockResponse, MockServer, Recorded, Route};
use prometheus_parse::{Scrape, Value};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long anything awaited may take on a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);

/// A folder with `shop.integ` (see `write_shop`) and `secrets.env` holding `secrets`.
pub fn shop(name: &str, sink: &MockServer, alerts: &str, secrets: &str) -> PathBuf {
    let dir = workdir(name);
    write_shop(&dir, sink, alerts);
    std::fs::write(dir.join("secrets.env"), secrets).unwrap();
    dir
}

/// Writes `shop.integ`: a webhook whose orders go to `sink`, with `alerts` declared.
pub fn write_shop(dir: &Path, sink: &MockServer, alerts: &str) {
    let spec = format!(
        r#"integration shop {{
  connection sink {{ base_url "{}" }}
  trigger webhook "/hooks/shop" {{ signature none }}
  step forward = sink POST "/orders" {{ body {{ id = $.id }} }}
{alerts}
}}"#,
        sink.url()
    );
    std::fs::write(dir.join("shop.integ"), spec).unwrap();
}

/// A sink that refuses every order (422): each is dead-lettered.
pub async fn sink() -> MockServer {
    let refused = MockResponse::json(422, json!({"error": "invalid order"}));
    MockServer::start(vec![route("/orders", vec![refused])])
        .await
        .unwrap()
}

/// A receiver answering `responses` in turn on `path`.
pub async fn receiver(path: &str, responses: Vec<MockResponse>) -> MockServer {
    MockServer::start(vec![route(path, responses)])
        .await
        .unwrap()
}

pub fn route(path: &str, responses: Vec<MockResponse>) -> Route {
    super::route("POST", path, responses)
}

pub fn ok() -> MockResponse {
    MockResponse::json(200, json!("ok"))
}

/// `integ run` of the shop on `order.json` (`{"id": 9}`), into the state file `integ serve`
/// reads, as if it ran while no server did.
pub fn run_once(dir: &Path) -> std::process::Output {
    std::fs::write(dir.join("order.json"), r#"{"id": 9}"#).unwrap();
    let args = [
        "run",
        "shop.integ",
        "--input",
        "order.json",
        "--state",
        "state.db",
    ];
    integ(&args, dir, &[])
}

/// `integ serve` on the shop in `dir`, evaluating alerts every second, its logs (JSON)
/// appended to `serve.log`.
pub struct Serve(pub Serving);

impl Serve {
    pub async fn start(dir: &Path, extra: &[&str]) -> Self {
        let args = [
            &["shop.integ", "--secrets", "secrets.env"][..],
            &["--state", "state.db", "--alert-every", "1s"],
            extra,
        ]
        .concat();
        Self(Serving::start(dir, &args).await)
    }

    /// Sends one order, which the sink refuses: one dead letter.
    pub async fn order(&self, id: u64) {
        let answer = reqwest::Client::new()
            .post(format!("{}/hooks/shop", self.0.url))
            .json(&json!({ "id": id }))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 202);
    }

    /// `/metrics`, as text and parsed.
    pub async fn metrics(&self) -> (String, Scrape) {
        let url = format!("{}/metrics", self.0.admin);
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap();
        (text, scrape)
    }

    /// The value of `metric` with `labels` (each pair among its labels).
    pub async fn metric(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        let (text, scrape) = self.metrics().await;
        let found: Vec<f64> = scrape
            .samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => v,
                _ => f64::NAN,
            })
            .collect();
        assert_eq!(found.len(), 1, "{metric} {labels:?} in\n{text}");
        found[0]
    }

    /// How many times every alert was evaluated.
    pub async fn evaluations(&self) -> f64 {
        self.metric("integ_alert_evaluations_total", &[]).await
    }

    /// Waits for `n` evaluations more than now: what was owed before has been sent, or is
    /// being sent, by then.
    pub async fn evaluated(&self, n: u32) {
        let until = self.evaluations().await + f64::from(n);
        let started = Instant::now();
        while self.evaluations().await < until {
            assert!(started.elapsed() < PATIENCE, "no alert evaluation");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn kill(self) {
        drop(self.0);
    }
}

/// The first `n` requests `receiver` got, waiting for them.
pub async fn received(receiver: &MockServer, n: usize) -> Vec<Recorded> {
    let started = Instant::now();
    while receiver.request_count() < n {
        assert!(
            started.elapsed() < PATIENCE,
            "{} requests of {n} after {PATIENCE:?}: {:?}",
            receiver.request_count(),
            receiver.requests()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.requests().into_iter().take(n).collect()
}

/// The `state` of each message.
pub fn states(requests: &[Recorded]) -> Vec<String> {
    requests
        .iter()
        .map(|r| r.body["state"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// One alert's row of the state file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub alert: String,
    pub status: String,
    pub notified: String,
    pub error: Option<String>,
}

/// The rows of the `alerts` table of `dir`'s state file.
pub fn alert_rows(dir: &Path) -> Vec<Row> {
    let file = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    file.busy_timeout(Duration::from_secs(20)).unwrap();
    let mut rows = file
        .prepare("SELECT alert, status, notified, error FROM alerts ORDER BY alert")
        .unwrap();
    rows.query_map([], |r| {
        Ok(Row {
            alert: r.get(0)?,
            status: r.get(1)?,
            notified: r.get(2)?,
            error: r.get(3)?,
        })
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

/// Waits until the alerts' rows satisfy `done`; answers them.
pub async fn rows_until(dir: &Path, done: impl Fn(&[Row]) -> bool) -> Vec<Row> {
    let started = Instant::now();
    loop {
        let rows = alert_rows(dir);
        if done(&rows) {
            return rows;
        }
        assert!(started.elapsed() < PATIENCE, "alerts' rows: {rows:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `output`'s stdout and stderr.
pub fn said(output: &std::process::Output) -> String {
    text(&output.stdout) + &text(&output.stderr)
}
