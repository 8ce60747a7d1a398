//! A real HTTP server on 127.0.0.1 that answers declared routes and records every request:
//! the stand-in for an API in `integ test`, and in integ's own tests.
//!
//! A route answers its responses in order and repeats the last one, so a test can declare
//! "503, then 201". A `Stub` is a route with more to match (query parameters, a condition
//! on the body) that may refuse a request after its last response. When several match a
//! request, the most specific answers (the most query parameters, plus one for a body
//! condition); two equally specific ones are a mistake of the test. A request that no stub
//! answers gets a 404 that names it and the closest stub, with why it did not match, and is
//! kept as a problem (`MockServer::problems`) for the test to fail on.

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

/// A route with more to match, as `integ test` declares its mocks.
#[derive(Debug, Clone)]
pub struct Stub {
    pub route: Route,
    /// Query parameters the request must carry; it may carry more.
    pub query: Vec<(String, String)>,
    /// A condition on the request's body (decoded as `Recorded::body`).
    pub body: Option<BodyCondition>,
    /// After the last response: repeat it, or refuse the request as one too many.
    pub repeats: bool,
    /// How messages name the stub (`mock api GET "/orders?page=2"`).
    pub label: String,
}

impl From<Route> for Stub {
    fn from(route: Route) -> Self {
        let label = format!("{} {}", route.method, route.path);
        Self {
            route,
            query: Vec::new(),
            body: None,
            repeats: true,
            label,
        }
    }
}

/// A test of a request body, shared by the server's tasks.
#[derive(Clone)]
pub struct BodyCondition(pub Arc<dyn Fn(&Json) -> bool + Send + Sync>);

impl std::fmt::Debug for BodyCondition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BodyCondition")
    }
}

impl Stub {
    /// Query parameters and a body condition each make a stub more specific.
    fn specificity(&self) -> usize {
        self.query.len() + usize::from(self.body.is_some())
    }

    /// Why the stub does not match `request`, in words; `None` when it does.
    fn mismatch(&self, request: &Recorded) -> Option<String> {
        let route = &self.route;
        if !route.method.eq_ignore_ascii_case(&request.method) {
            return Some(format!("it is a {} mock", route.method));
        }
        if !crate::engine::url::same_path(&route.path, &request.path) {
            return Some(format!("its path is {}", route.path));
        }
        for (name, value) in &self.query {
            let sent: Vec<&str> = request
                .query
                .iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .collect();
            if !sent.contains(&value.as_str()) {
                let got = match sent.as_slice() {
                    [] => "the request has none".to_string(),
                    sent => format!("the request has {name}={}", sent.join(",")),
                };
                return Some(format!("it wants query {name}={value}, {got}"));
            }
        }
        match &self.body {
            Some(condition) if !(condition.0)(&request.body) => Some(format!(
                "its `where` is false for the body {}",
                request.body
            )),
            _ => None,
        }
    }

    /// How close the stub comes to matching `request`: same method, same path, how many
    /// query parameters agree.
    fn closeness(&self, request: &Recorded) -> (bool, bool, usize) {
        let route = &self.route;
        let agreeing = self
            .query
            .iter()
            .filter(|pair| request.query.contains(pair))
            .count();
        (
            crate::engine::url::same_path(&route.path, &request.path),
            route.method.eq_ignore_ascii_case(&request.method),
            agreeing,
        )
    }
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
    stubs: Vec<Stub>,
    /// How many times each stub answered.
    served: Vec<usize>,
    log: Vec<Recorded>,
    /// Requests the stubs could not answer as declared, in words.
    problems: Vec<String>,
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
        Self::with_stubs(routes.into_iter().map(Stub::from).collect()).await
    }

    /// Starts a server answering `stubs`, on a free port of 127.0.0.1.
    pub async fn with_stubs(stubs: Vec<Stub>) -> std::io::Result<Self> {
        let served = vec![0; stubs.len()];
        let shared = Arc::new(Mutex::new(Shared {
            stubs,
            served,
            log: Vec::new(),
            problems: Vec::new(),
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

    /// Each request the stubs could not answer as declared (no stub matched, two matched
    /// equally, a stub's responses were used up), in words, in order.
    pub fn problems(&self) -> Vec<String> {
        self.shared
            .lock()
            .map(|s| s.problems.clone())
            .unwrap_or_default()
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
    let Some(reply) = record(&shared, recorded) else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "mock server state poisoned",
        )
            .into_response();
    };
    match reply {
        Ok(reply) => {
            tokio::time::sleep(reply.delay).await;
            respond(reply)
        }
        Err(message) => (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({ "error": message })),
        )
            .into_response(),
    }
}

/// Logs the request and picks the next response of the stub that answers it; `None` if the
/// state is poisoned, `Some(Err)` with why no stub answers. Not async: the lock is never
/// held across a wait.
fn record(shared: &Mutex<Shared>, recorded: Recorded) -> Option<Result<MockResponse, String>> {
    let mut shared = shared.lock().ok()?;
    let reply = pick(&mut shared, &recorded);
    if let Err(problem) = &reply {
        shared.problems.push(problem.clone());
    }
    shared.log.push(recorded);
    Some(reply)
}

/// The response for `request`: from the most specific stub that matches it.
fn pick(shared: &mut Shared, request: &Recorded) -> Result<MockResponse, String> {
    let shown = shown_request(request);
    let matching: Vec<usize> = (0..shared.stubs.len())
        .filter(|&i| shared.stubs[i].mismatch(request).is_none())
        .collect();
    let Some(best) = matching
        .iter()
        .map(|&i| shared.stubs[i].specificity())
        .max()
    else {
        let closest = shared
            .stubs
            .iter()
            .max_by_key(|stub| stub.closeness(request))
            .map(|stub| {
                let why = stub.mismatch(request).unwrap_or_default();
                format!("; the closest, {}, does not match: {why}", stub.label)
            })
            .unwrap_or_default();
        return Err(format!("no mock answers {shown}{closest}"));
    };
    let tied: Vec<usize> = matching
        .into_iter()
        .filter(|&i| shared.stubs[i].specificity() == best)
        .collect();
    let [index] = tied[..] else {
        let labels: Vec<&str> = tied
            .iter()
            .map(|&i| shared.stubs[i].label.as_str())
            .collect();
        return Err(format!(
            "{shown} matches {} equally: tell them apart with a query parameter or `where`",
            labels.join(" and ")
        ));
    };
    let served = shared.served[index];
    shared.served[index] = served.saturating_add(1);
    let stub = &shared.stubs[index];
    let responses = &stub.route.responses;
    match responses.get(served) {
        Some(response) => Ok(response.clone()),
        None if stub.repeats => responses
            .last()
            .cloned()
            .ok_or_else(|| format!("{} has no response", stub.label)),
        None => Err(format!(
            "{shown} is request {} to {}, which has {} answers: one more than the test expects",
            served.saturating_add(1),
            stub.label,
            responses.len()
        )),
    }
}

/// `GET /orders?page=2`, as messages show a request.
fn shown_request(request: &Recorded) -> String {
    if request.query.is_empty() {
        return format!("{} {}", request.method, request.path);
    }
    let shown = request.query.iter().map(|(name, value)| {
        if crate::secrets::is_credential_name(name) {
            (name.as_str(), crate::secrets::REDACTED)
        } else {
            (name.as_str(), value.as_str())
        }
    });
    let query: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(shown)
        .finish();
    format!("{} {}?{query}", request.method, request.path)
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
