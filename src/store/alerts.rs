//! What the store keeps for alerts: the counts a window of runs gives each metric, and
//! each alert's state with the last state notified.

use crate::model::{AlertMetric, AlertStatus};

/// The counts of an integration's runs started in a window, one per alert metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertCounts {
    /// Runs that ended dead-lettered.
    pub dead_letters: u64,
    /// Runs that failed, dead-lettered ones included.
    pub failed_runs: u64,
    /// Requests made again after a failure.
    pub retries: u64,
    /// Attempts slowed down by a rate limit or refused with a 429.
    pub rate_limited: u64,
}

impl AlertCounts {
    pub fn of(&self, metric: AlertMetric) -> u64 {
        match metric {
            AlertMetric::DeadLetters => self.dead_letters,
            AlertMetric::FailedRuns => self.failed_runs,
            AlertMetric::Retries => self.retries,
            AlertMetric::RateLimited => self.rate_limited,
        }
    }
}

/// One alert's state, as kept: where it stands, since when and at what value, and the last
/// state notified (sent, or given up on after the delivery's attempts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    pub integration: String,
    /// The alert's key (`model::Alert::key`): its condition, channel and target's name.
    pub alert: String,
    pub status: AlertStatus,
    /// The count when the status last changed.
    pub value: u64,
    /// Seconds since the Unix epoch.
    pub changed_at: i64,
    pub notified: AlertStatus,
    pub notified_at: Option<i64>,
    /// Why the last delivery failed; secrets redacted.
    pub error: Option<String>,
}

impl AlertState {
    /// The state still to notify, if the last one notified is not the current one.
    pub fn owed(&self) -> Option<AlertStatus> {
        (self.status != self.notified).then_some(self.status)
    }
}

/// Names one alert: its integration and its key (`model::Alert::key`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertKey<'a> {
    pub integration: &'a str,
    pub alert: &'a str,
}

/// What became of an alert, to keep (`Records::save_alert`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChange<'a> {
    /// It moved to `status` at count `value`; a new alert starts with nothing owed but
    /// this status.
    Status { status: AlertStatus, value: u64 },
    /// `status` was notified: sent, or given up on with `error` (redacted by the caller).
    Notified {
        status: AlertStatus,
        error: Option<&'a str>,
    },
}
