//! The checks across specs linted (or served) together: no two share an integration name,
//! since the state store keys inboxes, dedupe keys, cursors and runs by it, and no two
//! webhook triggers serve the same method and path.

use crate::ast::{Method, Spec, TriggerKind, WebhookSetting};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::Span;
use std::collections::HashMap;

/// Every integration name and webhook route of the specs linted together.
#[derive(Debug, Default)]
pub struct AcrossSpecs {
    /// Integration name to where it was first seen.
    names: HashMap<String, Seen>,
    /// `(method, path)` to where it was first served.
    routes: HashMap<(Method, String), Seen>,
    clashes: Vec<(usize, Diagnostic)>,
}

/// The first place a name or route was seen: the file's index, `file:line`, and the span.
#[derive(Debug)]
struct Seen {
    file: usize,
    place: String,
    span: Span,
}

impl AcrossSpecs {
    /// Registers one spec; `file` is its index among the files linted, `name` its path.
    pub fn add(&mut self, file: usize, name: &str, text: &str, spec: &Spec) {
        let seen = |span: Span| Seen {
            file,
            place: format!("{name}:{}", crate::diagnostic::line_col(text, span.start).0),
            span,
        };
        let integration = &spec.integration.name;
        match self.names.get(&integration.node) {
            Some(first) => {
                let kind = DiagnosticKind::IntegrationNameClash {
                    name: integration.node.clone(),
                    other: first.place.clone(),
                };
                self.clashes
                    .push((file, Diagnostic::new(kind, integration.span)));
            }
            None => {
                self.names
                    .insert(integration.node.clone(), seen(integration.span));
            }
        }
        for trigger in &spec.integration.triggers {
            let TriggerKind::Webhook(webhook) = &trigger.kind else {
                continue;
            };
            let method = webhook
                .settings
                .iter()
                .find_map(|s| match s.node {
                    WebhookSetting::Method(method) => Some(method),
                    _ => None,
                })
                .unwrap_or(Method::Post);
            let route = (method, webhook.path.value.clone());
            let span = webhook.path.span;
            match self.routes.get(&route) {
                Some(first) => {
                    let kind = DiagnosticKind::WebhookPathClash {
                        method: method.as_str(),
                        path: webhook.path.value.clone(),
                        other: first.place.clone(),
                    };
                    let mut diagnostic = Diagnostic::new(kind, span);
                    if first.file == file {
                        diagnostic = diagnostic.with_secondary(first.span, "first served here");
                    }
                    self.clashes.push((file, diagnostic));
                }
                None => {
                    self.routes.insert(route, seen(span));
                }
            }
        }
    }

    /// The clashes found, each with the index of the file it belongs to.
    pub fn clashes(self) -> Vec<(usize, Diagnostic)> {
        self.clashes
    }
}
