//! The records contract: what the store keeps beside the inbox (dead letters, the run
//! history, poll positions, the triggers' health, the engine's sealed refresh tokens), and
//! the records themselves, redacted before they are kept.

use super::{
    AlertChange, AlertCounts, AlertKey, AlertState, Position, StoreError, TriggerHealth, now,
};
use crate::engine::{AttemptReport, RefreshTokens, RunReport, StepReport};
use crate::secrets::Secrets;
use serde::Serialize;
use std::time::{Duration, Instant};

/// What every backend keeps beside the inbox, off the hot path: read by the operations
/// commands, written by `integ run`, the poll, health and pruning tasks of `integ serve`.
/// The engine's keeper of rotated refresh tokens is one of them (sealed by the engine:
/// a backend keeps the bytes it is given).
pub trait Records: RefreshTokens + Send + Sync {
    /// Stores a dead letter and returns its id.
    fn dead_letter(&self, letter: &DeadLetter) -> Result<i64, StoreError>;
    /// Every open dead letter (neither replayed nor discarded), oldest first, with its id.
    fn dead_letters(&self) -> Result<Vec<(i64, DeadLetter)>, StoreError> {
        self.letters(&LetterQuery::default())
    }
    /// The dead letters `query` asks for, oldest first, each with its id.
    fn letters(&self, query: &LetterQuery) -> Result<Vec<(i64, DeadLetter)>, StoreError>;
    /// What is kept of schedule trigger `trigger`: its last occurrence handled, whether its
    /// last run is pending or running, and the occurrences waiting for it.
    fn schedule_state(
        &self,
        integration: &str,
        trigger: &str,
    ) -> Result<Option<super::ScheduleState>, StoreError>;
    /// The stored position of poll trigger `trigger`.
    fn position(&self, integration: &str, trigger: &str) -> Result<Option<Position>, StoreError>;
    /// Inbox events by status, for tests and operations.
    fn inbox_counts(&self) -> Result<Vec<(String, usize)>, StoreError>;
    /// Each integration's unfinished events, the oldest one's arrival and its dead
    /// letters, by integration: what `integ serve` exports as gauges every few seconds.
    fn backlog(&self) -> Result<Vec<Backlog>, StoreError>;
    /// Moves open dead letters back to the inbox (all of them when `ids` is `None`), to
    /// run again; returns the ids replayed.
    fn replay(&self, ids: Option<&[i64]>) -> Result<Vec<i64>, StoreError> {
        let query = LetterQuery {
            ids: ids.map(<[i64]>::to_vec),
            ..LetterQuery::default()
        };
        self.replay_matching(&query, None)
    }
    /// Puts the open dead letters `query` matches back in the inbox, each as a new event
    /// whose run names the letter it replays; the letters are kept, marked replayed as that
    /// event (with `reason`, a bulk replay's name). Returns the ids replayed.
    fn replay_matching(
        &self,
        query: &LetterQuery,
        reason: Option<&str>,
    ) -> Result<Vec<i64>, StoreError>;
    /// Marks the open dead letters `query` matches discarded, with `reason`; they are kept
    /// as a record of it. Returns the ids discarded.
    fn discard(&self, query: &LetterQuery, reason: &str) -> Result<Vec<i64>, StoreError>;
    /// Deletes every dead letter; returns how many there were.
    fn purge(&self) -> Result<usize, StoreError>;
    /// Forgets what is older than `retention`: dedupe keys first seen before, finished
    /// events (and checkpoints an older version left them), runs, and dead letters settled
    /// (replayed or discarded) before. Pending and running events, and open dead letters,
    /// are kept whatever their age.
    fn prune(&self, retention: Duration) -> Result<Pruned, StoreError>;
    /// Writes the health of these triggers, replacing what was kept of each.
    fn save_triggers(&self, triggers: &[TriggerHealth]) -> Result<(), StoreError>;
    /// The health of every trigger, by integration and trigger.
    fn triggers(&self) -> Result<Vec<TriggerHealth>, StoreError>;
    /// Adds a run to the history; returns its id.
    fn record_run(&self, run: &RunRecord) -> Result<i64, StoreError>;
    /// The runs `query` asks for, newest first, each with its id.
    fn runs(&self, query: &RunQuery) -> Result<Vec<(i64, RunRecord)>, StoreError>;
    /// What links run `id` to others: the dead letter it left, the run whose dead letter it
    /// replays, the runs that replay its dead letter.
    fn run_links(&self, id: i64) -> Result<RunLinks, StoreError>;
    /// The runs of `integration` started at or after `since`, counted by outcome in
    /// buckets of `width` seconds (each named by its start), oldest first.
    fn run_counts(
        &self,
        integration: &str,
        since: i64,
        width: std::num::NonZeroU32,
    ) -> Result<Vec<RunCount>, StoreError>;
    /// When the last run of `integration` that succeeded started.
    fn last_success(&self, integration: &str) -> Result<Option<i64>, StoreError>;
    /// What the runs of `integration` started at or after `since` (seconds since the Unix
    /// epoch) count for each alert metric.
    fn alert_counts(&self, integration: &str, since: i64) -> Result<AlertCounts, StoreError>;
    /// Every alert's kept state.
    fn alerts(&self) -> Result<Vec<AlertState>, StoreError>;
    /// Keeps what became of an alert: its status changed, or a status was notified (each
    /// leaves the other as it was).
    fn save_alert(&self, alert: AlertKey<'_>, change: AlertChange<'_>) -> Result<(), StoreError>;
    /// Forgets the state of an alert (one no longer declared).
    fn forget_alert(&self, alert: AlertKey<'_>) -> Result<(), StoreError>;
    /// Keeps the state of `alert` under the key `to` of the same integration instead.
    fn rename_alert(&self, alert: AlertKey<'_>, to: &str) -> Result<(), StoreError>;
}

/// Runs of an integration with one outcome, in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunCount {
    /// The bucket's start, seconds since the Unix epoch.
    pub bucket: i64,
    pub outcome: String,
    pub runs: u64,
}

/// What links a run to others (see `Records::run_links`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RunLinks {
    /// The dead letter this run left.
    pub dead_letter: Option<i64>,
    /// The run whose dead letter this run replays (`RunRecord::replay_of` names the letter).
    pub replay_of_run: Option<i64>,
    /// The runs that replay this run's dead letter, oldest first.
    pub replayed_by: Vec<i64>,
}

/// Which dead letters to read, replay or discard (the default: every open one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LetterQuery {
    /// Only these.
    pub ids: Option<Vec<i64>>,
    pub integration: Option<String>,
    pub step: Option<String>,
    /// Only those that failed at or after this time (seconds since the Unix epoch).
    pub since: Option<i64>,
    /// Only those that failed before this time (seconds since the Unix epoch).
    pub until: Option<i64>,
    pub states: LetterStates,
    /// Only those newer than dead letter `after` (the next page of a list).
    pub after: Option<i64>,
    /// At most this many, the oldest; all when `None`.
    pub limit: Option<std::num::NonZeroUsize>,
}

/// Dead letters by what became of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LetterStates {
    /// Neither replayed nor discarded: the ones to look at.
    #[default]
    Open,
    Replayed,
    Discarded,
    All,
}

impl LetterStates {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Replayed => "replayed",
            Self::Discarded => "discarded",
            Self::All => "all",
        }
    }
}

impl std::str::FromStr for LetterStates {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        [Self::Open, Self::Replayed, Self::Discarded, Self::All]
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("`{text}` is not one of open, replayed, discarded, all"))
    }
}

/// What became of a dead letter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LetterState {
    #[default]
    Open,
    /// Put back in the inbox as event `replay_event`, whose run names this letter.
    Replayed {
        settled_at: i64,
        replay_event: i64,
        /// A bulk replay's name.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Dropped, and why; the letter is kept as the record of it.
    Discarded { settled_at: i64, reason: String },
}

/// The outcome of a run, as the history keeps it: what `--outcome` and the page filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Succeeded,
    Failed,
    DeadLettered,
    Skipped,
    Deferred,
}

impl RunStatus {
    pub const ALL: [Self; 5] = [
        Self::Succeeded,
        Self::Failed,
        Self::DeadLettered,
        Self::Skipped,
        Self::Deferred,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Skipped => "skipped",
            Self::Deferred => "deferred",
        }
    }
}

impl std::str::FromStr for RunStatus {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| {
                format!(
                    "`{text}` is not one of succeeded, failed, dead_lettered, skipped, deferred"
                )
            })
    }
}

/// One integration's part of the inbox and of the dead letters (see `Records::backlog`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    pub integration: String,
    /// Waiting to run, deferred ones included.
    pub pending: usize,
    pub running: usize,
    /// When the oldest pending or running event came in (Unix seconds).
    pub oldest: Option<i64>,
    pub dead_letters: usize,
}

/// Which runs of the history to read (the default: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// Only those of this integration.
    pub integration: Option<String>,
    /// Only those that failed or dead-lettered.
    pub failed_only: bool,
    /// Only those with this outcome.
    pub outcome: Option<RunStatus>,
    /// Only those of events from this trigger (as `integ triggers` names it).
    pub trigger: Option<String>,
    /// Only those started at or after this time (seconds since the Unix epoch).
    pub since: Option<i64>,
    /// Only those started before this time (seconds since the Unix epoch).
    pub until: Option<i64>,
    /// Only those older than run `before` (the next page of a list).
    pub before: Option<i64>,
    /// Only this one.
    pub id: Option<i64>,
    /// At most this many, the newest; all when `None`.
    pub limit: Option<std::num::NonZeroUsize>,
}

/// What a `prune` forgot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub dedupe_keys: usize,
    pub events: usize,
    pub runs: usize,
    /// Dead letters replayed or discarded before the retention.
    pub dead_letters: usize,
}

/// An event that could not complete, with everything needed to inspect and replay it.
/// Secrets are redacted from every field before it is stored.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DeadLetter {
    pub integration: String,
    pub step: String,
    pub event: serde_json::Value,
    /// `METHOD URL` of each request the step made, the URL without its query.
    pub requests: Vec<String>,
    /// The last response status, when there was a response.
    pub status: Option<u16>,
    /// The error, with the response excerpt when the server answered.
    pub error: String,
    pub attempts: u32,
    /// Seconds since the Unix epoch.
    pub failed_at: i64,
    /// The run that left it, when the history has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<i64>,
    #[serde(flatten)]
    pub state: LetterState,
}

impl DeadLetter {
    /// The dead letter of a run that ended at `step`.
    pub fn from_run(
        report: &RunReport,
        step: &StepReport,
        event: &serde_json::Value,
        secrets: &Secrets,
    ) -> Self {
        let event = secrets.redact_json(event);
        let last = step.requests.last();
        Self {
            integration: report.integration.clone(),
            step: step.name.clone(),
            event,
            requests: step
                .requests
                .iter()
                .map(|r| format!("{} {}", r.method, kept_url(&r.url, secrets)))
                .collect(),
            status: last.and_then(|r| r.status),
            error: secrets.redact(step.error.as_deref().unwrap_or("")),
            attempts: step.requests.iter().map(|r| r.attempts).sum(),
            failed_at: now(),
            run: None,
            state: LetterState::Open,
        }
    }
}

/// A dead letter's event and requests as the store keeps them: JSON text.
#[derive(Debug)]
pub(super) struct LetterText {
    pub(super) event: String,
    pub(super) requests: String,
}

impl DeadLetter {
    /// Its event and requests encoded as the store keeps them.
    pub(super) fn text(&self) -> LetterText {
        LetterText {
            event: self.event.to_string(),
            requests: serde_json::to_string(&self.requests).unwrap_or_default(),
        }
    }

    /// The dead letter of an event that was never finished because the process stopped
    /// during each of its last `runs` runs: it is not run again, in case it is the cause.
    pub fn interrupted(
        integration: &str,
        event: &serde_json::Value,
        runs: u32,
        secrets: &Secrets,
    ) -> Self {
        Self {
            integration: integration.to_string(),
            step: String::new(),
            event: secrets.redact_json(event),
            requests: Vec::new(),
            status: None,
            error: interrupted_reason(runs),
            attempts: 0,
            failed_at: now(),
            run: None,
            state: LetterState::Open,
        }
    }
}

/// Why an event stopped by the process too often is not run again.
pub fn interrupted_reason(runs: u32) -> String {
    format!(
        "the process stopped during {runs} runs of this event; it is not run again (`integ dlq replay` runs it once more)"
    )
}

/// One run in the history.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunRecord {
    pub integration: String,
    /// `succeeded`, `failed`, `dead_lettered`, or `skipped` (a schedule's occurrence that
    /// did not run, with its `reason`).
    pub outcome: String,
    /// Seconds since the Unix epoch.
    pub started_at: i64,
    pub duration_ms: i64,
    /// Requests made, retries included.
    pub attempts: u32,
    /// Requests made again after a failure (the `retries` alerts count).
    pub retries: u32,
    /// Attempts slowed down by a rate limit or refused with a 429 (the `rate_limited`
    /// alerts count).
    pub rate_limited: u32,
    /// The step that failed and why; secrets redacted.
    pub error: Option<String>,
    /// The inbox event the run was of; `None` for `integ run`, which has no inbox.
    pub event: Option<i64>,
    /// Why a run was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The trigger its event came from, as `integ triggers` names it; the store fills it in
    /// from the inbox event when the record does not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The dead letter this run replays; the store fills it in from the inbox event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_of: Option<i64>,
    /// What each step did, in order; secrets redacted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<StepRecord>,
}

/// A step of a run in the history: what `integ runs` and the run-history page show of it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct StepRecord {
    pub name: String,
    pub outcome: String,
    /// Why it failed, with the response's excerpt when there was one; redacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why it was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<RequestRecord>,
}

/// A request of a step: its method, its URL without the query (which may carry what a
/// spec did not declare secret), its last status, and how long and how many tries it took.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct RequestRecord {
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_hit: Option<bool>,
    /// When it began, counted from the start of the run (an older record has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
    /// Each attempt: when, how long it waited for the limits, its status, why it failed and
    /// the start of the answer (an older record has none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tries: Vec<AttemptReport>,
}

impl StepRecord {
    fn from_report(step: &StepReport, began: Instant, secrets: &Secrets) -> Self {
        let redact = |text: &Option<String>| text.as_deref().map(|t| secrets.redact(t));
        Self {
            name: step.name.clone(),
            outcome: step.outcome.as_str().to_string(),
            error: redact(&step.error),
            note: redact(&step.note),
            fallback: step.fallback.clone(),
            requests: step
                .requests
                .iter()
                .map(|r| RequestRecord {
                    method: r.method.clone(),
                    url: kept_url(&r.url, secrets),
                    status: r.status,
                    duration_ms: millis(r.duration),
                    attempts: r.attempts,
                    cache_hit: r.cache_hit,
                    at_ms: r
                        .began
                        .map(|at| millis(at.saturating_duration_since(began))),
                    tries: r.tries.clone(),
                })
                .collect(),
        }
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// A request's URL as the run history and the dead letters keep it: without its query
/// (which may carry a key a spec did not declare secret) and redacted.
fn kept_url(url: &str, secrets: &Secrets) -> String {
    secrets.redact(&without_query(url))
}

/// `url` without its query and fragment, `?…` marking that there was a query.
fn without_query(url: &str) -> String {
    match url.find(['?', '#']) {
        Some(cut) if url[cut..].starts_with('?') => format!("{}?…", &url[..cut]),
        Some(cut) => url[..cut].to_string(),
        None => url.to_string(),
    }
}

impl RunRecord {
    /// Its steps encoded as the store keeps them (JSON text); `None` when it has none.
    pub(super) fn steps_text(&self) -> Option<String> {
        (!self.steps.is_empty())
            .then(|| serde_json::to_string(&self.steps).ok())
            .flatten()
    }

    /// The history record of inbox event `event`, dead-lettered unrun (see
    /// `DeadLetter::interrupted`).
    pub fn interrupted(integration: &str, event: i64, runs: u32) -> Self {
        Self {
            integration: integration.to_string(),
            outcome: "dead_lettered".into(),
            started_at: now(),
            duration_ms: 0,
            attempts: 0,
            retries: 0,
            rate_limited: 0,
            error: Some(interrupted_reason(runs)),
            event: Some(event),
            ..Self::default()
        }
    }

    /// The record of an occurrence of a schedule that did not run, and why.
    pub fn skipped(integration: &str, reason: String) -> Self {
        Self {
            integration: integration.to_string(),
            outcome: "skipped".into(),
            started_at: now(),
            duration_ms: 0,
            attempts: 0,
            retries: 0,
            rate_limited: 0,
            reason: Some(reason),
            ..Self::default()
        }
    }

    /// The record of `report`, a run of inbox event `event` if it came from the inbox.
    pub fn from_run(report: &RunReport, secrets: &Secrets, event: Option<i64>) -> Self {
        let outcome = serde_json::to_value(report.outcome)
            .ok()
            .and_then(|v| v.as_str().map(String::from));
        let failed = report
            .steps
            .iter()
            .find(|s| s.error.is_some() && s.outcome != crate::model::Outcome::Skipped);
        let duration_ms = report.duration.as_millis() as i64;
        let requests = || report.steps.iter().flat_map(|s| &s.requests);
        Self {
            integration: report.integration.clone(),
            outcome: outcome.unwrap_or_default(),
            started_at: now() - duration_ms / 1000,
            duration_ms,
            attempts: requests().map(|r| r.attempts).sum(),
            retries: requests().map(|r| r.attempts.saturating_sub(1)).sum(),
            rate_limited: requests().map(|r| r.rate_limited).sum(),
            error: failed.map(|s| {
                secrets.redact(&format!("{}: {}", s.name, s.error.as_deref().unwrap_or("")))
            }),
            event,
            steps: report
                .steps
                .iter()
                .map(|s| StepRecord::from_report(s, report.began, secrets))
                .collect(),
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{RunOutcome, StepReport};
    use serde_json::json;

    #[test]
    fn a_dead_letter_redacts_the_event_as_json_numbers_and_quotes_included() {
        // Both broke text redaction: the number's redaction made invalid JSON (stored as
        // null), and the quote is escaped in JSON text, so the secret was not found.
        let secrets = Secrets::from_pairs([("PIN", "12345"), ("PASSWORD", r#"pa"ss"#)]);
        let step = StepReport {
            name: "post".into(),
            outcome: crate::model::Outcome::DeadLettered,
            requests: Vec::new(),
            error: Some("status 422".into()),
            note: None,
            fallback: None,
            warnings: Vec::new(),
        };
        let report = RunReport {
            integration: "demo".into(),
            outcome: RunOutcome::DeadLettered,
            steps: vec![step.clone()],
            duration: Duration::ZERO,
            real_run_stops_at: None,
            began: Instant::now(),
        };
        let event = json!({"id": 7, "pin": 12345, "password": r#"pa"ss"#});
        let letter = DeadLetter::from_run(&report, &step, &event, &secrets);
        assert_eq!(
            letter.event,
            json!({"id": 7, "pin": "[redacted]", "password": "[redacted]"})
        );
    }
}
