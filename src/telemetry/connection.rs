//! The handles of one connection's metrics: outbound calls, retries, rate limits, the
//! circuit breaker and the response cache.

use super::catalog::{
    CACHE_REQUESTS, CIRCUIT_BREAKER_STATE, HTTP_CLIENT_ERRORS, HTTP_CLIENT_IN_FLIGHT,
    HTTP_CLIENT_REQUEST_DURATION, HTTP_CLIENT_REQUESTS, HTTP_CLIENT_RESPONSE_BODY_BYTES,
    HTTP_CLIENT_RETRIES, OAUTH_TOKEN_REFRESHES, RATE_LIMIT_PAUSED_UNTIL, RATE_LIMIT_THROTTLED,
    RATE_LIMIT_WAIT,
};
use super::labels::{
    BreakerState, CacheResult, CodeClass, ErrorType, HttpMethod, Outcome, RetryReason,
    ThrottleSource,
};
use metrics::{Counter, Gauge, Histogram, Label};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One connection's handles, resolved when its engine is built.
#[derive(Debug)]
pub struct ConnectionMetrics {
    /// The labels naming the connection.
    labels: Vec<Label>,
    requests: Box<[Counter]>,
    /// By `HttpMethod`: only the methods the plan sends on this connection have a handle.
    durations: Box<[Option<Histogram>]>,
    in_flight: Gauge,
    body_bytes: Histogram,
    errors: Box<[Counter]>,
    retries: Box<[Counter]>,
    throttled: Box<[Counter]>,
    wait: Histogram,
    paused_until: Gauge,
    /// Only for a connection with a circuit breaker.
    breaker: Option<Box<[Gauge]>>,
    cache: Box<[Counter]>,
}

/// The labels naming a connection.
fn named(integration: &str, connection: &str) -> Vec<Label> {
    vec![
        Label::new("integration", integration.to_string()),
        Label::new("connection", connection.to_string()),
    ]
}

/// One handle per value of a closed set, each with `labels` and `name="value"`.
pub(super) fn family<T: Copy, H>(
    all: &[T],
    labels: &[Label],
    name: &'static str,
    text: impl Fn(T) -> &'static str,
    make: impl Fn(Vec<Label>) -> H,
) -> Box<[H]> {
    all.iter()
        .map(|value| {
            let mut labels = labels.to_vec();
            labels.push(Label::new(name, text(*value)));
            make(labels)
        })
        .collect()
}

impl ConnectionMetrics {
    /// Every series of connection `connection` of `integration`, at 0; a duration series
    /// for each of the `methods` its plan sends (7 methods would make 140 series, most
    /// never used).
    pub fn new(
        integration: &str,
        connection: &str,
        has_breaker: bool,
        methods: &[HttpMethod],
    ) -> Self {
        let labels = named(integration, connection);
        let counter = |metric: &'static str| move |l: Vec<Label>| metrics::counter!(metric, l);
        let breaker = has_breaker.then(|| {
            let gauges = family(
                BreakerState::ALL,
                &labels,
                "state",
                BreakerState::as_str,
                |l| metrics::gauge!(CIRCUIT_BREAKER_STATE.name, l),
            );
            gauges[BreakerState::Closed as usize].set(1.0);
            gauges
        });
        let durations = HttpMethod::ALL
            .iter()
            .map(|method| methods.contains(method).then(|| duration(&labels, *method)))
            .collect();
        Self {
            requests: family(
                CodeClass::ALL,
                &labels,
                "code_class",
                CodeClass::as_str,
                counter(HTTP_CLIENT_REQUESTS.name),
            ),
            durations,
            in_flight: metrics::gauge!(HTTP_CLIENT_IN_FLIGHT.name, labels.clone()),
            body_bytes: metrics::histogram!(HTTP_CLIENT_RESPONSE_BODY_BYTES.name, labels.clone()),
            errors: family(
                ErrorType::ALL,
                &labels,
                "error_type",
                ErrorType::as_str,
                counter(HTTP_CLIENT_ERRORS.name),
            ),
            retries: family(
                RetryReason::ALL,
                &labels,
                "reason",
                RetryReason::as_str,
                counter(HTTP_CLIENT_RETRIES.name),
            ),
            throttled: family(
                ThrottleSource::ALL,
                &labels,
                "source",
                ThrottleSource::as_str,
                counter(RATE_LIMIT_THROTTLED.name),
            ),
            wait: metrics::histogram!(RATE_LIMIT_WAIT.name, labels.clone()),
            paused_until: metrics::gauge!(RATE_LIMIT_PAUSED_UNTIL.name, labels.clone()),
            breaker,
            cache: family(
                CacheResult::ALL,
                &labels,
                "result",
                CacheResult::as_str,
                counter(CACHE_REQUESTS.name),
            ),
            labels,
        }
    }

    /// An attempt with `method` ended after `took`: answered with `status`, or not
    /// answered (`None`).
    pub fn attempted(&self, method: HttpMethod, status: Option<u16>, took: Duration) {
        self.requests[CodeClass::of(status) as usize].increment(1);
        match &self.durations[method as usize] {
            Some(histogram) => histogram.record(took.as_secs_f64()),
            // A method the plan was not seen to send: counted all the same, at the cost
            // of a registry lookup.
            None => duration(&self.labels, method).record(took.as_secs_f64()),
        }
        if status == Some(429) {
            self.throttled[ThrottleSource::Remote as usize].increment(1);
        }
    }

    /// An attempt is sent: counted in flight until the guard is dropped (answered, failed
    /// or abandoned).
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.increment(1.0);
        InFlight(&self.in_flight)
    }

    /// An answer's body was read: `bytes` long.
    pub fn answered(&self, bytes: usize) {
        self.body_bytes.record(bytes as f64);
    }

    /// A call got no answer, or was not sent (an open circuit).
    pub fn failed(&self, error: ErrorType) {
        self.errors[error as usize].increment(1);
    }

    pub fn retried(&self, reason: RetryReason) {
        self.retries[reason as usize].increment(1);
    }

    /// The time a call waited for the connection's limits; `held` when they held it back.
    pub fn waited(&self, took: Duration, held: bool) {
        self.wait.record(took.as_secs_f64());
        if held {
            self.throttled[ThrottleSource::Local as usize].increment(1);
        }
    }

    /// The connection is paused at the API's request for `wait` from now.
    pub fn paused_for(&self, wait: Duration) {
        let until = SystemTime::now()
            .checked_add(wait)
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0.0, |t| t.as_secs_f64());
        self.paused_until.set(until);
    }

    /// The circuit breaker is in `state` now.
    pub fn breaker(&self, state: BreakerState) {
        if let Some(gauges) = &self.breaker {
            for value in BreakerState::ALL {
                gauges[*value as usize].set(if *value == state { 1.0 } else { 0.0 });
            }
        }
    }

    pub fn cache(&self, result: CacheResult) {
        self.cache[result as usize].increment(1);
    }
}

fn duration(labels: &[Label], method: HttpMethod) -> Histogram {
    let mut labels = labels.to_vec();
    labels.push(Label::new("method", method.as_str()));
    metrics::histogram!(HTTP_CLIENT_REQUEST_DURATION.name, labels)
}

/// An attempt in flight; dropping it takes it out of `integ_http_client_in_flight_requests`.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Gauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// The refreshes of one OAuth2 client's token, named by the connection that set it up.
#[derive(Debug)]
pub struct TokenMetrics {
    refreshes: Box<[Counter]>,
}

impl TokenMetrics {
    pub fn new(integration: &str, connection: &str) -> Self {
        Self {
            refreshes: family(
                Outcome::ALL,
                &named(integration, connection),
                "result",
                Outcome::as_str,
                |l| metrics::counter!(OAUTH_TOKEN_REFRESHES.name, l),
            ),
        }
    }

    pub fn refreshed(&self, result: Outcome) {
        self.refreshes[result as usize].increment(1);
    }
}
