//! `integ serve`: webhooks into a durable inbox, workers out of it.
//!
//! A webhook is answered `202` only once its events are committed to the inbox; any `4xx`
//! enqueues nothing. A dispatcher claims events oldest first and runs each on its own task,
//! within `--workers` and each integration's `concurrency`, checkpointing each step, so
//! that an event left running by a stopped process resumes at its first unfinished step.

use crate::engine::{Engine, RunOutcome};
use crate::plan::WebhookPlan;
use crate::store::{DeadLetter, Finished, Pruned, RunRecord, Store};
use crate::webhook::signature::{self, Incoming};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::Notify;

/// Numbers the runs of this process, for the logs.
static RUNS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Webhook bodies above this size are refused with a 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Everything the server and its workers share.
pub struct Service {
    pub engines: Vec<Arc<Engine>>,
    pub store: Arc<dyn Store>,
    shutting_down: AtomicBool,
    work: Notify,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("engines", &self.engines.len())
            .finish_non_exhaustive()
    }
}

impl Service {
    pub fn new(engines: Vec<Arc<Engine>>, store: Arc<dyn Store>) -> Arc<Self> {
        Arc::new(Self {
            engines,
            store,
            shutting_down: AtomicBool::new(false),
            work: Notify::new(),
        })
    }

    /// Stops taking webhooks (503) and new work; events in the inbox stay there.
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.work.notify_waiters();
    }

    /// Wakes a worker for new work. `notify_one` keeps a permit when no worker is waiting,
    /// so work enqueued while every worker is busy is not left to the next poll.
    fn wake(&self) {
        self.work.notify_one();
    }

    fn stopping(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}

/// The HTTP side: every webhook of every integration, `/healthz` and `/readyz`.
pub fn router(service: Arc<Service>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route("/readyz", axum::routing::get(ready))
        .fallback(webhook)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(service)
}

async fn ready(State(service): State<Arc<Service>>) -> Response {
    if service.stopping() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    } else {
        "ready".into_response()
    }
}

fn refuse(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": reason.into() }))).into_response()
}

async fn webhook(
    State(service): State<Arc<Service>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if service.stopping() {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    }
    let routes: Vec<(&Arc<Engine>, &WebhookPlan)> = service
        .engines
        .iter()
        .flat_map(|engine| engine.plan().webhooks.iter().map(move |w| (engine, w)))
        .filter(|(_, w)| w.path == uri.path())
        .collect();
    let Some((engine, hook)) = routes
        .iter()
        .find(|(_, w)| w.method.as_str() == method.as_str())
        .copied()
    else {
        return if routes.is_empty() {
            refuse(
                StatusCode::NOT_FOUND,
                format!("no webhook at {}", uri.path()),
            )
        } else {
            refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} takes {}", uri.path(), routes[0].1.method.as_str()),
            )
        };
    };
    if let Err(error) = check_signature(engine, hook, &method, &uri, &headers, &body) {
        tracing::warn!(integration = %engine.plan().name, path = uri.path(), %error, "webhook refused: 401");
        return refuse(StatusCode::UNAUTHORIZED, error);
    }
    let payload: Json = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(error) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                format!("the body is not valid JSON: {error}"),
            );
        }
    };
    let events = hook.events(&engine.plan().templates, payload, engine.secrets());
    let store = service.store.clone();
    let integration = engine.plan().name.clone();
    let committed = tokio::task::spawn_blocking(move || store.enqueue(&integration, &events)).await;
    match committed {
        Ok(Ok((accepted, duplicates))) => {
            tracing::info!(integration = %engine.plan().name, path = uri.path(), accepted, duplicates, "webhook committed");
            service.wake();
            (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "accepted": accepted, "duplicates": duplicates })),
            )
                .into_response()
        }
        Ok(Err(error)) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the inbox is unavailable: {error}"),
        ),
        Err(_) => refuse(StatusCode::SERVICE_UNAVAILABLE, "the inbox is unavailable"),
    }
}

fn check_signature(
    engine: &Engine,
    hook: &WebhookPlan,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let Some((preset, secret)) = &hook.signature else {
        return Ok(());
    };
    let scope = crate::plan::Scope::fixed(engine.secrets());
    let secret = secret
        .eval(&engine.plan().templates, &scope)
        .ok()
        .flatten()
        .map(|s| crate::engine::as_text(Some(&s)))
        .ok_or("the signing secret is not available")?;
    // Providers sign the public URL; behind a proxy its scheme comes in X-Forwarded-Proto.
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("https");
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let path = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    let url = format!("{proto}://{host}{path}");
    let incoming = Incoming {
        method: method.as_str(),
        url: &url,
        headers,
        body,
        now: SystemTime::now(),
    };
    signature::verify(preset, secret.as_bytes(), hook.tolerance, &incoming)
        .map_err(|e| e.to_string())
}

/// Fires every schedule of every integration until the service shuts down: each
/// occurrence enqueues one event, `{"scheduled_at": "..."}` merged into the declared
/// `event`. Occurrences missed while no process ran are not made up: after a start, the
/// next one fires. An occurrence enqueues under a dedupe key of its time, so two processes
/// (or a restart within the same second) fire it once.
pub async fn schedule(service: Arc<Service>) {
    let mut tasks = Vec::new();
    for engine in &service.engines {
        for index in 0..engine.plan().schedules.len() {
            tasks.push(tokio::spawn(fire(service.clone(), engine.clone(), index)));
        }
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn fire(service: Arc<Service>, engine: Arc<Engine>, index: usize) {
    let Some(plan) = engine.plan().schedules.get(index) else {
        return;
    };
    while !service.stopping() {
        let now = chrono::Utc::now().with_timezone(&plan.timezone);
        let Ok(next) = plan.cron.find_next_occurrence(&now, false) else {
            return;
        };
        // Sleep in short stretches, so that a shutdown is noticed.
        loop {
            let left = (next - chrono::Utc::now().with_timezone(&plan.timezone))
                .to_std()
                .unwrap_or_default();
            if left.is_zero() || service.stopping() {
                break;
            }
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
        }
        if service.stopping() {
            return;
        }
        let scope = crate::plan::Scope::fixed(engine.secrets());
        let declared = plan
            .event
            .as_ref()
            .and_then(|e| e.eval(&engine.plan().templates, &scope).ok().flatten());
        let mut event = match declared {
            Some(Json::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        event.insert("scheduled_at".into(), Json::String(next.to_rfc3339()));
        let key = format!("schedule {} {}", plan.text, next.timestamp());
        let (store, integration) = (service.store.clone(), engine.plan().name.clone());
        let events = vec![(Json::Object(event), Some(key))];
        let _ = tokio::task::spawn_blocking(move || store.enqueue(&integration, &events)).await;
        service.wake();
    }
}

/// Pages a poll may fetch in one round, a safety net against an API whose next page never
/// ends.
const POLL_PAGES_PER_ROUND: usize = 100;

/// Runs every poll trigger of every integration until the service shuts down. Each round
/// starts at the stored position; each page's events are committed together with the
/// position after that page, so the position never moves past an event not in the inbox,
/// and a restarted process resumes where the last committed page left off.
pub async fn poll(service: Arc<Service>) {
    let mut tasks = Vec::new();
    for engine in &service.engines {
        for index in 0..engine.plan().polls.len() {
            tasks.push(tokio::spawn(poll_loop(
                service.clone(),
                engine.clone(),
                index,
            )));
        }
    }
    for task in tasks {
        let _ = task.await;
    }
}

async fn poll_loop(service: Arc<Service>, engine: Arc<Engine>, index: usize) {
    let Some(every) = engine.plan().polls.get(index).map(|p| p.every) else {
        return;
    };
    let trigger = format!("poll {index}");
    let integration = engine.plan().name.clone();
    while !service.stopping() {
        let store = service.store.clone();
        let (name, key) = (integration.clone(), trigger.clone());
        let mut position = tokio::task::spawn_blocking(move || store.position(&name, &key))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        for _ in 0..POLL_PAGES_PER_ROUND {
            // A failed poll is tried again next round, from the same position.
            let Ok(polled) = engine.poll(index, position.as_deref()).await else {
                break;
            };
            let Some(poll) = engine.plan().polls.get(index) else {
                return;
            };
            let events = crate::plan::keyed_events(
                &engine.plan().templates,
                polled.items,
                poll.when.as_ref(),
                poll.dedupe.as_ref(),
                engine.secrets(),
            );
            let next = polled.next.clone().or(position.clone());
            let (store, name, key) = (service.store.clone(), integration.clone(), trigger.clone());
            let stored = next.clone();
            let committed = tokio::task::spawn_blocking(move || {
                store.enqueue_page(&name, stored.as_deref().map(|p| (key.as_str(), p)), &events)
            })
            .await;
            if !matches!(committed, Ok(Ok(_))) {
                break;
            }
            service.wake();
            if polled.next.is_none() || polled.next == position {
                break;
            }
            position = next;
        }
        let until = tokio::time::Instant::now() + every;
        while !service.stopping() && tokio::time::Instant::now() < until {
            tokio::time::sleep((until - tokio::time::Instant::now()).min(Duration::from_secs(1)))
                .await;
        }
    }
}

/// How long dedupe keys, finished events and runs are kept by default: a provider's
/// redelivery comes within hours or days, and the state file must not grow forever.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// Forgets state older than `retention` (see `Store::prune`), once an hour, until shutdown.
pub async fn prune(service: Arc<Service>, retention: Duration) {
    while !service.stopping() {
        let store = service.store.clone();
        match tokio::task::spawn_blocking(move || store.prune(retention)).await {
            Ok(Ok(pruned)) if pruned != Pruned::default() => tracing::info!(
                dedupe_keys = pruned.dedupe_keys,
                events = pruned.events,
                runs = pruned.runs,
                "forgot state older than the retention"
            ),
            Ok(Err(error)) => tracing::warn!(%error, "cannot prune old state"),
            _ => {}
        }
        for _ in 0..3600 {
            if service.stopping() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Runs inbox events until the service shuts down: at most `workers` at once in all, and
/// at most an integration's `concurrency` of its own.
pub async fn work(service: Arc<Service>, workers: usize) {
    let store = service.store.clone();
    let _ = tokio::task::spawn_blocking(move || store.recover()).await;
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
                    Err(_) => Vec::new(),
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
    // Events claimed but not started stay `running`; the next start puts them back, as
    // after a crash. Those started finish (the caller bounds how long that may take).
    while let Some(joined) = dispatcher.running.join_next_with_id().await {
        dispatcher.release(joined, &service);
    }
}

/// How often an idle dispatcher looks at the inbox without being woken: polls, schedules
/// and replays by another process enqueue without waking it.
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
            let _ = blocking(|| service.store.finish(event, Finished::Failed, None));
        }
    }
}

/// Runs a short blocking store call from async code that cannot await it: on a
/// multi-thread runtime the thread hands its other tasks (webhooks) over while it waits for
/// the store; elsewhere the call just runs.
fn blocking<T>(call: impl FnOnce() -> T) -> T {
    let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
    match flavor {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(call),
        _ => call(),
    }
}

async fn run_item(service: &Service, engine: &Engine, item: crate::store::InboxItem) {
    let store = service.store.clone();
    let id = item.id;
    let span = tracing::info_span!("run", integration = %item.integration, event = id, run = RUNS.fetch_add(1, Ordering::Relaxed));
    let _entered = span.clone().entered();
    let resumed = item.done.len();
    tracing::info!(resumed_steps = resumed, "run started");
    drop(_entered);
    let report = tracing::Instrument::instrument(
        engine.resume(item.event.clone(), item.done, |step, result| {
            // A checkpoint is small and local; losing one only repeats the step.
            let _ = blocking(|| store.checkpoint(id, step, result));
        }),
        span.clone(),
    )
    .await;
    let _entered = span.entered();
    log_run(&report);
    let finished = ending(&report, &item.event, engine.secrets());
    // Off the runtime's threads: the store may be busy (a prune, a burst of webhooks), and
    // those threads serve the webhooks.
    let run = RunRecord::from_run(&report, engine.secrets());
    drop(_entered);
    let store = service.store.clone();
    let ended = tokio::task::spawn_blocking(move || store.finish(id, finished, Some(&run))).await;
    if let Ok(Err(error)) = ended {
        tracing::error!(event = id, %error, "cannot record the end of the run; the event runs again at the next start");
    }
}

/// One line per step and one for the run, inside the run's span.
fn log_run(report: &crate::engine::RunReport) {
    for step in &report.steps {
        let error = step.error.as_deref().unwrap_or("");
        tracing::info!(step = %step.name, outcome = step.outcome.as_str(), requests = step.requests.len(), error, "step");
    }
    let outcome = serde_json::to_value(report.outcome)
        .ok()
        .and_then(|v| v.as_str().map(String::from));
    tracing::info!(
        outcome = outcome.unwrap_or_default(),
        duration_ms = report.duration.as_millis() as u64,
        "run finished"
    );
}

/// How the inbox event of a run ends; a dead-lettered one carries its dead letter.
fn ending(
    report: &crate::engine::RunReport,
    event: &Json,
    secrets: &crate::secrets::Secrets,
) -> Finished {
    match report.outcome {
        RunOutcome::Succeeded => Finished::Done,
        RunOutcome::Failed => Finished::Failed,
        RunOutcome::DeadLettered => report
            .steps
            .iter()
            .find(|s| s.outcome == crate::model::Outcome::DeadLettered)
            .map_or(Finished::Failed, |step| {
                let letter = DeadLetter::from_run(report, step, event, secrets);
                Finished::DeadLettered(Box::new(letter))
            }),
    }
}
