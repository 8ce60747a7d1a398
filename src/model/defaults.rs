//! What the engine does when a spec leaves a setting out, in one place: the engine applies
//! these values, and `integ doc` shows the same ones, marked as defaults.

use super::{CircuitBreaker, Connection, FailureRatio};
use serde::Serialize;
use std::time::Duration;

/// A request takes at most this long unless the step or connection says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A breaker declared without a count opens after this many failures in a row.
pub const BREAKER_FAILURES: u32 = 5;
/// A breaker declared without a cool-down stays open this long.
pub const BREAKER_COOLDOWN: Duration = Duration::from_secs(30);
/// A breaker declared by ratio without `min_calls` judges no fewer calls than this.
pub const BREAKER_MIN_CALLS: u32 = 10;

/// A setting's value in force, and whether it is the engine's default (not in the spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective<T> {
    pub value: T,
    pub default: bool,
}

impl<T> Effective<T> {
    pub fn new(value: T, default: bool) -> Self {
        Self { value, default }
    }

    pub fn set(value: T) -> Self {
        Self::new(value, false)
    }

    pub fn default_of(value: T) -> Self {
        Self::new(value, true)
    }

    /// The value written, else `default`.
    pub fn of(written: Option<T>, default: T) -> Self {
        match written {
            Some(value) => Self::set(value),
            None => Self::default_of(default),
        }
    }

    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Effective<U> {
        Effective::new(f(self.value), self.default)
    }
}

impl Connection {
    pub fn timeout_in_force(&self) -> Effective<Duration> {
        Effective::of(self.timeout, DEFAULT_TIMEOUT)
    }

    pub fn connect_timeout_in_force(&self) -> Effective<Duration> {
        Effective::of(self.connect_timeout, DEFAULT_CONNECT_TIMEOUT)
    }
}

impl CircuitBreaker {
    /// The failed calls in a row that open it; none for a breaker declared by ratio alone,
    /// which does not also trip on a run of failures.
    pub fn failures_in_force(&self) -> Option<Effective<u32>> {
        match (self.failures, &self.ratio) {
            (Some(n), _) => Some(Effective::set(n.get())),
            (None, Some(_)) => None,
            (None, None) => Some(Effective::default_of(BREAKER_FAILURES)),
        }
    }

    pub fn cooldown_in_force(&self) -> Effective<Duration> {
        Effective::of(self.cooldown, BREAKER_COOLDOWN)
    }
}

impl FailureRatio {
    pub fn min_calls_in_force(&self) -> Effective<u32> {
        Effective::of(self.min_calls, BREAKER_MIN_CALLS)
    }
}
