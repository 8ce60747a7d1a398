//! What a run did: each step's outcome and requests, for the run summary.

use crate::model::Outcome;
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub integration: String,
    pub outcome: RunOutcome,
    pub steps: Vec<StepReport>,
    #[serde(with = "millis")]
    pub duration: Duration,
    /// In a dry run, the step where a real run would have stopped: a dry run goes on, to
    /// show every step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real_run_stops_at: Option<String>,
    /// When the run began, so that the history places each request on its timeline.
    #[serde(skip)]
    pub began: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    Succeeded,
    Failed,
    DeadLettered,
    /// Stopped before a step because the API asked for a wait longer than the step may hold
    /// a worker (with `Options::defer_long_waits`): run the event again after `wait`, from
    /// that step.
    Deferred {
        wait: Duration,
    },
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Deferred { .. } => "deferred",
        }
    }
}

impl Serialize for RunOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub name: String,
    #[serde(serialize_with = "outcome_name")]
    pub outcome: Outcome,
    pub requests: Vec<RequestReport>,
    /// Why the step failed (a step skipped by `on_error skip` failed too); secrets redacted.
    pub error: Option<String>,
    /// Why a step that did not fail was skipped or left undone: its `when` was false, or a
    /// dry run lacked the response it would read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The fallback that stood in for this step.
    pub fallback: Option<String>,
    /// What a step that succeeded should still say (a pagination cut at the page limit);
    /// secrets redacted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One request as sent (or, in a dry run, as it would be sent); secrets redacted.
#[derive(Debug, Clone, Serialize)]
pub struct RequestReport {
    pub method: String,
    pub url: String,
    pub status: Option<u16>,
    #[serde(with = "millis")]
    pub duration: Duration,
    pub attempts: u32,
    /// Each attempt of a request that was sent, in order (the first and last 10 of more
    /// than 20); secrets redacted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tries: Vec<AttemptReport>,
    /// When the first attempt began (none in a dry run or from the cache).
    #[serde(skip)]
    pub began: Option<Instant>,
    /// Attempts slowed down by a rate limit (the connection's rate or a pause an API asked
    /// for) or refused with a 429.
    #[serde(skip_serializing_if = "is_zero")]
    pub rate_limited: u32,
    /// For a cached step: whether the response came from the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_hit: Option<bool>,
    /// Shown in dry runs: the headers and body that would be sent, the body as the text
    /// that would go on the wire (JSON or form-encoded, as its `Content-Type` says).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<(String, String)>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// In a dry run, the response the engine made up, since it sent nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invented: Option<Invented>,
}

/// One attempt of a request; secrets redacted. The run history keeps it as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct AttemptReport {
    /// When it began, counted from the request's first attempt (backoff included).
    #[serde(with = "millis")]
    pub at: Duration,
    /// How long it waited for the connection's limits before it was sent.
    #[serde(with = "millis")]
    pub waited: Duration,
    #[serde(with = "millis")]
    pub duration: Duration,
    pub status: Option<u16>,
    /// Why it failed, when its status does not say it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The start of the answer's body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

/// A response a dry run made up for a request it did not send, so that later steps have
/// something to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invented {
    pub status: u16,
    /// The test whose mock of this request gave the response; `None` when no mock
    /// matched and the response is an empty `null` body.
    pub mock_of_test: Option<String>,
}

impl AttemptReport {
    /// The attempt with its texts passed through `redact`.
    pub(super) fn redacted(self, redact: impl Fn(&str) -> String) -> Self {
        Self {
            error: self.error.as_deref().map(&redact),
            answer: self.answer.as_deref().map(&redact),
            ..self
        }
    }
}

impl StepReport {
    /// Whether the step failed, whatever its policy made of the failure: a step that fell
    /// back or was skipped after an error failed; one skipped because its `when` was false
    /// did not (it carries no error).
    pub fn failed(&self) -> bool {
        match self.outcome {
            Outcome::Succeeded => false,
            Outcome::Skipped => self.error.is_some(),
            Outcome::Failed | Outcome::DeadLettered | Outcome::FellBack => true,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Durations as whole milliseconds, as the history stores them.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(u64::try_from(duration.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        u64::deserialize(deserializer).map(Duration::from_millis)
    }
}

fn outcome_name<S: serde::Serializer>(outcome: &Outcome, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(outcome.as_str())
}
