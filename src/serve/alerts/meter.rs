//! The alerts' metrics, in one place: `integ_alerts_firing{integration,alert}` and
//! `integ_alert_notifications_total{integration,alert,result}` (result: ok, error).

/// Whether an alert fires now.
pub fn firing(integration: &str, alert: &str, firing: bool) {
    metrics::gauge!(
        "integ_alerts_firing",
        "integration" => integration.to_string(),
        "alert" => alert.to_string()
    )
    .set(if firing { 1.0 } else { 0.0 });
}

/// One attempt to send an alert, and whether it got through.
pub fn notified(integration: &str, alert: &str, ok: bool) {
    metrics::counter!(
        "integ_alert_notifications_total",
        "integration" => integration.to_string(),
        "alert" => alert.to_string(),
        "result" => if ok { "ok" } else { "error" }
    )
    .increment(1);
}
