//! The alerts' metrics. `alert` is the alert's key (its metric and channel, numbered when
//! several share them: `model::alert::keys`), never its target.

use super::catalog::{ALERT_EVALUATIONS, ALERT_NOTIFICATIONS, ALERTS_FIRING};
use super::labels::Outcome;

/// Exports an alert's series at 0, before it is first evaluated or sent.
pub fn alert_series(integration: &str, alert: &str) {
    alert_firing(integration, alert, false);
    for &result in Outcome::ALL {
        notifications(integration, alert, result).increment(0);
    }
}

/// `integ_alert_evaluations_total`: exported at 0 before the first evaluation, then one
/// more after each evaluation of every alert.
pub fn alert_evaluated(evaluations: u64) {
    metrics::counter!(ALERT_EVALUATIONS.name).increment(evaluations);
}

/// `integ_alerts_firing`: whether the alert's condition holds now.
pub fn alert_firing(integration: &str, alert: &str, firing: bool) {
    metrics::gauge!(
        ALERTS_FIRING.name,
        "integration" => integration.to_string(),
        "alert" => alert.to_string(),
    )
    .set(if firing { 1.0 } else { 0.0 });
}

/// `integ_alert_notifications_total`: one attempt to send the alert's message.
pub fn alert_notified(integration: &str, alert: &str, result: Outcome) {
    notifications(integration, alert, result).increment(1);
}

fn notifications(integration: &str, alert: &str, result: Outcome) -> metrics::Counter {
    metrics::counter!(
        ALERT_NOTIFICATIONS.name,
        "integration" => integration.to_string(),
        "alert" => alert.to_string(),
        "result" => result.as_str(),
    )
}
