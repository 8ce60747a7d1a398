//! Alerts: a count over a sliding window compared with a threshold, and where to say so.

use crate::ast::{BinaryOp, Expr, ExprKind};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Alert {
    pub metric: AlertMetric,
    pub op: BinaryOp,
    pub threshold: f64,
    pub window: Duration,
    pub channel: AlertChannel,
    pub target: Expr,
}

impl Alert {
    /// The condition as a spec writes it: `dead_letters > 0 in 15m`.
    pub fn condition(&self) -> String {
        condition(self.metric, self.op, self.threshold, self.window)
    }

    /// The condition and channel, for people: `dead_letters > 0 in 15m notify slack` (never
    /// the target, which may be an e-mail address).
    pub fn describe(&self) -> String {
        format!("{} notify {}", self.condition(), self.channel.as_str())
    }

    /// Whether the condition holds for `value`, the metric's count over the window.
    pub fn holds(&self, value: u64) -> bool {
        holds(self.op, self.threshold, value)
    }
}

/// The condition of an alert, as a spec writes it.
pub fn condition(metric: AlertMetric, op: BinaryOp, threshold: f64, window: Duration) -> String {
    format!(
        "{} {} {threshold} in {}",
        metric.as_str(),
        op.as_str(),
        format_duration(window)
    )
}

/// What makes two alerts of an integration the same alert written twice (E617): their
/// condition, channel and target (by the name it is read from).
pub fn identity(condition: &str, channel: &str, target: &Expr) -> String {
    format!("{condition} notify {channel} {}", target_name(target))
}

/// The keys of an integration's alerts, in the order written: the metric and channel
/// (`dead_letters/slack`), numbered from the second alert on the same pair
/// (`dead_letters/slack/2`). Their state is kept under it, and metrics and logs name them
/// so: spec names and closed sets only, never the target (an e-mail address, a secret's
/// name) nor the threshold or window, so that editing those keeps the alert's state.
pub fn keys(alerts: &[Alert]) -> Vec<String> {
    alerts
        .iter()
        .enumerate()
        .map(|(at, alert)| {
            let same = |a: &&Alert| a.metric == alert.metric && a.channel == alert.channel;
            let key = format!("{}/{}", alert.metric.as_str(), alert.channel.as_str());
            match alerts[..at].iter().filter(same).count() {
                0 => key,
                before => format!("{key}/{}", before + 1),
            }
        })
        .collect()
}

/// Where a target is read from, never a value read at run time: `secret("NAME")`,
/// `env("NAME")`, or a literal address.
fn target_name(target: &Expr) -> String {
    match &target.kind {
        ExprKind::String(text) => text.value.clone(),
        ExprKind::Call { function, args } => {
            let name = match args.first().map(|a| &a.kind) {
                Some(ExprKind::String(text)) => text.value.as_str(),
                _ => "",
            };
            format!("{}(\"{name}\")", function.node)
        }
        _ => "(value)".into(),
    }
}

/// Whether `value op threshold` holds. The counts are whole numbers, compared as the
/// threshold is written (it may have a fraction). An operator that is no comparison never
/// holds (the checker admits only comparisons).
pub fn holds(op: BinaryOp, threshold: f64, value: u64) -> bool {
    // Counts stay far below 2^53, where f64 is exact.
    let value = value as f64;
    match op {
        BinaryOp::Eq => value == threshold,
        BinaryOp::Ne => value != threshold,
        BinaryOp::Lt => value < threshold,
        BinaryOp::Le => value <= threshold,
        BinaryOp::Gt => value > threshold,
        BinaryOp::Ge => value >= threshold,
        BinaryOp::Or | BinaryOp::And | BinaryOp::Fallback => false,
    }
}

/// The largest count an alert compares: 2^53, where f64 stops being exact.
const MAX_COUNT: f64 = 9_007_199_254_740_992.0;

/// Whether some count (a whole number, 0 or more) makes the condition hold.
pub fn can_hold(op: BinaryOp, threshold: f64) -> bool {
    // The smallest counts on either side of the threshold settle every comparison; counts
    // stay below 2^53 (where f64 is exact), so a threshold beyond is never passed.
    let near = threshold.clamp(0.0, MAX_COUNT);
    [
        0,
        near.floor() as u64,
        near.ceil() as u64,
        near.floor() as u64 + 1,
    ]
    .into_iter()
    .any(|n| holds(op, threshold, n))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertMetric {
    DeadLetters,
    FailedRuns,
    Retries,
    RateLimited,
}

impl AlertMetric {
    pub const ALL: [Self; 4] = [
        Self::DeadLetters,
        Self::FailedRuns,
        Self::Retries,
        Self::RateLimited,
    ];

    /// The name a spec writes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DeadLetters => "dead_letters",
            Self::FailedRuns => "failed_runs",
            Self::Retries => "retries",
            Self::RateLimited => "rate_limited",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }

    /// The anchor of the metric's runbook entry in the page `integ doc` writes for an
    /// integration (`docs/integrations/<integration>.md#rb-dead-letters`): alerts link to it.
    pub fn runbook_anchor(self) -> String {
        format!("rb-{}", self.as_str().replace('_', "-"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertChannel {
    Slack,
    Webhook,
    Email,
}

impl AlertChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Webhook => "webhook",
            Self::Email => "email",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        [Self::Slack, Self::Webhook, Self::Email]
            .into_iter()
            .find(|c| c.as_str() == name)
    }
}

/// Where an alert stands: its condition holds (`Firing`) or not (`Ok`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertStatus {
    Ok,
    Firing,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Firing => "firing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ok" => Some(Self::Ok),
            "firing" => Some(Self::Firing),
            _ => None,
        }
    }
}

/// A duration as a spec would write it: `2m`, `1h30m`, `500ms`.
pub fn format_duration(duration: Duration) -> String {
    const UNITS: &[(&str, u128)] = &[
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ];
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in UNITS {
        if millis >= *size {
            out.push_str(&format!("{}{unit}", millis / size));
            millis %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runbook_anchor_writes_the_metric_with_dashes() {
        assert_eq!(AlertMetric::DeadLetters.runbook_anchor(), "rb-dead-letters");
        assert_eq!(AlertMetric::RateLimited.runbook_anchor(), "rb-rate-limited");
        assert_eq!(AlertMetric::Retries.runbook_anchor(), "rb-retries");
    }

    #[test]
    fn a_condition_holds_on_whole_counts_only_where_one_can() {
        assert!(holds(BinaryOp::Gt, 0.0, 1));
        assert!(!holds(BinaryOp::Gt, 0.0, 0));
        assert!(holds(BinaryOp::Ge, 1.5, 2));
        assert!(can_hold(BinaryOp::Gt, 1e9));
        assert!(!can_hold(BinaryOp::Gt, 1e300));
        assert!(can_hold(BinaryOp::Eq, 3.0));
        assert!(!can_hold(BinaryOp::Eq, 2.5));
        assert!(!can_hold(BinaryOp::Lt, 0.0));
        assert!(!can_hold(BinaryOp::Le, -1.0));
        assert!(can_hold(BinaryOp::Ne, -1.0));
    }

    #[test]
    fn keys_name_metric_and_channel_numbered_from_the_second_alike() {
        let alert = |metric, threshold, channel| Alert {
            metric,
            op: BinaryOp::Gt,
            threshold,
            window: Duration::from_secs(60),
            channel,
            target: Expr {
                kind: ExprKind::Null,
                span: crate::span::Span::new(0, 0),
            },
        };
        let alerts = [
            alert(AlertMetric::DeadLetters, 0.0, AlertChannel::Slack),
            alert(AlertMetric::DeadLetters, 9.0, AlertChannel::Email),
            alert(AlertMetric::DeadLetters, 5.0, AlertChannel::Slack),
            alert(AlertMetric::Retries, 5.0, AlertChannel::Slack),
        ];
        assert_eq!(
            keys(&alerts),
            [
                "dead_letters/slack",
                "dead_letters/email",
                "dead_letters/slack/2",
                "retries/slack"
            ]
        );
    }

    #[test]
    fn durations_print_as_specs_write_them() {
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
        assert_eq!(format_duration(Duration::ZERO), "0s");
    }
}
