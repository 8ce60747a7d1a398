//! Steps: connections, GraphQL documents, pagination, body mappings, idempotency.

use super::expressions::{Scope, StepOrder};
use super::{Checker, suggest};
use crate::ast::{
    Assignment, Body, CallKind, ConnectionSetting, OnError, Pagination, PolicySetting, RetryClause,
    Step, StepSetting, TargetSegment, Text,
};
use crate::diagnostic::{Code, Diagnostic, DiagnosticKind};
use crate::span::Span;
use std::collections::HashMap;

impl<'a> Checker<'a> {
    pub(super) fn steps(&mut self) {
        let spec = self.spec;
        let order: StepOrder<'_> = spec
            .steps
            .iter()
            .enumerate()
            .map(|(at, s)| (s.name.node.as_str(), at))
            .collect();
        for (at, step) in spec.steps.iter().enumerate() {
            self.reading = Some(at);
            self.step(step, &order, at);
        }
        // Unknown fallbacks were reported by now; one is likely a misspelt use of an
        // existing fallback, which then should not also be called unused.
        let misspelt_use = self
            .diagnostics
            .iter()
            .any(|d| d.code() == Code::UnknownFallback);
        for fallback in &spec.fallbacks {
            let name = fallback.name.node.as_str();
            // A fallback stands in for the first step that names it and sees what that step
            // would have seen; a default fallback may stand in for the very first step.
            let first_user = if defaults_name_fallback(spec, name) {
                Some(0)
            } else {
                spec.steps.iter().position(|s| names_fallback(s, name))
            };
            if first_user.is_none() && !misspelt_use {
                let name = name.to_string();
                self.report(DiagnosticKind::UnusedFallback { name }, fallback.name.span);
            }
            // A fallback reads what the step it stands in for would read, where that step runs.
            self.reading = first_user;
            self.step(fallback, &order, first_user.unwrap_or(spec.steps.len()));
        }
        self.reading = None;
    }

    /// Checks a step that runs after the first `ran` steps of `order`.
    fn step(&mut self, step: &Step, order: &StepOrder<'_>, ran: usize) {
        self.use_connection(&step.call.connection);
        self.once_each(&step.settings);
        let current = Some(step.name.node.as_str());
        let outer = Scope {
            steps: Some(order),
            ran,
            current,
            item: false,
            event: true,
            answer: false,
            since: false,
            request: None,
        };
        let for_each = step.setting(|s| match s {
            StepSetting::ForEach { items, .. } => Some(items),
            _ => None,
        });
        let scope = Scope {
            item: for_each.is_some(),
            ..outer
        };
        self.request_path(&step.call.path, &scope);
        self.path_like_segments(&step.call.path);
        self.graphql(step);
        self.idempotency(step);
        if self.makes_one_attempt(step) {
            self.connection_retry_rules(step);
        } else if !safe_to_resend(step) {
            self.unsafe_retry_rules(step);
        }
        let has_items = step
            .setting(|s| matches!(s, StepSetting::Items(_)).then_some(&()))
            .is_some();
        let has_max_pages = step
            .setting(|s| matches!(s, StepSetting::MaxPages(_)).then_some(&()))
            .is_some();
        for setting in &step.settings {
            match &setting.node {
                StepSetting::Query(entries) => self.entries(entries, "query parameter", &scope),
                StepSetting::Headers(entries) => self.headers(entries, &scope),
                StepSetting::Body(Body::Mapping(assignments))
                | StepSetting::Variables(assignments) => {
                    self.mapping(assignments, &scope);
                }
                StepSetting::Body(Body::Raw(expr)) | StepSetting::When(expr) => {
                    self.expr(expr, &scope)
                }
                StepSetting::IdempotencyKey(expr) => {
                    self.header_value("Idempotency-Key", expr);
                    self.expr(expr, &scope);
                }
                StepSetting::ForEach { items, concurrency } => {
                    self.expr(items, &outer);
                    if let Some(n) = concurrency {
                        self.at_least_one("the concurrency", n.node, n.span);
                    }
                }
                StepSetting::Paginate(pagination) => {
                    if !has_items {
                        self.report(DiagnosticKind::PaginationWithoutItems, setting.span);
                    }
                    if !has_max_pages {
                        self.report(DiagnosticKind::PaginateWithoutMaxPages, setting.span);
                    }
                    self.pagination(pagination, &scope);
                }
                StepSetting::Items(path) => self.path_only(path, "`items`", &scope),
                StepSetting::MaxPages(n) => {
                    self.at_least_one("max_pages", *n, setting.span);
                    self.needs_paginate(step, "max_pages", setting.span);
                }
                StepSetting::HasMore(more) => {
                    self.expr(more, &scope);
                    self.needs_paginate(step, "has_more", setting.span);
                }
                StepSetting::Retry(retry) => self.retry(retry),
                StepSetting::OnError(on_error) => self.on_error(on_error),
                StepSetting::Encoding(name) => self.encoding(name),
                StepSetting::Timeout(timeout) => self.timeout(*timeout, setting.span),
                StepSetting::Rules(rules) => {
                    let one_attempt = self.makes_one_attempt(step);
                    self.rules(
                        rules,
                        &scope,
                        one_attempt.then_some(step.name.node.as_str()),
                    );
                }
                StepSetting::PartialData(name) => self.partial_data(step, name),
                StepSetting::Document(_) | StepSetting::Cache(_) | StepSetting::PerPage(_) => {}
            }
        }
    }

    fn needs_paginate(&mut self, step: &Step, keyword: &'static str, span: Span) {
        if !step
            .settings
            .iter()
            .any(|s| matches!(s.node, StepSetting::Paginate(_)))
        {
            self.report(DiagnosticKind::NeedsPaginate { keyword }, span);
        }
    }

    pub(super) fn text_template(&mut self, text: &Text, scope: &Scope<'_>) {
        if text.is_template() {
            let expr = crate::ast::Expr {
                kind: crate::ast::ExprKind::Template(text.clone()),
                span: text.span,
            };
            self.expr(&expr, scope);
        }
    }

    fn graphql(&mut self, step: &Step) {
        let is_graphql = step.call.kind.node == CallKind::GraphQl;
        let has_document = step
            .settings
            .iter()
            .any(|s| matches!(s.node, StepSetting::Document(_)));
        if is_graphql && !has_document {
            let kind = DiagnosticKind::GraphqlDocument {
                step: step.name.node.clone(),
            };
            self.report(kind, step.call.kind.span);
        }
        if is_graphql {
            return;
        }
        for setting in &step.settings {
            let keyword = match setting.node {
                StepSetting::Document(_) => "document",
                StepSetting::Variables(_) => "variables",
                StepSetting::PartialData(_) => "partial_data",
                _ => continue,
            };
            self.report(DiagnosticKind::GraphqlOnly { keyword }, setting.span);
        }
    }

    /// A retried POST, PATCH or GraphQL mutation without an idempotency key may create its
    /// record twice. Retrying only on 429 is safe: the server refused before doing anything.
    fn idempotency(&mut self, step: &Step) {
        let method = match step.call.kind.node {
            CallKind::Http(method) if method.is_idempotent() => return,
            CallKind::Http(method) => method.as_str(),
            CallKind::GraphQl if is_mutation(step) => "GraphQL mutation",
            CallKind::GraphQl => return,
        };
        let has_key = step
            .settings
            .iter()
            .any(|s| matches!(s.node, StepSetting::IdempotencyKey(_)));
        let own_retry = step.settings.iter().find_map(|s| match &s.node {
            StepSetting::Retry(retry) => Some((retry, s.span)),
            _ => None,
        });
        let default_retry = self.spec.defaults.iter().find_map(|s| match &s.node {
            PolicySetting::Retry(retry) => Some((retry, step.call.kind.span)),
            _ => None,
        });
        let Some((retry, span)) = own_retry.or(default_retry) else {
            return;
        };
        if retry.attempts.node > 1 && !has_key && !only_on_429(retry) {
            let kind = DiagnosticKind::RetriedWithoutIdempotencyKey {
                method,
                step: step.name.node.clone(),
            };
            self.report(kind, span);
        }
    }

    /// A connection's `retry` rule is as dead as the step's own on a step that makes one
    /// attempt: shown at the rule, with the step.
    fn connection_retry_rules(&mut self, step: &Step) {
        for rule in connection_rules(self.spec, step).filter(|r| r.action.node == "retry") {
            let kind = DiagnosticKind::RetryRuleWithoutRetry {
                step: step.name.node.clone(),
            };
            let diagnostic = Diagnostic::new(kind, rule.action.span)
                .with_secondary(step.name.span, "this step makes one attempt");
            self.push(diagnostic);
        }
    }

    /// A `retry` rule on a `5xx`, the step's own or its connection's, never re-sends a call
    /// that is not safe to send again: the API may have done the work before it failed.
    fn unsafe_retry_rules(&mut self, step: &Step) {
        let own = step
            .settings
            .iter()
            .filter_map(|s| match &s.node {
                StepSetting::Rules(rules) => Some(&rules.list),
                _ => None,
            })
            .flatten();
        let on_server_errors = |rule: &&crate::ast::Rule| {
            rule.action.node == "retry"
                && rule
                    .statuses
                    .iter()
                    .any(|s| super::rules::is_server_error(s.node))
        };
        for rule in own
            .chain(connection_rules(self.spec, step))
            .filter(on_server_errors)
        {
            let kind = DiagnosticKind::RetryRuleOnUnsafeCall {
                step: step.name.node.clone(),
            };
            let diagnostic = Diagnostic::new(kind, rule.action.span)
                .with_secondary(step.name.span, "this call is not safe to send again");
            self.push(diagnostic);
        }
    }

    /// Whether the step's retry policy (its own, else the defaults') makes one attempt.
    fn makes_one_attempt(&self, step: &Step) -> bool {
        let own = step.setting(|s| match s {
            StepSetting::Retry(retry) => Some(retry),
            _ => None,
        });
        let default = self.spec.defaults.iter().find_map(|s| match &s.node {
            PolicySetting::Retry(retry) => Some(retry),
            _ => None,
        });
        own.or(default).is_some_and(|r| r.attempts.node == 1)
    }

    /// `partial_data fail` or `accept`; accepting a mutation's partial data hides failed
    /// writes. A REST step's `partial_data` is reported by `graphql`.
    fn partial_data(&mut self, step: &Step, name: &crate::ast::Name) {
        match crate::model::PartialData::parse(&name.node) {
            None => {
                let kind = DiagnosticKind::UnknownPartialDataPolicy {
                    name: name.node.clone(),
                };
                self.report(kind, name.span);
            }
            Some(crate::model::PartialData::Accept)
                if step.call.kind.node == CallKind::GraphQl && is_mutation(step) =>
            {
                self.report(DiagnosticKind::PartialMutationAccepted, name.span);
            }
            Some(_) => {}
        }
    }

    fn pagination(&mut self, pagination: &Pagination, scope: &Scope<'_>) {
        match pagination {
            Pagination::Cursor(param) => self.expr(&param.path, scope),
            Pagination::NextLink(crate::ast::NextLink::Body(path)) => self.expr(path, scope),
            Pagination::Offset { limit, .. } => {
                self.at_least_one("the page limit", limit.node, limit.span)
            }
            Pagination::Page {
                size: Some((_, size)),
                ..
            } => {
                self.at_least_one("the page size", size.node, size.span);
            }
            Pagination::NextLink(crate::ast::NextLink::Header) | Pagination::Page { .. } => {}
        }
    }

    /// Each target path is assigned once, and never both as a value and as a container.
    pub(super) fn mapping(&mut self, assignments: &[Assignment], scope: &Scope<'_>) {
        let mut seen: HashMap<&[TargetSegment], Span> = HashMap::new();
        for assignment in assignments {
            let target = assignment.target.node.as_slice();
            let span = assignment.target.span;
            self.list_indexes(target, span);
            if let Some(first) = seen.get(target) {
                let kind = DiagnosticKind::DuplicateTarget {
                    target: render_target(target),
                };
                self.push(
                    Diagnostic::new(kind, span).with_secondary(*first, "first assigned here"),
                );
            } else {
                if let Some((field, other)) = container_conflict(&seen, target) {
                    let kind = DiagnosticKind::TargetConflict {
                        target: render_target(field),
                    };
                    self.push(
                        Diagnostic::new(kind, span).with_secondary(other, "also assigned here"),
                    );
                }
                seen.insert(target, span);
            }
            self.expr(&assignment.value, scope);
        }
    }

    /// A target's list indexes stay small: each `[n]` allocates `n` slots.
    fn list_indexes(&mut self, target: &[TargetSegment], span: Span) {
        for segment in target {
            if let TargetSegment::Index(index) = segment
                && *index > TargetSegment::MAX_INDEX
            {
                let kind = DiagnosticKind::ListIndexTooLarge {
                    target: render_target(target),
                    index: *index,
                    max: TargetSegment::MAX_INDEX,
                };
                self.report(kind, span);
            }
        }
    }

    fn on_error(&mut self, on_error: &OnError) {
        const ACTIONS: &[&str] = &["dead_letter", "skip", "fail"];
        match on_error {
            OnError::Action(name) if !ACTIONS.contains(&name.node.as_str()) => {
                let candidates = ACTIONS.iter().copied().chain(["fallback"]);
                // A bare `fallback` lacks its step; suggesting `fallback` would not help.
                let suggestion =
                    suggest::closest(&name.node, candidates).filter(|s| *s != name.node);
                let kind = DiagnosticKind::UnknownOnErrorAction {
                    name: name.node.clone(),
                    suggestion,
                };
                self.report(kind, name.span);
            }
            OnError::Action(_) => {}
            OnError::Fallback(name) => {
                let fallbacks = &self.spec.fallbacks;
                if !fallbacks.iter().any(|f| f.name.node == name.node) {
                    let suggestion = suggest::closest(
                        &name.node,
                        fallbacks.iter().map(|f| f.name.node.as_str()),
                    );
                    let kind = DiagnosticKind::UnknownFallback {
                        name: name.node.clone(),
                        suggestion,
                    };
                    self.report(kind, name.span);
                }
            }
        }
    }

    pub(super) fn policy_setting(&mut self, setting: &PolicySetting, span: Span) {
        match setting {
            PolicySetting::Retry(retry) => self.retry(retry),
            PolicySetting::OnError(on_error) => self.on_error(on_error),
            PolicySetting::Timeout(timeout) => self.timeout(*timeout, span),
        }
    }
}

/// The field that is both a value and a container when `target` is assigned after `seen`:
/// an earlier target that is a prefix of this one, or this one when it is a prefix of an
/// earlier target. Returns that field and the other assignment's span.
fn container_conflict<'t>(
    seen: &HashMap<&'t [TargetSegment], Span>,
    target: &'t [TargetSegment],
) -> Option<(&'t [TargetSegment], Span)> {
    let earlier_prefix = (1..target.len()).find_map(|n| seen.get_key_value(&target[..n]));
    if let Some((prefix, span)) = earlier_prefix {
        return Some((prefix, *span));
    }
    let longer = seen.iter().find(|(t, _)| t.starts_with(target));
    longer.map(|(_, span)| (target, *span))
}

fn defaults_name_fallback(spec: &crate::ast::Integration, name: &str) -> bool {
    spec.defaults
        .iter()
        .any(|d| matches!(&d.node, PolicySetting::OnError(OnError::Fallback(n)) if n.node == name))
}

/// The rules of the step's connection.
fn connection_rules<'s>(
    spec: &'s crate::ast::Integration,
    step: &Step,
) -> impl Iterator<Item = &'s crate::ast::Rule> {
    let connection = step.call.connection.node.clone();
    spec.connections
        .iter()
        .filter(move |c| c.name.node == connection)
        .flat_map(|c| &c.settings)
        .filter_map(|s| match &s.node {
            ConnectionSetting::Rules(rules) => Some(&rules.list),
            _ => None,
        })
        .flatten()
}

/// Whether the engine sends the step's call again after a `5xx`: a safe method or a query,
/// or an idempotency key.
fn safe_to_resend(step: &Step) -> bool {
    let safe_call = match step.call.kind.node {
        CallKind::Http(method) => method.is_idempotent(),
        CallKind::GraphQl => !is_mutation(step),
    };
    safe_call
        || step
            .settings
            .iter()
            .any(|s| matches!(s.node, StepSetting::IdempotencyKey(_)))
}

fn is_mutation(step: &Step) -> bool {
    step.settings.iter().any(|s| match &s.node {
        StepSetting::Document(document) => crate::model::is_mutation(&document.value),
        _ => false,
    })
}

fn only_on_429(retry: &crate::ast::Retry) -> bool {
    retry.clauses.iter().any(|c| match &c.node {
        RetryClause::On(conditions) => conditions
            .iter()
            .all(|c| c.node == crate::ast::RetryCondition::Status(429)),
        _ => false,
    })
}

fn names_fallback(step: &Step, fallback: &str) -> bool {
    step.settings.iter().any(
        |s| matches!(&s.node, StepSetting::OnError(OnError::Fallback(n)) if n.node == fallback),
    )
}

fn render_target(target: &[TargetSegment]) -> String {
    let mut out = String::new();
    for segment in target {
        match segment {
            TargetSegment::Key(key) if out.is_empty() => out.push_str(key),
            TargetSegment::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            TargetSegment::Index(index) => out.push_str(&format!("[{index}]")),
        }
    }
    out
}
