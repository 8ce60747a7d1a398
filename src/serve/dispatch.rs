//! The dispatcher: takes the events intake hands over and claims those the store holds
//! (recovered, deferred, replayed), and starts each on a task while `--workers` and the
//! integration's `concurrency` allow.

use super::Service;
use super::lanes::Lanes;
use super::run::{end, run_item};
use crate::store::{Finished, InboxItem};
use crate::telemetry::WorkerMetrics;
use crate::telemetry::labels::StoreOp;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Runs inbox events until the service shuts down: at most `workers` at once in all, and
/// at most an integration's `concurrency` of its own.
pub fn work(service: Arc<Service>, workers: usize) -> impl Future<Output = ()> {
    // Now, not when the task first runs: a scrape right after the start sees the workers.
    let metrics = WorkerMetrics::new(workers.max(1));
    dispatch(service, metrics)
}

async fn dispatch(service: Arc<Service>, metrics: WorkerMetrics) {
    let Some(mut arrivals) = service.arrivals.lock().ok().and_then(|mut a| a.take()) else {
        tracing::error!("the workers were started twice; the second start does nothing");
        return;
    };
    let _watch = Watch(&service);
    match service.store.recover(&service.owner).await {
        Ok(recovered) if recovered > 0 => {
            tracing::info!(
                recovered,
                "events a stopped process left running are put back"
            )
        }
        Ok(_) => {}
        Err(error) => {
            tracing::error!(%error, "cannot put back the events a stopped process left running")
        }
    }
    recount(&service).await;
    let heartbeat = tokio::spawn(heartbeat(service.clone()));
    let mut dispatcher = Dispatcher::new(&service, metrics);
    while !service.stopping() {
        dispatcher.reap(&service).await;
        while let Ok(item) = arrivals.try_recv() {
            dispatcher.queue(item);
        }
        dispatcher.start_ready(&service);
        if let Some((limit, from)) = dispatcher.claim_request() {
            let claim = service.store.claim(&service.owner, limit, &from);
            match service.store_calls.call(StoreOp::Claim, claim).await {
                Ok(items) => dispatcher.claimed(items, limit),
                Err(error) => {
                    tracing::error!(%error, "cannot claim inbox events");
                    dispatcher.store_drained();
                }
            }
            continue;
        }
        dispatcher.tick(&service).await;
        dispatcher.wait(&service, &mut arrivals).await;
    }
    heartbeat.abort();
    // Events handed over or claimed but not started go back, their claim not counted
    // (after a crash they stay `running`, and the next start puts them back, counted).
    // Those started finish (the caller bounds how long that may take).
    arrivals.close();
    while let Ok(item) = arrivals.try_recv() {
        dispatcher.queue(item);
    }
    let queued = dispatcher.lanes.drain();
    if !queued.is_empty()
        && let Err(error) = service
            .store_calls
            .call(
                StoreOp::Unclaim,
                service.store.unclaim(&service.owner, &queued),
            )
            .await
    {
        tracing::warn!(%error, "cannot put back the events not started");
    }
    while let Some(joined) = dispatcher.running.join_next_with_id().await {
        dispatcher.release(joined, &service).await;
    }
}

/// Tells `/livez` when the dispatcher ends (a panic unwinding through it) while the
/// service is not stopping: no event would run again before a restart.
struct Watch<'a>(&'a Service);

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        if !self.0.stopping() {
            tracing::error!("the dispatcher stopped while serving; /livez fails until a restart");
            self.0.dispatcher_died.set();
        }
    }
}

/// Sets the backlog to the store's count of the events due of the integrations served:
/// those of another (no longer served) or deferred to later are not this process's to run
/// now, and would otherwise refuse every webhook.
async fn recount(service: &Service) {
    let served: Vec<String> = service
        .engines
        .iter()
        .map(|e| e.plan().name.clone())
        .collect();
    match service.store.due(&served).await {
        Ok(due) => service.intake.recount(due),
        Err(error) => tracing::warn!(%error, "cannot count the inbox's unfinished events"),
    }
}

/// Renews this process's claims while it serves.
async fn heartbeat(service: Arc<Service>) {
    let mut every = tokio::time::interval(super::LEASE / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let renewed = service.store.heartbeat(&service.owner);
        if let Err(error) = service.store_calls.call(StoreOp::Heartbeat, renewed).await {
            tracing::warn!(%error, "cannot renew this process's claims");
        }
    }
}

/// How often an idle dispatcher looks at the inbox without being woken: deferred events
/// come due and other processes (a `dlq replay`) enqueue without waking it, so they are
/// claimed at most this late.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// How often the backlog is set again from the store's count.
const RECOUNT: Duration = Duration::from_secs(10);

/// Hands inbox events to tasks. Claiming ahead (up to `workers` events beyond those
/// running) saves a transaction per event; handing them out here rather than in each
/// worker keeps a burst from queueing behind one busy worker.
struct Dispatcher {
    workers: usize,
    /// `integ_workers`: set whenever a task starts or ends.
    metrics: WorkerMetrics,
    /// Handed over or claimed, not started yet.
    lanes: Lanes,
    /// Each running event's task; it answers whether the event left the backlog.
    running: tokio::task::JoinSet<bool>,
    /// The lane, integration and inbox id of each running task's event.
    tasks: std::collections::HashMap<tokio::task::Id, (usize, String, i64)>,
    /// The last claim filled its limit: the store may hold more at once.
    store_has_more: bool,
    /// When to look at the store again without a reason to.
    next_claim: Instant,
    next_recount: Instant,
    /// When the drain rate was sampled, and the events finished then.
    sampled: (Instant, u64),
}

impl Dispatcher {
    fn new(service: &Service, metrics: WorkerMetrics) -> Self {
        Self {
            workers: metrics.workers(),
            metrics,
            lanes: Lanes::new(&service.engines),
            running: tokio::task::JoinSet::new(),
            tasks: Default::default(),
            // The first claim takes what a stopped process left.
            store_has_more: true,
            next_claim: Instant::now(),
            next_recount: Instant::now() + RECOUNT,
            sampled: (Instant::now(), 0),
        }
    }

    /// Queues an event to run. Claims and intake name only the integrations served, so
    /// one of another is a bug: logged, and left to the next start.
    fn queue(&mut self, item: InboxItem) {
        if let Err(item) = self.lanes.push(item) {
            tracing::error!(integration = %item.integration, event = item.id, "an event of an integration not served was handed over; it runs at a start that serves it");
        }
    }

    /// Queues what a claim of `limit` events took.
    fn claimed(&mut self, items: Vec<InboxItem>, limit: usize) {
        if items.len() < limit {
            self.store_drained();
        } else {
            self.store_has_more = true;
            self.next_claim = Instant::now() + IDLE_POLL;
        }
        for item in items {
            self.queue(item);
        }
    }

    /// The store holds nothing to claim now: look again after `IDLE_POLL`.
    fn store_drained(&mut self) {
        self.store_has_more = false;
        self.next_claim = Instant::now() + IDLE_POLL;
    }

    /// Starts queued events, oldest first, while workers are free; an event whose
    /// integration is at its concurrency waits without holding up the others.
    fn start_ready(&mut self, service: &Arc<Service>) {
        while self.running.len() < self.workers {
            let Some((lane, engine, item)) = self.lanes.take() else {
                break;
            };
            let running = (lane, item.integration.clone(), item.id);
            let service = service.clone();
            let task = self
                .running
                .spawn(async move { run_item(&service, &engine, item).await });
            self.tasks.insert(task.id(), running);
        }
        self.metrics.busy(self.running.len());
    }

    /// How many events to claim from the store, and from which integrations: those served
    /// whose running and queued events do not fill their concurrency yet. `None` while
    /// enough are queued, or while the store was found empty lately. Events queued behind
    /// a full integration do not count, so they never keep others waiting.
    fn claim_request(&self) -> Option<(usize, Vec<String>)> {
        let due = Instant::now() >= self.next_claim;
        if !self.store_has_more && !due {
            return None;
        }
        let ready = self.lanes.ready();
        let idle = self.running.len() < self.workers;
        // However deep the events handed over from memory, the store's (recovered, come
        // due, replayed) get a share each `IDLE_POLL`: they are never starved by intake.
        let share = if due { self.workers } else { 0 };
        if !idle && ready > self.workers / 2 && share == 0 {
            return None;
        }
        let limit = (2 * self.workers)
            .saturating_sub(self.running.len() + ready)
            .max(share);
        let from = self.lanes.open();
        (limit > 0 && !from.is_empty()).then_some((limit, from))
    }

    /// Waits for a running event to finish, an event handed over, the time to look at the
    /// store, or the stop. With nothing running, `join_next` answers at once, so only the
    /// others may end the wait then.
    async fn wait(
        &mut self,
        service: &Arc<Service>,
        arrivals: &mut mpsc::UnboundedReceiver<InboxItem>,
    ) {
        let busy = !self.running.is_empty();
        // A time already past would end every wait at once while the claim it was for
        // waits for room: the next look is then a moment away.
        let now = Instant::now();
        if self.next_claim <= now {
            self.next_claim = now + IDLE_POLL;
        }
        let look = tokio::time::Instant::from_std(self.next_claim);
        tokio::select! {
            Some(joined) = self.running.join_next_with_id(), if busy => {
                self.release(joined, service).await;
            }
            Some(item) = arrivals.recv() => self.queue(item),
            _ = service.work.notified() => {}
            _ = tokio::time::sleep_until(look) => {}
        }
    }

    /// Once a second, samples the drain rate; every `RECOUNT`, counts the backlog again.
    async fn tick(&mut self, service: &Service) {
        if self.sampled.0.elapsed() >= Duration::from_secs(1) {
            service.intake.sample_drain_rate(&mut self.sampled);
        }
        if Instant::now() >= self.next_recount {
            self.next_recount = Instant::now() + RECOUNT;
            recount(service).await;
        }
    }

    /// Frees the place of every event that finished.
    async fn reap(&mut self, service: &Arc<Service>) {
        while let Some(joined) = self.running.try_join_next_with_id() {
            self.release(joined, service).await;
        }
    }

    /// Frees the place of a finished event; a run that panicked is marked failed.
    async fn release(&mut self, joined: Joined, service: &Arc<Service>) {
        if let Some(event) = self.free(joined, service) {
            // On a task: the store may take a while to accept it (see `end`).
            let service = service.clone();
            tokio::spawn(async move {
                if end(&service, event, Finished::Failed.into()).await {
                    service.intake.finished_one();
                }
            });
        }
    }

    /// Frees the place of a finished event. A run that panicked is a bug of ours, not of
    /// the input: it is logged and its event returned, to be marked failed rather than
    /// left `running` for the next start to run again, out of order and maybe forever.
    fn free(&mut self, joined: Joined, service: &Service) -> Option<i64> {
        let id = match &joined {
            Ok((id, _)) => *id,
            Err(error) => error.id(),
        };
        let (lane, integration, event) = self.tasks.remove(&id)?;
        self.lanes.done(lane);
        self.metrics.busy(self.running.len());
        match joined {
            Ok((_, true)) => service.intake.finished_one(),
            Ok((_, false)) => {}
            Err(error) => {
                tracing::error!(integration, event, %error, "run aborted; the event is marked failed");
                return Some(event);
            }
        }
        None
    }
}

/// A running event's task, as it ended.
type Joined = Result<(tokio::task::Id, bool), tokio::task::JoinError>;
