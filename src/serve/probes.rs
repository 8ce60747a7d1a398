//! `/livez` and `/readyz` (kube-apiserver style): machines read the status code, people add
//! `?verbose` and read one line per check (`[+]store ok`, `[-]draining failed: ...`).
//!
//! `/livez` answers whether restarting would help: the process answers and its dispatcher
//! has not died under it. `/readyz` whether the process can durably accept work: its specs
//! are planned (always, once it listens), its store took its last write and it is not
//! draining after SIGTERM. Third-party trouble (a paused connection, an open circuit) never
//! fails readiness, nor does the backlog it leaves (at `--max-pending` the webhooks answer
//! 503 with `Retry-After` themselves): the inbox holds events meanwhile, and failing would
//! take the process out of the load balancer for the senders' webhooks. Those show as
//! `[i]` lines. Both are cheap: atomics and memory, no store call.

use super::Service;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set when the dispatcher ends while the service is not stopping (it panicked): a
/// restart is what helps then.
#[derive(Debug, Default)]
pub(super) struct DispatcherDied(AtomicBool);

impl DispatcherDied {
    pub(super) fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// One line of a verbose answer.
enum Check {
    Passed(&'static str),
    Failed(&'static str, String),
    /// Information only: never changes the answer.
    Info(String),
}

pub(super) async fn livez(
    State(service): State<Arc<Service>>,
    RawQuery(query): RawQuery,
) -> Response {
    let dispatcher = if service.dispatcher_died.get() {
        Check::Failed("dispatcher", "stopped while serving; see the log".into())
    } else {
        Check::Passed("dispatcher")
    };
    answer("livez", vec![Check::Passed("ping"), dispatcher], query)
}

pub(super) async fn readyz(
    State(service): State<Arc<Service>>,
    RawQuery(query): RawQuery,
) -> Response {
    let mut checks = vec![Check::Passed("plan")];
    checks.push(if service.store_calls.failing() {
        Check::Failed("store", "the last write failed; see the log".into())
    } else {
        Check::Passed("store")
    });
    checks.push(if service.draining() {
        Check::Failed("draining", "shutting down".into())
    } else {
        Check::Passed("draining")
    });
    // A probe's reader runs this server: it may see the numbers.
    let refusing = if service.intake.overloaded(0) {
        ": webhooks are answered 503 with Retry-After"
    } else {
        ""
    };
    checks.push(Check::Info(format!(
        "backlog: {} events due of --max-pending {}{refusing}",
        service.intake.backlog(),
        service.intake.max_pending
    )));
    for engine in &service.engines {
        for held in engine.held_connections() {
            let integration = &engine.plan().name;
            if let Some(paused) = held.paused_for {
                checks.push(Check::Info(format!(
                    "connection {integration}/{} paused for {} s at the API's request",
                    held.name,
                    paused.as_secs().max(1)
                )));
            }
            if held.circuit_open {
                checks.push(Check::Info(format!(
                    "connection {integration}/{} circuit open",
                    held.name
                )));
            }
        }
    }
    answer("readyz", checks, query)
}

/// 200 when no check failed, else 503. The body is `ok` when it passed and nobody asked for
/// `?verbose`; otherwise every check on a line, then the verdict.
fn answer(probe: &str, checks: Vec<Check>, query: Option<String>) -> Response {
    let failed = checks.iter().any(|c| matches!(c, Check::Failed(..)));
    let status = if failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    if !failed && !verbose(query.as_deref()) {
        return (status, "ok").into_response();
    }
    let mut body = String::new();
    for check in &checks {
        let _ = match check {
            Check::Passed(name) => writeln!(body, "[+]{name} ok"),
            Check::Failed(name, reason) => writeln!(body, "[-]{name} failed: {reason}"),
            Check::Info(line) => writeln!(body, "[i]{line}"),
        };
    }
    let verdict = if failed { "failed" } else { "passed" };
    let _ = writeln!(body, "{probe} check {verdict}");
    (status, body).into_response()
}

/// Whether the query asks for `verbose` (`?verbose`, `?verbose=1`).
fn verbose(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes())
            .any(|(key, value)| key == "verbose" && value != "0" && value != "false")
    })
}
