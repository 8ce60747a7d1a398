//! The hot path's calls to the store, watched: each one timed and its failures counted
//! (`integ_store_operation_duration_seconds`, `integ_store_errors_total`), and whether the
//! last one was taken, for `/readyz`.

use crate::store::StoreError;
use crate::telemetry::{self, StoreOpMetrics, labels::StoreOp};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

#[derive(Debug)]
pub(super) struct StoreCalls {
    metrics: StoreOpMetrics,
    /// The store refused the last call: cleared by the next one it takes.
    failing: AtomicBool,
}

impl StoreCalls {
    pub(super) fn new() -> Self {
        Self {
            metrics: telemetry::store_ops(),
            failing: AtomicBool::new(false),
        }
    }

    /// Runs `call`, one `op` on the store, and notes how it went.
    pub(super) async fn call<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        self.metrics.record(op, started.elapsed(), result.is_ok());
        self.failing.store(result.is_err(), Ordering::Relaxed);
        result
    }

    /// Whether the store refused the last call (an enqueue, a claim, a run's end, or the
    /// heartbeat every 20 s).
    pub(super) fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}
