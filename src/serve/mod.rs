//! `integ serve`: webhooks into a durable inbox, workers out of it.
//!
//! A webhook is answered `202` only once its events are committed to the inbox; any `4xx`
//! enqueues nothing. The events are claimed by this process in the same write and handed
//! to the dispatcher from memory (`intake`); it runs each on its own task, within
//! `--workers` and each integration's `concurrency`, checkpointing each step but the last,
//! so that an event left running by a stopped process resumes at its first unfinished step.

pub mod admin;
mod alerts;
mod backfill;
mod dispatch;
mod gauges;
mod health;
mod http;
mod intake;
mod lanes;
mod occurrences;
mod pass;
mod poll;
mod probes;
mod prune;
mod public_url;
mod run;
mod schedule;
mod store_calls;
mod webhook;

pub use alerts::{AlertOptions, Alerts, Notification, SMTP_URL, Smtp, alert, forget_undeclared};
pub use backfill::{Backfill, Logged};
pub use dispatch::work;
pub use gauges::keep_gauges;
pub use health::keep_health;
pub use http::{HttpOptions, MAX_CONNECTIONS, READ_TIMEOUT, REQUEST_TIMEOUT, listen};
pub use intake::MAX_PENDING;
pub use poll::poll;
pub use prune::{RETENTION, prune};
pub use public_url::PublicUrl;
pub use schedule::schedule;
pub use webhook::{MAX_BODY_BYTES, router};

use crate::engine::Engine;
use crate::store::{InboxItem, Owner, Store};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};

/// How long this process's claims hold without a heartbeat (see `Owner`).
const LEASE: Duration = Duration::from_secs(60);

/// Everything the server and its workers share.
pub struct Service {
    pub engines: Vec<Arc<Engine>>,
    pub store: Arc<dyn Store>,
    /// This process, as the owner of the events it claims.
    owner: Owner,
    health: health::Health,
    /// `/readyz` fails: SIGTERM came (see `drain`).
    draining: AtomicBool,
    shutting_down: AtomicBool,
    work: Notify,
    intake: Arc<intake::Intake>,
    /// The dispatcher's end of the intake's hand-over, taken by `work`.
    arrivals: Mutex<Option<mpsc::UnboundedReceiver<InboxItem>>>,
    /// The hot path's store calls, timed, and whether the last was taken (`/readyz`).
    store_calls: Arc<store_calls::StoreCalls>,
    dispatcher_died: probes::DispatcherDied,
    /// Hears how polls' backfills go: log lines unless told otherwise.
    backfill: std::sync::OnceLock<Arc<dyn Backfill>>,
    /// Requests no webhook took.
    unrouted: crate::telemetry::UnroutedMetrics,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("engines", &self.engines.len())
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// A service with the default `--max-pending`.
    pub fn new(engines: Vec<Arc<Engine>>, store: Arc<dyn Store>) -> Arc<Self> {
        Self::with_max_pending(engines, store, MAX_PENDING)
    }

    /// A service that refuses webhooks while `max_pending` events wait or run.
    pub fn with_max_pending(
        engines: Vec<Arc<Engine>>,
        store: Arc<dyn Store>,
        max_pending: usize,
    ) -> Arc<Self> {
        let health = health::Health::load(&engines, store.as_ref());
        let (intake, arrivals) = intake::Intake::new(max_pending);
        Arc::new(Self {
            engines,
            store,
            owner: Owner::new(LEASE),
            health,
            draining: AtomicBool::new(false),
            shutting_down: AtomicBool::new(false),
            work: Notify::new(),
            intake,
            arrivals: Mutex::new(Some(arrivals)),
            store_calls: Arc::new(store_calls::StoreCalls::new()),
            dispatcher_died: probes::DispatcherDied::default(),
            backfill: std::sync::OnceLock::new(),
            unrouted: crate::telemetry::UnroutedMetrics::new(),
        })
    }

    /// Polls' backfills report to `backfill` (a spinner on a terminal) rather than as log
    /// lines; said once, before the polls start.
    pub fn report_backfill(&self, backfill: Arc<dyn Backfill>) {
        if self.backfill.set(backfill).is_err() {
            tracing::warn!("backfills already report elsewhere; this is ignored");
        }
    }

    pub(super) fn backfill(&self) -> &dyn Backfill {
        self.backfill
            .get_or_init(|| Arc::new(Logged::default()))
            .as_ref()
    }

    /// Fails `/readyz` from now on, while webhooks are still taken and run: the first
    /// step of a shutdown, so that a load balancer stops sending before `shut_down`
    /// refuses what it sends.
    pub fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    /// Stops taking webhooks (503) and new work (and fails `/readyz`); events in the inbox
    /// stay there.
    pub fn shut_down(&self) {
        self.drain();
        self.shutting_down.store(true, Ordering::SeqCst);
        self.work.notify_waiters();
    }

    pub(super) fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub(super) fn stopping(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}
