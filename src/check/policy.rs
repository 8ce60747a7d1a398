//! Retry rules that can hold.

use super::{Checker, suggest};
use crate::ast::{Retry, RetryClause, RetryCondition};
use crate::diagnostic::DiagnosticKind;
use crate::span::Span;

const RETRY_KINDS: &[&str] = &["timeout", "network"];
const RETRY_AFTER_MODES: &[&str] = &["honor", "ignore"];

impl Checker<'_> {
    pub(super) fn retry(&mut self, retry: &Retry) {
        self.once_each(&retry.clauses);
        if retry.attempts.node == 0 {
            self.report(DiagnosticKind::ZeroAttempts, retry.attempts.span);
        }
        // A backoff with one attempt is reported once, over all the clauses that shape it.
        let shaping: Vec<Span> = retry
            .clauses
            .iter()
            .filter(|c| matches!(c.node, RetryClause::Backoff(_) | RetryClause::Delay { .. }))
            .map(|c| c.span)
            .collect();
        if let (1, Some(first), Some(last)) = (retry.attempts.node, shaping.first(), shaping.last())
        {
            self.report(
                DiagnosticKind::BackoffNeverUsed,
                Span::new(first.start, last.end),
            );
        }
        for clause in &retry.clauses {
            match &clause.node {
                RetryClause::Delay {
                    initial,
                    max: Some(max),
                } if max.node < initial.node => {
                    let kind = DiagnosticKind::InvertedDelays {
                        initial: format_duration(initial.node),
                        max: format_duration(max.node),
                    };
                    self.report(kind, clause.span);
                }
                RetryClause::On(conditions) => {
                    for condition in conditions {
                        self.retry_condition(&condition.node, condition.span);
                    }
                }
                RetryClause::RetryAfter(mode)
                    if !RETRY_AFTER_MODES.contains(&mode.node.as_str()) =>
                {
                    let kind = DiagnosticKind::UnknownRetryAfterMode {
                        name: mode.node.clone(),
                    };
                    self.report(kind, mode.span);
                }
                _ => {}
            }
        }
    }

    fn retry_condition(&mut self, condition: &RetryCondition, span: Span) {
        let unknown = match condition {
            RetryCondition::Status(status) if !(100..=599).contains(status) => status.to_string(),
            RetryCondition::Class(class) if !(1..=5).contains(class) => format!("{class}xx"),
            RetryCondition::Kind(kind) if !RETRY_KINDS.contains(&kind.as_str()) => kind.clone(),
            _ => return,
        };
        let suggestion = suggest::closest(&unknown, RETRY_KINDS.iter().copied());
        self.report(
            DiagnosticKind::UnknownRetryCondition {
                name: unknown,
                suggestion,
            },
            span,
        );
    }
}

pub(super) use crate::model::format_duration;
