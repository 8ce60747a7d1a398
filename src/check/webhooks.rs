//! The check across specs: no two webhook triggers serve the same method and path.

use crate::ast::{Method, Spec, TriggerKind, WebhookSetting};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::Span;
use std::collections::HashMap;

/// Every webhook route of the specs linted together.
#[derive(Debug, Default)]
pub struct WebhookRegistry {
    /// `(method, path)` to the first file index, its display name and line, and the span.
    first: HashMap<(Method, String), (usize, String, Span)>,
    clashes: Vec<(usize, Diagnostic)>,
}

impl WebhookRegistry {
    /// Registers the routes of one spec; `file` is its index among the files linted.
    pub fn add(&mut self, file: usize, name: &str, text: &str, spec: &Spec) {
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
            match self.first.get(&route) {
                Some((first_file, other, first_span)) => {
                    let kind = DiagnosticKind::WebhookPathClash {
                        method: method.as_str(),
                        path: webhook.path.value.clone(),
                        other: other.clone(),
                    };
                    let mut diagnostic = Diagnostic::new(kind, span);
                    if *first_file == file {
                        diagnostic = diagnostic.with_secondary(*first_span, "first served here");
                    }
                    self.clashes.push((file, diagnostic));
                }
                None => {
                    let (line, _) = crate::diagnostic::line_col(text, span.start);
                    self.first
                        .insert(route, (file, format!("{name}:{line}"), span));
                }
            }
        }
    }

    /// The clashes found, each with the index of the file it belongs to.
    pub fn clashes(self) -> Vec<(usize, Diagnostic)> {
        self.clashes
    }
}
