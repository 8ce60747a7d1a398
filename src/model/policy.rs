//! Retry rules and what happens after the last attempt.

use std::num::NonZeroU32;
use std::time::Duration;

/// How a failed call is retried. Fields not declared take the documented defaults of
/// `RetryPolicy::default`, except `jitter`, which a declared retry turns on only when it
/// says `jitter`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: NonZeroU32,
    pub backoff: Backoff,
    pub initial_delay: Duration,
    /// At least `initial_delay`.
    pub max_delay: Duration,
    pub jitter: bool,
    pub on: Vec<RetryCondition>,
    pub max_elapsed: Option<Duration>,
    /// Whether `Retry-After` and rate-limit reset headers set the delay (capped by
    /// `max_delay`).
    pub honor_retry_after: bool,
}

impl Default for RetryPolicy {
    /// The default policy: 3 attempts, exponential backoff from 500 ms to 30 s with full
    /// jitter, on 429, 502, 503, 504, timeouts and connection errors, honouring
    /// `Retry-After`.
    fn default() -> Self {
        Self {
            attempts: NonZeroU32::MIN.saturating_add(2),
            backoff: Backoff::Exponential,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter: true,
            on: RetryCondition::DEFAULTS.to_vec(),
            max_elapsed: None,
            honor_retry_after: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    Constant,
    Linear,
    Exponential,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryCondition {
    Status(u16),
    /// `5xx`: every status whose first digit is this one.
    Class(u8),
    Timeout,
    /// The connection failed before a response: refused, reset, DNS.
    Network,
}

impl RetryCondition {
    pub const DEFAULTS: &[RetryCondition] = &[
        Self::Status(429),
        Self::Status(502),
        Self::Status(503),
        Self::Status(504),
        Self::Timeout,
        Self::Network,
    ];
}

/// What happens to an event after a step's last attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum OnError {
    /// Keep the event with its full context for inspection and replay (the default:
    /// nothing is lost).
    #[default]
    DeadLetter,
    /// Continue with the next step; this step's result is null.
    Skip,
    /// Stop the run as failed.
    Fail,
    /// Run the named fallback step; its result becomes this step's.
    Fallback(String),
}
