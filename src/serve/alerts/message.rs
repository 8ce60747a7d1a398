//! What an alert says: the JSON body a generic webhook receives, and Slack's text.

use super::AlertOptions;
use crate::model::{Alert, AlertStatus, format_duration};
use serde::Serialize;

/// The body of a generic webhook's `POST` (documented in docs/language.md, "Alerts").
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    pub integration: String,
    /// The alert's key: its metric and channel (`dead_letters/slack`), numbered from the
    /// second alert on the same pair (`model::alert::keys`).
    pub alert: String,
    /// As a spec writes it: `dead_letters > 0 in 15m`.
    pub condition: String,
    /// `firing` when the condition started to hold, `resolved` when it stopped.
    pub state: &'static str,
    /// The same, in one line for people.
    pub text: String,
    pub metric: &'static str,
    /// The count over the window when the state changed.
    pub value: u64,
    pub operator: &'static str,
    pub threshold: f64,
    /// As a spec writes it (`15m`), and in seconds.
    pub window: String,
    pub window_seconds: u64,
    /// When the state changed, seconds since the Unix epoch.
    pub since: i64,
    /// The integration's runs on the admin listener's run-history page; absent when
    /// `integ serve` knows no admin URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runs_url: Option<String>,
    /// The runbook entry of the metric in the page `integ doc` writes.
    pub runbook: String,
}

impl Notification {
    pub fn new(
        integration: &str,
        key: &str,
        alert: &Alert,
        status: AlertStatus,
        value: u64,
        since: i64,
        links: &AlertOptions,
    ) -> Self {
        let state = match status {
            AlertStatus::Firing => "firing",
            AlertStatus::Ok => "resolved",
        };
        let condition = alert.condition();
        Self {
            integration: integration.to_string(),
            alert: key.to_string(),
            condition: condition.clone(),
            state,
            text: format!(
                "[{}] {integration}: {condition} (now {value})",
                state.to_ascii_uppercase()
            ),
            metric: alert.metric.as_str(),
            value,
            operator: alert.op.as_str(),
            threshold: alert.threshold,
            window: format_duration(alert.window),
            window_seconds: alert.window.as_secs(),
            since,
            runs_url: links
                .admin_url
                .as_deref()
                .map(|url| runs_url(url, integration)),
            runbook: format!(
                "{}/{integration}.md#{}",
                links
                    .docs_url
                    .as_deref()
                    .map_or("docs/integrations", |url| url.trim_end_matches('/')),
                alert.metric.runbook_anchor()
            ),
        }
    }

    /// The body of a Slack incoming webhook: the text, then the links.
    pub fn slack(&self) -> serde_json::Value {
        let mut text = self.text.clone();
        if let Some(url) = &self.runs_url {
            text.push_str(&format!("\n<{url}|Run history>"));
        }
        text.push_str(&format!("\nRunbook: {}", self.runbook));
        serde_json::json!({ "text": text })
    }

    /// The subject and body of an e-mail.
    pub fn email(&self) -> (String, String) {
        let mut body = format!("{}\n\n", self.text);
        if let Some(url) = &self.runs_url {
            body.push_str(&format!("Run history: {url}\n"));
        }
        body.push_str(&format!("Runbook: {}\n", self.runbook));
        (self.text.clone(), body)
    }
}

/// The integration's page of runs under the admin URL.
fn runs_url(admin_url: &str, integration: &str) -> String {
    format!(
        "{}/runs?integration={integration}",
        admin_url.trim_end_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ast::{BinaryOp, Expr, ExprKind};
    use crate::model::{AlertChannel, AlertMetric};
    use std::time::Duration;

    #[test]
    fn a_notification_links_the_run_history_and_the_runbook_anchor() {
        let alert = Alert {
            metric: AlertMetric::DeadLetters,
            op: BinaryOp::Gt,
            threshold: 0.0,
            window: Duration::from_secs(900),
            channel: AlertChannel::Webhook,
            target: Expr {
                kind: ExprKind::Null,
                span: crate::span::Span::new(0, 0),
            },
        };
        let n = Notification::new(
            "shop",
            "k",
            &alert,
            AlertStatus::Firing,
            3,
            7,
            &AlertOptions {
                admin_url: Some("http://127.0.0.1:9464/".into()),
                ..AlertOptions::default()
            },
        );
        assert_eq!(n.text, "[FIRING] shop: dead_letters > 0 in 15m (now 3)");
        assert_eq!(n.runbook, "docs/integrations/shop.md#rb-dead-letters");
        assert_eq!(
            n.runs_url.as_deref(),
            Some("http://127.0.0.1:9464/runs?integration=shop")
        );
        assert_eq!((n.window.as_str(), n.window_seconds), ("15m", 900));
        let published = AlertOptions {
            docs_url: Some("https://docs.example.com/integ/".into()),
            ..AlertOptions::default()
        };
        let n = Notification::new("shop", "k", &alert, AlertStatus::Ok, 0, 7, &published);
        assert_eq!(
            n.runbook,
            "https://docs.example.com/integ/shop.md#rb-dead-letters"
        );
        assert_eq!(n.runs_url, None);
    }
}
