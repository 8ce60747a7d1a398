//! Connections: a base URL, credentials that come from secrets, sane limits.

use super::expressions::Scope;
use super::{Checker, suggest};
use crate::ast::{
    Auth, BreakerSetting, Connection, ConnectionSetting, Entry, Expr, ExprKind, Field,
    OverrideSetting,
};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::Span;

const ENCODINGS: &[&str] = &["json", "form"];
const OAUTH2_FIELDS: &[&str] = &[
    "token_url",
    "client_id",
    "client_secret",
    "refresh_token",
    "scopes",
    "audience",
];
const OAUTH2_REQUIRED: &[&str] = &["token_url", "client_id", "client_secret"];
const OAUTH2_SECRETS: &[&str] = &["client_secret", "refresh_token"];

impl Checker<'_> {
    pub(super) fn connection(&mut self, connection: &Connection) {
        self.once_each(&connection.settings);
        if !connection
            .settings
            .iter()
            .any(|s| matches!(s.node, ConnectionSetting::BaseUrl(_)))
        {
            let name = connection.name.node.clone();
            self.report(
                DiagnosticKind::MissingBaseUrl { name },
                connection.name.span,
            );
        }
        for setting in &connection.settings {
            self.connection_setting(&setting.node, setting.span);
        }
    }

    /// Connections that send no credentials without saying so (`auth none`): most APIs
    /// need some, and a forgotten `auth` shows only as 401s at run time. Credentials in a
    /// header or in the base URL (an incoming webhook's URL is its secret), or an `auth`
    /// an environment sets, count.
    pub(super) fn connections_without_auth(&mut self) {
        let spec = self.spec;
        for connection in &spec.connections {
            let name = connection.name.node.as_str();
            let credentials = connection.settings.iter().any(|s| match &s.node {
                ConnectionSetting::Auth(_) => true,
                ConnectionSetting::BaseUrl(url) => reads_secret(url),
                ConnectionSetting::Headers(entries) => entries.iter().any(|e| {
                    crate::secrets::is_credential_name(&e.key.node) || reads_secret(&e.value)
                }),
                _ => false,
            });
            let overridden = spec
                .environments
                .iter()
                .flat_map(|e| &e.overrides)
                .any(|o| {
                    o.connection.node == name
                        && matches!(
                            o.setting.node,
                            OverrideSetting::Known(ConnectionSetting::Auth(_))
                        )
                });
            if !credentials && !overridden {
                let name = connection.name.node.clone();
                self.report(
                    DiagnosticKind::ConnectionWithoutAuth { name },
                    connection.name.span,
                );
            }
        }
    }

    /// One connection setting, in a connection or an environment's override.
    pub(super) fn connection_setting(&mut self, setting: &ConnectionSetting, span: Span) {
        let scope = Scope::default();
        match setting {
            ConnectionSetting::BaseUrl(url) => {
                self.base_url(url);
                self.expr(url, &scope);
            }
            ConnectionSetting::Auth(auth) => self.auth(auth, span),
            ConnectionSetting::Headers(entries) => self.headers(entries, &scope),
            ConnectionSetting::RateLimit(limit) => {
                self.at_least_one("the rate limit's count", limit.count.node, limit.count.span);
                let per = u32::from(!limit.per.node.is_zero());
                self.at_least_one("the rate limit's window", per, limit.per.span);
                if let Some(burst) = &limit.burst {
                    self.at_least_one("the burst", burst.node, burst.span);
                }
            }
            ConnectionSetting::Encoding(name) => self.encoding(name),
            ConnectionSetting::MaxConcurrency(n) => self.at_least_one("max_concurrency", *n, span),
            ConnectionSetting::CircuitBreaker(settings) => {
                self.once_each(settings);
                for setting in settings {
                    match &setting.node {
                        BreakerSetting::Failures(n) => {
                            self.at_least_one("the failure count", *n, setting.span)
                        }
                        BreakerSetting::Ratio {
                            percent, min_calls, ..
                        } => {
                            if !(percent.node > 0.0 && percent.node <= 100.0) {
                                self.report(DiagnosticKind::BadPercentage, percent.span);
                            }
                            if let Some(min) = min_calls {
                                self.at_least_one("min_calls", min.node, min.span);
                            }
                        }
                        BreakerSetting::Cooldown(_) => {}
                    }
                }
            }
            ConnectionSetting::ConnectTimeout(timeout) | ConnectionSetting::Timeout(timeout) => {
                self.timeout(*timeout, span);
            }
            // A connection's rules read the answer alone; its steps' retry policies vary.
            ConnectionSetting::Rules(rules) => self.rules(rules, &scope, None),
        }
    }

    pub(super) fn encoding(&mut self, name: &crate::ast::Name) {
        if !ENCODINGS.contains(&name.node.as_str()) {
            let suggestion = suggest::closest(&name.node, ENCODINGS.iter().copied());
            let kind = DiagnosticKind::UnknownEncoding {
                name: name.node.clone(),
                suggestion,
            };
            self.report(kind, name.span);
        }
    }

    /// A zero timeout fails every request before it is sent.
    pub(super) fn timeout(&mut self, timeout: std::time::Duration, span: Span) {
        self.at_least_one("the timeout", u32::from(!timeout.is_zero()), span);
    }

    pub(super) fn at_least_one(&mut self, what: &'static str, value: u32, span: Span) {
        if value == 0 {
            self.report(DiagnosticKind::ZeroLimit { what }, span);
        }
    }

    /// Header and query entries (`what` names which), checked for credentials written as
    /// literals.
    pub(super) fn entries(&mut self, entries: &[Entry], what: &str, scope: &Scope<'_>) {
        for entry in entries {
            if crate::secrets::is_credential_name(&entry.key.node) {
                let name = &entry.key.node;
                self.credential(&entry.value, &format!("the `{name}` {what}"));
            }
            self.expr(&entry.value, scope);
        }
    }

    /// A base URL written out (a string, or an `env()` default) is one the engine accepts.
    fn base_url(&mut self, url: &Expr) {
        for (text, span) in super::http_values::written(url) {
            match crate::model::http::base_url(text) {
                None => {
                    let url = text.to_string();
                    self.report(DiagnosticKind::InvalidBaseUrl { url }, span);
                }
                Some(parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
                    let what = "a password in the base URL".to_string();
                    self.report(DiagnosticKind::LiteralSecret { what }, span);
                }
                Some(_) => {}
            }
        }
    }

    fn auth(&mut self, auth: &Auth, span: Span) {
        let scope = Scope::default();
        match auth {
            Auth::None => {}
            Auth::Bearer(token) => {
                self.credential(token, "the bearer token");
                self.expr(token, &scope);
            }
            Auth::Basic { username, password } => {
                self.credential(password, "the password");
                self.expr(username, &scope);
                self.expr(password, &scope);
            }
            Auth::ApiKey {
                in_query,
                name,
                value,
            } => {
                if !in_query {
                    self.header_name(&name.value, name.span);
                }
                self.credential(value, "the API key");
                self.expr(value, &scope);
            }
            Auth::OAuth2(fields) => self.oauth2(fields, span),
        }
    }

    fn oauth2(&mut self, fields: &[Field], span: Span) {
        let mut seen: Vec<(&str, Span)> = Vec::new();
        for field in fields {
            let name = field.name.node.as_str();
            if let Some((_, first)) = seen.iter().find(|(seen, _)| *seen == name) {
                let kind = DiagnosticKind::DuplicateField {
                    name: name.to_string(),
                };
                let diagnostic =
                    Diagnostic::new(kind, field.name.span).with_secondary(*first, "first set here");
                self.push(diagnostic);
            }
            seen.push((name, field.name.span));
            if !OAUTH2_FIELDS.contains(&name) {
                let suggestion = suggest::closest(name, OAUTH2_FIELDS.iter().copied());
                let problem = format!("oauth2 has no field `{name}`");
                self.report(
                    DiagnosticKind::OAuth2Field {
                        problem,
                        suggestion,
                    },
                    field.name.span,
                );
            }
            if name == "token_url" {
                self.token_url(&field.value);
            }
            if OAUTH2_SECRETS.contains(&name) {
                self.credential(&field.value, &format!("the oauth2 `{name}`"));
            }
            self.expr(&field.value, &Scope::default());
        }
        for required in OAUTH2_REQUIRED {
            if !seen.iter().any(|(name, _)| name == required) {
                let problem = format!("oauth2 needs `{required}`");
                self.report(
                    DiagnosticKind::OAuth2Field {
                        problem,
                        suggestion: None,
                    },
                    span,
                );
            }
        }
    }

    /// A credential must be read at run time (`secret()` or `env()`), never written out.
    pub(super) fn credential(&mut self, value: &Expr, what: &str) {
        // An empty string is no credential: Stripe's basic auth has an empty password.
        let literal = match &value.kind {
            ExprKind::String(text) => !text.value.is_empty(),
            // A template that calls `secret()` is refused as such (E413); one that does not
            // parse is refused as that (E202).
            ExprKind::Template(text) => {
                super::expressions::template_reads(&text.value, "secret") == Some(false)
            }
            ExprKind::Number(_) => true,
            // `env("TOKEN", "sk_live_...")`: the default is a literal credential too.
            ExprKind::Call { function, args } if function.node == "env" => {
                if let Some(default) = args.get(1) {
                    self.credential(default, what);
                }
                false
            }
            _ => false,
        };
        if literal {
            self.report(
                DiagnosticKind::LiteralSecret {
                    what: what.to_string(),
                },
                value.span,
            );
        }
    }
}

/// Whether a value reads a secret, anywhere inside it.
fn reads_secret(expr: &Expr) -> bool {
    match &expr.kind {
        ExprKind::Call { function, args } => {
            function.node == "secret" || args.iter().any(reads_secret)
        }
        ExprKind::Array(items) => items.iter().any(reads_secret),
        ExprKind::Object(fields) => fields.iter().any(|(_, value)| reads_secret(value)),
        ExprKind::Not(inner) => reads_secret(inner),
        ExprKind::Binary { lhs, rhs, .. } => reads_secret(lhs) || reads_secret(rhs),
        _ => false,
    }
}
