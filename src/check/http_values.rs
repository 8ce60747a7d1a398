//! Values that reach an HTTP client or parser at run time: header names and values, URLs,
//! and the names of secrets and environment variables. Each is checked with the rule the
//! engine applies (`model::http`), wherever the spec writes it out: a string, or the
//! default of an `env()`. Values known only at run time are checked by the engine, which
//! names the header or field it refuses.

use super::Checker;
use super::expressions::Scope;
use crate::ast::{Entry, Expr, ExprKind};
use crate::diagnostic::DiagnosticKind;
use crate::model::http;
use crate::span::Span;

impl Checker<'_> {
    /// Header entries: checked as entries, then each name and written value for HTTP.
    pub(super) fn headers(&mut self, entries: &[Entry], scope: &Scope<'_>) {
        self.entries(entries, "header", scope);
        self.http_headers(entries);
    }

    /// Each header's name and written value, for HTTP.
    pub(super) fn http_headers(&mut self, entries: &[Entry]) {
        for entry in entries {
            self.header_name(&entry.key.node, entry.key.span);
            self.header_value(&entry.key.node, &entry.value);
        }
    }

    /// A header name is an HTTP token: no space, colon or quote.
    pub(super) fn header_name(&mut self, name: &str, span: Span) {
        if http::header_name(name).is_none() {
            let kind = DiagnosticKind::InvalidHeaderName {
                name: name.to_string(),
            };
            self.report(kind, span);
        }
    }

    /// What header `name` is sent with, where the spec writes it out.
    pub(super) fn header_value(&mut self, name: &str, value: &Expr) {
        for (text, span) in written(value) {
            if http::header_value(text).is_none() {
                let kind = DiagnosticKind::InvalidHeaderValue {
                    header: name.to_string(),
                };
                self.report(kind, span);
            }
        }
    }

    /// An OAuth2 `token_url`, where the spec writes it out.
    pub(super) fn token_url(&mut self, value: &Expr) {
        for (text, span) in written(value) {
            if http::http_url(text).is_none() {
                let kind = DiagnosticKind::InvalidTokenUrl {
                    url: text.to_string(),
                };
                self.report(kind, span);
            }
        }
    }

    /// The name given to `secret()` or `env()` must be one an environment variable or a
    /// secrets-file line can have: not empty, no `=`, no space or control character.
    pub(super) fn variable_name(&mut self, function: &'static str, name: &str, span: Span) {
        let settable = !name.is_empty()
            && !name
                .chars()
                .any(|c| c == '=' || c.is_whitespace() || c.is_control());
        if !settable {
            let kind = DiagnosticKind::InvalidVariableName {
                function,
                name: name.to_string(),
            };
            self.report(kind, span);
        }
    }
}

/// The texts a value is whenever it is written out: a string, or the default of an `env()`
/// (recursively), each with its span. Templates and secrets are known only at run time.
pub(super) fn written(value: &Expr) -> Vec<(&str, Span)> {
    match &value.kind {
        ExprKind::String(text) => vec![(text.value.as_str(), value.span)],
        ExprKind::Call { function, args } if function.node == "env" => {
            args.get(1).map(written).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}
