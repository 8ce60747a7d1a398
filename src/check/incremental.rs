//! Incremental polls (`since`), dedupe retention, and poll bodies: what lint can tell of a
//! poll that asks for what changed since its high-water mark.

use super::Checker;
use super::expressions::Scope;
use super::triggers::TRIGGER_SCOPE;
use crate::ast::{
    Body, Dedupe, Expr, ExprKind, Method, Poll, PollSetting, Since, SinceSetting, Text,
};
use crate::diagnostic::DiagnosticKind;
use crate::model::MarkType;
use crate::span::Span;
use std::time::Duration;

/// Dedupe keys are kept at most this long: a provider redelivers within days, and keys
/// kept for years only grow the state file.
const MAX_RETENTION: Duration = Duration::from_secs(366 * 24 * 3600);

impl Checker<'_> {
    pub(super) fn since(&mut self, since: &Since, poll: &Poll) {
        self.path_only(&since.path, "`since`", &TRIGGER_SCOPE);
        self.once_each(&since.settings);
        let kind = MarkType::from_name(&since.kind.node);
        if kind.is_none() {
            let suggestion =
                super::suggest::closest(&since.kind.node, MarkType::NAMES.iter().copied());
            let name = since.kind.node.clone();
            let kind = DiagnosticKind::UnknownMarkType {
                name,
                sent_from: None,
                suggestion,
            };
            self.report(kind, since.kind.span);
        }
        for setting in &since.settings {
            match &setting.node {
                SinceSetting::Start(start) => {
                    self.expr(start, &Scope::default());
                    if let Some(kind) = kind {
                        self.start_of_type(start, kind, &since.kind.node);
                    }
                }
                SinceSetting::Send(send) => {
                    let known = MarkType::from_name(&send.node);
                    let fits = |k: MarkType| kind.is_none_or(|kind| kind.sends_as(k));
                    if !known.is_some_and(fits) {
                        let fitting = MarkType::NAMES
                            .iter()
                            .copied()
                            .filter(|n| MarkType::from_name(n).is_some_and(fits));
                        let suggestion = super::suggest::closest(&send.node, fitting);
                        let name = send.node.clone();
                        let sent_from = known.map(|_| since.kind.node.clone());
                        let kind = DiagnosticKind::UnknownMarkType {
                            name,
                            sent_from,
                            suggestion,
                        };
                        self.report(kind, send.span);
                    }
                }
                SinceSetting::Lookback(lookback) => {
                    if kind.is_some_and(|k| !k.takes(lookback)) {
                        let given = match lookback {
                            crate::ast::Lookback::Duration(_) => "duration",
                            crate::ast::Lookback::Count(_) => "count",
                        };
                        let kind = since.kind.node.clone();
                        self.report(
                            DiagnosticKind::LookbackNotOfMarkType { kind, given },
                            setting.span,
                        );
                    }
                }
            }
        }
        if !request_reads_since(poll) {
            let span = Span::new(since.path.span.start, since.kind.span.end);
            self.report(DiagnosticKind::SinceNeverSent, span);
        }
    }

    /// A literal `start`, or the literal default of `env(...)`, read as the mark's type.
    fn start_of_type(&mut self, start: &Expr, kind: MarkType, name: &str) {
        let literal = match &start.kind {
            ExprKind::Call { function, args } if function.node == "env" => args.get(1),
            _ => Some(start),
        };
        let value = match literal.map(|e| &e.kind) {
            Some(ExprKind::String(text)) => serde_json::Value::String(text.value.clone()),
            Some(ExprKind::Number(number)) => serde_json::Value::Number(number.clone()),
            _ => return,
        };
        if let Err(error) = kind.read(&value) {
            let kind = DiagnosticKind::StartNotOfMarkType {
                kind: name.to_string(),
                reason: error.to_string(),
            };
            self.report(kind, literal.map_or(start.span, |e| e.span));
        }
    }

    pub(super) fn incremental_without_dedupe(&mut self, since: &Since, span: Span) {
        let lookback = since
            .settings
            .iter()
            .any(|s| matches!(s.node, SinceSetting::Lookback(_)));
        self.report(DiagnosticKind::IncrementalWithoutDedupe { lookback }, span);
    }

    /// A trigger's `dedupe`: its key, and how long its keys are kept. For a poll, the keys
    /// must outlive the overlap of two rounds (an interval and the look-back), or an item
    /// asked for again no longer finds its key and runs twice.
    pub(super) fn dedupe(
        &mut self,
        dedupe: &Dedupe,
        poll: Option<(&Poll, Option<&Since>)>,
        scope: &Scope<'_>,
    ) {
        if let Some(span) = super::triggers::reads_clock(&dedupe.key) {
            self.report(DiagnosticKind::DedupeReadsClock, span);
        }
        self.expr(&dedupe.key, scope);
        if let Some(retention) = &dedupe.retention {
            let positive = u32::from(!retention.node.is_zero());
            self.at_least_one("the dedupe retention", positive, retention.span);
            let overlap = poll.map_or(Duration::ZERO, |(poll, since)| overlap(poll, since));
            let problem = if retention.node > MAX_RETENTION {
                Some("are kept longer than a year".to_string())
            } else if !retention.node.is_zero() && retention.node < overlap {
                Some(format!(
                    "are forgotten before the poll asks for their items again ({} of interval and look-back)",
                    shown(overlap)
                ))
            } else {
                None
            };
            if let Some(problem) = problem {
                let retention = shown(retention.node);
                let kind = DiagnosticKind::DedupeRetentionOutOfBounds { retention, problem };
                self.report(
                    kind,
                    dedupe
                        .retention
                        .as_ref()
                        .map_or(dedupe.key.span, |r| r.span),
                );
            }
        }
        if let Some((_, Some(since))) = poll
            && let ExprKind::Path(path) = &since.path.kind
            && let Some(field) = mark_field(&path.query)
            && !mentions(&dedupe.key, &field)
        {
            // `$.properties.x` reads `event.properties.x` in a template.
            let read = format!("event{}", path.query.trim_start_matches('$'));
            self.report(
                DiagnosticKind::DedupeIgnoresMark { field, read },
                dedupe.key.span,
            );
        }
    }

    /// `what` (a body, a cursor sent in the body) needs a method that sends a body.
    pub(super) fn sends_body(&mut self, method: Method, what: &'static str, span: Span) {
        if matches!(method, Method::Get | Method::Head | Method::Options) {
            let method = method.as_str();
            self.report(DiagnosticKind::BodyWithoutMethod { method, what }, span);
        }
    }
}

/// How long after an item is first delivered a poll may ask for it again: the interval
/// and, for a time mark, the look-back.
fn overlap(poll: &Poll, since: Option<&Since>) -> Duration {
    let every = poll.settings.iter().find_map(|s| match s.node {
        PollSetting::Every(every) => Some(every),
        _ => None,
    });
    let lookback = since
        .into_iter()
        .flat_map(|s| &s.settings)
        .find_map(|s| match s.node {
            SinceSetting::Lookback(crate::ast::Lookback::Duration(d)) => Some(d),
            _ => None,
        });
    every
        .unwrap_or_default()
        .saturating_add(lookback.unwrap_or_default())
}

/// Whether the poll's request (path, query, headers, body) reads `since`.
fn request_reads_since(poll: &Poll) -> bool {
    text_reads_since(&poll.path)
        || poll.settings.iter().any(|s| match &s.node {
            PollSetting::Query(entries) | PollSetting::Headers(entries) => {
                entries.iter().any(|e| reads_since(&e.value))
            }
            PollSetting::Body(Body::Mapping(assignments)) => {
                assignments.iter().any(|a| reads_since(&a.value))
            }
            PollSetting::Body(Body::Raw(expr)) => reads_since(expr),
            _ => false,
        })
}

fn reads_since(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Template(text) => text_reads_since(text),
        ExprKind::Call { args, .. } | ExprKind::Array(args) => args.iter().any(reads_since),
        ExprKind::Object(properties) => properties.iter().any(|(_, value)| reads_since(value)),
        ExprKind::Not(inner) => reads_since(inner),
        ExprKind::Binary { lhs, rhs, .. } => reads_since(lhs) || reads_since(rhs),
        _ => false,
    }
}

fn text_reads_since(text: &Text) -> bool {
    minijinja::Environment::new()
        .template_from_str(&text.value)
        .is_ok_and(|t| t.undeclared_variables(false).contains("since"))
}

/// The last name of the mark's JSONPath: `hs_lastmodifieddate` of
/// `$.properties.hs_lastmodifieddate` (or of `$['properties']['hs_lastmodifieddate']`).
fn mark_field(query: &str) -> Option<String> {
    let last = query
        .rsplit(['.', '['])
        .next()?
        .trim_end_matches(']')
        .trim_matches(['\'', '"']);
    let is_name = !last.is_empty() && last.chars().all(|c| c.is_alphanumeric() || c == '_');
    is_name.then(|| last.to_string())
}

/// Whether a JSONPath or template of `expr` names `field`.
fn mentions(expr: &Expr, field: &str) -> bool {
    match &expr.kind {
        ExprKind::Template(text) | ExprKind::String(text) => text.value.contains(field),
        ExprKind::Path(path) => path.query.contains(field),
        ExprKind::Call { args, .. } | ExprKind::Array(args) => {
            args.iter().any(|a| mentions(a, field))
        }
        ExprKind::Object(properties) => properties.iter().any(|(_, v)| mentions(v, field)),
        ExprKind::Not(inner) => mentions(inner, field),
        ExprKind::Binary { lhs, rhs, .. } => mentions(lhs, field) || mentions(rhs, field),
        _ => false,
    }
}

/// A duration as a spec writes it: `7d`, `1h30m`, `45s`.
fn shown(duration: Duration) -> String {
    let mut seconds = duration.as_secs();
    let mut text = String::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if seconds >= size {
            text.push_str(&format!("{}{unit}", seconds / size));
            seconds %= size;
        }
    }
    if text.is_empty() {
        text.push_str(&format!("{}ms", duration.as_millis()));
    }
    text
}
