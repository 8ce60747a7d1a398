//! Durable state: the inbox of events with their checkpoints and dedupe keys, poll
//! positions, dead letters and the run history. SQLite by default (one file, WAL, nothing
//! to install, readable with `sqlite3`); the store is a trait so that a Redis store can
//! serve a fleet of workers later.

pub mod private;
mod records;
mod schema;
mod sqlite;
mod triggers;

pub use records::{DeadLetter, RunRecord};
pub use sqlite::SqliteStore;
pub use triggers::TriggerHealth;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store `{path}`: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the folder of `{path}` or make it private: {source}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the state store is unusable after an earlier failure")]
    Poisoned,
    #[error(
        "state store `{path}` is at schema version {found}, written by a newer integ; this one \
         knows versions up to {known}: upgrade integ, or use another --state"
    )]
    Newer {
        path: String,
        found: usize,
        known: usize,
    },
    /// The failure of a group commit, shared by every enqueue in it.
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

/// The durable state of `integ serve`, `integ run` and the `dlq`, `runs` and `triggers`
/// commands.
pub trait Store: Send + Sync {
    /// Stores a dead letter and returns its id.
    fn dead_letter(&self, letter: &DeadLetter) -> Result<i64, StoreError>;
    /// Every dead letter, oldest first, with its id.
    fn dead_letters(&self) -> Result<Vec<(i64, DeadLetter)>, StoreError>;
    /// Commits events to the inbox in one transaction, each with its dedupe key; an event
    /// whose key was seen before is dropped. Returns how many were enqueued and dropped.
    fn enqueue(
        &self,
        integration: &str,
        events: &[(serde_json::Value, Option<String>)],
    ) -> Result<(usize, usize), StoreError> {
        self.enqueue_page(integration, None, events)
    }
    /// Like `enqueue`, and in the same transaction moves the position of a poll trigger:
    /// a cursor is never stored past events that are not committed.
    fn enqueue_page(
        &self,
        integration: &str,
        position: Option<(&str, &str)>,
        events: &[(serde_json::Value, Option<String>)],
    ) -> Result<(usize, usize), StoreError>;
    /// The stored position of poll trigger `trigger`.
    fn position(&self, integration: &str, trigger: &str) -> Result<Option<String>, StoreError>;
    /// Takes up to `limit` of the oldest pending events of the integrations named in `from`
    /// that are not deferred past now (marking them running), oldest first, each with the results of the steps it already
    /// completed. Events of other integrations stay pending, however old.
    fn claim(&self, limit: usize, from: &[&str]) -> Result<Vec<InboxItem>, StoreError>;
    /// Records that `step` of inbox event `id` completed, with its result.
    fn checkpoint(
        &self,
        id: i64,
        step: &str,
        result: Option<&serde_json::Value>,
    ) -> Result<(), StoreError>;
    /// Ends inbox event `id`, with its run added to the history and its checkpoints (raw
    /// step results, which may hold what an API echoed) deleted in the same transaction. A
    /// deferred event is not ended: it goes back to pending and keeps its checkpoints.
    fn finish(&self, id: i64, status: Finished, run: Option<&RunRecord>) -> Result<(), StoreError>;
    /// Puts back the events a stopped process left running; returns how many.
    fn recover(&self) -> Result<usize, StoreError>;
    /// Puts back claimed events that never started, their claim not counted: only a claim
    /// during which the process stopped counts toward dead-lettering an event.
    fn unclaim(&self, ids: &[i64]) -> Result<(), StoreError>;
    /// Inbox events by status, for tests and operations.
    fn inbox_counts(&self) -> Result<Vec<(String, usize)>, StoreError>;
    /// Moves dead letters back to the inbox (all of them when `ids` is `None`), to run
    /// again; returns the ids replayed.
    fn replay(&self, ids: Option<&[i64]>) -> Result<Vec<i64>, StoreError>;
    /// Deletes every dead letter; returns how many there were.
    fn purge(&self) -> Result<usize, StoreError>;
    /// Forgets what is older than `retention`: dedupe keys first seen before, finished
    /// events (and checkpoints an older version left them) and runs. Pending and running events, and dead
    /// letters, are kept whatever their age.
    fn prune(&self, retention: std::time::Duration) -> Result<Pruned, StoreError>;
    /// Writes the health of these triggers, replacing what was kept of each.
    fn save_triggers(&self, triggers: &[TriggerHealth]) -> Result<(), StoreError>;
    /// The health of every trigger, by integration and trigger.
    fn triggers(&self) -> Result<Vec<TriggerHealth>, StoreError>;
    /// Adds a run to the history.
    fn record_run(&self, run: &RunRecord) -> Result<(), StoreError>;
    /// The runs `query` asks for, newest first, each with its id.
    fn runs(&self, query: &RunQuery) -> Result<Vec<(i64, RunRecord)>, StoreError>;
}

/// Which runs of the history to read (the default: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunQuery {
    /// Only those of this integration.
    pub integration: Option<String>,
    /// Only those that failed or dead-lettered.
    pub failed_only: bool,
    /// Only those started at or after this time (seconds since the Unix epoch).
    pub since: Option<i64>,
    /// At most this many, the newest; all when `None`.
    pub limit: Option<std::num::NonZeroUsize>,
}

/// What a `prune` forgot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub dedupe_keys: usize,
    pub events: usize,
    pub runs: usize,
}

/// An event of the inbox, claimed by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    pub id: i64,
    pub integration: String,
    pub event: serde_json::Value,
    /// The results of the steps already completed, by step name (`null` for a step that
    /// completed without a result, such as a skipped one).
    pub done: serde_json::Map<String, serde_json::Value>,
    /// How many times the event was claimed, this time included: more than one means a
    /// process stopped while it was claimed (or running) before.
    pub attempts: u32,
    /// When it came into the inbox (seconds since the Unix epoch).
    pub created_at: i64,
}

/// How an inbox event ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    Done,
    Failed,
    /// Kept in the dead letters, in the transaction that ends the event: a crash cannot
    /// leave a dead letter for an event that will run again.
    DeadLettered(Box<DeadLetter>),
    /// Not finished: back to pending, claimed again from `not_before` (Unix seconds) on,
    /// at the first step it has not completed.
    Deferred {
        not_before: i64,
    },
}

impl Finished {
    fn as_str(&self) -> &'static str {
        match self {
            Finished::Done => "done",
            Finished::Failed => "failed",
            Finished::DeadLettered(_) => "dead_lettered",
            Finished::Deferred { .. } => "pending",
        }
    }

    /// Deferred for `wait` from now, rounded up to the second.
    pub fn deferred(wait: std::time::Duration) -> Self {
        let seconds = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0));
        let wait = i64::try_from(seconds).unwrap_or(i64::MAX);
        Finished::Deferred {
            not_before: now().saturating_add(wait),
        }
    }

    fn not_before(&self) -> Option<i64> {
        match self {
            Finished::Deferred { not_before } => Some(*not_before),
            _ => None,
        }
    }
}

/// Now, as the store keeps times: seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
