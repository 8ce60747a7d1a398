//! The HTTP side of `integ serve`: each webhook is checked, then committed to the inbox
//! before it is answered `202`.

use super::health::webhook_name;
use super::{HttpOptions, Service, probes};
use crate::engine::Engine;
use crate::plan::WebhookPlan;
use crate::telemetry::labels::SignatureReason;
use crate::webhook::signature::{self, Incoming, SignatureError};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

/// Webhook bodies above this size are refused with a 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every request handler shares.
#[derive(Debug, Clone)]
struct Front {
    service: Arc<Service>,
    options: Arc<HttpOptions>,
}

impl axum::extract::FromRef<Front> for Arc<Service> {
    fn from_ref(front: &Front) -> Self {
        front.service.clone()
    }
}

/// The HTTP side: every webhook of every integration, and the probes: `/livez` (with
/// `/healthz`, its older name) and `/readyz`.
pub fn router(service: Arc<Service>, options: &HttpOptions) -> axum::Router {
    axum::Router::new()
        .route("/livez", axum::routing::get(probes::livez))
        .route("/healthz", axum::routing::get(probes::livez))
        .route("/readyz", axum::routing::get(probes::readyz))
        .fallback(webhook)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(Front {
            service,
            options: Arc::new(options.clone()),
        })
}

/// A 503 for a webhook that came while the backlog is at `--max-pending`, telling the sender
/// when to come back. Nothing is enqueued: the sender keeps the event and retries. (Any
/// sender may ask, signed or not, so the backlog's size is for the log, not the answer.)
fn overloaded(service: &Service) -> Response {
    let wait = service.intake.retry_after().as_secs();
    tracing::debug!(
        backlog = service.intake.backlog(),
        "webhook refused: overloaded"
    );
    let reason = format!("overloaded: the inbox is full (--max-pending); retry in {wait} s");
    let mut response = refuse(StatusCode::SERVICE_UNAVAILABLE, reason);
    response
        .headers_mut()
        .insert(axum::http::header::RETRY_AFTER, wait.into());
    response
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": reason.into() }))).into_response()
}

/// Reads the body within the read timeout (a body that trickles in is cut off with a 408),
/// then checks and commits it within the request timeout. Every answer is counted, by its
/// webhook and status, with the time it took.
async fn webhook(State(front): State<Front>, request: Request) -> Response {
    let started = Instant::now();
    let route = route(&front.service, request.method(), request.uri().path());
    let response = answer(&front, route, request).await;
    let status = response.status().as_u16();
    match route {
        Ok((engine, hook)) => front.service.engines[engine].metrics().webhooks[hook]
            .answered(status, started.elapsed()),
        Err(_) => front.service.unrouted.answered(status),
    }
    response
}

async fn answer(front: &Front, route: Result<Route, Unrouted>, request: Request) -> Response {
    let (read, check) = (front.options.read_timeout, front.options.request_timeout);
    let (method, uri, headers) = (
        request.method().clone(),
        request.uri().clone(),
        request.headers().clone(),
    );
    let body = match tokio::time::timeout(read, Bytes::from_request(request, &())).await {
        Ok(Ok(body)) => body,
        Ok(Err(rejection)) => return rejection.into_response(),
        Err(_) => {
            tracing::info!(
                path = uri.path(),
                "webhook refused: its body took longer than {read:?}"
            );
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body took longer than {read:?} to arrive"),
            );
        }
    };
    let handled = handle(front, route, method, uri, headers, body);
    match tokio::time::timeout(check, handled).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("webhook not answered within {check:?}; the sender may retry");
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("the request was not handled within {check:?}"),
            )
        }
    }
}

/// A webhook: its engine's index and its own among the engine's plan's webhooks.
type Route = (usize, usize);

/// Why no webhook takes a request.
#[derive(Debug, Clone, Copy)]
enum Unrouted {
    NotFound,
    /// A webhook has the path, for this method.
    MethodNotAllowed(crate::ast::Method),
}

/// The webhook a request's method and path name.
fn route(service: &Service, method: &Method, path: &str) -> Result<Route, Unrouted> {
    let mut other_method = None;
    for (e, engine) in service.engines.iter().enumerate() {
        for (w, hook) in engine.plan().webhooks.iter().enumerate() {
            if hook.path != path {
                continue;
            }
            if hook.method.as_str() == method.as_str() {
                return Ok((e, w));
            }
            other_method.get_or_insert(hook.method);
        }
    }
    Err(other_method.map_or(Unrouted::NotFound, Unrouted::MethodNotAllowed))
}

async fn handle(
    front: &Front,
    route: Result<Route, Unrouted>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let service = &front.service;
    if service.stopping() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let (engine, hook) = match route {
        Ok((engine, hook)) => (engine, hook),
        Err(Unrouted::NotFound) => {
            return refuse(
                StatusCode::NOT_FOUND,
                format!("no webhook at {}", uri.path()),
            );
        }
        Err(Unrouted::MethodNotAllowed(allowed)) => {
            return refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} takes {}", uri.path(), allowed.as_str()),
            );
        }
    };
    let metrics = &service.engines[engine].metrics().webhooks[hook];
    let engine = &service.engines[engine];
    let hook = &engine.plan().webhooks[hook];
    if service.intake.overloaded(0) {
        return overloaded(service);
    }
    let url = front.options.public_url.of(&uri, &headers);
    if let Err((reason, error)) = check_signature(engine, hook, &method, &url, &headers, &body) {
        metrics.signature_refused(reason);
        tracing::warn!(integration = %engine.plan().name, path = uri.path(), %error, "webhook refused: 401");
        return refuse(StatusCode::UNAUTHORIZED, error);
    }
    let payload: Json = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {error}"),
            );
        }
    };
    let trigger = webhook_name(hook.method, &hook.path);
    // A `when` or `each` that fails enqueues nothing and answers 500, so that the sender
    // delivers again (see `TriggerError`); the failure is logged and counted.
    let readable = hook.readable_headers(
        headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes())),
    );
    let keyed = match hook.events(
        &engine.plan().templates,
        payload,
        &readable,
        engine.secrets(),
    ) {
        Ok(keyed) => keyed,
        Err(error) => {
            service.trigger_failed(engine, &trigger, &error.to_string());
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the webhook's trigger failed on this body; see the server's log",
            );
        }
    };
    // Checked again with what `each` made of the body: one body may hold thousands.
    if service.intake.overloaded(keyed.events.len()) {
        return overloaded(service);
    }
    let filtered = keyed.filtered;
    match service
        .accept_webhook(
            (&engine.plan().name, &trigger),
            keyed.events,
            hook.retention,
        )
        .await
    {
        Ok(enqueued) => {
            let (accepted, duplicates) = (enqueued.accepted(), enqueued.duplicates());
            metrics.trigger.took(accepted, filtered, duplicates);
            tracing::debug!(integration = %engine.plan().name, path = uri.path(), accepted, duplicates, "webhook committed");
            match keyed.unkeyed {
                Some(unkeyed) => service.trigger_failed(engine, &trigger, &unkeyed_error(unkeyed)),
                None => service.trigger_succeeded(engine, &trigger),
            }
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "accepted": accepted, "duplicates": duplicates })),
            )
                .into_response()
        }
        Err(error) => {
            let error = format!("the inbox is unavailable: {error}");
            service.trigger_failed(engine, &trigger, &error);
            refuse(StatusCode::SERVICE_UNAVAILABLE, error)
        }
    }
}

/// The error of events enqueued without their dedupe key (see `Keyed::unkeyed`).
pub(super) fn unkeyed_error((count, reason): (usize, String)) -> String {
    format!(
        "{count} event(s) enqueued without a dedupe key, so a duplicate may run twice: {reason}"
    )
}

fn check_signature(
    engine: &Engine,
    hook: &WebhookPlan,
    method: &Method,
    url: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), (SignatureReason, String)> {
    let Some((preset, secret)) = &hook.signature else {
        return Ok(());
    };
    let scope = crate::plan::Scope::fixed(engine.secrets());
    let secret = secret
        .eval(&engine.plan().templates, &scope)
        .ok()
        .flatten()
        .map(|s| crate::plan::as_text(Some(&s)))
        .ok_or((
            SignatureReason::NoSecret,
            "the signing secret is not available".to_string(),
        ))?;
    let incoming = Incoming {
        method: method.as_str(),
        url,
        headers,
        body,
        now: SystemTime::now(),
    };
    signature::verify(preset, secret.as_bytes(), hook.tolerance, &incoming).map_err(|e| {
        let reason = match e {
            SignatureError::Missing(_) => SignatureReason::Missing,
            SignatureError::Malformed { .. } => SignatureReason::Malformed,
            SignatureError::Mismatch => SignatureReason::Mismatch,
            SignatureError::Stale(_) => SignatureReason::Stale,
        };
        (reason, e.to_string())
    })
}
