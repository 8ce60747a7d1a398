//! The dispatcher: claims inbox events ahead and starts each on a task while `--workers`
//! and the integration's `concurrency` allow.

use super::Service;
use super::run::run_item;
use crate::engine::Engine;
use crate::store::Finished;
use std::sync::Arc;
use std::time::Duration;

/// Runs inbox events until the service shuts down: at most `workers` at once in all, and
/// at most an integration's `concurrency` of its own.
pub async fn work(service: Arc<Service>, workers: usize) {
    let store = service.store.clone();
    match tokio::task::spawn_blocking(move || store.recover()).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::error!(%error, "cannot put back the events a stopped process left running")
        }
        Err(error) => tracing::error!(%error, "recovering the inbox stopped"),
    }
    let mut dispatcher = Dispatcher::new(&service, workers.max(1));
    while !service.stopping() {
        dispatcher.reap(&service);
        dispatcher.start_ready(&service);
        let claimed = match dispatcher.claim_request() {
            Some((limit, from)) => {
                let store = service.store.clone();
                let claimed = tokio::task::spawn_blocking(move || {
                    let from: Vec<&str> = from.iter().map(String::as_str).collect();
                    store.claim(limit, &from)
                })
                .await;
                match claimed {
                    Ok(Ok(items)) => items,
                    Ok(Err(error)) => {
                        tracing::error!(%error, "cannot claim inbox events");
                        Vec::new()
                    }
                    Err(error) => {
                        tracing::error!(%error, "claiming inbox events stopped");
                        Vec::new()
                    }
                }
            }
            None => Vec::new(),
        };
        if claimed.is_empty() {
            dispatcher.wait(&service).await;
        } else {
            dispatcher.queue.extend(claimed);
        }
    }
    // Events claimed but not started go back, their claim not counted (after a crash they
    // stay `running`, and the next start puts them back, counted). Those started finish
    // (the caller bounds how long that may take).
    let queued: Vec<i64> = dispatcher.queue.iter().map(|item| item.id).collect();
    if !queued.is_empty() {
        let store = service.store.clone();
        match tokio::task::spawn_blocking(move || store.unclaim(&queued)).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "cannot put back the events not started"),
            Err(error) => tracing::warn!(%error, "cannot put back the events not started"),
        }
    }
    while let Some(joined) = dispatcher.running.join_next_with_id().await {
        dispatcher.release(joined, &service);
    }
}

/// How often an idle dispatcher looks at the inbox without being woken: polls, schedules
/// and replays by another process enqueue without waking it, and a deferred event comes due
/// without waking it (so it is claimed at most this late).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// Hands inbox events to tasks. Claiming ahead (up to `workers` events beyond those
/// running) saves a transaction per event; handing them out here rather than in each
/// worker keeps a burst from queueing behind one busy worker.
struct Dispatcher {
    workers: usize,
    /// Claimed, not started yet, oldest first.
    queue: std::collections::VecDeque<crate::store::InboxItem>,
    running: tokio::task::JoinSet<()>,
    /// The integration and inbox id of each running task's event.
    tasks: std::collections::HashMap<tokio::task::Id, (String, i64)>,
    /// Events running per integration.
    active: std::collections::HashMap<String, usize>,
    /// The integrations served, by name: events of others stay in the inbox.
    engines: std::collections::HashMap<String, Arc<Engine>>,
}

impl Dispatcher {
    fn new(service: &Service, workers: usize) -> Self {
        Self {
            workers,
            queue: Default::default(),
            running: tokio::task::JoinSet::new(),
            tasks: Default::default(),
            active: Default::default(),
            engines: service
                .engines
                .iter()
                .map(|e| (e.plan().name.clone(), e.clone()))
                .collect(),
        }
    }

    /// The declared `concurrency` of an integration, if it has one.
    fn limit(&self, integration: &str) -> Option<usize> {
        let concurrency = self.engines.get(integration)?.plan().concurrency?;
        Some(concurrency.get() as usize)
    }

    fn has_room(&self, integration: &str) -> bool {
        let active = self.active.get(integration).copied().unwrap_or(0);
        self.limit(integration).is_none_or(|limit| active < limit)
    }

    /// Starts queued events, oldest first, while workers are free; an event whose
    /// integration is at its concurrency waits without holding up the others.
    fn start_ready(&mut self, service: &Arc<Service>) {
        let mut index = 0;
        while self.running.len() < self.workers && index < self.queue.len() {
            if !self.has_room(&self.queue[index].integration) {
                index += 1;
                continue;
            }
            let Some(item) = self.queue.remove(index) else {
                break;
            };
            // Claims name only the integrations served, so each event has its engine.
            let Some(engine) = self.engines.get(&item.integration).cloned() else {
                continue;
            };
            *self.active.entry(item.integration.clone()).or_default() += 1;
            let running = (item.integration.clone(), item.id);
            let service = service.clone();
            let task = self
                .running
                .spawn(async move { run_item(&service, &engine, item).await });
            self.tasks.insert(task.id(), running);
        }
    }

    /// How many events to claim, and from which integrations: those served whose running
    /// and queued events do not fill their concurrency yet. `None` while enough are
    /// queued. Events queued behind a full integration do not count, so they never keep
    /// others waiting; there are few of them, since a full integration is left out.
    fn claim_request(&self) -> Option<(usize, Vec<String>)> {
        let ready = self
            .queue
            .iter()
            .filter(|i| self.has_room(&i.integration))
            .count();
        let idle = self.running.len() < self.workers;
        if !idle && ready > self.workers / 2 {
            return None;
        }
        let limit = (2 * self.workers).saturating_sub(self.running.len() + ready);
        let from: Vec<String> = self
            .engines
            .keys()
            .filter(|name| {
                let Some(bound) = self.limit(name) else {
                    return true;
                };
                let queued = self.queue.iter().filter(|i| &i.integration == *name);
                self.active.get(*name).copied().unwrap_or(0) + queued.count() < bound
            })
            .cloned()
            .collect();
        (limit > 0 && !from.is_empty()).then_some((limit, from))
    }

    /// Waits for a running event to finish, new work, or a moment. With nothing running,
    /// `join_next` answers at once, so only the other two may end the wait then.
    async fn wait(&mut self, service: &Service) {
        let busy = !self.running.is_empty();
        tokio::select! {
            Some(joined) = self.running.join_next_with_id(), if busy => {
                self.release(joined, service);
            }
            _ = service.work.notified() => {}
            _ = tokio::time::sleep(IDLE_POLL) => {}
        }
    }

    /// Frees the place of every event that finished.
    fn reap(&mut self, service: &Service) {
        while let Some(joined) = self.running.try_join_next_with_id() {
            self.release(joined, service);
        }
    }

    /// Frees the place of a finished event. A run that panicked is a bug of ours, not of
    /// the input: its event is marked failed and logged, rather than left `running` for the
    /// next start to run again, out of order and maybe forever.
    fn release(
        &mut self,
        joined: Result<(tokio::task::Id, ()), tokio::task::JoinError>,
        service: &Service,
    ) {
        let id = match &joined {
            Ok((id, ())) => *id,
            Err(error) => error.id(),
        };
        let Some((integration, event)) = self.tasks.remove(&id) else {
            return;
        };
        if let Some(active) = self.active.get_mut(&integration) {
            *active = active.saturating_sub(1);
        }
        if let Err(error) = joined {
            tracing::error!(integration, event, %error, "run aborted; the event is marked failed");
            if let Err(error) = blocking(|| service.store.finish(event, Finished::Failed, None)) {
                tracing::error!(integration, event, %error, "cannot mark the aborted run's event failed");
            }
        }
    }
}

/// Runs a short blocking store call from async code that cannot await it: on a
/// multi-thread runtime the thread hands its other tasks (webhooks) over while it waits for
/// the store; elsewhere the call just runs.
pub(super) fn blocking<T>(call: impl FnOnce() -> T) -> T {
    let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
    match flavor {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(call),
        _ => call(),
    }
}
