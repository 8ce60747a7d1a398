//! `integ serve`, end to end and offline: `cargo run --example serve_demo`.
//!
//! Serves `specs/github_releases.integ` as `integ serve` does (webhook, durable SQLite
//! inbox, workers), with its APIs (GitHub REST and GraphQL, Slack) answered by stand-ins on
//! 127.0.0.1 built from the spec's first test. Sends it a signed GitHub webhook, the same
//! one again, and a forged one, then prints what each got back, what reached the stand-in
//! Slack, and the run history kept in the state file.

use hmac::{KeyInit, Mac};
use integ::engine::Engine;
use integ::secrets::Secrets;
use integ::serve::{Service, router, work};
use integ::store::{Records, RunQuery, SqliteStore};
use integ::testing::StandIns;
use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SPEC: &str = "specs/github_releases.integ";
const EVENT: &str = "specs/fixtures/github-release-published.json";
/// The signing secret GitHub and integ share; every other secret is a placeholder.
const WEBHOOK_SECRET: &str = "demo-webhook-secret";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    integ::engine::install_crypto_provider();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan = Arc::new(load(&root.join(SPEC))?);
    let test = plan
        .tests
        .first()
        .ok_or("the spec has no test to take mocks from")?;
    let secrets = secrets(&plan);
    let stand_ins = StandIns::start(&plan, test, &secrets).await?;
    let engine = Engine::new(plan.clone(), secrets, stand_ins.options())?;

    let state = std::env::temp_dir().join("integ-serve-demo");
    let _ = std::fs::remove_dir_all(&state);
    let store = Arc::new(SqliteStore::open(&state.join("state.db"))?);
    let service = Service::new(vec![Arc::new(engine)], store.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let hook = format!(
        "http://{}{}",
        listener.local_addr()?,
        plan.webhooks.first().ok_or("the spec has no webhook")?.path
    );
    tokio::spawn(axum::serve(listener, router(service.clone(), &Default::default())).into_future());
    tokio::spawn(work(service.clone(), 2));
    println!(
        "integ serve: {SPEC} at {hook}, state in {}\n",
        state.display()
    );

    let body = std::fs::read(root.join(EVENT))?;
    let signature = sign(&body)?;
    for (what, signature) in [
        ("a signed release webhook", signature.clone()),
        ("the same delivery again", signature),
        ("a forged one", "sha256=00".into()),
    ] {
        let (status, answer) = post(&hook, &body, &signature).await?;
        println!("POST {what:<26} -> {status} {answer}");
    }

    // Slack is the last call of the run: wait for it.
    let slack = plan
        .connections
        .iter()
        .position(|c| c.name == "slack")
        .and_then(|index| stand_ins.servers.get(index))
        .ok_or("the spec has no slack connection")?;
    until(|| slack.request_count() > 0).await;
    println!("\nrequests each stand-in API received:");
    for (connection, server) in plan.connections.iter().zip(&stand_ins.servers) {
        for request in server.requests() {
            println!(
                "  {:<15} {} {}",
                connection.name, request.method, request.path
            );
        }
    }
    if let Some(message) = slack.requests().first() {
        println!("\nthe Slack message: {}", message.body["text"]);
    }
    // The run is recorded as it finishes, just after its last request.
    let all = RunQuery::default();
    until(|| store.runs(&all).is_ok_and(|runs| !runs.is_empty())).await;
    println!(
        "\nrun history (integ runs --state {}):",
        state.join("state.db").display()
    );
    for (_, run) in store.runs(&all)? {
        println!(
            "  {} {} in {} ms, {} requests",
            run.integration, run.outcome, run.duration_ms, run.attempts
        );
    }
    service.shut_down();
    Ok(())
}

/// The plan of a spec, which must lint clean.
fn load(path: &Path) -> Result<integ::plan::Plan, Box<dyn Error>> {
    let files = integ::lint::lint_paths(&[path.to_path_buf()])?;
    let model = files
        .into_iter()
        .next()
        .and_then(|f| f.model)
        .ok_or("the spec has errors: run `integ lint` on it")?;
    let base = path.parent().unwrap_or(Path::new("."));
    Ok(integ::plan::compile(&model, None, base)?)
}

/// The webhook secret for real, a placeholder for every credential: stand-ins need none.
fn secrets(plan: &integ::plan::Plan) -> Secrets {
    let value = |name: &str| match name {
        "GITHUB_WEBHOOK_SECRET" => WEBHOOK_SECRET.to_string(),
        _ => format!("<secret {name}>"),
    };
    let pairs: Vec<(&str, String)> = plan.secrets.all().map(|n| (n, value(n))).collect();
    Secrets::from_pairs(pairs.iter().map(|(name, value)| (*name, value.as_str())))
}

/// Waits up to five seconds for `done`.
async fn until(done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `X-Hub-Signature-256`, as GitHub computes it.
fn sign(body: &[u8]) -> Result<String, Box<dyn Error>> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes())?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

async fn post(url: &str, body: &[u8], signature: &str) -> Result<(u16, String), Box<dyn Error>> {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("X-GitHub-Event", "release")
        // The spec dedupes on the delivery's GUID: the demo sends one delivery twice.
        .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("X-Hub-Signature-256", signature)
        .body(body.to_vec())
        .send()
        .await?;
    Ok((response.status().as_u16(), response.text().await?))
}
