//! `integ serve` as a real process. Nothing is lost: it is killed with SIGKILL at
//! pseudo-random moments while 1 000 signed webhooks arrive, and restarted each time; every
//! event must reach the sink (at least once, under its idempotency key), and raw duplicates
//! are reported. Also: idle CPU, the state-file lock, and clients
//! that are slow or many on purpose.

#![allow(clippy::unwrap_used)]

mod common;

use common::serving::Serving;
use integ::mock::{MockResponse, MockServer, Route};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn sign(body: &[u8]) -> String {
    common::github_signature(SECRET, body)
}

const EVENTS: usize = 1_000;
const SECRET: &str = "crash-test-secret";

/// `integ serve` on the relay in `dir`, with `extra` arguments, once up.
async fn relay(dir: &Path, extra: &[&str]) -> Serving {
    relay_on(dir, 0, extra).await
}

/// The same on webhook port `port` (0: any), for a restart its senders keep posting to.
async fn relay_on(dir: &Path, port: u16, extra: &[&str]) -> Serving {
    let mut args = vec!["relay.integ", "--secrets", "secrets.env"];
    args.extend(["--state", "state.db", "--workers", "4"]);
    args.extend(extra);
    Serving::start_on(dir, port, &args).await
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

    let mut child = relay(&dir, &[]).await;
    let port = child.port;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

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
        child = relay_on(&dir, port, &[]).await;
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

/// `integ serve` on a relay whose sink is never called, up, in its folder.
async fn serving(name: &str) -> (PathBuf, Serving) {
    let dir = relay_dir(name, "http://127.0.0.1:9");
    let server = relay(&dir, &[]).await;
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
    let (dir, first) = serving("second").await;
    // It would put back the first one's running events at its start and run them twice.
    // The same file named as a URL is the same file, under the same lock.
    let mut second = Command::new(env!("CARGO_BIN_EXE_integ"))
        .args(["serve", "relay.integ", "--secrets", "secrets.env"])
        .args(["--state", "sqlite://state.db", "--listen", "127.0.0.1:0"])
        .args(["--admin-listen", "127.0.0.1:0"])
        .current_dir(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its exit is waited for (a minute at most), not timed.
    let mut status = None;
    let started = Instant::now();
    while status.is_none() && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = second.try_wait().unwrap();
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
    drop(first);
    relay(&dir, &[]).await;
}

/// A client that sends `opening`, then one more byte every `every`, reading whatever comes
/// back, until the server closes the connection. Returns how long it stayed connected (or
/// `None` if it still was after `limit`) and what the server answered.
async fn trickle(
    port: u16,
    opening: &[u8],
    every: Duration,
    limit: Duration,
) -> (Option<Duration>, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut answer = Vec::new();
    if !opening.is_empty() && stream.write_all(opening).await.is_err() {
        return (Some(started.elapsed()), String::new());
    }
    let mut buffer = [0u8; 1024];
    while started.elapsed() < limit {
        tokio::select! {
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => {
                    return (Some(started.elapsed()), String::from_utf8_lossy(&answer).into_owned());
                }
                Ok(n) => answer.extend_from_slice(&buffer[..n]),
            },
            () = tokio::time::sleep(every) => {
                if stream.write_all(b"x").await.is_err() {
                    return (Some(started.elapsed()), String::from_utf8_lossy(&answer).into_owned());
                }
            }
        }
    }
    (None, String::from_utf8_lossy(&answer).into_owned())
}

const HEADERS_BEGUN: &[u8] = b"POST /hooks/relay HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";

#[tokio::test(flavor = "multi_thread")]
async fn a_client_slow_to_send_its_headers_or_silent_is_cut_off() {
    let dir = relay_dir("slow-headers", "http://127.0.0.1:9");
    let mut server = relay(&dir, &["--read-timeout", "2s"]).await;
    let port = server.port;
    let limit = Duration::from_secs(30);
    let second = Duration::from_secs(1);
    let (slow, silent) = tokio::join!(
        trickle(port, HEADERS_BEGUN, second, limit),
        trickle(port, b"", limit, limit),
    );
    let _ = server.kill();
    let _ = server.wait();
    for (client, (connected, _)) in [("byte by byte", slow), ("silent", silent)] {
        let connected =
            connected.unwrap_or_else(|| panic!("{client}: still connected after {limit:?}"));
        // Cut at the read timeout, not before; the upper bound only says "not never".
        assert!(
            connected >= Duration::from_millis(1900),
            "{client}: cut after {connected:?}"
        );
        assert!(
            connected < Duration::from_secs(20),
            "{client}: cut after {connected:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_that_trickles_in_is_cut_off_with_a_408() {
    let dir = relay_dir("slow-body", "http://127.0.0.1:9");
    let mut server = relay(&dir, &["--read-timeout", "2s"]).await;
    let port = server.port;
    let opening = b"POST /hooks/relay HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{";
    let limit = Duration::from_secs(30);
    let (connected, answer) = trickle(port, opening, Duration::from_millis(500), limit).await;
    let _ = server.kill();
    let _ = server.wait();
    let connected = connected.unwrap_or_else(|| panic!("still connected after {limit:?}"));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("the body took longer than 2s"), "{answer}");
    assert!(
        connected >= Duration::from_millis(1900),
        "cut after {connected:?}"
    );
    assert!(
        connected < Duration::from_secs(20),
        "cut after {connected:?}"
    );
}

/// Open descriptors of a process (sockets included), from `/proc`.
fn open_files(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_cap_wait_and_cost_the_process_nothing() {
    let dir = relay_dir("capped", "http://127.0.0.1:9");
    let mut server = relay(&dir, &["--max-connections", "4", "--read-timeout", "3s"]).await;
    let port = server.port;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = open_files(server.id());
    // 100 half-open connections (within the kernel's listen backlog, which may be as
    // small as 128): the process holds 4 of them, the rest wait in the backlog.
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = open_files(server.id());
    drop(held);
    assert!(
        during <= before + 4,
        "{before} open files before, {during} with 100 clients"
    );

    // Four silent clients take every slot: the next request is served only once the read
    // timeout frees one.
    // Timed from their connecting: each is cut 3 s after it was accepted, no sooner.
    let connected = Instant::now();
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap(),
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let answer = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    let waited = connected.elapsed();
    let _ = server.kill();
    let _ = server.wait();
    println!("cap: {before} files before, {during} during, served after {waited:?}");
    assert_eq!(answer.unwrap().status().as_u16(), 200);
    assert!(
        waited >= Duration::from_secs(2),
        "served after {waited:?}, beside 4 held connections"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_with_a_slow_client_connected_drains_and_exits() {
    // The sink answers after 3 s, so an event is in flight when the signal comes.
    let sink = MockServer::start(vec![Route {
        method: "POST".into(),
        path: "/sink".into(),
        responses: vec![MockResponse::json(201, json!({"ok": true})).after(Duration::from_secs(3))],
    }])
    .await
    .unwrap();
    let dir = relay_dir("drain", &sink.url());
    let mut server = relay(&dir, &[]).await;
    let port = server.port;
    let client = reqwest::Client::new();
    let body = json!({ "id": 1 }).to_string();
    let posted = client
        .post(format!("http://127.0.0.1:{port}/hooks/relay"))
        .header("X-Signature", sign(body.as_bytes()))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 202);
    let started = Instant::now();
    while sink.requests().is_empty() && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sink.requests().len(), 1, "the event is in flight");
    let slow = tokio::spawn(trickle(
        port,
        HEADERS_BEGUN,
        Duration::from_secs(1),
        Duration::from_secs(60),
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;

    let signalled = Instant::now();
    server.terminate();
    let mut status = None;
    while status.is_none() && signalled.elapsed() < Duration::from_secs(60) {
        status = server.try_wait().unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stopped = signalled.elapsed();
    // Reaps it; kills it first if it is still running.
    let _ = server.kill();
    let _ = server.wait();
    slow.abort();
    assert!(
        status.is_some_and(|s| s.success()),
        "not stopped cleanly after {stopped:?}: {status:?}"
    );
    // The README promises a 30 s drain; a generous bound says it is kept.
    assert!(
        stopped < Duration::from_secs(40),
        "stopped after {stopped:?}"
    );
    // The drain was not cut short: the event in flight finished before the exit.
    let store = integ::store::SqliteStore::open(&dir.join("state.db")).unwrap();
    use integ::store::Records as _;
    assert_eq!(store.inbox_counts().unwrap(), [("done".to_string(), 1)]);
}

/// An event whose run never ends (here: a sink that never answers) stands for one whose run
/// kills the process. It used to be put back at every start and run again, forever; after
/// five runs the process stopped during, the next start dead-letters it, unrun.
#[tokio::test(flavor = "multi_thread")]
async fn an_event_the_process_keeps_stopping_during_is_dead_lettered_after_five_runs() {
    let sink = MockServer::start(vec![Route {
        method: "POST".into(),
        path: "/sink".into(),
        responses: vec![MockResponse::json(201, json!({})).after(Duration::from_secs(3600))],
    }])
    .await
    .unwrap();
    let dir = relay_dir("interrupted", &sink.url());
    let client = reqwest::Client::new();
    let body = json!({ "id": 1 }).to_string();
    for run in 1..=5 {
        let mut server = relay(&dir, &[]).await;
        let port = server.port;
        if run == 1 {
            let answer = client
                .post(format!("http://127.0.0.1:{port}/hooks/relay"))
                .header("X-Signature", sign(body.as_bytes()))
                .body(body.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status().as_u16(), 202);
        }
        // The run has reached the sink: it is in flight when the process dies.
        wait_for(&format!("run {run} to start"), || {
            sink.requests().len() >= run
        })
        .await;
        assert_eq!(sink.requests().len(), run, "run {run} started twice");
        server.kill().unwrap();
        server.wait().unwrap();
    }
    let mut server = relay(&dir, &[]).await;
    let letters = || {
        let listed = Command::new(env!("CARGO_BIN_EXE_integ"))
            .args(["dlq", "list", "--state", "state.db", "--format", "json"])
            .current_dir(&dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&listed.stdout).into_owned()
    };
    wait_for("the dead letter", || !letters().trim().is_empty()).await;
    let letters = letters();
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        letters.contains("the process stopped during 5 runs of this event"),
        "{letters}"
    );
    // Dead-lettered, not run a sixth time.
    assert_eq!(sink.requests().len(), 5);
}

/// While every worker waits on a slow API and more events wait for a worker, the
/// dispatcher has nothing to do until a run ends: it waits, it does not wake again and again
/// (on two cores, a loop there takes the CPU that intake and the runs need under load).
#[tokio::test(flavor = "multi_thread")]
async fn a_server_whose_workers_all_wait_on_a_slow_api_uses_next_to_no_cpu() {
    let sink = MockServer::start(vec![Route {
        method: "POST".into(),
        path: "/sink".into(),
        responses: vec![MockResponse::json(201, json!({"ok": true})).after(Duration::from_secs(8))],
    }])
    .await
    .unwrap();
    let dir = relay_dir("busy-waiting", &sink.url());
    let mut server = relay(&dir, &[]).await;
    let port = server.port;
    let client = reqwest::Client::new();
    for id in 0..12 {
        let body = json!({ "id": id }).to_string();
        let answer = client
            .post(format!("http://127.0.0.1:{port}/hooks/relay"))
            .header("X-Signature", sign(body.as_bytes()))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 202);
    }
    // The four workers each wait on the sink; eight events wait for one of them.
    wait_for("four runs at the sink", || sink.requests().len() >= 4).await;
    assert_eq!(sink.requests().len(), 4);
    // Past the half second after which an idle dispatcher looks at the store again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (before, woken) = (cpu_time(server.id()), wakeups(server.id()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_time(server.id()) - before;
    let woke = wakeups(server.id()) - woken;
    let _ = server.kill();
    let _ = server.wait();
    // Idle but for its four runs, it wakes a few dozen times in 2 s (timers, heartbeat,
    // checkpoints); a dispatcher that looks again at once wakes about every millisecond.
    assert!(
        woke < 300 && used < Duration::from_millis(200),
        "waiting 2 s on four slow runs with eight events queued: woken {woke} times, \
         {used:?} of CPU"
    );
}

/// How many times the threads of a process went to sleep and were woken, from `/proc`.
fn wakeups(pid: u32) -> u64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("status")).ok())
        .flat_map(|status| {
            status
                .lines()
                .filter_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
                .filter_map(|n| n.trim().parse::<u64>().ok())
                .collect::<Vec<_>>()
        })
        .sum()
}

/// `integ serve` polling a CRM's incremental search while rows keep coming (new ones, late
/// ones stamped before the mark, changed ones), killed with SIGKILL at pseudo-random
/// moments and restarted each time: every row's last version reaches the sink, and no
/// version is enqueued twice (a run cut by a kill may be sent again, under its key).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_while_polling_incrementally_skips_no_row_and_enqueues_none_twice() {
    use common::crm::Crm;
    let crm = Crm::start().await;
    let time = |second: u64| {
        let at = chrono::DateTime::parse_from_rfc3339("2020-06-01T10:00:00Z").unwrap()
            + chrono::Duration::seconds(second as i64);
        at.to_utc()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let mut rows: HashMap<i64, String> = HashMap::new();
    let mut put = |crm: &Crm, id: i64, at: String| {
        crm.put(id, &at);
        rows.insert(id, at);
    };
    for id in 1..=20 {
        put(&crm, id, time(id as u64));
    }
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("crash-incremental");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("crm.integ"), crm.spec()).unwrap();
    let args = ["crm.integ", "--state", "state.db", "--workers", "4"];
    let mut child = Serving::start(&dir, &args).await;

    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut latest = 20u64;
    for round in 0..60i64 {
        // A new row; every third round one committed late, stamped 20 s before the newest
        // (within the minute of look-back); every fourth a row changed again.
        latest += 1;
        put(&crm, 20 + round + 1, time(latest));
        if round % 3 == 0 {
            put(&crm, 1000 + round, time(latest - 20));
        }
        if round % 4 == 0 {
            latest += 1;
            put(&crm, 1 + round % 20, time(latest));
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
        if round % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(rng.next() % 300)).await;
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
            child = Serving::start(&dir, &args).await;
        }
    }
    let wanted: HashSet<(i64, String)> = rows.into_iter().collect();
    let started = Instant::now();
    let delivered = || crm.delivered().into_iter().collect::<HashSet<_>>();
    while !wanted.is_subset(&delivered()) && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let missing: Vec<_> = wanted.difference(&delivered()).cloned().collect();
    assert!(missing.is_empty(), "rows skipped: {missing:?}");

    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    let events: Vec<String> = db
        .prepare("SELECT event FROM inbox")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut enqueued: HashMap<(i64, String), usize> = HashMap::new();
    for event in &events {
        let event: serde_json::Value = serde_json::from_str(event).unwrap();
        let version = (event["id"].as_i64().unwrap(), event["updated"].to_string());
        *enqueued.entry(version).or_default() += 1;
    }
    let twice: Vec<_> = enqueued.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "enqueued twice: {twice:?}");
    let sent = crm.delivered().len();
    eprintln!(
        "{} row versions enqueued once each, {} sent ({} again after a kill)",
        enqueued.len(),
        sent,
        sent - delivered().len()
    );
}

/// An incremental poll whose `start` reads the clock (a backfill of the last 7 days) read
/// it again at every pass and took it when later than the stored mark: after an outage of
/// more than 7 days, the rows in between were skipped. Through the real binary: `start`
/// is read once, when no mark is stored, and stored at once; every later round, in this
/// process and the next, asks from the stored mark, and a mark older than `start` (a
/// server down 10 days) is kept.
#[tokio::test(flavor = "multi_thread")]
async fn a_start_that_reads_the_clock_is_read_once_and_a_stored_mark_always_wins() {
    let api = MockServer::start(vec![common::route(
        "GET",
        "/changes",
        vec![common::ok(json!({"items": []}))],
    )])
    .await
    .unwrap();
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("crash-since-start");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!(
        r#"integration changes {{
  connection api {{ base_url "{}" }}
  trigger poll api "/changes" {{
    every 100ms
    since $.updated rfc3339 {{ start "{{{{ now() | add_duration('-7d') }}}}" }}
    query {{ since = "{{{{ since }}}}" }}
    items $.items[*]
    dedupe "{{{{ event.id }}}}@{{{{ event.updated }}}}"
  }}
  step deliver = api POST "/deliver" {{ idempotency_key "d-{{{{ event.id }}}}" body {{ id = $.id }} }}
}}"#,
        api.url()
    );
    std::fs::write(dir.join("changes.integ"), spec).unwrap();
    let serve = || Serving::start(&dir, &["changes.integ", "--state", "state.db"]);
    let asked = || -> Vec<String> {
        api.requests()
            .iter()
            .filter_map(|r| r.query_param("since").map(String::from))
            .collect()
    };
    let rounds = |at_least: usize| async move {
        let started = Instant::now();
        while asked().len() < at_least && started.elapsed() < Duration::from_secs(60) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(asked().len() >= at_least, "only {:?}", asked());
    };
    let before = chrono::Utc::now() - chrono::Duration::days(7);
    let mut server = serve().await;
    rounds(3).await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    // A second later, `now()` has moved: a `start` read again would differ.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut server = serve().await;
    rounds(6).await;
    server.kill().unwrap();
    server.wait().unwrap();
    let first = asked();
    let start = chrono::DateTime::parse_from_rfc3339(&first[0]).unwrap();
    assert!(
        start >= before - chrono::Duration::seconds(1)
            && start <= before + chrono::Duration::seconds(20),
        "the start is 7 days before the first round: {start} against {before}"
    );
    assert!(
        first.iter().all(|s| *s == first[0]),
        "start read again: {first:?}"
    );

    // The server was down 10 days: its stored mark is older than `start` would be now.
    let down = (chrono::Utc::now() - chrono::Duration::days(10))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let db = rusqlite::Connection::open(dir.join("state.db")).unwrap();
    let moved = db
        .execute("UPDATE poll_positions SET mark = ?1", [&down])
        .unwrap();
    assert_eq!(moved, 1);
    drop(db);
    let seen = asked().len();
    let _server = serve().await;
    rounds(seen + 3).await;
    let after: Vec<String> = asked().split_off(seen);
    let at = |text: &str| chrono::DateTime::parse_from_rfc3339(text).unwrap();
    assert!(
        after.iter().all(|s| at(s) == at(&down)),
        "asked {after:?}, not from {down}"
    );
}

/// `per_page` under `integ serve`, killed with SIGKILL while the second `per_page` step
/// runs on page 2: the first step (a `POST` without a key) had sent page 2 already. The
/// resumed run goes on within page 2 from its checkpoint (its items and what its first
/// step returned), so that `POST` is never sent again; only the step in flight is, and
/// every page is handled.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_between_two_per_page_steps_resumes_within_the_page_and_sends_no_post_twice() {
    use integ::mock::Stub;
    let page = |n: u64, more: bool| {
        let mut stub = Stub::from(common::route(
            "GET",
            "/contacts",
            vec![common::ok(
                json!({"data": [{"id": 2 * n - 1}, {"id": 2 * n}], "more": more}),
            )],
        ));
        stub.query = vec![("page".into(), n.to_string())];
        stub
    };
    let api = MockServer::with_stubs(vec![
        page(1, true),
        page(2, true),
        page(3, false),
        common::route("POST", "/batches", vec![common::ok(json!({"ok": true}))]).into(),
        common::route(
            "POST",
            "/notify",
            vec![
                common::ok(json!({"ok": true})),
                // Page 2's notice hangs: the process is killed meanwhile.
                common::ok(json!({"ok": true})).after(Duration::from_secs(30)),
                common::ok(json!({"ok": true})),
            ],
        )
        .into(),
    ])
    .await
    .unwrap();
    let dir: PathBuf = Path::new(env!("CARGO_TARGET_TMPDIR")).join("crash-per-page");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let spec = format!(
        r#"integration export {{
  connection api {{ base_url "{}" }}
  trigger webhook "/hooks/export" {{ signature none }}
  step contacts = api GET "/contacts" {{
    items $.data[*]
    paginate page "page"
    has_more $.more
    max_pages 10
  }}
  step batch = api POST "/batches" {{
    per_page contacts
    body {{ ids = $contacts[*].id }}
  }}
  step notify = api POST "/notify" {{
    per_page contacts
    body {{ first = $contacts[0].id }}
  }}
}}"#,
        api.url()
    );
    std::fs::write(dir.join("export.integ"), spec).unwrap();
    let serve = || Serving::start(&dir, &["export.integ", "--state", "state.db"]);
    let sent = |path: &str| -> Vec<serde_json::Value> {
        api.requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == path)
            .map(|r| r.body)
            .collect()
    };
    let client = reqwest::Client::new();
    let mut server = serve().await;
    let answer = client
        .post(format!("{}/hooks/export", server.url))
        .json(&json!({"id": "export-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202);
    wait_for("page 2's notice", || sent("/notify").len() == 2).await;
    server.kill().unwrap(); // SIGKILL, with page 2's batch sent and its notice in flight
    server.wait().unwrap();
    assert_eq!(sent("/batches").len(), 2);

    let _server = serve().await;
    wait_for("page 3's notice", || sent("/notify").len() == 4).await;
    // The run ended: whatever it sent again, had it gone back to page 2, is in.
    let done = || {
        let state = rusqlite::Connection::open(dir.join("state.db")).unwrap();
        let status = state.query_row("SELECT status FROM inbox", [], |row| {
            row.get::<_, String>(0)
        });
        status.is_ok_and(|status| status == "done")
    };
    wait_for("the run's end", done).await;
    let batches = sent("/batches");
    assert_eq!(
        batches,
        vec![
            json!({"ids": [1, 2]}),
            json!({"ids": [3, 4]}),
            json!({"ids": [5, 6]})
        ],
        "each page's batch is sent once"
    );
    let firsts: Vec<_> = sent("/notify").iter().map(|b| b["first"].clone()).collect();
    assert_eq!(firsts, vec![json!(1), json!(3), json!(3), json!(5)]);
}

/// Waits (a minute at most: slow on a loaded machine, not stuck) for `done`.
async fn wait_for(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
