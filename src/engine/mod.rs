//! The engine: runs a plan's steps for one event against live HTTP APIs.
//!
//! **Boundary:** the engine reads only the plan (and secrets); it never sees the AST.

mod auth;
mod cache;
mod http;
mod limits;
mod link;
mod pages;
mod poll;
mod report;
mod rules;
mod run;
mod seal;
pub mod url;

pub use auth::OAuth2Clients;
pub use http::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, HttpError, form_pairs,
};
pub use limits::MAX_PAUSE;
pub use poll::Polled;
pub use report::{AttemptReport, Invented, RequestReport, RunOutcome, RunReport, StepReport};
pub use run::{DEFAULT_MAX_COLLECTED_BYTES, PAGE_LIMIT};
pub use seal::{KeeperError, RefreshTokens};

use crate::plan::{AuthPlan, ConnectionPlan, EvalError, Plan, Scope, Value, as_text};
use crate::secrets::Secrets;
use crate::telemetry::labels::HttpMethod;
use crate::telemetry::{ConnectionMetrics, IntegrationMetrics, PlanNames};
use serde_json::Value as Json;
use std::sync::Arc;

/// How the engine runs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Build every request and report it, send nothing.
    pub dry_run: bool,
    /// Responses above this size fail the request (default `DEFAULT_MAX_RESPONSE_BYTES`).
    pub max_response_bytes: Option<usize>,
    /// A paginated step whose items pass this size (as JSON) fails (default
    /// `DEFAULT_MAX_COLLECTED_BYTES`).
    pub max_collected_bytes: Option<usize>,
    /// Base URLs that replace the connections' own, by connection index (`integ test`
    /// points connections at its mock servers this way).
    pub base_urls: Vec<Option<String>>,
    /// Send this bearer token instead of fetching OAuth2 tokens: `integ test` runs against
    /// mock servers, and a token endpoint is another host.
    pub oauth2_token: Option<String>,
    /// Where OAuth2 refresh tokens rotated by a token endpoint are kept (sealed), so that
    /// the next process sends the current one, not a spent one.
    pub refresh_tokens: Option<Arc<dyn RefreshTokens>>,
    /// OAuth2 clients shared by connections with the same credentials: give engines the
    /// same `Options` (clones share it) and they share one client per refresh token.
    pub oauth2_clients: Arc<OAuth2Clients>,
    /// A wait the API asks for that is longer than a step's largest retry delay ends the
    /// run as `RunOutcome::Deferred` instead of failing the step: `integ serve` puts the
    /// event back in its inbox until then, and its worker moves on.
    pub defer_long_waits: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("connection `{connection}`: {source}")]
    Value {
        connection: String,
        #[source]
        source: EvalError,
    },
    #[error("connection `{connection}`: {source}")]
    Url {
        connection: String,
        #[source]
        source: url::UrlError,
    },
    #[error("connection `{connection}`: {detail}")]
    Client { connection: String, detail: String },
}

/// A plan with its connections set up, ready to run events.
#[derive(Debug)]
pub struct Engine {
    plan: Arc<Plan>,
    connections: Vec<http::Connection>,
    secrets: Secrets,
    options: Options,
    metrics: IntegrationMetrics,
}

impl Engine {
    /// Sets up every connection: base URL, credentials and headers evaluated once (they
    /// cannot read events), one HTTP client each.
    pub fn new(plan: Arc<Plan>, secrets: Secrets, options: Options) -> Result<Self, EngineError> {
        install_crypto_provider();
        let connections: Vec<http::Connection> = plan
            .connections
            .iter()
            .enumerate()
            .map(|(index, connection)| {
                let base_url = options.base_urls.get(index).cloned().flatten();
                let methods = methods(&plan, index);
                connect(&plan, connection, base_url, &secrets, &options, &methods)
            })
            .collect::<Result<_, _>>()?;
        // Credentials read with env() rather than secret(), and the forms they take on the
        // wire, are redacted like secrets.
        for connection in &connections {
            for credential in connection.auth.credentials() {
                secrets.also_redact(&credential);
            }
            for (name, value) in &connection.headers {
                if crate::secrets::is_credential_name(name) {
                    secrets.also_redact(value);
                }
            }
        }
        let metrics = IntegrationMetrics::new(&plan_names(&plan));
        Ok(Self {
            plan,
            connections,
            secrets,
            options,
            metrics,
        })
    }

    /// The integration's metric handles (no-ops where no recorder is installed).
    pub fn metrics(&self) -> &IntegrationMetrics {
        &self.metrics
    }

    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Each connection that holds its calls now: paused at an API's request, or its circuit
    /// open. For `/readyz?verbose`, where it informs and never fails readiness (the inbox
    /// holds the events meanwhile).
    pub fn held_connections(&self) -> Vec<HeldConnection<'_>> {
        self.plan
            .connections
            .iter()
            .zip(&self.connections)
            .filter_map(|(plan, connection)| {
                let paused_for = connection.limits.paused_for();
                let circuit_open = connection.limits.breaker().is_some_and(|b| b.is_open());
                (paused_for.is_some() || circuit_open).then_some(HeldConnection {
                    name: &plan.name,
                    paused_for,
                    circuit_open,
                })
            })
            .collect()
    }
}

/// A connection holding its calls (see `Engine::held_connections`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldConnection<'a> {
    pub name: &'a str,
    /// The rest of a pause the API asked for (a 429, an exhausted window).
    pub paused_for: Option<std::time::Duration>,
    pub circuit_open: bool,
}

/// The names of `plan`'s series: every step and trigger is known when the plan loads.
fn plan_names(plan: &Plan) -> PlanNames<'_> {
    PlanNames {
        integration: &plan.name,
        steps: plan.steps.iter().map(|s| s.name.as_str()).collect(),
        webhooks: plan
            .webhooks
            .iter()
            .map(|w| crate::plan::webhook_name(w.method, &w.path))
            .collect(),
        polls: (0..plan.polls.len()).map(crate::plan::poll_name).collect(),
        schedules: (0..plan.schedules.len())
            .map(crate::plan::schedule_name)
            .collect(),
    }
}

/// OAuth2 scopes as the token endpoint wants them: one string, a list joined by spaces.
fn scopes(
    plan: &Plan,
    scopes: Option<&Value>,
    scope: &Scope<'_>,
) -> Result<Option<String>, EvalError> {
    let Some(scopes) = scopes else {
        return Ok(None);
    };
    Ok(match scopes.eval(&plan.templates, scope)? {
        Some(Json::Array(items)) => Some(
            items
                .iter()
                .map(|item| as_text(Some(item)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        other => Some(as_text(other.as_ref())),
    })
}

/// rustls needs one process-wide crypto provider; ring builds fast and needs no C toolchain
/// beyond what cargo has.
pub fn install_crypto_provider() {
    // Fails only when one is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn max_response_bytes(options: &Options) -> usize {
    options
        .max_response_bytes
        .unwrap_or(DEFAULT_MAX_RESPONSE_BYTES)
}

/// The methods the plan sends on connection `index`: its steps', fallbacks' and polls'.
fn methods(plan: &Plan, index: usize) -> Vec<HttpMethod> {
    let steps = plan.steps.iter().chain(&plan.fallbacks);
    let steps = steps.filter(|s| s.connection == index).map(|s| s.method());
    let polls = plan.polls.iter().filter(|p| p.connection == index);
    let mut methods: Vec<HttpMethod> = steps
        .chain(polls.map(|p| p.method))
        .map(http::method_label)
        .collect();
    methods.sort_by_key(|m| *m as usize);
    methods.dedup();
    methods
}

fn connect(
    plan: &Plan,
    connection: &ConnectionPlan,
    base_url: Option<String>,
    secrets: &Secrets,
    options: &Options,
    methods: &[HttpMethod],
) -> Result<http::Connection, EngineError> {
    let name = connection.name.clone();
    let scope = Scope::fixed(secrets);
    let text = |value: &Value| -> Result<String, EngineError> {
        let value = value
            .eval(&plan.templates, &scope)
            .map_err(|source| EngineError::Value {
                connection: name.clone(),
                source,
            })?;
        Ok(as_text(value.as_ref()))
    };
    let base_text = match base_url {
        Some(url) => url,
        None => text(&connection.base_url)?,
    };
    let base = url::base(&base_text).map_err(|source| EngineError::Url {
        connection: name.clone(),
        source,
    })?;
    let auth = match &connection.auth {
        AuthPlan::None => auth::Auth::None,
        AuthPlan::Bearer(token) => auth::Auth::Bearer(text(token)?),
        AuthPlan::Basic { username, password } => auth::Auth::Basic {
            username: text(username)?,
            password: text(password)?,
        },
        AuthPlan::ApiKey {
            in_query,
            name,
            value,
        } => auth::Auth::ApiKey {
            in_query: *in_query,
            name: name.clone(),
            value: text(value)?,
        },
        AuthPlan::OAuth2(_) if options.oauth2_token.is_some() => {
            auth::Auth::Bearer(options.oauth2_token.clone().unwrap_or_default())
        }
        AuthPlan::OAuth2(oauth) => {
            let token_url = text(&oauth.token_url)?;
            let token_url =
                crate::model::http::http_url(&token_url).ok_or_else(|| EngineError::Url {
                    connection: name.clone(),
                    source: url::UrlError::TokenUrl(token_url.clone()),
                })?;
            let optional = |value: &Option<Value>| value.as_ref().map(&text).transpose();
            let settings = auth::OAuth2Settings {
                token_url,
                client_id: text(&oauth.client_id)?,
                client_secret: text(&oauth.client_secret)?,
                refresh_token: optional(&oauth.refresh_token)?,
                scopes: scopes(plan, oauth.scopes.as_ref(), &scope).map_err(|source| {
                    EngineError::Value {
                        connection: name.clone(),
                        source,
                    }
                })?,
                audience: optional(&oauth.audience)?,
            };
            let context = auth::OAuth2Context {
                redaction: secrets.redaction().clone(),
                keeper: options.refresh_tokens.clone(),
                integration: plan.name.clone(),
                connection: name.clone(),
                max_response_bytes: max_response_bytes(options),
                timeout: connection.timeout,
            };
            auth::Auth::OAuth2(options.oauth2_clients.client(settings, context))
        }
    };
    let headers: Vec<(String, String)> = connection
        .headers
        .iter()
        .map(|(key, value)| Ok((key.clone(), text(value)?)))
        .collect::<Result<_, EngineError>>()?;
    // Headers known at start (secrets, `env()`) are checked at start, not at every request.
    let credential = match &auth {
        auth::Auth::Bearer(token) => Some(("Authorization".to_string(), format!("Bearer {token}"))),
        auth::Auth::ApiKey {
            in_query: false,
            name,
            value,
        } => Some((name.clone(), value.clone())),
        _ => None,
    };
    for (key, value) in headers.iter().chain(&credential) {
        http::header(key, value).map_err(|detail| EngineError::Client {
            connection: name.clone(),
            detail,
        })?;
    }
    let client =
        http::client(&base, connection.connect_timeout).map_err(|e| EngineError::Client {
            connection: name.clone(),
            detail: e.to_string(),
        })?;
    let metrics = Arc::new(ConnectionMetrics::new(
        &plan.name,
        &name,
        connection.circuit_breaker.is_some(),
        methods,
    ));
    Ok(http::Connection {
        base,
        client,
        auth,
        headers,
        encoding: connection.encoding,
        timeout: connection.timeout.unwrap_or(DEFAULT_TIMEOUT),
        max_response_bytes: max_response_bytes(options),
        cache: cache::Cache::default(),
        limits: limits::Limits::new(
            connection.rate_limit,
            connection.max_concurrency.map(|n| n.get()),
            connection.circuit_breaker.as_ref(),
            metrics.clone(),
        ),
        metrics,
    })
}
