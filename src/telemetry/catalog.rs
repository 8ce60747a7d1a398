//! Every metric integ exports: the one list that names them, describes them (`# HELP`)
//! and that `docs/operations.md` is checked against (`tests/docs_sync.rs`).

/// A metric's Prometheus type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// One metric: its name, type, label names and help text.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    pub name: &'static str,
    pub kind: Kind,
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

pub(super) const BUILD_INFO: Metric = Metric {
    name: "integ_build_info",
    kind: Kind::Gauge,
    labels: &["version", "store"],
    help: "Always 1: the integ version running and the state store it serves.",
};

pub(super) const STORE_OPERATION_DURATION: Metric = Metric {
    name: "integ_store_operation_duration_seconds",
    kind: Kind::Histogram,
    labels: &["op"],
    help: "Time the state store took to answer a call of integ serve's hot path.",
};

pub(super) const STORE_ERRORS: Metric = Metric {
    name: "integ_store_errors_total",
    kind: Kind::Counter,
    labels: &["op"],
    help: "Calls of integ serve's hot path the state store refused.",
};

pub(super) const ALERTS_FIRING: Metric = Metric {
    name: "integ_alerts_firing",
    kind: Kind::Gauge,
    labels: &["integration", "alert"],
    help: "1 while an alert's condition holds, else 0.",
};

pub(super) const ALERT_NOTIFICATIONS: Metric = Metric {
    name: "integ_alert_notifications_total",
    kind: Kind::Counter,
    labels: &["integration", "alert", "result"],
    help: "Attempts to send an alert's message, by whether the channel took it.",
};

/// Every metric, in the order `docs/operations.md` lists them.
pub const METRICS: &[Metric] = &[
    BUILD_INFO,
    STORE_OPERATION_DURATION,
    STORE_ERRORS,
    ALERTS_FIRING,
    ALERT_NOTIFICATIONS,
];

/// Gives every metric its `# HELP` line.
pub(super) fn describe() {
    for metric in METRICS {
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(metric.name, metric.help),
            Kind::Gauge => metrics::describe_gauge!(metric.name, metric.help),
            Kind::Histogram => metrics::describe_histogram!(metric.name, metric.help),
        }
    }
}
