//! The hot-path contract: the inbox every event goes through, as a backend keeps it.
//!
//! Every call returns a `'static` future: a backend queues the work (SQLite hands it to
//! its writer thread, a network store sends it) and the caller awaits the answer without
//! holding a thread of the runtime or of its blocking pool.

use super::records::LetterText;
use super::{RunRecord, StoreError};
use futures_util::future::BoxFuture;
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Duration;

/// The answer of a hot-path call, to await.
pub type Pending<T> = BoxFuture<'static, Result<T, StoreError>>;

/// The inbox: events are enqueued durably, claimed by an owner under a lease, checkpointed
/// step by step and finished, each finish with its run record in the same write.
pub trait Inbox: Send + Sync {
    /// Commits `new.events` (and, with them, a poll trigger's position) in one durable
    /// write; an event whose dedupe key was seen before is dropped. With `new.owner`, the
    /// events enqueued are claimed by that owner in the same write (running, attempt 1,
    /// leased), for it to run them from memory without claiming them again.
    fn enqueue(&self, new: NewEvents<'_>) -> Pending<Enqueued>;

    /// Claims for `owner`, under its lease, up to `limit` of the oldest pending
    /// events of the integrations named in `from` that are not deferred past now, oldest
    /// first, each with its attempt counted and the results of the steps it completed.
    /// Events of other integrations stay pending, however old.
    fn claim(&self, owner: &Owner, limit: usize, from: &[String]) -> Pending<Vec<InboxItem>>;

    /// Records that `step` of inbox event `id` completed, with its result (which the caller
    /// has redacted: what is kept is kept redacted).
    fn checkpoint(&self, id: i64, step: &str, result: Option<&Json>) -> Pending<()>;

    /// Ends inbox event `id` as `ending` says, with its run added to the history and its
    /// checkpoints (raw step results, which may hold what an API echoed) deleted in the
    /// same write. A deferred event is not ended: it goes back to pending and keeps its
    /// checkpoints.
    fn finish(&self, id: i64, ending: Ending) -> Pending<()>;

    /// Extends the lease of every event `owner` has running to its lease from now; returns
    /// how many. An owner that stops heartbeating loses its events to `recover`.
    fn heartbeat(&self, owner: &Owner) -> Pending<usize>;

    /// Puts back (pending, their claim counted) the running events of owners other than
    /// `owner` that are gone: those whose lease expired, and every one a backend knows to
    /// be gone (SQLite: all of them, since one process at a time serves a file). Returns
    /// how many.
    fn recover(&self, owner: &Owner) -> Pending<usize>;

    /// Puts back events `owner` claimed but never started, their claim not counted: only
    /// a claim during which the process stopped counts toward dead-lettering an event.
    fn unclaim(&self, owner: &Owner, ids: &[i64]) -> Pending<()>;

    /// Events of the integrations named in `from` that are due and not finished: running,
    /// or pending and not deferred past now.
    fn due(&self, from: &[String]) -> Pending<usize>;
}

/// Events to commit to the inbox in one write.
#[derive(Debug, Clone, Copy)]
pub struct NewEvents<'a> {
    pub integration: &'a str,
    /// Each event with its dedupe key.
    pub events: &'a [(Json, Option<String>)],
    /// The position of a poll trigger (trigger, position), stored in the same write: a
    /// cursor or a mark is never stored past events that are not committed.
    pub position: Option<(&'a str, &'a Position)>,
    /// How long the events' dedupe keys are kept, when their trigger says; the store's
    /// `prune` retention otherwise.
    pub retention: Option<Duration>,
    /// The owner that claims the events as they are enqueued.
    pub owner: Option<&'a Owner>,
    /// What a schedule's tick handled, stored in the same write: an occurrence is marked
    /// handled exactly when its run is enqueued (or its skip recorded).
    pub mark: Option<&'a super::ScheduleMark>,
    /// The webhook trigger the events came from (a poll's and a schedule's are named by
    /// their position and mark), kept with each event for the run history.
    pub webhook: Option<&'a str>,
}

/// Where a poll trigger stands: stored in the write of the page that moved it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Position {
    /// The next page to ask for (a cursor value or a next-page URL); `None`: the first.
    pub page: Option<String>,
    /// An incremental poll's mark: the pass being read asks for what changed since it.
    pub mark: Option<String>,
    /// The largest mark seen so far in the pass being read.
    pub high: Option<String>,
    /// The largest mark there when the pass being read began: how far the mark may move
    /// when it ends.
    pub known: Option<String>,
}

impl Position {
    /// A plain poll's position: the next page.
    pub fn page(page: &str) -> Self {
        Self {
            page: Some(page.to_string()),
            ..Self::default()
        }
    }
}

impl<'a> NewEvents<'a> {
    /// Events of `integration`, to be claimed later.
    pub fn of(integration: &'a str, events: &'a [(Json, Option<String>)]) -> Self {
        Self {
            integration,
            events,
            position: None,
            retention: None,
            owner: None,
            mark: None,
            webhook: None,
        }
    }

    /// The trigger the events came from, as `integ triggers` names it.
    pub fn trigger(&self) -> Option<&'a str> {
        self.webhook
            .or(self.position.map(|(trigger, _)| trigger))
            .or(self.mark.map(|mark| mark.trigger.as_str()))
    }

    /// The same events, from webhook trigger `name`.
    pub fn from_webhook(self, name: &'a str) -> Self {
        Self {
            webhook: Some(name),
            ..self
        }
    }

    /// The same events, their dedupe keys kept for `retention` (`None`: the store's).
    pub fn kept_for(self, retention: Option<Duration>) -> Self {
        Self { retention, ..self }
    }

    /// The same events, with a poll trigger's position.
    pub fn at(self, trigger: &'a str, position: Option<&'a Position>) -> Self {
        Self {
            position: position.map(|p| (trigger, p)),
            ..self
        }
    }

    /// The same events, with what a schedule's tick handled.
    pub fn marking(self, mark: &'a super::ScheduleMark) -> Self {
        Self {
            mark: Some(mark),
            ..self
        }
    }

    /// The same events, claimed by `owner` as they are enqueued.
    pub fn claimed_by(self, owner: &'a Owner) -> Self {
        Self {
            owner: Some(owner),
            ..self
        }
    }
}

/// What an enqueue did with each event, in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enqueued {
    /// The inbox id of each event enqueued; `None` for one dropped as a duplicate.
    pub ids: Vec<Option<i64>>,
    /// When they were enqueued (seconds since the Unix epoch).
    pub at: i64,
}

impl Enqueued {
    pub fn accepted(&self) -> usize {
        self.ids.iter().flatten().count()
    }

    pub fn duplicates(&self) -> usize {
        self.ids.len() - self.accepted()
    }
}

/// Who claims events: one per serving process, so that a store shared by several can
/// tell whose work a running event is, and put back the work of one that is gone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    name: String,
    /// How long a claim of this owner holds without a heartbeat.
    lease: Duration,
}

impl Owner {
    /// A name no other process has (host, process id and a random part: a restarted
    /// process may get the same pid), whose claims hold for `lease` between heartbeats.
    pub fn new(lease: Duration) -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into());
        let name = format!("{host}:{}:{:08x}", std::process::id(), fastrand::u32(..));
        Self { name, lease }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// When a claim made or renewed at `now` (Unix seconds) lapses.
    pub fn lease_until(&self, now: i64) -> i64 {
        let lease = i64::try_from(self.lease.as_secs()).unwrap_or(i64::MAX);
        now.saturating_add(lease)
    }
}

/// An event of the inbox, claimed by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    pub id: i64,
    pub integration: String,
    pub event: Json,
    /// The results of the steps already completed, by step name (`null` for a step that
    /// completed without a result, such as a skipped one).
    pub done: serde_json::Map<String, Json>,
    /// How many times the event was claimed, this time included: more than one means a
    /// process stopped while it was claimed (or running) before.
    pub attempts: u32,
    /// When it came into the inbox (seconds since the Unix epoch).
    pub created_at: i64,
    /// When this process committed it, for an event handed over from memory: the start of
    /// its latency to the millisecond (`created_at` counts whole seconds).
    pub committed: Option<std::time::Instant>,
}

impl InboxItem {
    /// An event just enqueued and claimed by its owner: first attempt, nothing done.
    pub fn fresh(id: i64, integration: &str, event: Json, created_at: i64) -> Self {
        Self {
            id,
            integration: integration.to_string(),
            event,
            done: serde_json::Map::new(),
            attempts: 1,
            created_at,
            committed: Some(std::time::Instant::now()),
        }
    }
}

/// How an inbox event ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    Done,
    Failed,
    /// Kept in the dead letters, in the write that ends the event: a crash cannot leave a
    /// dead letter for an event that will run again.
    DeadLettered(Box<super::DeadLetter>),
    /// Not finished: back to pending, claimed again from `not_before` (Unix seconds) on,
    /// at the first step it has not completed.
    Deferred {
        not_before: i64,
    },
}

/// How an inbox event ends, with its run record, ready to write: what the store keeps as
/// JSON text (a run's steps, a dead letter's event and requests) is encoded when it is
/// made, on the caller's thread (a worker), so that a backend's writer only binds it. A
/// clone shares it: a write tried again encodes and copies nothing.
#[derive(Debug, Clone)]
pub struct Ending(Arc<Encoded>);

#[derive(Debug)]
pub(super) struct Encoded {
    pub(super) status: Finished,
    pub(super) run: Option<RunRecord>,
    /// The run's steps.
    pub(super) steps: Option<String>,
    /// The dead letter's, when `status` is `DeadLettered`.
    pub(super) letter: Option<LetterText>,
}

impl Ending {
    pub fn new(status: Finished, run: Option<RunRecord>) -> Self {
        let steps = run.as_ref().and_then(RunRecord::steps_text);
        let letter = match &status {
            Finished::DeadLettered(letter) => Some(letter.text()),
            _ => None,
        };
        Self(Arc::new(Encoded {
            status,
            run,
            steps,
            letter,
        }))
    }

    pub(super) fn parts(&self) -> &Encoded {
        &self.0
    }
}

/// An end without a run record.
impl From<Finished> for Ending {
    fn from(status: Finished) -> Self {
        Self::new(status, None)
    }
}

impl Finished {
    pub(super) fn as_str(&self) -> &'static str {
        match self {
            Finished::Done => "done",
            Finished::Failed => "failed",
            Finished::DeadLettered(_) => "dead_lettered",
            Finished::Deferred { .. } => "pending",
        }
    }

    /// Deferred for `wait` from now, rounded up to the second.
    pub fn deferred(wait: Duration) -> Self {
        let seconds = wait
            .as_secs()
            .saturating_add(u64::from(wait.subsec_nanos() > 0));
        let wait = i64::try_from(seconds).unwrap_or(i64::MAX);
        Finished::Deferred {
            not_before: super::now().saturating_add(wait),
        }
    }

    pub(super) fn not_before(&self) -> Option<i64> {
        match self {
            Finished::Deferred { not_before } => Some(*not_before),
            _ => None,
        }
    }

    /// Whether the event leaves the inbox's unfinished work (a deferred one stays).
    pub(super) fn ends(&self) -> bool {
        !matches!(self, Finished::Deferred { .. })
    }
}
