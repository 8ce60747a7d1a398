//! integ's Prometheus metrics: every metric's name, type, labels and help text, the closed
//! sets its labels take, and the recorder that `integ serve` exposes on `/metrics`.
//!
//! Names follow Prometheus' conventions (`integ_` prefix, base units, `_total` counters,
//! histograms with explicit buckets, never summaries). Label values are spec names
//! (integration, trigger, step, connection) or one of the closed enums in `labels`, never
//! event data. Callers resolve handles (`metrics::Counter`, ...) once, when a plan is
//! loaded, and keep them: recording then costs an atomic add, with no label formatting or
//! registry lookup per event. Without an installed recorder (`integ run`, `integ test`)
//! the handles do nothing.

mod alerts;
mod catalog;
mod connection;
mod integration;
pub mod labels;

pub use alerts::{alert_evaluated, alert_firing, alert_notified, alert_series};

pub use catalog::{Kind, METRICS, Metric};
pub use connection::{ConnectionMetrics, InFlight, TokenMetrics};
pub use integration::{
    IntegrationMetrics, PlanNames, TriggerMetrics, UnroutedMetrics, WebhookMetrics,
    dead_letters_replayed,
};

use labels::{StoreOp, WorkerState};
use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// The buckets of every duration histogram, in seconds: OpenTelemetry's HTTP buckets, plus
/// a tail for retries, backoff and rate-limit waits.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 30.0, 60.0,
    300.0,
];

/// The buckets of the byte-size histograms: powers of 4 from 256 B to 16 MiB (the default
/// cap on an answer is 10 MiB).
pub const BYTE_BUCKETS: &[f64] = &[
    256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
];

#[derive(Debug, Clone, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot install the metrics recorder: {0}")]
    Install(String),
}

/// The process's metrics, rendered in the Prometheus text format.
#[derive(Debug, Clone)]
pub struct Exporter {
    handle: PrometheusHandle,
    /// The standard `process_*` metrics, read again at each render.
    process: metrics_process::Collector,
}

static INSTALLED: OnceLock<Result<Exporter, TelemetryError>> = OnceLock::new();

/// Installs the process-wide recorder (once; later calls answer the same exporter) and
/// describes every metric. Handles resolved before this do nothing, so call it before
/// any engine is built.
pub fn install() -> Result<Exporter, TelemetryError> {
    INSTALLED
        .get_or_init(|| {
            let bytes = Matcher::Full(catalog::HTTP_CLIENT_RESPONSE_BODY_BYTES.name.into());
            let handle = PrometheusBuilder::new()
                .set_buckets(DURATION_BUCKETS)
                .and_then(|builder| builder.set_buckets_for_metric(bytes, BYTE_BUCKETS))
                .and_then(|builder| builder.install_recorder())
                .map_err(|e| TelemetryError::Install(e.to_string()))?;
            catalog::describe();
            // Read at each render only: a process nobody scrapes never reads /proc (and a
            // run under valgrind, which procfs' rustix cannot read the aux vector under,
            // rustix#1559, works as long as nothing scrapes it).
            let process = metrics_process::Collector::default();
            process.describe();
            Ok(Exporter { handle, process })
        })
        .clone()
}

impl Exporter {
    /// Every series, in the Prometheus text format (version 0.0.4), the process's read
    /// now.
    pub fn render(&self) -> String {
        self.process.collect();
        self.handle.render()
    }

    /// Folds the samples histograms gathered since the last render into their buckets:
    /// call it every few seconds, or an unscraped process keeps every sample.
    pub fn upkeep(&self) {
        self.handle.run_upkeep();
    }
}

/// `integ_build_info`: 1, labelled with this build's version and the store served.
pub fn build_info(store: labels::StoreKind) {
    metrics::gauge!(
        catalog::BUILD_INFO.name,
        "version" => env!("CARGO_PKG_VERSION"),
        "store" => store.as_str(),
    )
    .set(1.0);
}

/// `integ_integration_info`: 1, labelled with the integration's name, the SHA-256 of its
/// spec's text (hex) and the environment applied to it (`None`: none).
pub fn integration_info(integration: &str, spec_sha256: &str, environment: Option<&str>) {
    metrics::gauge!(
        catalog::INTEGRATION_INFO.name,
        "integration" => integration.to_string(),
        "spec_sha256" => spec_sha256.to_string(),
        "environment" => environment.unwrap_or(integration::NONE).to_string(),
    )
    .set(1.0);
}

/// `integ_workers`: how many of the workers run an event.
#[derive(Debug)]
pub struct WorkerMetrics {
    workers: usize,
    busy: Gauge,
    idle: Gauge,
}

impl WorkerMetrics {
    /// `workers` workers, all idle.
    pub fn new(workers: usize) -> Self {
        let gauge =
            |state: WorkerState| metrics::gauge!(catalog::WORKERS.name, "state" => state.as_str());
        let metrics = Self {
            workers,
            busy: gauge(WorkerState::Busy),
            idle: gauge(WorkerState::Idle),
        };
        metrics.busy(0);
        metrics
    }

    /// How many workers there are.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// `busy` of the workers run an event now.
    pub fn busy(&self, busy: usize) {
        self.busy.set(busy as f64);
        self.idle.set(self.workers.saturating_sub(busy) as f64);
    }
}

/// The store calls' handles, one per operation.
#[derive(Debug)]
pub struct StoreOpMetrics {
    ops: Box<[(Histogram, Counter)]>,
}

/// Resolves the store calls' handles, every series at 0.
pub fn store_ops() -> StoreOpMetrics {
    StoreOpMetrics {
        ops: StoreOp::ALL
            .iter()
            .map(|op| {
                (
                    metrics::histogram!(catalog::STORE_OPERATION_DURATION.name, "op" => op.as_str()),
                    metrics::counter!(catalog::STORE_ERRORS.name, "op" => op.as_str()),
                )
            })
            .collect(),
    }
}

impl StoreOpMetrics {
    pub fn record(&self, op: StoreOp, took: std::time::Duration, ok: bool) {
        let (duration, errors) = &self.ops[op as usize];
        duration.record(took.as_secs_f64());
        if !ok {
            errors.increment(1);
        }
    }
}
