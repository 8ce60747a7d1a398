//! `integ serve` as a real process. Nothing is lost: it is killed with SIGKILL at
//! pseudo-random moments while 1 000 signed webhooks arrive, and restarted each time; every
//! event must reach the sink (at least once, under its idempotency key), and raw duplicates
//! are reported. Also: idle CPU, the state-file lock, the start-up warnings.

#![allow(clippy::unwrap_used)]

use hmac::{KeyInit, Mac};
use integ::mock::{MockResponse, MockServer, Route};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const EVENTS: usize = 1_000;
const SECRET: &str = "crash-test-secret";

fn sign(body: &[u8]) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn(dir: &Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_integ"))
        .args([
            "serve",
            "relay.integ",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--secrets",
            "secrets.env",
        ])
        .args(["--state", "state.db", "--workers", "4"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A fresh folder holding `relay.integ` (a signed webhook forwarded to `sink`) and its
/// secrets file.
fn relay_dir(name: &str, sink: &str) -> PathBuf {
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
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
    retry 10 exponential 50ms..1s on 5xx, timeout, network
  }}
}}"#
    );
    std::fs::write(dir.join("relay.integ"), spec).unwrap();
    std::fs::write(dir.join("secrets.env"), format!("RELAY_SECRET={SECRET}\n")).unwrap();
    dir
}

async fn healthy(client: &reqwest::Client, port: u16) {
    for _ in 0..200 {
        if client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("integ serve did not come up");
}

/// xorshift, so that a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_at_random_moments_loses_no_event() {
    let sink = MockServer::start(vec![Route {
        method: "POST".into(),
        path: "/sink".into(),
        // A little latency, so that events are in flight when the server dies.
        responses: vec![
            MockResponse::json(201, json!({"ok": true})).after(Duration::from_millis(3)),
        ],
    }])
    .await
    .unwrap();
    let dir = relay_dir("crash", &sink.url());

    let port = free_port();
    integ::engine::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut child = spawn(&dir, port);
    healthy(&client, port).await;

    // Posters: each event is sent until it is answered 202, as a provider would redeliver.
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let posters: Vec<_> = (0..8)
        .map(|_| {
            let (client, next, accepted) = (client.clone(), next.clone(), accepted.clone());
            tokio::spawn(async move {
                loop {
                    let id = next.fetch_add(1, Ordering::SeqCst);
                    if id >= EVENTS {
                        return;
                    }
                    let body = json!({ "id": id }).to_string();
                    loop {
                        let sent = client
                            .post(format!("http://127.0.0.1:{port}/hooks/relay"))
                            .header("X-Signature", sign(body.as_bytes()))
                            .header("content-type", "application/json")
                            .body(body.clone())
                            .send()
                            .await;
                        if sent.is_ok_and(|r| r.status().as_u16() == 202) {
                            accepted.fetch_add(1, Ordering::SeqCst);
                            // A steady pace (about 250 a second over all posters), so that
                            // the kills fall while webhooks arrive and events run.
                            tokio::time::sleep(Duration::from_millis(30)).await;
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect();

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut kills = 0;
    while accepted.load(Ordering::SeqCst) < EVENTS && kills < 8 {
        tokio::time::sleep(Duration::from_millis(60 + rng.next() % 200)).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills += 1;
        child = spawn(&dir, port);
        healthy(&client, port).await;
    }
    for poster in posters {
        poster.await.unwrap();
    }
    // The last process drains the inbox.
    let started = Instant::now();
    let delivered = || {
        sink.requests()
            .iter()
            .map(|r| r.body["id"].as_u64().unwrap_or(u64::MAX))
            .collect::<HashSet<_>>()
    };
    while delivered().len() < EVENTS && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let requests = sink.requests();
    let mut per_key: HashMap<String, usize> = HashMap::new();
    for request in &requests {
        *per_key
            .entry(
                request
                    .header("idempotency-key")
                    .unwrap_or("none")
                    .to_string(),
            )
            .or_default() += 1;
    }
    let raw_duplicates = requests.len() - per_key.len();
    println!(
        "crash test: {EVENTS} events, {kills} SIGKILLs, {} delivered keys, {raw_duplicates} raw duplicate deliveries",
        per_key.len()
    );
    assert!(
        kills >= 3,
        "the test must actually kill the server ({kills} kills)"
    );
    let missing: Vec<usize> = (0..EVENTS)
        .filter(|id| !per_key.contains_key(&format!("evt-{id}")))
        .collect();
    assert!(missing.is_empty(), "lost events: {missing:?}");
    assert_eq!(per_key.len(), EVENTS, "no key outside the events");
}

/// `integ serve` on a relay whose sink is never called, up and healthy, in its folder.
async fn serving(name: &str) -> (PathBuf, Child) {
    let dir = relay_dir(name, "http://127.0.0.1:9");
    let port = free_port();
    let server = spawn(&dir, port);
    integ::engine::install_crypto_provider();
    healthy(&reqwest::Client::new(), port).await;
    (dir, server)
}

/// CPU time (user + system) a process has used, from `/proc`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses: utime and stime are the
    // 12th and 13th, in clock ticks (100 a second on Linux).
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idle_server_uses_next_to_no_cpu() {
    let (_, mut server) = serving("idle").await;
    let before = cpu_time(server.id());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_time(server.id()) - before;
    let _ = server.kill();
    let _ = server.wait();
    // Waiting for work is waiting, not asking the inbox in a loop.
    assert!(
        used < Duration::from_millis(200),
        "idle for 2 s, used {used:?} of CPU"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_server_on_the_same_state_file_refuses_to_start() {
    let (dir, mut first) = serving("second").await;
    // It would put back the first one's running events at its start and run them twice.
    let mut second = Command::new(env!("CARGO_BIN_EXE_integ"))
        .args(["serve", "relay.integ", "--secrets", "secrets.env"])
        .args(["--state", "state.db", "--listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut status = None;
    for _ in 0..100 {
        status = second.try_wait().unwrap();
        if status.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if status.is_none() {
        let _ = second.kill();
    }
    let second = second.wait_with_output().unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "it started");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another `integ serve` is using the state file `state.db`"),
        "{stderr}"
    );
    // The lock dies with its process, however it ends.
    let _ = first.kill();
    let _ = first.wait();
    let port = free_port();
    let mut again = spawn(&dir, port);
    healthy(&reqwest::Client::new(), port).await;
    let _ = again.kill();
    let _ = again.wait();
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_alerts_are_said_not_to_be_sent() {
    let dir = relay_dir("alerts", "http://127.0.0.1:9");
    let spec = std::fs::read_to_string(dir.join("relay.integ")).unwrap();
    let with_alert = spec.replacen(
        "integration relay {",
        "integration relay {\n  alert when dead_letters > 0 in 1h notify email \"ops@example.com\"",
        1,
    );
    std::fs::write(dir.join("relay.integ"), with_alert).unwrap();
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_integ"))
        .args([
            "serve",
            "relay.integ",
            "--secrets",
            "secrets.env",
            "--state",
            "state.db",
        ])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    integ::engine::install_crypto_provider();
    healthy(&reqwest::Client::new(), port).await;
    let _ = server.kill();
    let logs = String::from_utf8_lossy(&server.wait_with_output().unwrap().stderr).into_owned();
    // Nobody should count on a page that will not come.
    assert!(logs.contains("alerts are not sent yet"), "{logs}");
    assert!(
        logs.contains("integration=\"relay\"") || logs.contains("integration=relay"),
        "{logs}"
    );
}
