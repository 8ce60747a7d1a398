//! A real HTTP server on 127.0.0.1 that answers declared routes and records every request:
//! the stand-in for an API in `integ test`, and in integ's own tests.
//!
//! A route answers its responses in order and repeats the last one, so a test can declare
//! "503, then 201". A request no route matches gets a 404 that names it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value as Json;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

#[derive(Debug, Clone)]
pub struct Route {
    pub method: String,
    /// The full request path, without the query.
    pub path: String,
    pub responses: Vec<MockResponse>,
}

#[derive(Debug, Clone)]
pub struct MockResponse {
    pub status: u16,
    pub body: Json,
    pub headers: Vec<(String, String)>,
    /// How long the server waits before answering.
    pub delay: std::time::Duration,
}

impl MockResponse {
    pub fn json(status: u16, body: Json) -> Self {
        Self {
            status,
            body,
            headers: Vec::new(),
            delay: std::time::Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn after(mut self, delay: std::time::Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    /// JSON when it parses, form fields as nested objects, else the text.
    pub body: Json,
    /// The body as it arrived.
    pub raw_body: String,
    pub at: Instant,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query_param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Default)]
struct Shared {
    routes: Vec<Route>,
    /// How many times each route answered.
    served: Vec<usize>,
    log: Vec<Recorded>,
}

/// A running mock server; it stops when dropped.
#[derive(Debug)]
pub struct MockServer {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MockServer {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start(routes: Vec<Route>) -> std::io::Result<Self> {
        let served = vec![0; routes.len()];
        let shared = Arc::new(Mutex::new(Shared {
            routes,
            served,
            log: Vec::new(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = axum::Router::new()
            .fallback(answer)
            .with_state(shared.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
            let _ = serve.await;
        });
        Ok(Self {
            addr,
            shared,
            stop: Some(stop),
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests arrived so far, without copying them.
    pub fn request_count(&self) -> usize {
        self.shared.lock().map(|s| s.log.len()).unwrap_or_default()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.shared
            .lock()
            .map(|s| s.log.clone())
            .unwrap_or_default()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn answer(
    State(shared): State<Arc<Mutex<Shared>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let recorded = Recorded {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri
            .query()
            .map(|q| url_pairs(q.as_bytes()))
            .unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: decode(&headers, &body),
        raw_body: String::from_utf8_lossy(&body).into_owned(),
        at: Instant::now(),
    };
    let path = recorded.path.clone();
    let Some(reply) = record(&shared, recorded) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "mock server state poisoned",
        )
            .into_response();
    };
    match reply {
        Some(reply) => {
            tokio::time::sleep(reply.delay).await;
            respond(reply)
        }
        None => {
            let message = format!("no mock for {method} {path}");
            (
                StatusCode::NOT_FOUND,
                axum::Json(serde_json::json!({ "error": message })),
            )
                .into_response()
        }
    }
}

/// Logs the request and picks the route's next response; `None` if the state is poisoned,
/// `Some(None)` when no route matches. Not async: the lock is never held across a wait.
fn record(shared: &Mutex<Shared>, recorded: Recorded) -> Option<Option<MockResponse>> {
    let mut shared = shared.lock().ok()?;
    let route = shared.routes.iter().position(|r| {
        r.method.eq_ignore_ascii_case(&recorded.method)
            && crate::engine::url::same_path(&r.path, &recorded.path)
    });
    let reply = route.and_then(|index| {
        let served = shared.served[index];
        shared.served[index] += 1;
        let responses = &shared.routes[index].responses;
        responses.get(served).or(responses.last()).cloned()
    });
    shared.log.push(recorded);
    Some(reply)
}

fn respond(reply: MockResponse) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = if reply.body.is_null() {
        status.into_response()
    } else {
        (status, axum::Json(reply.body)).into_response()
    };
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(name.as_bytes()),
            axum::http::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

fn decode(headers: &HeaderMap, body: &[u8]) -> Json {
    if body.is_empty() {
        return Json::Null;
    }
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let mut object = Json::Object(serde_json::Map::new());
        for (key, value) in url_pairs(body) {
            nest(&mut object, &key, Json::String(value));
        }
        return object;
    }
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Json::String(String::from_utf8_lossy(body).into_owned()))
}

/// Puts a form field `a[b][0]` at `a.b.0` of `object`: the reverse of the engine's form
/// encoding, so that a test's `where` reads form bodies like JSON ones.
fn nest(object: &mut Json, key: &str, value: Json) {
    let mut segments = key.split('[').map(|s| s.trim_end_matches(']'));
    let mut slot = object;
    let mut segment = segments.next().unwrap_or_default();
    for next in segments {
        if !slot.is_object() {
            *slot = Json::Object(serde_json::Map::new());
        }
        let Json::Object(fields) = slot else { return };
        slot = fields.entry(segment.to_string()).or_insert(Json::Null);
        segment = next;
    }
    if !slot.is_object() {
        *slot = Json::Object(serde_json::Map::new());
    }
    if let Json::Object(fields) = slot {
        fields.insert(segment.to_string(), value);
    }
}

fn url_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
