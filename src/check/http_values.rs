//! Values that reach an HTTP client or parser at run time: header names and values, URLs,
//! and the names of secrets and environment variables. Each is checked with the rule the
//! engine applies (`model::http`), wherever the spec writes it out: a string, or the
//! default of an `env()`. Values known only at run time are checked by the engine, which
//! names the header or field it refuses.

use super::Checker;
use super::expressions::Scope;
use crate::ast::{Entry, Expr, ExprKind, Text};
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

    /// A request path (a step's, a poll's): a template as such, and no `.` or `..` segment
    /// written outside its tags, which the engine would refuse on every request.
    pub(super) fn request_path(&mut self, path: &Text, scope: &Scope<'_>) {
        self.text_template(path, scope);
        if http::has_dot_segment(&outside_tags(&path.value)) {
            let kind = DiagnosticKind::DotSegmentPath {
                path: path.value.clone(),
            };
            self.report(kind, path.span);
        }
    }

    /// A webhook path is a URL path as requests carry it, or no request could match it.
    pub(super) fn webhook_path(&mut self, path: &Text) {
        let problem = if !path.value.starts_with('/') {
            "must start with `/`"
        } else if !http::route_path(&path.value) {
            "is not a URL path as requests carry it (a space, a non-ASCII letter, `?` or `#`)"
        } else {
            return;
        };
        let kind = DiagnosticKind::InvalidWebhookPath {
            path: path.value.clone(),
            problem,
        };
        self.report(kind, path.span);
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

/// A template's text with each tag (`{{ }}`, `{% %}`, `{# #}`) replaced by `_`: what the
/// template writes whatever its values. Path values are percent-encoded, so a tag can never
/// add a segment.
fn outside_tags(template: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = ["{{", "{%", "{#"]
        .iter()
        .filter_map(|open| rest.find(open))
        .min()
    {
        out.push_str(&rest[..start]);
        out.push('_');
        let close = match &rest[start..start + 2] {
            "{{" => "}}",
            "{%" => "%}",
            _ => "#}",
        };
        rest = match rest[start + 2..].find(close) {
            Some(end) => &rest[start + 2 + end + 2..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The texts a value is whenever it is written out: a string, the default of an `env()`
/// (recursively), or the text around a secret, each with its span. Templates and secrets
/// are known only at run time.
pub(super) fn written(value: &Expr) -> Vec<(&str, Span)> {
    match &value.kind {
        ExprKind::String(text) => vec![(text.value.as_str(), value.span)],
        ExprKind::Call { function, args }
            if ["env", "secret"].contains(&function.node.as_str()) =>
        {
            args.get(1).map(written).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}
