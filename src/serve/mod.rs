//! `integ serve`: webhooks into a durable inbox, workers out of it.
//!
//! A webhook is answered `202` only once its events are committed to the inbox; any `4xx`
//! enqueues nothing. A dispatcher claims events oldest first and runs each on its own task,
//! within `--workers` and each integration's `concurrency`, checkpointing each step, so
//! that an event left running by a stopped process resumes at its first unfinished step.

mod dispatch;
mod health;
mod http;
mod poll;
mod prune;
mod public_url;
mod run;
mod schedule;
mod webhook;

pub use dispatch::work;
pub use health::keep_health;
pub use http::{HttpOptions, MAX_CONNECTIONS, READ_TIMEOUT, REQUEST_TIMEOUT, listen};
pub use poll::poll;
pub use prune::{RETENTION, prune};
pub use public_url::PublicUrl;
pub use schedule::schedule;
pub use webhook::{MAX_BODY_BYTES, router};

use crate::engine::Engine;
use crate::store::Store;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;

/// Everything the server and its workers share.
pub struct Service {
    pub engines: Vec<Arc<Engine>>,
    pub store: Arc<dyn Store>,
    health: health::Health,
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
        let health = health::Health::load(&engines, store.as_ref());
        Arc::new(Self {
            engines,
            store,
            health,
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
    pub(super) fn wake(&self) {
        self.work.notify_one();
    }

    pub(super) fn stopping(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }
}
