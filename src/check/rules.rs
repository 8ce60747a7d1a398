//! Response rules: known actions, clauses where they apply, statuses that exist, rules
//! that can match, and rules that would hide failures.

use super::expressions::Scope;
use super::{Checker, suggest};
use crate::ast::{Delay, Name, Rule, Rules, StatusMatch};
use crate::diagnostic::{Diagnostic, DiagnosticKind, RULE_ACTIONS, RULE_PRESETS};

/// Statuses that are failures someone must see: turned into a success by a rule with no
/// condition, they pass silently.
fn hides_failures(status: StatusMatch) -> bool {
    match status {
        StatusMatch::Class(class) => class >= 4,
        StatusMatch::Code(code) => matches!(code, 401 | 403 | 429) || code >= 500,
    }
}

impl Checker<'_> {
    /// A list of rules, read where `scope` says (a step's, or nothing but the answer for
    /// a connection's). `one_attempt` names the step when its retry policy never retries.
    pub(super) fn rules(&mut self, rules: &Rules, scope: &Scope<'_>, one_attempt: Option<&str>) {
        if let Some(preset) = &rules.preset {
            self.rule_preset(preset);
        }
        let scope = Scope {
            answer: true,
            ..*scope
        };
        let rules = &rules.list;
        for (at, rule) in rules.iter().enumerate() {
            self.rule(rule, &scope, one_attempt);
            self.shadowed(rule, &rules[..at]);
        }
    }

    /// A preset is one of ours: its rules are vetted once, by the tests of `rule_presets`.
    fn rule_preset(&mut self, preset: &Name) {
        if super::rule_presets::preset(&preset.node).is_none() {
            let suggestion = suggest::closest(&preset.node, RULE_PRESETS.iter().copied());
            let kind = DiagnosticKind::UnknownRulePreset {
                name: preset.node.clone(),
                suggestion,
            };
            self.report(kind, preset.span);
        }
    }

    fn rule(&mut self, rule: &Rule, scope: &Scope<'_>, one_attempt: Option<&str>) {
        for status in &rule.statuses {
            let invalid = match status.node {
                StatusMatch::Code(code) => !(100..=599).contains(&code),
                StatusMatch::Class(class) => !(1..=5).contains(&class),
            };
            if invalid {
                let status_text = shown(status.node);
                self.report(
                    DiagnosticKind::InvalidRuleStatus {
                        status: status_text,
                    },
                    status.span,
                );
            } else if never_reaches_a_rule(status.node) {
                let kind = DiagnosticKind::RuleOnUnseenStatus {
                    status: shown(status.node),
                };
                self.report(kind, status.span);
            }
        }
        if let Some(when) = &rule.when {
            self.expr(when, scope);
        }
        if let Some(message) = &rule.message {
            self.text_template(message, scope);
        }
        if let Some(after) = &rule.after {
            match &after.node {
                Delay::Header(name) => self.header_name(&name.value, name.span),
                Delay::Value(value) => self.expr(value, scope),
            }
        }
        let action = rule.action.node.as_str();
        if !RULE_ACTIONS.contains(&action) {
            let suggestion = suggest::closest(action, RULE_ACTIONS.iter().copied());
            let kind = DiagnosticKind::UnknownRuleAction {
                name: action.to_string(),
                suggestion,
            };
            self.report(kind, rule.action.span);
            return;
        }
        if let Some(after) = &rule.after
            && action != "retry"
        {
            let kind = DiagnosticKind::MisplacedRuleClause {
                clause: "`after`",
                action: action.to_string(),
            };
            self.report(kind, after.span);
        }
        if let Some(message) = &rule.message
            && matches!(action, "succeed" | "empty")
        {
            let kind = DiagnosticKind::MisplacedRuleClause {
                clause: "a message",
                action: action.to_string(),
            };
            self.report(kind, message.span);
        }
        if let (Some(step), "retry") = (one_attempt, action) {
            let kind = DiagnosticKind::RetryRuleWithoutRetry {
                step: step.to_string(),
            };
            self.report(kind, rule.action.span);
        }
        if matches!(action, "succeed" | "empty") && rule.when.is_none() {
            let hidden = rule.statuses.iter().find(|s| hides_failures(s.node));
            if let Some(status) = hidden {
                let kind = DiagnosticKind::RuleHidesFailures {
                    status: shown(status.node),
                };
                self.report(kind, status.span);
            }
        }
    }

    /// A rule is dead when an earlier rule without a condition takes each of its statuses.
    fn shadowed(&mut self, rule: &Rule, earlier: &[Rule]) {
        let statuses = statuses(rule);
        let taken_by = earlier.iter().find(|e| {
            e.when.is_none() && statuses.iter().all(|s| statuses_of(e).any(|t| s.within(t)))
        });
        if let Some(first) = taken_by {
            self.push(
                Diagnostic::new(DiagnosticKind::RuleNeverMatches, rule.span)
                    .with_secondary(first.span, "this rule takes its answers"),
            );
        }
    }
}

/// Statuses no rule sees: a `1xx` is never the final answer, and the client follows the
/// redirects (to the answer they lead to, or to an error off the connection's base).
fn never_reaches_a_rule(status: StatusMatch) -> bool {
    match status {
        StatusMatch::Class(class) => matches!(class, 1 | 3),
        StatusMatch::Code(code) => (100..200).contains(&code) || REDIRECTS.contains(&code),
    }
}

/// The statuses the HTTP client follows.
const REDIRECTS: [u16; 5] = [301, 302, 303, 307, 308];

/// Whether a rule on `status` looks at server errors.
pub(super) fn is_server_error(status: StatusMatch) -> bool {
    match status {
        StatusMatch::Class(class) => class == 5,
        StatusMatch::Code(code) => (500..600).contains(&code),
    }
}

/// The statuses a rule looks at: those written, else every `2xx`.
fn statuses(rule: &Rule) -> Vec<StatusMatch> {
    statuses_of(rule).collect()
}

fn statuses_of(rule: &Rule) -> impl Iterator<Item = StatusMatch> + '_ {
    let default = rule.statuses.is_empty().then_some(StatusMatch::Class(2));
    rule.statuses.iter().map(|s| s.node).chain(default)
}

/// A status as a spec writes it.
fn shown(status: StatusMatch) -> String {
    match status {
        StatusMatch::Code(code) => code.to_string(),
        StatusMatch::Class(class) => format!("{class}xx"),
    }
}
