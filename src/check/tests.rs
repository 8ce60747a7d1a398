//! Alerts, environments and test blocks.

use super::expressions::Scope;
use super::{Checker, suggest};
use crate::ast::{ExprKind, Mock, OverrideSetting, Test, TestItem};
use crate::diagnostic::{ALERT_CHANNELS, ALERT_METRICS, Diagnostic, DiagnosticKind, STEP_OUTCOMES};
use crate::model::{AlertMetric, alert};

/// Field names of connections, for "did you mean" on an unknown override.
const CONNECTION_FIELDS: &[&str] = &[
    "base_url",
    "auth",
    "headers",
    "connect_timeout",
    "timeout",
    "rate_limit",
    "encoding",
    "max_concurrency",
    "circuit_breaker",
];

impl Checker<'_> {
    pub(super) fn alerts(&mut self) {
        for alert in &self.spec.alerts {
            let metric = &alert.metric;
            if !ALERT_METRICS.contains(&metric.node.as_str()) {
                let suggestion = suggest::closest(&metric.node, ALERT_METRICS.iter().copied());
                let kind = DiagnosticKind::UnknownAlertMetric {
                    name: metric.node.clone(),
                    suggestion,
                };
                self.report(kind, metric.span);
            }
            let channel = &alert.channel;
            if !ALERT_CHANNELS.contains(&channel.node.as_str()) {
                let suggestion = suggest::closest(&channel.node, ALERT_CHANNELS.iter().copied());
                let kind = DiagnosticKind::UnknownAlertChannel {
                    name: channel.node.clone(),
                    suggestion,
                };
                self.report(kind, channel.span);
            }
            if channel.node == "slack" || channel.node == "webhook" {
                self.credential(&alert.target, "the alert's webhook URL");
            }
            if channel.node == "email"
                && let ExprKind::String(text) = &alert.target.kind
                && text.value.parse::<lettre::message::Mailbox>().is_err()
            {
                let kind = DiagnosticKind::NotAnEmailAddress {
                    value: text.value.clone(),
                };
                self.report(kind, alert.target.span);
            }
            self.expr(&alert.target, &Scope::default());
            self.alert_condition(alert);
        }
        self.repeated_alerts();
    }

    /// W025 for a condition that holds with nothing happening (it fires at start and stays
    /// firing while all is well), W026 for one no count can meet.
    fn alert_condition(&mut self, alert: &crate::ast::Alert) {
        let (op, threshold) = (alert.op.node, alert.threshold.node);
        let span = crate::span::Span::new(alert.op.span.start, alert.threshold.span.end);
        if !alert::can_hold(op, threshold) {
            let kind = DiagnosticKind::AlertNeverFires {
                condition: format!("{} {threshold}", op.as_str()),
            };
            self.report(kind, span);
        } else if alert::holds(op, threshold, 0) {
            let kind = DiagnosticKind::AlertFiresWhenIdle {
                condition: format!("{} {threshold}", op.as_str()),
            };
            self.report(kind, span);
        }
    }

    /// E617: two alerts with one condition, channel and target would share one state and
    /// send every message twice.
    fn repeated_alerts(&mut self) {
        let mut seen: Vec<(String, crate::span::Span)> = Vec::new();
        for alert in &self.spec.alerts {
            let Some(metric) = AlertMetric::parse(&alert.metric.node) else {
                continue;
            };
            let condition = alert::condition(
                metric,
                alert.op.node,
                alert.threshold.node,
                alert.window.node,
            );
            let key = alert::identity(&condition, &alert.channel.node, &alert.target);
            match seen.iter().find(|(k, _)| *k == key) {
                Some((_, first)) => {
                    let kind = DiagnosticKind::RepeatedAlert;
                    let first = *first;
                    self.push(
                        Diagnostic::new(kind, alert.span).with_secondary(first, "first here"),
                    );
                }
                None => seen.push((key, alert.span)),
            }
        }
    }

    pub(super) fn environments(&mut self) {
        for environment in &self.spec.environments {
            let mut seen: Vec<(&str, &'static str, crate::span::Span)> = Vec::new();
            for item in &environment.overrides {
                if let OverrideSetting::Known(setting) = &item.setting.node {
                    let key = (
                        item.connection.node.as_str(),
                        crate::ast::Setting::keyword(setting),
                    );
                    match seen.iter().find(|(c, k, _)| (*c, *k) == key) {
                        Some((_, keyword, first)) => self.push(
                            Diagnostic::new(
                                DiagnosticKind::DuplicateSetting { keyword },
                                item.setting.span,
                            )
                            .with_secondary(*first, "first set here"),
                        ),
                        None => seen.push((key.0, key.1, item.setting.span)),
                    }
                }
                let connection = &item.connection;
                if !self.connections.contains_key(connection.node.as_str()) {
                    let names = self.connections.keys().copied();
                    let suggestion = suggest::closest(&connection.node, names);
                    let name = connection.node.clone();
                    let kind = DiagnosticKind::UnknownEnvironmentConnection { name, suggestion };
                    self.report(kind, connection.span);
                }
                match &item.setting.node {
                    OverrideSetting::Known(setting) => {
                        self.connection_setting(setting, item.setting.span)
                    }
                    OverrideSetting::Unknown { field, value } => {
                        // A known field reaches here when its value did not parse as that
                        // field's value.
                        let (kind, at) = if CONNECTION_FIELDS.contains(&field.node.as_str()) {
                            let kind = DiagnosticKind::InvalidOverrideValue {
                                field: field.node.clone(),
                            };
                            (kind, value.span)
                        } else {
                            let names = CONNECTION_FIELDS.iter().copied();
                            let suggestion = suggest::closest(&field.node, names);
                            let name = field.node.clone();
                            (
                                DiagnosticKind::UnknownOverrideField { name, suggestion },
                                field.span,
                            )
                        };
                        self.report(kind, at);
                    }
                }
            }
        }
    }

    pub(super) fn test(&mut self, test: &Test) {
        let spec = self.spec;
        let steps: Vec<&str> = spec
            .steps
            .iter()
            .chain(&spec.fallbacks)
            .map(|s| s.name.node.as_str())
            .collect();
        let events: Vec<_> = test
            .items
            .iter()
            .filter(|i| matches!(i.node, TestItem::Event(_)))
            .collect();
        match events.as_slice() {
            [] => self.report(DiagnosticKind::TestWithoutEvent, test.name.span),
            [first, rest @ ..] => {
                for again in rest {
                    let kind = DiagnosticKind::DuplicateSetting { keyword: "event" };
                    self.push(
                        Diagnostic::new(kind, again.span)
                            .with_secondary(first.span, "first set here"),
                    );
                }
            }
        }
        let request_scope = Scope {
            event: true,
            ..Scope::default()
        };
        self.mocked_twice(test);
        for item in &test.items {
            match &item.node {
                TestItem::Event(event) => {
                    self.expr(&event.value, &Scope::default());
                    // The request headers of a webhook test: test data, checked for HTTP.
                    self.http_headers(&event.headers);
                    for header in &event.headers {
                        self.expr(&header.value, &Scope::default());
                    }
                }
                TestItem::Mock(mock) => self.mock(mock, &request_scope),
                TestItem::ExpectRequest(expect) => {
                    self.known_connection(&expect.connection);
                    if let Some(predicate) = &expect.predicate {
                        self.expr(predicate, &request_scope);
                    }
                }
                TestItem::ExpectStep { step, outcome } => {
                    if !steps.contains(&step.node.as_str()) {
                        let suggestion = suggest::closest(&step.node, steps.iter().copied());
                        let kind = DiagnosticKind::UnknownStep {
                            name: step.node.clone(),
                            suggestion,
                        };
                        self.report(kind, step.span);
                    }
                    if !STEP_OUTCOMES.contains(&outcome.node.as_str()) {
                        let suggestion =
                            suggest::closest(&outcome.node, STEP_OUTCOMES.iter().copied());
                        let kind = DiagnosticKind::UnknownStepOutcome {
                            name: outcome.node.clone(),
                            suggestion,
                        };
                        self.report(kind, outcome.span);
                    }
                }
            }
        }
    }

    fn mock(&mut self, mock: &Mock, request_scope: &Scope) {
        self.known_connection(&mock.connection);
        if let Some(predicate) = &mock.predicate {
            self.expr(predicate, request_scope);
            if !mock.method.node.sends_body() {
                let method = mock.method.node.as_str();
                let kind = DiagnosticKind::BodyMatchWithoutBody { method };
                self.report(kind, predicate.span);
            }
        }
        if mock.answers.node.is_empty() {
            self.report(DiagnosticKind::MockWithoutAnswers, mock.answers.span);
        }
        for answer in &mock.answers.node {
            if let Some(body) = &answer.body {
                self.expr(body, &Scope::default());
            }
            // Response headers: a credential written there is test data.
            self.http_headers(&answer.headers);
            for header in &answer.headers {
                self.expr(&header.value, &Scope::default());
            }
            // The grammar bounds the status above; HTTP has none below 100.
            if answer.status.node < 100 {
                let kind = DiagnosticKind::NumberOutOfRange {
                    text: answer.status.node.to_string(),
                    range: "100 to 599",
                };
                self.report(kind, answer.status.span);
            }
        }
    }

    /// Two mocks that match the very same requests (connection, method, path and query,
    /// neither with a `where`): which one answers would be a guess.
    fn mocked_twice(&mut self, test: &Test) {
        let mut seen: Vec<(MockMatch, crate::span::Span)> = Vec::new();
        for item in &test.items {
            let TestItem::Mock(mock) = &item.node else {
                continue;
            };
            if mock.predicate.is_some() {
                continue;
            }
            let key = MockMatch::of(mock);
            // From `mock` to the path: the item's own span runs on over trailing blanks.
            let at = crate::span::Span::new(item.span.start, mock.path.span.end);
            match seen.iter().find(|(k, _)| *k == key) {
                Some((_, first)) => {
                    let request = format!(
                        "{} {} \"{}\"",
                        mock.connection.node,
                        mock.method.node.as_str(),
                        mock.path.value
                    );
                    let kind = DiagnosticKind::MockedTwice { request };
                    self.push(
                        Diagnostic::new(kind, at).with_secondary(*first, "first mocked here"),
                    );
                }
                None => seen.push((key, at)),
            }
        }
    }
}

/// What a mock without `where` matches: its connection, method, path, and query
/// parameters in any order.
#[derive(PartialEq)]
struct MockMatch {
    connection: String,
    method: crate::ast::Method,
    path: String,
    query: Vec<(String, String)>,
}

impl MockMatch {
    fn of(mock: &Mock) -> Self {
        let (path, mut query) = crate::model::split_query(&mock.path.value);
        query.sort();
        Self {
            connection: mock.connection.node.clone(),
            method: mock.method.node,
            path: path.to_string(),
            query,
        }
    }
}
