//! §2: each connection's effective settings (engine defaults marked), its credentials by
//! name with where each is read from, and an index of every secret and environment variable
//! the spec reads. Never a credential's value: the doc reads no secret, and a credential the
//! spec would write out is withheld (`Value::credential`).

use super::Effective;
use super::markdown::{code, effective, heading, table, value};
use super::value::{NameKind, Source, Value, names};
use crate::model::format_duration;
use crate::model::{Auth, Connection, Encoding, Integration, Trigger};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionDoc {
    pub name: String,
    pub base_url: Value,
    pub auth: AuthDoc,
    pub headers: Vec<HeaderDoc>,
    pub timeout: Effective<String>,
    pub connect_timeout: Effective<String>,
    pub encoding: Effective<String>,
    pub max_concurrency: Effective<String>,
    /// `count per duration [burst n]`, when declared.
    pub rate_limit: Option<String>,
    pub circuit_breaker: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AuthDoc {
    None,
    Bearer {
        token: Value,
    },
    Basic {
        username: Value,
        password: Value,
    },
    ApiKey {
        /// `header` or `query`.
        place: &'static str,
        name: String,
        value: Value,
    },
    Oauth2(Box<OAuth2Doc>),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OAuth2Doc {
    /// `refresh_token` or `client_credentials`.
    pub grant: &'static str,
    pub token_url: Value,
    pub client_id: Value,
    pub client_secret: Value,
    pub refresh_token: Option<Value>,
    pub scopes: Option<Value>,
    pub audience: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeaderDoc {
    pub name: String,
    /// Withheld when the header carries a credential.
    pub value: Value,
}

/// A secret or environment variable, and every place that reads it.
#[derive(Debug, Serialize)]
pub struct NameDoc {
    pub name: String,
    pub kind: NameKind,
    pub used_by: Vec<String>,
}

pub fn connection(connection: &Connection, source: Source<'_>) -> ConnectionDoc {
    ConnectionDoc {
        name: connection.name.clone(),
        base_url: base_url(connection, source),
        auth: auth(&connection.auth, source),
        headers: connection
            .headers
            .iter()
            .map(|entry| {
                let value = source.value(&entry.value);
                let secret = crate::secrets::is_credential_name(&entry.key.node)
                    || !matches!(value, Value::Constant { .. } | Value::Env { .. });
                HeaderDoc {
                    name: entry.key.node.clone(),
                    value: if secret { value.credential() } else { value },
                }
            })
            .collect(),
        timeout: connection.timeout_in_force().map(format_duration),
        connect_timeout: connection.connect_timeout_in_force().map(format_duration),
        encoding: match connection.encoding {
            Encoding::Json => Effective::new("json".into(), true),
            Encoding::Form => Effective::set("form".into()),
        },
        max_concurrency: match connection.max_concurrency {
            Some(n) => Effective::set(n.to_string()),
            None => Effective::default_of("unbounded".into()),
        },
        rate_limit: connection.rate_limit.map(|limit| {
            let burst = limit
                .burst
                .map(|b| format!(" burst {b}"))
                .unwrap_or_default();
            format!("{} per {}{burst}", limit.count, format_duration(limit.per))
        }),
        circuit_breaker: connection
            .circuit_breaker
            .as_ref()
            .map(super::capacity::breaker),
    }
}

/// A base URL that reads a secret (an incoming webhook's URL is its own credential) is
/// shown by name only.
fn base_url(connection: &Connection, source: Source<'_>) -> Value {
    let mut read = Vec::new();
    names(&connection.base_url, &mut read);
    let value = source.value(&connection.base_url);
    if read.iter().any(|(kind, _)| *kind == NameKind::Secret) {
        value.credential()
    } else {
        value
    }
}

fn auth(auth: &Auth, source: Source<'_>) -> AuthDoc {
    let secret = |expr| source.value(expr).credential();
    match auth {
        Auth::None => AuthDoc::None,
        Auth::Bearer(token) => AuthDoc::Bearer {
            token: secret(token),
        },
        Auth::Basic { username, password } => AuthDoc::Basic {
            username: source.value(username),
            password: secret(password),
        },
        Auth::ApiKey {
            in_query,
            name,
            value,
        } => AuthDoc::ApiKey {
            place: if *in_query { "query" } else { "header" },
            name: name.clone(),
            value: secret(value),
        },
        Auth::OAuth2(oauth) => AuthDoc::Oauth2(Box::new(OAuth2Doc {
            grant: if oauth.refresh_token.is_some() {
                "refresh_token"
            } else {
                "client_credentials"
            },
            token_url: source.value(&oauth.token_url),
            client_id: secret(&oauth.client_id),
            client_secret: secret(&oauth.client_secret),
            refresh_token: oauth.refresh_token.as_ref().map(secret),
            scopes: oauth.scopes.as_ref().map(|s| source.value(s)),
            audience: oauth.audience.as_ref().map(|a| source.value(a)),
        })),
    }
}

/// Every secret and environment variable, in the order the spec first reads it.
pub fn names_index(model: &Integration) -> Vec<NameDoc> {
    let mut index: Vec<NameDoc> = Vec::new();
    for (place, expr) in places(model) {
        let mut found = Vec::new();
        names(expr, &mut found);
        for (kind, name) in found {
            match index.iter_mut().find(|n| n.name == name && n.kind == kind) {
                Some(entry) if !entry.used_by.contains(&place) => entry.used_by.push(place.clone()),
                Some(_) => {}
                None => index.push(NameDoc {
                    name,
                    kind,
                    used_by: vec![place.clone()],
                }),
            }
        }
    }
    index
}

/// Each value of the spec that can read a secret or an environment variable, with where it
/// is, in spec order.
fn places(model: &Integration) -> Vec<(String, &crate::ast::Expr)> {
    let mut places = Vec::new();
    for c in &model.connections {
        connection_places(&mut places, c, "");
    }
    for (index, trigger) in model.triggers.iter().enumerate() {
        let at = format!("[trigger {}](#trigger-{})", index + 1, index + 1);
        match trigger {
            Trigger::Webhook(hook) => {
                if let Some(signature) = &hook.signature {
                    places.push((format!("{at} signature"), &signature.secret));
                }
                places.extend(hook.when.iter().map(|e| (format!("{at} `when`"), e)));
            }
            Trigger::Poll(poll) => {
                let entries = poll.query.iter().chain(&poll.headers);
                places.extend(entries.map(|e| (format!("{at} request"), &e.value)));
                if let Some(body) = &poll.body {
                    places
                        .extend(super::steps::body_values(body).map(|e| (format!("{at} body"), e)));
                }
                if let Some(since) = &poll.since {
                    places.extend(
                        since
                            .start
                            .iter()
                            .map(|e| (format!("{at} `since` start"), e)),
                    );
                }
                places.extend(poll.when.iter().map(|e| (format!("{at} `when`"), e)));
            }
            Trigger::Schedule(schedule) => {
                places.extend(schedule.event.iter().map(|e| (format!("{at} event"), e)));
            }
            Trigger::Manual => {}
        }
    }
    for step in model.steps.iter().chain(&model.fallbacks) {
        let at = format!(
            "step [{}](#step-{})",
            step.name,
            super::markdown::slug(&step.name)
        );
        places.extend(super::steps::values(step).map(|e| (at.clone(), e)));
    }
    for (index, alert) in model.alerts.iter().enumerate() {
        places.push((
            format!("[alert {}](#alerts) channel", index + 1),
            &alert.target,
        ));
    }
    // An environment's connections are the spec's with its overrides: only those are new.
    let written: Vec<crate::span::Span> = places.iter().map(|(_, e)| e.span).collect();
    for environment in &model.environments {
        let mut overrides = Vec::new();
        for c in &environment.connections {
            connection_places(
                &mut overrides,
                c,
                &format!("environment `{}`: ", environment.name),
            );
        }
        overrides.retain(|(_, e)| !written.contains(&e.span));
        places.extend(overrides);
    }
    places
}

fn connection_places<'a>(
    places: &mut Vec<(String, &'a crate::ast::Expr)>,
    c: &'a Connection,
    prefix: &str,
) {
    let at = format!(
        "{prefix}connection [{}](#conn-{})",
        c.name,
        super::markdown::slug(&c.name)
    );
    places.push((format!("{at} base URL"), &c.base_url));
    let auth: Vec<&crate::ast::Expr> = match &c.auth {
        Auth::None => vec![],
        Auth::Bearer(token) => vec![token],
        Auth::Basic { username, password } => vec![username, password],
        Auth::ApiKey { value, .. } => vec![value],
        Auth::OAuth2(o) => [
            Some(&o.token_url),
            Some(&o.client_id),
            Some(&o.client_secret),
        ]
        .into_iter()
        .chain([
            o.refresh_token.as_ref(),
            o.scopes.as_ref(),
            o.audience.as_ref(),
        ])
        .flatten()
        .collect(),
    };
    places.extend(auth.into_iter().map(|e| (format!("{at} auth"), e)));
    places.extend(
        c.headers
            .iter()
            .map(|e| (format!("{at} header `{}`", e.key.node), &e.value)),
    );
}

/// The settings of a connection as table rows, the same for every environment, so that
/// an environment's overrides are the rows that differ.
pub fn rows(c: &ConnectionDoc) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("Base URL", value(&c.base_url)),
        ("Auth", auth_words(&c.auth)),
    ];
    if !c.headers.is_empty() {
        let headers: Vec<String> = c
            .headers
            .iter()
            .map(|h| format!("{}: {}", code(&h.name), value(&h.value)))
            .collect();
        rows.push(("Headers", headers.join("<br/>")));
    }
    let eff = |e: &Effective<String>| effective(e.value.clone(), e.default);
    rows.push(("Timeout", eff(&c.timeout)));
    rows.push(("Connect timeout", eff(&c.connect_timeout)));
    rows.push(("Body encoding", eff(&c.encoding)));
    rows.push(("Requests at once", eff(&c.max_concurrency)));
    rows.push((
        "Rate limit",
        c.rate_limit.clone().unwrap_or_else(|| {
            "none declared: only what the API answers (`429`, `Retry-After`)".into()
        }),
    ));
    if let Some(breaker) = &c.circuit_breaker {
        rows.push(("Circuit breaker", breaker.clone()));
    }
    rows
}

fn auth_words(auth: &AuthDoc) -> String {
    match auth {
        AuthDoc::None => "none".into(),
        AuthDoc::Bearer { token } => {
            format!(
                "HTTP bearer: `Authorization: Bearer <token>`, the token from {}",
                value(token)
            )
        }
        AuthDoc::Basic { username, password } => format!(
            "HTTP basic: user {}, password from {}",
            value(username),
            value(password)
        ),
        AuthDoc::ApiKey {
            place,
            name,
            value: key,
        } => format!("API key in {place} {}, from {}", code(name), value(key)),
        AuthDoc::Oauth2(oauth) => {
            let OAuth2Doc {
                grant,
                token_url,
                client_id,
                client_secret,
                refresh_token,
                scopes,
                audience,
            } = oauth.as_ref();
            let grant = match *grant {
                "refresh_token" => "refresh-token grant",
                _ => "client-credentials grant",
            };
            let mut words = format!(
                "OAuth2, {grant} at {}; client id from {}, client secret from {}",
                value(token_url),
                value(client_id),
                value(client_secret)
            );
            if let Some(refresh) = refresh_token {
                words.push_str(&format!(", refresh token from {}", value(refresh)));
            }
            if let Some(scopes) = scopes {
                words.push_str(&format!("; scopes {}", value(scopes)));
            }
            if let Some(audience) = audience {
                words.push_str(&format!("; audience {}", value(audience)));
            }
            words.push_str(
                ". The access token is kept in memory until shortly before it expires; a `401` \
                fetches a new one once. A refresh token the endpoint rotates is stored sealed \
                in the state file and used from then on",
            );
            words
        }
    }
}

pub fn markdown(
    connections: &[ConnectionDoc],
    environments: &[super::environments::EnvironmentDoc],
    index: &[NameDoc],
) -> String {
    let mut out = heading(2, "connections", "2. Connections and credentials");
    out.push_str(
        "This document never holds a credential's value. `secret(\"NAME\")` is read when \
        `integ serve` or `integ run` starts: from key `NAME` of the secrets file given with \
        `--secrets FILE`, else from the environment variable `NAME`; a missing one stops the \
        start with an error that names it. `env(\"NAME\", default)` reads the environment \
        variable `NAME`, else the default written in the spec. Values marked *(default)* are \
        the engine's, not set in the spec.\n\n",
    );
    for c in connections {
        out.push_str(&heading(
            3,
            &format!("conn-{}", super::markdown::slug(&c.name)),
            &format!("`{}`", c.name),
        ));
        let theirs: Vec<(&str, Vec<(&str, String)>)> = environments
            .iter()
            .filter_map(|e| {
                let other = e.connections.iter().find(|o| o.name == c.name)?;
                Some((e.name.as_str(), rows(other)))
            })
            .collect();
        let mut table_rows = Vec::new();
        for (setting, ours) in rows(c) {
            let mut cell = ours.clone();
            for (environment, their_rows) in &theirs {
                if let Some((_, theirs)) =
                    their_rows.iter().find(|(s, t)| *s == setting && *t != ours)
                {
                    cell.push_str(&format!("<br/>**{environment}:** {theirs}"));
                }
            }
            table_rows.push(vec![setting.to_string(), cell]);
        }
        out.push_str(&table(&["Setting", "Value"], &table_rows));
    }
    out.push_str(&heading(3, "secrets", "Secrets and environment variables"));
    if index.is_empty() {
        out.push_str("The spec reads none.\n\n");
    } else {
        let rows: Vec<Vec<String>> = index
            .iter()
            .map(|n| {
                let kind = match n.kind {
                    NameKind::Secret => "secret (secrets file, else environment)",
                    NameKind::Env => "environment variable",
                };
                vec![code(&n.name), kind.to_string(), n.used_by.join("<br/>")]
            })
            .collect();
        out.push_str(&table(&["Name", "Read from", "Used by"], &rows));
    }
    out
}
