//! Durable state: the inbox of events with their checkpoints and dedupe keys, poll
//! positions, dead letters and the run history. SQLite by default (one file, WAL, nothing
//! to install, readable with `sqlite3`); the store is a trait so that a Redis store can
//! serve a fleet of workers later.

mod alerts;
#[cfg(test)]
mod conformance;
mod inbox;
mod location;
pub mod private;
mod query;
mod records;
mod schedules;
mod schema;
mod sqlite;
mod sqlite_checkpoint;
mod sqlite_filter;
mod sqlite_inbox;
mod sqlite_records;
mod sqlite_writer;
mod triggers;

pub use alerts::{AlertChange, AlertCounts, AlertKey, AlertState};
pub use inbox::{
    Ending, Enqueued, Finished, Inbox, InboxItem, NewEvents, Owner, Pending, Position,
};
pub use location::{Location, UrlProblem};
pub use query::{LETTERS_PER_PAGE, letters_lines, parse_time, run_json, runs_lines, with_id};
pub use records::{
    Backlog, DeadLetter, LetterQuery, LetterState, LetterStates, Pruned, Records, RequestRecord,
    RunCount, RunLinks, RunQuery, RunRecord, RunStatus, StepRecord,
};
pub use schedules::{ScheduleMark, ScheduleState};
pub use sqlite::SqliteStore;
pub use triggers::TriggerHealth;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed: its store's location (never a credential) and its own error.
    #[error("state store `{store}`: {source}")]
    Backend {
        store: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("cannot create the folder of `{path}` or make it private: {source}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the state store is unusable after an earlier failure")]
    Poisoned,
    #[error("the state store's writer has stopped")]
    Closed,
    #[error(
        "state store `{store}` is at schema version {found}, written by a newer integ; this one \
         knows versions up to {known}: upgrade integ, or use another --state"
    )]
    Newer {
        store: String,
        found: usize,
        known: usize,
    },
    /// The failure of a group commit, shared by every enqueue in it.
    #[error(transparent)]
    Shared(Arc<StoreError>),
    /// `--state` names no store this integ can open.
    #[error(transparent)]
    Url(#[from] UrlProblem),
    /// A command that reads the state found none (it does not create one).
    #[error("no state store at `{store}`")]
    Missing { store: String },
}

/// Opens the store at `location`, creating it if needed, with the default durability: the
/// one way every command opens the state.
pub fn open(location: &Location) -> Result<Arc<dyn Store>, StoreError> {
    open_with(location, Durability::default())
}

/// Opens the store at `location`, creating it if needed, with `durability`.
pub fn open_with(
    location: &Location,
    durability: Durability,
) -> Result<Arc<dyn Store>, StoreError> {
    match location {
        Location::Sqlite(path) => Ok(Arc::new(SqliteStore::open_with(path, durability)?)),
    }
}

/// Opens the store at `location` if there is one: the commands that only read or mend the
/// state (`dlq`, `runs`, `triggers`) never create it.
pub fn open_existing(location: &Location) -> Result<Arc<dyn Store>, StoreError> {
    let exists = match location {
        Location::Sqlite(path) => path.exists(),
    };
    if !exists {
        return Err(StoreError::Missing {
            store: location.to_string(),
        });
    }
    open(location)
}

/// The durable state of `integ serve`, `integ run` and the `dlq`, `runs` and `triggers`
/// commands: the hot path (`Inbox`) and the records kept beside it (`Records`). Every
/// backend passes the same conformance suite (`conformance.rs`).
pub trait Store: Inbox + Records {}

impl<T: Inbox + Records> Store for T {}

/// What a commit survives, against what it costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// A commit is on disk before it is answered (a webhook's 202 among them): it survives
    /// a power cut. Each commit syncs the disk once, shared by every write in it.
    #[default]
    Full,
    /// A commit is handed to the operating system before it is answered: it survives the
    /// process crashing or being killed, not the machine stopping (the last commits before
    /// a power cut or a kernel crash may be lost). No sync per commit.
    Process,
}

impl Durability {
    /// The SQLite `synchronous` setting that gives it, with the write-ahead log.
    pub(super) fn synchronous(self) -> &'static str {
        match self {
            Durability::Full => "FULL",
            Durability::Process => "NORMAL",
        }
    }
}

/// Now, as the store keeps times: seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
