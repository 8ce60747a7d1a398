//! Intake: every event a trigger accepts is committed to the inbox, claimed by this
//! process in the same write, then handed to the workers from memory; the store is read
//! back only for recovery, deferred events and events from other sources.
//!
//! The backlog (events due and not finished) is counted here, so that past
//! `--max-pending` webhooks are refused with a 503 and a `Retry-After`, rather than answered
//! 202 for events that would wait minutes.

use super::Service;
use super::store_calls::StoreCalls;
use crate::store::{
    Enqueued, InboxItem, NewEvents, Owner, Position, ScheduleMark, Store, StoreError,
};
use crate::telemetry::labels::StoreOp;
use serde_json::Value as Json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// The default of `--max-pending`: at the rates integ delivers on a small machine, a
/// backlog this deep drains in seconds, so a 202 still means "delivered soon".
pub const MAX_PENDING: usize = 10_000;

/// The longest `Retry-After` a refused webhook is told to wait.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// The hand-over from triggers to the dispatcher, and the backlog it makes.
#[derive(Debug)]
pub(super) struct Intake {
    /// Events committed and claimed by this process, on their way to the dispatcher.
    handed: mpsc::UnboundedSender<InboxItem>,
    /// Events accepted and not finished.
    backlog: AtomicUsize,
    pub(super) max_pending: usize,
    /// Events finished since the start, and the rate lately, for `Retry-After`.
    finished: AtomicU64,
    drain_rate: AtomicU64,
}

impl Intake {
    /// The intake, and the dispatcher's end of its hand-over.
    pub(super) fn new(max_pending: usize) -> (Arc<Self>, mpsc::UnboundedReceiver<InboxItem>) {
        let (handed, arrivals) = mpsc::unbounded_channel();
        let intake = Self {
            handed,
            backlog: AtomicUsize::new(0),
            max_pending: max_pending.max(1),
            finished: AtomicU64::new(0),
            drain_rate: AtomicU64::new(0),
        };
        (Arc::new(intake), arrivals)
    }

    /// Hands the events enqueued (not those dropped as duplicates) to the dispatcher.
    fn hand_over(
        &self,
        integration: &str,
        events: Vec<(Json, Option<String>)>,
        enqueued: &Enqueued,
    ) {
        self.backlog
            .fetch_add(enqueued.accepted(), Ordering::Relaxed);
        for ((event, _), id) in events.into_iter().zip(&enqueued.ids) {
            let Some(id) = *id else { continue };
            let item = InboxItem::fresh(id, integration, event, enqueued.at);
            // Once the dispatcher has stopped the event stays claimed in the store; the
            // next start puts it back.
            let _ = self.handed.send(item);
        }
    }

    /// Whether `more` events would take the backlog past `--max-pending` (with 0: whether
    /// it is there): webhooks are refused, polls wait. An empty backlog takes any number,
    /// so that no body is refused for good for being large.
    pub(super) fn overloaded(&self, more: usize) -> bool {
        let backlog = self.backlog();
        backlog > 0 && backlog.saturating_add(more.max(1)) > self.max_pending
    }

    /// Events accepted and not finished.
    pub(super) fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// An event left the backlog: done, failed, dead-lettered, or deferred to later.
    pub(super) fn finished_one(&self) {
        let _ = self
            .backlog
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                Some(n.saturating_sub(1))
            });
        self.finished.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the backlog to what the store counts: at the start, and now and then, since
    /// events enqueued by another process (a `dlq replay`) are counted only there.
    pub(super) fn recount(&self, due: usize) {
        self.backlog.store(due, Ordering::Relaxed);
    }

    /// How long a refused sender should wait: the time the workers take, at the rate they
    /// finished events lately, to bring the backlog back under half the mark.
    pub(super) fn retry_after(&self) -> Duration {
        let excess = self.backlog().saturating_sub(self.max_pending / 2);
        let rate = usize::try_from(self.drain_rate.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        let seconds = u64::try_from(excess.div_ceil(rate.max(1))).unwrap_or(u64::MAX);
        Duration::from_secs(seconds.max(1)).min(MAX_RETRY_AFTER)
    }

    /// Samples the events finished per second since `last` (called about once a second).
    pub(super) fn sample_drain_rate(&self, last: &mut (Instant, u64)) {
        let finished = self.finished.load(Ordering::Relaxed);
        let elapsed = last.0.elapsed().as_secs_f64();
        if elapsed > 0.0 {
            let rate = finished.saturating_sub(last.1) as f64 / elapsed;
            self.drain_rate.store(rate as u64, Ordering::Relaxed);
        }
        *last = (Instant::now(), finished);
    }
}

impl Service {
    /// Commits `events` of `integration` (their dedupe keys kept for their trigger's
    /// `retention`, with a poll trigger's position, if any) and hands those enqueued to the
    /// workers. The commit and the hand-over run on a task of their
    /// own: a caller dropped on the way (a webhook past its timeout, a sender that hung up)
    /// must not leave events committed as this process's and never handed over.
    pub(super) async fn accept(
        &self,
        integration: &str,
        events: Vec<(Json, Option<String>)>,
        retention: Option<Duration>,
        position: Option<(&str, &Position)>,
    ) -> Result<Enqueued, StoreError> {
        let position = position.map(|(t, p)| (t.to_string(), p.clone()));
        self.commit(integration, events, retention, (position, None, None))
            .await
    }

    /// Commits the events of a request to webhook trigger `trigger` (see `accept`).
    pub(super) async fn accept_webhook(
        &self,
        (integration, trigger): (&str, &str),
        events: Vec<(Json, Option<String>)>,
        retention: Option<Duration>,
    ) -> Result<Enqueued, StoreError> {
        let webhook = Some(trigger.to_string());
        self.commit(integration, events, retention, (None, None, webhook))
            .await
    }

    /// Commits the events of a schedule's tick together with what it handled (`mark`), and
    /// hands those enqueued to the workers.
    pub(super) async fn accept_tick(
        &self,
        integration: &str,
        events: Vec<(Json, Option<String>)>,
        mark: ScheduleMark,
    ) -> Result<Enqueued, StoreError> {
        self.commit(integration, events, None, (None, Some(mark), None))
            .await
    }

    async fn commit(
        &self,
        integration: &str,
        events: Vec<(Json, Option<String>)>,
        retention: Option<Duration>,
        at: Arrival,
    ) -> Result<Enqueued, StoreError> {
        let committed = commit(
            (self.store.clone(), self.store_calls.clone()),
            self.owner.clone(),
            self.intake.clone(),
            (integration.to_string(), events),
            retention,
            at,
        );
        tokio::spawn(committed)
            .await
            .unwrap_or(Err(StoreError::Closed))
    }
}

/// How events arrived: a poll's position, a schedule's mark, or a webhook trigger's name.
type Arrival = (
    Option<(String, Position)>,
    Option<ScheduleMark>,
    Option<String>,
);

async fn commit(
    (store, calls): (Arc<dyn Store>, Arc<StoreCalls>),
    owner: Owner,
    intake: Arc<Intake>,
    (integration, events): (String, Vec<(Json, Option<String>)>),
    retention: Option<Duration>,
    (position, mark, webhook): Arrival,
) -> Result<Enqueued, StoreError> {
    let new = NewEvents {
        integration: &integration,
        events: &events,
        position: position.as_ref().map(|(t, p)| (t.as_str(), p)),
        retention,
        owner: Some(&owner),
        mark: mark.as_ref(),
        webhook: webhook.as_deref(),
    };
    let enqueued = calls.call(StoreOp::Enqueue, store.enqueue(new)).await?;
    intake.hand_over(&integration, events, &enqueued);
    Ok(enqueued)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use serde_json::json;

    #[tokio::test]
    async fn events_committed_for_a_caller_that_went_away_are_still_handed_over() {
        let dir = crate::scratch::Scratch::new("intake");
        let store = Arc::new(SqliteStore::open(&dir.join("state.db")).unwrap());
        let service = Service::new(Vec::new(), store);
        let mut arrivals = service.arrivals.lock().unwrap().take().unwrap();
        let mut accepting =
            Box::pin(service.accept("demo", vec![(json!({"n": 1}), None)], None, None));
        // Dropped once started, before the commit answers, as a webhook past its timeout is.
        let started = futures_util::poll!(&mut accepting);
        assert!(
            started.is_pending(),
            "answered at once; the test proves nothing"
        );
        drop(accepting);
        let handed = tokio::time::timeout(Duration::from_secs(20), arrivals.recv()).await;
        let item = handed.unwrap().unwrap();
        assert_eq!((item.event, item.attempts), (json!({"n": 1}), 1));
        assert_eq!(service.intake.backlog(), 1);
    }
}
