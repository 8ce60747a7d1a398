//! One HTTP client per connection: its base URL, credentials and default headers; requests
//! sent with the step's retry policy; responses decoded by content type, up to a size cap.

use super::auth::Auth;
use super::limits::Limits;
use super::report::AttemptReport;
use super::url::{UrlError, under_base};
use crate::ast::Method;
use crate::model::{Backoff, Encoding, RetryCondition, RetryPolicy};
use crate::telemetry::ConnectionMetrics;
use crate::telemetry::labels::{ErrorType, HttpMethod, RetryReason};
use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use serde_json::Value as Json;
use std::time::{Duration, Instant, SystemTime};

/// Responses larger than this are refused unless the engine is told otherwise.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 10 * 1024 * 1024;
pub use crate::model::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT};
const MAX_REDIRECTS: usize = 5;

/// A connection, ready to send.
#[derive(Debug)]
pub struct Connection {
    pub base: Url,
    pub client: reqwest::Client,
    pub auth: Auth,
    pub headers: Vec<(String, String)>,
    pub encoding: Encoding,
    pub timeout: Duration,
    pub max_response_bytes: usize,
    pub limits: Limits,
    pub cache: super::cache::Cache,
    pub metrics: std::sync::Arc<ConnectionMetrics>,
}

/// A request, fully evaluated.
#[derive(Debug, Clone)]
pub struct Request {
    /// A GraphQL call: pagination moves through its variables.
    pub graphql: bool,
    pub method: Method,
    pub url: Url,
    pub headers: Vec<(String, String)>,
    pub body: Option<Json>,
    pub encoding: Encoding,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Json,
    /// A response rule said the answer means "nothing here": no result, no items, no next
    /// page (its body is null).
    pub empty: bool,
}

/// What a response rule made of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Succeed,
    Empty,
    /// A failure that is not retried.
    Fail(String),
    /// A failure retried under the policy, after `after` when the answer named a wait.
    Retry {
        after: Option<Duration>,
        message: String,
    },
}

/// Reads an answer (of any status) and says what it means, or `None` to leave it to its
/// status: the step's response rules.
pub type Judge<'a> = dyn Fn(&Response) -> Option<Verdict> + Send + Sync + 'a;

/// An answer read whole, before it is judged: the start of its body is kept for an answer
/// that is not a success (errors, dead letters and the run's timeline show it; a success's
/// body may be customer data, which the history must not keep).
struct Answer {
    response: Response,
    excerpt: Option<String>,
}

/// One attempt as `guarded` made it.
struct Guarded {
    result: Result<Answer, HttpError>,
    /// Whether a rate limit slowed it down or refused it (a 429).
    limited: bool,
    /// Before it was sent, for the breaker and the connection's limits.
    waited: Duration,
    /// From sending to the answer read whole.
    duration: Duration,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum HttpError {
    #[error("status {status}: {excerpt}")]
    Status {
        status: u16,
        excerpt: String,
        headers: Box<HeaderMap>,
    },
    #[error("timed out")]
    Timeout,
    /// The connection was never made: the request cannot have been processed.
    #[error("connection failed: {0}")]
    Network(String),
    /// The connection broke after the request went out: it may have been processed.
    #[error("connection broken: {0}")]
    Transport(String),
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    Url(#[from] UrlError),
    #[error("circuit open: calls fail fast for {0:?}")]
    CircuitOpen(Duration),
    /// The API asked for a longer wait than the step may hold its worker for (its largest
    /// retry delay): not waited for here. `integ serve` puts the event back until then.
    #[error("{}the API asked to wait {asked:?} before the next call, more than this step's largest retry delay ({largest:?}): not waiting", status.map(|s| format!("status {s}: ")).unwrap_or_default())]
    WaitTooLong {
        /// The status that asked, when a response did (else a pause of the connection).
        status: Option<u16>,
        asked: Duration,
        largest: Duration,
    },
    /// A response rule failed the answer.
    #[error("status {status}: {message}")]
    Refused { status: u16, message: String },
    /// A response rule asked for the call to be made again.
    #[error("status {status}: {message}")]
    RuleRetry {
        status: u16,
        message: String,
        after: Option<Duration>,
    },
    #[error("{0}")]
    Other(String),
}

impl HttpError {
    pub fn status(&self) -> Option<u16> {
        match self {
            HttpError::Status { status, .. }
            | HttpError::Refused { status, .. }
            | HttpError::RuleRetry { status, .. } => Some(*status),
            HttpError::WaitTooLong { status, .. } => *status,
            _ => None,
        }
    }
}

/// What happened to one request, retries included.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub result: Result<Response, HttpError>,
    /// Each try in order, the last one's answer being `result`; never empty. Their texts
    /// are as the API sent them: the engine redacts them before they leave it.
    pub tries: Vec<AttemptReport>,
    /// Attempts slowed down by the connection's rate or a pause, or refused with a 429.
    pub rate_limited: u32,
    pub duration: Duration,
}

/// A header as the client sends it. The error names the header, never its value (which
/// may be a secret): reqwest would only say "builder error".
pub fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let parsed = crate::model::http::header_name(name)
        .ok_or_else(|| format!("`{name}` is not a valid HTTP header name"))?;
    let value = crate::model::http::header_value(value).ok_or_else(|| {
        format!("the value of header `{name}` is not a valid HTTP header value (a line break or another control character)")
    })?;
    Ok((parsed, value))
}

/// Builds the client of a connection: rustls, pooled, with the connect timeout, a
/// `User-Agent: integ/<version>`, and redirects followed only on the base's host and under
/// its path, at most 5.
pub fn client(base: &Url, connect_timeout: Option<Duration>) -> Result<reqwest::Client, HttpError> {
    let origin = base.clone();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            attempt.error("too many redirects")
        } else if under_base(&origin, attempt.url()).is_err() {
            attempt.error("redirect off the connection's host or base path refused")
        } else {
            attempt.follow()
        }
    });
    reqwest::Client::builder()
        .user_agent(concat!("integ/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
        .redirect(redirects)
        .build()
        .map_err(|e| HttpError::Other(e.to_string()))
}

impl Connection {
    /// Sends `request`, retrying as `policy` allows. A call that is not idempotent (a POST
    /// or PATCH without an idempotency key) is retried only when the failure proves the
    /// server did not process it: a 429, or a connection that was never made.
    ///
    /// `judge` (the step's response rules) reads each answer first: its verdict decides
    /// over the status.
    pub async fn send(
        &self,
        request: &Request,
        policy: &RetryPolicy,
        idempotent: bool,
        judge: Option<&Judge<'_>>,
    ) -> Exchange {
        let started = Instant::now();
        let mut tries = Vec::with_capacity(1);
        let mut rate_limited = 0;
        loop {
            let at = started.elapsed();
            let Guarded {
                result,
                limited,
                waited,
                duration,
            } = self.guarded(request, policy.max_delay).await;
            if limited {
                rate_limited += 1;
            }
            let answer = result.as_ref().ok().and_then(|a| a.excerpt.clone());
            let result = result.and_then(|answer| judged(answer, judge));
            let answer = answer.filter(|_| result.is_err());
            tries.push(AttemptReport {
                at,
                waited,
                duration,
                status: result
                    .as_ref()
                    .map_or_else(HttpError::status, |r| Some(r.status)),
                error: result.as_ref().err().and_then(unexplained),
                answer,
            });
            let attempts = u32::try_from(tries.len()).unwrap_or(u32::MAX);
            let done = |result, tries| Exchange {
                result,
                tries,
                rate_limited,
                duration: started.elapsed(),
            };
            let Err(error) = &result else {
                return done(result, tries);
            };
            if let HttpError::RuleRetry {
                after: Some(wait), ..
            } = error
            {
                // The API asked the connection to wait, as a 429's `Retry-After` does.
                self.limits.pause(*wait);
            }
            let retryable = retries(policy, error) && (idempotent || never_processed(error));
            if !retryable || attempts >= policy.attempts.get() {
                return done(result, tries);
            }
            let delay = match retry_delay(policy, attempts, error) {
                Ok(delay) => delay,
                Err(too_long) => return done(Err(too_long), tries),
            };
            let over_time = policy
                .max_elapsed
                .is_some_and(|max| started.elapsed().saturating_add(delay) > max);
            if over_time {
                return done(result, tries);
            }
            self.metrics.retried(retry_reason(error));
            tokio::time::sleep(delay).await;
        }
    }

    /// One attempt within the connection's limits: the breaker admits it, a slot and a rate
    /// token are taken (waiting for a pause of the connection at most `patience`), and the
    /// outcome teaches the limits.
    async fn guarded(&self, request: &Request, patience: Duration) -> Guarded {
        let began = Instant::now();
        let unsent = |result, limited| Guarded {
            result,
            limited,
            waited: began.elapsed(),
            duration: Duration::ZERO,
        };
        if let Some(Err(wait)) = self.limits.breaker().map(|b| b.admit()) {
            self.metrics.failed(ErrorType::CircuitOpen);
            self.limits.show_breaker();
            return unsent(Err(HttpError::CircuitOpen(wait)), false);
        }
        let slot = match self.limits.acquire(patience).await {
            Ok(slot) => slot,
            Err(asked) => {
                let refused = HttpError::WaitTooLong {
                    status: None,
                    asked,
                    largest: patience,
                };
                return unsent(Err(refused), true);
            }
        };
        let held_back = slot.rate_limited;
        let sent = Instant::now();
        let in_flight = self.metrics.in_flight();
        let result = self.attempt(request).await;
        drop(in_flight);
        drop(slot);
        let method = method_label(request.method);
        match &result {
            Ok(answer) => {
                let status = Some(answer.response.status);
                self.metrics.attempted(method, status, sent.elapsed())
            }
            Err(error) => {
                self.metrics.attempted(method, None, sent.elapsed());
                self.metrics.failed(error_type(error));
            }
        }
        let refused = matches!(&result, Ok(answer) if answer.response.status == 429);
        if let Ok(answer) = &result {
            let response = &answer.response;
            let headers = &response.headers;
            self.limits
                .observe(response.status, headers, retry_after(headers, true));
        }
        if let Some(breaker) = self.limits.breaker() {
            let failed = match &result {
                Ok(answer) => answer.response.status == 429 || answer.response.status >= 500,
                Err(HttpError::Timeout | HttpError::Network(_) | HttpError::Transport(_)) => true,
                Err(_) => false,
            };
            breaker.record(failed);
            self.limits.show_breaker();
        }
        Guarded {
            result,
            limited: held_back || refused,
            waited: sent.duration_since(began),
            duration: sent.elapsed(),
        }
    }

    async fn attempt(&self, request: &Request) -> Result<Answer, HttpError> {
        let (response, generation) = self.send_once(request).await?;
        if response.status().as_u16() == 401
            && let (Auth::OAuth2(oauth), Some(generation)) = (&self.auth, generation)
        {
            // The token was refused: fetch a new one (once, for all callers) and resend.
            oauth.invalidate(generation).await;
            let (response, _) = self.send_once(request).await?;
            return self.read(response).await;
        }
        self.read(response).await
    }

    /// The headers a request goes with, as sent (credentials aside, which `auth` adds):
    /// the connection's, the request's, and the body's `Content-Type` unless they set one.
    /// A dry run shows these.
    pub fn wire_headers(&self, request: &Request) -> Vec<(String, String)> {
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .chain(&request.headers)
            .cloned()
            .collect();
        let typed = headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(CONTENT_TYPE.as_str()));
        if request.body.is_some() && !typed {
            let content_type = content_type(request.encoding);
            headers.push(("Content-Type".into(), content_type.into()));
        }
        headers
    }

    async fn send_once(
        &self,
        request: &Request,
    ) -> Result<(reqwest::Response, Option<u64>), HttpError> {
        let method = reqwest::Method::from_bytes(request.method.as_str().as_bytes())
            .map_err(|e| HttpError::Other(e.to_string()))?;
        let mut builder = self
            .client
            .request(method, request.url.clone())
            .timeout(request.timeout.unwrap_or(self.timeout));
        for (name, value) in self.wire_headers(request) {
            let (name, value) = header(&name, &value).map_err(HttpError::Other)?;
            builder = builder.header(name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(encode_body(request.encoding, body));
        }
        let (builder, generation) = self
            .auth
            .apply(builder, &self.client)
            .await
            .map_err(|e| HttpError::Other(e.to_string()))?;
        let response = builder.send().await.map_err(classify)?;
        Ok((response, generation))
    }

    /// Reads the body up to the size cap and decodes it: JSON when the content type says
    /// so (or it parses), else text; an answer that is not a success keeps an excerpt.
    async fn read(&self, mut response: reqwest::Response) -> Result<Answer, HttpError> {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = read_capped(&mut response, self.max_response_bytes).await?;
        self.metrics.answered(bytes.len());
        let body = decode(&headers, &bytes);
        Ok(Answer {
            excerpt: (!is_success(status)).then(|| excerpt(&bytes)),
            response: Response {
                status,
                headers,
                body,
                empty: false,
            },
        })
    }
}

/// A spec's method as the metrics label it.
pub(super) fn method_label(method: Method) -> HttpMethod {
    match method {
        Method::Get => HttpMethod::Get,
        Method::Post => HttpMethod::Post,
        Method::Put => HttpMethod::Put,
        Method::Patch => HttpMethod::Patch,
        Method::Delete => HttpMethod::Delete,
        Method::Head => HttpMethod::Head,
        Method::Options => HttpMethod::Options,
    }
}

fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// An answer as the step sees it: the verdict of its rules when one matches, else a
/// success for a `2xx` and a status error for anything else.
fn judged(answer: Answer, judge: Option<&Judge<'_>>) -> Result<Response, HttpError> {
    let Answer { response, excerpt } = answer;
    let status = response.status;
    match judge.and_then(|judge| judge(&response)) {
        Some(Verdict::Succeed) => Ok(response),
        Some(Verdict::Empty) => Ok(Response {
            body: Json::Null,
            empty: true,
            ..response
        }),
        Some(Verdict::Fail(message)) => Err(HttpError::Refused { status, message }),
        Some(Verdict::Retry { after, message }) => Err(HttpError::RuleRetry {
            status,
            message,
            after,
        }),
        None if is_success(status) => Ok(response),
        None => Err(HttpError::Status {
            status,
            excerpt: excerpt.unwrap_or_default(),
            headers: Box::new(response.headers),
        }),
    }
}

/// A stored answer as the step that reads it judges it: `None` when that step's rules do
/// not take it as a success (it is then asked for anew, and judged as it comes).
pub(super) fn accepted(response: Response, judge: Option<&Judge<'_>>) -> Option<Response> {
    let answer = Answer {
        response,
        excerpt: None,
    };
    judged(answer, judge).ok()
}

/// A response's body, refused past `cap` bytes without reading the rest.
pub(super) async fn read_capped(
    response: &mut reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, HttpError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(classify)? {
        if bytes.len().saturating_add(chunk.len()) > cap {
            return Err(HttpError::TooLarge(cap));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// What an attempt that got no answer met, for `integ_http_client_errors_total`.
fn error_type(error: &HttpError) -> ErrorType {
    match error {
        HttpError::Timeout => ErrorType::Timeout,
        HttpError::Network(_) => ErrorType::Connect,
        HttpError::Transport(_) => ErrorType::Broken,
        HttpError::TooLarge(_) => ErrorType::TooLarge,
        HttpError::Url(_) => ErrorType::Redirect,
        HttpError::CircuitOpen(_) => ErrorType::CircuitOpen,
        _ => ErrorType::Other,
    }
}

/// Why a failed attempt is sent again, for `integ_http_client_retries_total`.
fn retry_reason(error: &HttpError) -> RetryReason {
    match error.status() {
        Some(429) => RetryReason::Status429,
        Some(500..=599) => RetryReason::Status5xx,
        Some(_) => RetryReason::Status4xx,
        None => match error {
            HttpError::Timeout => RetryReason::Timeout,
            HttpError::Network(_) | HttpError::Transport(_) => RetryReason::Network,
            _ => RetryReason::Other,
        },
    }
}

fn classify(error: reqwest::Error) -> HttpError {
    let (timeout, connect, redirect, builder) = (
        error.is_timeout(),
        error.is_connect(),
        error.is_redirect(),
        error.is_builder(),
    );
    let detail = error.without_url().to_string();
    if timeout {
        HttpError::Timeout
    } else if connect {
        HttpError::Network(detail)
    } else if redirect {
        HttpError::Other(format!("redirect refused: {detail}"))
    } else if builder {
        HttpError::Other(detail)
    } else {
        HttpError::Transport(detail)
    }
}

fn decode(headers: &HeaderMap, bytes: &[u8]) -> Json {
    if bytes.is_empty() {
        return Json::Null;
    }
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let looks_json = content_type.contains("json") || content_type.is_empty();
    match serde_json::from_slice(bytes) {
        Ok(json) if looks_json || content_type.starts_with("text/") => json,
        _ => Json::String(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// The first 512 bytes of a body, for errors and dead letters.
pub fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned();
    if bytes.len() > 512 {
        format!("{text}…")
    } else {
        text
    }
}

/// What a failed try's status and answer do not say already: a rule's message, a timeout,
/// a broken connection.
fn unexplained(error: &HttpError) -> Option<String> {
    match error {
        HttpError::Status { .. } => None,
        other => Some(other.to_string()),
    }
}

/// Whether `policy` retries this failure.
fn retries(policy: &RetryPolicy, error: &HttpError) -> bool {
    policy.on.iter().any(|condition| match (condition, error) {
        (RetryCondition::Status(code), HttpError::Status { status, .. }) => code == status,
        (RetryCondition::Class(class), HttpError::Status { status, .. }) => {
            status / 100 == u16::from(*class)
        }
        (RetryCondition::Timeout, HttpError::Timeout) => true,
        // A rule asked for it: the answer said the call may be made again.
        (_, HttpError::RuleRetry { .. }) => true,
        (RetryCondition::Network, HttpError::Network(_) | HttpError::Transport(_)) => true,
        // An open circuit is a failure the request never reached the server with.
        (_, HttpError::CircuitOpen(_)) => true,
        _ => false,
    })
}

/// A 429 is a refusal before any work; a failed connection never reached the server. A
/// `retry` rule proves a refusal only on an answer that is one (a `2xx` whose body refuses,
/// as Slack's `ratelimited`, or a 429): a 5xx may come after the work was done, so there
/// the rule retries only what is idempotent, as the policy does.
fn never_processed(error: &HttpError) -> bool {
    match error {
        HttpError::Status { status: 429, .. }
        | HttpError::Network(_)
        | HttpError::CircuitOpen(_) => true,
        HttpError::RuleRetry { status, .. } => *status == 429 || is_success(*status),
        _ => false,
    }
}

/// The wait before attempt `attempts + 1`: the backoff (with full jitter when asked), or
/// the server's `Retry-After` when it names one. A server's wait longer than the maximum
/// delay is an error: the step does not hold its worker that long.
fn retry_delay(
    policy: &RetryPolicy,
    attempts: u32,
    error: &HttpError,
) -> Result<Duration, HttpError> {
    if let HttpError::CircuitOpen(wait) = error {
        return Ok((*wait).min(policy.max_delay));
    }
    // The wait a rule read from the answer, bounded like `Retry-After`.
    if let HttpError::RuleRetry {
        status,
        after: Some(asked),
        ..
    } = error
    {
        return if *asked <= policy.max_delay {
            Ok(*asked)
        } else {
            Err(HttpError::WaitTooLong {
                status: Some(*status),
                asked: *asked,
                largest: policy.max_delay,
            })
        };
    }
    if policy.honor_retry_after
        && let HttpError::Status {
            status, headers, ..
        } = error
        && let Some(asked) = retry_after(headers.as_ref(), *status == 429)
    {
        return if asked <= policy.max_delay {
            Ok(asked)
        } else {
            Err(HttpError::WaitTooLong {
                status: Some(*status),
                asked,
                largest: policy.max_delay,
            })
        };
    }
    let step = attempts.saturating_sub(1);
    let backoff = match policy.backoff {
        Backoff::Constant => policy.initial_delay,
        Backoff::Linear => policy.initial_delay.saturating_mul(attempts),
        Backoff::Exponential => policy
            .initial_delay
            .saturating_mul(2u32.saturating_pow(step)),
    };
    let capped = backoff.min(policy.max_delay);
    Ok(if policy.jitter {
        capped.mul_f64(fastrand::f64())
    } else {
        capped
    })
}

/// A header's wait, written as `Retry-After` is: whole seconds or an HTTP date.
pub(super) fn header_wait(headers: &HeaderMap, name: &str) -> Option<Duration> {
    let value = headers.get(name)?.to_str().ok()?;
    whole_seconds(value).or_else(|| {
        let date = httpdate::parse_http_date(value).ok()?;
        Some(date.duration_since(SystemTime::now()).unwrap_or_default())
    })
}

/// `Retry-After` in seconds or as an HTTP date; else, for a 429 (`limited`), the rate-limit
/// reset headers, which APIs such as GitHub send on every response.
fn retry_after(headers: &HeaderMap, limited: bool) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(wait) = header_wait(headers, RETRY_AFTER.as_str()) {
        return Some(wait);
    }
    if !limited {
        return None;
    }
    ["ratelimit-reset", "x-ratelimit-reset"]
        .into_iter()
        .find_map(|name| {
            let value = whole_seconds(text(name)?)?;
            // A reset is either seconds from now or a Unix time; a value past 2001 is a time.
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?;
            Some(if value.as_secs() > 1_000_000_000 {
                value.saturating_sub(now)
            } else {
                value
            })
        })
}

/// A number of seconds as headers write it (digits only); one too large for a `u64` is the
/// longest wait there is rather than none.
fn whole_seconds(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.parse().map_or(Duration::MAX, Duration::from_secs))
}

/// The `Content-Type` of a body in `encoding`.
fn content_type(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Json => "application/json",
        Encoding::Form => "application/x-www-form-urlencoded",
    }
}

/// A body as it goes on the wire: the one encoding shared by requests and by what a dry
/// run shows.
pub fn encode_body(encoding: Encoding, body: &Json) -> String {
    match encoding {
        Encoding::Json => body.to_string(),
        Encoding::Form => {
            let mut form = form_urlencoded::Serializer::new(String::new());
            form.extend_pairs(form_pairs(body));
            form.finish()
        }
    }
}

/// A JSON body as form fields, nested keys as `a[b]=` and list items as `a[0]=`.
pub fn form_pairs(body: &Json) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    flatten(None, body, &mut pairs);
    pairs
}

fn flatten(key: Option<String>, value: &Json, pairs: &mut Vec<(String, String)>) {
    let nested = |name: &str| match &key {
        Some(key) => format!("{key}[{name}]"),
        None => name.to_string(),
    };
    match value {
        Json::Object(fields) => fields
            .iter()
            .for_each(|(name, v)| flatten(Some(nested(name)), v, pairs)),
        Json::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| flatten(Some(nested(&i.to_string())), v, pairs)),
        Json::Null => pairs.push((key.unwrap_or_default(), String::new())),
        Json::String(text) => pairs.push((key.unwrap_or_default(), text.clone())),
        other => pairs.push((key.unwrap_or_default(), other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_form_fields_use_brackets() {
        let body = json!({"amount": 100, "metadata": {"order": "A-1"}, "expand": ["customer"], "paid": true});
        assert_eq!(
            form_pairs(&body),
            [
                ("amount".to_string(), "100".to_string()),
                ("expand[0]".into(), "customer".into()),
                ("metadata[order]".into(), "A-1".into()),
                ("paid".into(), "true".into()),
            ]
        );
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_reset_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers, false), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(120));
        headers.insert(RETRY_AFTER, later.parse().unwrap());
        let after = retry_after(&headers, false).unwrap();
        assert!(
            after > Duration::from_secs(110) && after <= Duration::from_secs(120),
            "{after:?}"
        );
        let mut reset = HeaderMap::new();
        reset.insert("x-ratelimit-reset", "3".parse().unwrap());
        assert_eq!(retry_after(&reset, true), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after(&reset, false),
            None,
            "a reset header alone says nothing on a 5xx"
        );
    }

    #[test]
    fn huge_and_odd_waits_parse_without_overflow() {
        let header = |name: &str, value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
            headers
        };
        let max = u64::MAX.to_string();
        let asked = |name, value| retry_after(&header(name, value), true);
        assert_eq!(
            asked("retry-after", &max),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(
            asked("retry-after", "99999999999999999999999"),
            Some(Duration::MAX)
        );
        assert_eq!(asked("retry-after", "-1"), None);
        assert_eq!(asked("retry-after", "1.5"), None);
        let far = asked("retry-after", "Fri, 31 Dec 9999 23:59:59 GMT").unwrap();
        assert!(far > Duration::from_secs(200 * 365 * 86_400), "{far:?}");
        let past = asked("retry-after", "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(past, Some(Duration::ZERO));
        let huge = |value| {
            asked("x-ratelimit-reset", value).is_some_and(|d| d > Duration::from_secs(1 << 60))
        };
        assert!(huge(&max) && huge("99999999999999999999999"));
        assert_eq!(
            asked("x-ratelimit-reset", "1000000001"),
            Some(Duration::ZERO),
            "a reset in the past"
        );
        assert_eq!(
            asked("ratelimit-reset", "30"),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn a_wait_longer_than_the_largest_delay_is_refused_not_cut() {
        let policy = RetryPolicy::default();
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, u64::MAX.to_string().parse().unwrap());
        let error = HttpError::Status {
            status: 429,
            excerpt: String::new(),
            headers: Box::new(headers),
        };
        let refused = retry_delay(&policy, 1, &error).unwrap_err();
        assert!(matches!(
            refused,
            HttpError::WaitTooLong {
                status: Some(429),
                ..
            }
        ));
        let message = refused.to_string();
        assert!(message.contains("18446744073709551615s"), "{message}");
        assert!(message.contains("30s"), "{message}");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        let error = HttpError::Timeout;
        let delays: Vec<Duration> = (1..=8)
            .map(|n| retry_delay(&policy, n, &error).unwrap())
            .collect();
        assert_eq!(delays[0], Duration::from_millis(500));
        assert_eq!(delays[1], Duration::from_secs(1));
        assert_eq!(delays[2], Duration::from_secs(2));
        assert_eq!(delays[7], Duration::from_secs(30));
    }
}
