//! What the store keeps of each trigger's health, for `integ triggers`.

use serde::Serialize;

/// How a trigger (a webhook, poll or schedule of an integration) has been doing. Errors
/// are redacted before they get here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TriggerHealth {
    pub integration: String,
    /// `webhook POST /hooks/github`, `poll 0`, `schedule 0`: the kind and the route, or
    /// the trigger's place among the integration's triggers of its kind.
    pub trigger: String,
    /// Seconds since the Unix epoch.
    pub last_success_at: Option<i64>,
    /// Seconds since the Unix epoch.
    pub last_error_at: Option<i64>,
    pub last_error: Option<String>,
    /// Failures since the last success.
    pub consecutive_failures: u64,
    pub successes: u64,
    pub failures: u64,
}
