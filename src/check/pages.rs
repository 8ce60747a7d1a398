//! `per_page`: the steps right after a paged step that run on each of its pages as it
//! arrives. A page, and what those steps return for it, is dropped once they ran, so
//! nothing after them may read either.

use super::Checker;
use crate::ast::{Name, Step, StepSetting};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::Span;

/// A read of a step's result: which step reads it (by index), the name read, and where.
pub(super) struct Read {
    pub at: usize,
    pub name: String,
    pub span: Span,
}

impl Checker<'_> {
    /// Notes that the step being checked reads the result of step `name`.
    pub(super) fn note_read(&mut self, name: &str, span: Span) {
        if let Some(at) = self.reading {
            let name = name.to_string();
            self.reads.push(Read { at, name, span });
        }
    }

    pub(super) fn per_page(&mut self) {
        let spec = self.spec;
        for fallback in &spec.fallbacks {
            if let Some(source) = per_page_of(fallback) {
                let kind = DiagnosticKind::PerPageSource {
                    name: source.node.clone(),
                    why: "a fallback runs in place of a step, not per page".into(),
                };
                self.report(kind, source.span);
            }
        }
        for (at, step) in spec.steps.iter().enumerate() {
            if let Some((source, setting)) = per_page_with_span(step) {
                self.per_page_step(at, source, setting);
            }
        }
        self.read_after_pages();
    }

    /// Step `at` runs per page of `source`: it must follow that paged step (or its other
    /// `per_page` steps) directly, and read the page.
    fn per_page_step(&mut self, at: usize, source: &Name, setting: Span) {
        let steps = &self.spec.steps;
        let name = source.node.clone();
        let Some(from) = steps.iter().position(|s| s.name.node == name) else {
            let why = format!("no step is named `{name}`");
            self.report(DiagnosticKind::PerPageSource { name, why }, source.span);
            return;
        };
        let paged = &steps[from];
        let why = if from >= at {
            Some("it runs after this step".to_string())
        } else if !paged
            .settings
            .iter()
            .any(|s| matches!(s.node, StepSetting::Paginate(_)))
        {
            Some(format!("`{name}` does not `paginate`"))
        } else {
            steps[from + 1..at]
                .iter()
                .find(|between| per_page_of(between).is_none_or(|n| n.node != name))
                .map(|between| format!("`{}` runs between them", between.name.node))
        };
        if let Some(why) = why {
            self.report(DiagnosticKind::PerPageSource { name, why }, source.span);
            return;
        }
        if let Some(outer) = per_page_of(paged) {
            let kind = DiagnosticKind::PerPageNested {
                name: name.clone(),
                outer: outer.node.clone(),
            };
            self.report(kind, source.span);
        }
        if paged
            .settings
            .iter()
            .any(|s| matches!(s.node, StepSetting::ForEach { .. }))
        {
            let kind = DiagnosticKind::PerPageOfForEach { name: name.clone() };
            self.report(kind, source.span);
        }
        if !self.reads.iter().any(|r| r.at == at && r.name == name) {
            self.report(DiagnosticKind::PerPageUnread { name }, setting);
        }
    }

    /// A paged step with `per_page` steps, and those steps, are read by no step after them.
    fn read_after_pages(&mut self) {
        let steps = &self.spec.steps;
        let mut gone: Vec<(String, String, usize)> = Vec::new();
        for (from, paged) in steps.iter().enumerate() {
            let name = paged.name.node.as_str();
            let until = steps[from + 1..]
                .iter()
                .take_while(|s| per_page_of(s).is_some_and(|n| n.node == name))
                .count();
            if until == 0 {
                continue;
            }
            let after = from + 1 + until;
            for step in &steps[from..after] {
                gone.push((step.name.node.clone(), name.to_string(), after));
            }
        }
        let mut found = Vec::new();
        for read in &self.reads {
            if let Some((name, paged, _)) = gone
                .iter()
                .find(|(name, _, after)| *name == read.name && read.at >= *after)
            {
                let kind = DiagnosticKind::PageReadLater {
                    name: name.clone(),
                    paged: paged.clone(),
                };
                found.push(Diagnostic::new(kind, read.span));
            }
        }
        for diagnostic in found {
            self.push(diagnostic);
        }
    }
}

fn per_page_of(step: &Step) -> Option<&Name> {
    per_page_with_span(step).map(|(name, _)| name)
}

fn per_page_with_span(step: &Step) -> Option<(&Name, Span)> {
    step.settings.iter().find_map(|s| match &s.node {
        StepSetting::PerPage(name) => Some((name, s.span)),
        _ => None,
    })
}
