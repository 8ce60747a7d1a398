//! AST to diagnostics: every semantic check of one spec, all reported at once, and the
//! checks across specs (webhook paths).
//!
//! **Invariant:** checking never touches the network or the file system; everything here is
//! known from the text.

mod connections;
mod daylight_saving;
mod expressions;
mod http_values;
mod incremental;
mod jsonpath_regex;
mod lower;
mod pages;
mod policy;
mod rule_presets;
mod rules;
mod settings;
mod steps;
use crate::diagnostic::suggest;
use suggest::closest;
mod across;
mod template_filters;
mod template_names;
mod template_prints;
mod tests;
mod triggers;

pub use across::AcrossSpecs;

pub use template_filters::{Arg, Filter, INTEG_FILTERS};

use crate::ast::{Integration, Spec};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::Span;
use std::collections::HashMap;

/// Every diagnostic of one spec.
pub fn check(spec: &Spec) -> Vec<Diagnostic> {
    let mut checker = Checker::new(&spec.integration);
    checker.integration();
    checker.diagnostics
}

/// The checked model of a spec in which `check` found no error. An `Err` is an
/// internal-error diagnostic: lowering met something the checks should have refused.
pub fn lower(spec: &Spec) -> Result<crate::model::Integration, Box<Diagnostic>> {
    lower::integration(&spec.integration).map_err(|bug| Box::new(Diagnostic::from(bug)))
}

pub(crate) struct Checker<'a> {
    spec: &'a Integration,
    diagnostics: Vec<Diagnostic>,
    /// Connection names, with whether anything uses them.
    connections: HashMap<&'a str, bool>,
    /// What templates print and test, for W009 (`template_prints`).
    prints: template_prints::Notes,
    /// Each read of a step's result, by the step (index) that reads it, for `per_page`
    /// (`pages`).
    reads: Vec<pages::Read>,
    /// The step whose expressions are being checked, as `reads` records it.
    reading: Option<usize>,
}

impl<'a> Checker<'a> {
    fn new(spec: &'a Integration) -> Self {
        let connections = spec
            .connections
            .iter()
            .map(|c| (c.name.node.as_str(), false))
            .collect();
        Self {
            spec,
            diagnostics: Vec::new(),
            connections,
            prints: template_prints::Notes::default(),
            reads: Vec::new(),
            reading: None,
        }
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn report(&mut self, kind: DiagnosticKind, span: Span) {
        self.push(Diagnostic::new(kind, span));
    }

    fn integration(&mut self) {
        let spec = self.spec;
        self.header();
        self.unique_names();
        for connection in &spec.connections {
            self.connection(connection);
        }
        if spec.triggers.is_empty() {
            let name = spec.name.node.clone();
            self.report(DiagnosticKind::NoTrigger { name }, spec.name.span);
        }
        for trigger in &spec.triggers {
            self.trigger(trigger);
        }
        self.once_each(&spec.defaults);
        for default in &spec.defaults {
            self.policy_setting(&default.node, default.span);
        }
        self.steps();
        self.per_page();
        self.alerts();
        self.environments();
        for test in &spec.tests {
            self.test(test);
        }
        self.unused_connections();
        self.connections_without_auth();
        self.optional_prints();
    }

    /// `description`, `owner`, `tags` and `concurrency` are written at most once, and a
    /// concurrency is at least 1.
    fn header(&mut self) {
        let spec = self.spec;
        for limit in &spec.concurrency {
            self.at_least_one("the concurrency", limit.node, limit.span);
        }
        let repeated = [
            (
                "description",
                spec.description.iter().map(|t| t.span).collect::<Vec<_>>(),
            ),
            ("owner", spec.owner.iter().map(|t| t.span).collect()),
            ("tags", spec.tags.iter().map(|t| t.span).collect()),
            (
                "concurrency",
                spec.concurrency.iter().map(|c| c.span).collect(),
            ),
        ];
        for (keyword, spans) in repeated {
            if let [first, rest @ ..] = spans.as_slice() {
                for span in rest {
                    self.push(
                        Diagnostic::new(DiagnosticKind::DuplicateSetting { keyword }, *span)
                            .with_secondary(*first, "first set here"),
                    );
                }
            }
        }
    }

    /// Connections, steps (fallbacks included: they share the namespace of results),
    /// environments and tests each have unique names.
    fn unique_names(&mut self) {
        let spec = self.spec;
        let connections = spec
            .connections
            .iter()
            .map(|c| (c.name.node.as_str(), c.name.span));
        self.unique("connection", connections.collect());
        let steps = spec.steps.iter().chain(&spec.fallbacks);
        self.unique(
            "step",
            steps.map(|s| (s.name.node.as_str(), s.name.span)).collect(),
        );
        let environments = spec
            .environments
            .iter()
            .map(|e| (e.name.node.as_str(), e.name.span));
        self.unique("environment", environments.collect());
        let tests = spec
            .tests
            .iter()
            .map(|t| (t.name.value.as_str(), t.name.span));
        self.unique("test", tests.collect());
    }

    fn unique(&mut self, what: &'static str, names: Vec<(&str, Span)>) {
        let mut first: HashMap<&str, Span> = HashMap::new();
        for (name, span) in names {
            if let Some(earlier) = first.get(name) {
                let kind = DiagnosticKind::DuplicateName {
                    what,
                    name: name.to_string(),
                };
                self.push(
                    Diagnostic::new(kind, span).with_secondary(*earlier, "first declared here"),
                );
            } else {
                first.insert(name, span);
            }
        }
    }

    /// Marks a connection used, or reports it unknown.
    fn use_connection(&mut self, name: &crate::ast::Name) {
        if let Some(used) = self.connections.get_mut(name.node.as_str()) {
            *used = true;
            return;
        }
        self.unknown_connection(name);
    }

    /// Reports an unknown connection without counting a use (tests and environments do not
    /// make a connection used).
    fn known_connection(&mut self, name: &crate::ast::Name) {
        if !self.connections.contains_key(name.node.as_str()) {
            self.unknown_connection(name);
        }
    }

    fn unknown_connection(&mut self, name: &crate::ast::Name) {
        let suggestion = closest(&name.node, self.connections.keys().copied());
        let kind = DiagnosticKind::UnknownConnection {
            name: name.node.clone(),
            suggestion,
        };
        self.report(kind, name.span);
    }

    /// Unused connections, unless a reference to an unknown one exists: that reference is
    /// most likely a misspelt use, and the warning would only repeat the error.
    fn unused_connections(&mut self) {
        let spec = self.spec;
        if self
            .diagnostics
            .iter()
            .any(|d| d.code() == crate::diagnostic::Code::UnknownConnection)
        {
            return;
        }
        for connection in &spec.connections {
            if self.connections.get(connection.name.node.as_str()) == Some(&false) {
                let name = connection.name.node.clone();
                self.report(
                    DiagnosticKind::UnusedConnection { name },
                    connection.name.span,
                );
            }
        }
    }
}
