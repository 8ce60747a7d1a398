//! Model to plan: every JSONPath and template compiled once, environments applied, files
//! read. Per-event work is evaluation only.

mod decimal;
mod events;
mod jinja;
mod path;
mod time;
mod value;

pub use events::{Keyed, RequestHeaders, TriggerError, keyed_events};
pub use path::encode_segment;
pub use time::Clock;
pub use value::{
    Answer, EvalError, Path, Root, Scope, Template, Value, as_text, is_singular, render, truthy,
};

use crate::ast::{self, Expr, ExprKind, Method, TargetSegment, Text};
use crate::model::{self, Encoding, OnError, RetryPolicy};
use crate::secrets::Credential;
use minijinja::Environment;
use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Why a plan could not be made from a checked model.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("unknown connection `{0}` (a bug: the checker should have refused it)")]
    UnknownConnection(String),
    #[error("unknown environment `{0}`")]
    UnknownEnvironment(String),
    #[error("cannot read `{path}` for file(): {source}")]
    File {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("template `{template}` does not compile: {detail}")]
    Template { template: String, detail: String },
    #[error("cron `{cron}` does not parse: {detail}")]
    Cron { cron: String, detail: String },
    #[error("JSONPath `{query}` does not compile: {detail}")]
    JsonPath { query: String, detail: String },
    #[error("{0} (a bug: the checker should have refused it)")]
    Unchecked(&'static str),
}

/// A spec ready to run.
#[derive(Debug)]
pub struct Plan {
    pub name: String,
    /// At most this many events of the integration run at once under `integ serve`.
    pub concurrency: Option<NonZeroU32>,
    pub templates: Arc<Environment<'static>>,
    pub connections: Vec<ConnectionPlan>,
    pub steps: Vec<StepPlan>,
    pub fallbacks: Vec<StepPlan>,
    pub tests: Vec<TestPlan>,
    /// The webhook triggers.
    pub webhooks: Vec<WebhookPlan>,
    /// The schedule triggers.
    pub schedules: Vec<SchedulePlan>,
    /// The poll triggers.
    pub polls: Vec<PollPlan>,
    /// The alerts, which only `integ serve` evaluates.
    pub alerts: Vec<AlertPlan>,
    /// Every secret the spec reads, by who reads it, so that each command loads (and
    /// redacts) up front those it uses, and only those.
    pub secrets: SecretNames,
}

/// The names of the secrets a spec reads, by the part that reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretNames {
    /// Read by connections, steps and fallbacks: every run needs them.
    pub runs: BTreeSet<String>,
    /// Read only by triggers (a webhook's signing secret, a poll's or schedule's values):
    /// `integ serve` needs them, `integ run` does not.
    pub triggers: BTreeSet<String>,
    /// Read only by test blocks.
    pub tests: BTreeSet<String>,
    /// Read only by alerts (their targets): `integ serve` needs them, `integ run` and
    /// `integ test` do not.
    pub alerts: BTreeSet<String>,
}

impl SecretNames {
    /// What `integ run` resolves.
    pub fn for_run(&self) -> impl Iterator<Item = &str> {
        self.runs.iter().map(String::as_str)
    }

    /// What `integ serve` resolves.
    pub fn for_serve(&self) -> impl Iterator<Item = &str> {
        let mut all: BTreeSet<&str> = self
            .runs
            .union(&self.triggers)
            .map(String::as_str)
            .collect();
        all.extend(self.alerts.iter().map(String::as_str));
        all.into_iter()
    }

    /// Every name but the alerts': `integ test` gives each a placeholder.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        let mut all: BTreeSet<&str> = self
            .runs
            .union(&self.triggers)
            .map(String::as_str)
            .collect();
        all.extend(self.tests.iter().map(String::as_str));
        all.into_iter()
    }
}

/// Which parts of a spec to compile. The test blocks read their fixtures (`file(...)`)
/// when compiled: `integ run` and `integ serve` leave them out, so that a spec runs where
/// its fixtures are not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parts {
    All,
    WithoutTests,
}

/// An alert: a metric counted over a sliding window, compared with a threshold, and where
/// to say when the comparison starts and stops holding.
#[derive(Debug, Clone)]
pub struct AlertPlan {
    pub alert: model::Alert,
    /// The alert's key (`model::alert::keys`).
    pub key: String,
    /// The Slack or webhook URL, or the e-mail address; a secret.
    pub target: Value,
}

/// A poll trigger: the request made every interval, and how its answer becomes events.
#[derive(Debug, Clone)]
pub struct PollPlan {
    /// Index into `Plan::connections`.
    pub connection: usize,
    pub method: Method,
    pub path: Value,
    pub every: Duration,
    pub query: Vec<(String, Value)>,
    pub headers: Vec<(String, Value)>,
    /// The records of an answer (`$` is the answer); the whole answer when absent.
    pub items: Option<Value>,
    pub cursor: Option<PageStyle>,
    pub when: Option<Value>,
    pub dedupe: Option<Value>,
    /// How long this trigger's dedupe keys are kept; `--retention` when `None`.
    pub retention: Option<Duration>,
    pub body: Option<BodyPlan>,
    /// An incremental poll's mark.
    pub since: Option<SincePlan>,
    /// The poll's response rules, then its connection's: a refusal in a `200` is a
    /// failed round, an `empty` verdict a round with no items.
    pub rules: Vec<RulePlan>,
}

/// An incremental poll's high-water mark: where each item holds it, its type, the first
/// round's mark and the look-back.
#[derive(Debug, Clone)]
pub struct SincePlan {
    /// `$` is an item.
    pub path: Value,
    pub kind: model::MarkType,
    /// The type `since` is written in.
    pub send: model::MarkType,
    /// Evaluated when a round starts without a stored mark.
    pub start: Option<Value>,
    pub lookback: Option<ast::Lookback>,
}

/// A schedule trigger, its cron expression parsed once.
#[derive(Debug, Clone)]
pub struct SchedulePlan {
    pub cron: croner::Cron,
    /// The expression as written, to name the schedule's runs.
    pub text: String,
    pub timezone: chrono_tz::Tz,
    pub event: Option<Value>,
    pub overlap: model::Overlap,
    pub missed: model::Missed,
}

/// A webhook trigger: where it listens, how requests prove who sent them, and how a body
/// becomes events.
#[derive(Debug, Clone)]
pub struct WebhookPlan {
    pub path: String,
    pub method: Method,
    pub signature: Option<(model::SignaturePreset, Value)>,
    pub tolerance: Option<Duration>,
    /// One request, several events.
    pub each: Option<Value>,
    /// Which events run.
    pub when: Option<Value>,
    /// The key under which an event runs once.
    pub dedupe: Option<Value>,
    /// How long this trigger's dedupe keys are kept; `--retention` when `None`.
    pub retention: Option<Duration>,
    /// Whether `when` or `dedupe` reads a request header: if not, intake copies none.
    pub reads_headers: bool,
}

#[derive(Debug, Clone)]
pub struct ConnectionPlan {
    pub name: String,
    pub base_url: Value,
    pub auth: AuthPlan,
    pub headers: Vec<(String, Value)>,
    pub connect_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    pub encoding: Encoding,
    pub rate_limit: Option<model::RateLimit>,
    pub max_concurrency: Option<NonZeroU32>,
    pub circuit_breaker: Option<model::CircuitBreaker>,
}

#[derive(Debug, Clone)]
pub enum AuthPlan {
    None,
    Bearer(Value),
    Basic {
        username: Value,
        password: Value,
    },
    ApiKey {
        in_query: bool,
        name: String,
        value: Value,
    },
    OAuth2(Box<OAuth2Plan>),
}

#[derive(Debug, Clone)]
pub struct OAuth2Plan {
    pub token_url: Value,
    pub client_id: Value,
    pub client_secret: Value,
    pub refresh_token: Option<Value>,
    pub scopes: Option<Value>,
    pub audience: Option<Value>,
}

#[derive(Debug, Clone)]
pub struct StepPlan {
    pub name: String,
    /// Index into `Plan::connections`.
    pub connection: usize,
    pub call: CallPlan,
    /// A literal or a path template (whose expressions are percent-encoded).
    pub path: Value,
    pub query: Vec<(String, Value)>,
    pub headers: Vec<(String, Value)>,
    pub body: Option<BodyPlan>,
    pub when: Option<Value>,
    pub for_each: Option<ForEachPlan>,
    pub pagination: Option<PaginationPlan>,
    pub items: Option<Value>,
    /// How long a GET step's response is reused for the same request.
    pub cache: Option<Duration>,
    pub idempotency_key: Option<Value>,
    pub timeout: Option<Duration>,
    pub retry: RetryPolicy,
    pub on_error: OnError,
    pub encoding: Option<Encoding>,
    /// The step's response rules, then its connection's: the first that matches decides.
    pub rules: Vec<RulePlan>,
    pub partial_data: model::PartialData,
    /// The index of the paged step this one runs on, once per page as it arrives.
    pub per_page: Option<usize>,
}

impl StepPlan {
    /// The method the step sends: a GraphQL call is a POST.
    pub fn method(&self) -> Method {
        match self.call {
            CallPlan::Http(method) => method,
            CallPlan::GraphQl { .. } => Method::Post,
        }
    }
}

/// A response rule with its values compiled.
#[derive(Debug, Clone)]
pub struct RulePlan {
    pub statuses: Vec<model::StatusMatch>,
    /// Read with `$` the answer's body.
    pub when: Option<Value>,
    pub action: ActionPlan,
}

#[derive(Debug, Clone)]
pub enum ActionPlan {
    Succeed,
    Empty,
    Fail {
        message: Option<Value>,
    },
    Retry {
        after: Option<DelayPlan>,
        message: Option<Value>,
    },
}

#[derive(Debug, Clone)]
pub enum DelayPlan {
    Header(String),
    Value(Value),
}

#[derive(Debug, Clone)]
pub enum CallPlan {
    Http(Method),
    GraphQl {
        document: String,
        variables: Vec<(Vec<TargetSegment>, Value)>,
        /// The document holds a mutation: read once, here, not on every call.
        mutation: bool,
    },
}

#[derive(Debug, Clone)]
pub enum BodyPlan {
    Mapping(Vec<(Vec<TargetSegment>, Value)>),
    Raw(Value),
}

#[derive(Debug, Clone)]
pub struct ForEachPlan {
    pub items: Value,
    pub concurrency: usize,
}

#[derive(Debug, Clone)]
pub struct PaginationPlan {
    pub style: PageStyle,
    pub items: Value,
    pub max_pages: Option<NonZeroU32>,
    pub has_more: Option<Value>,
}

#[derive(Debug, Clone)]
pub enum PageStyle {
    Cursor {
        path: Value,
        param: String,
    },
    /// A cursor sent as a top-level field of the request body (polls only).
    BodyCursor {
        path: Value,
        field: String,
    },
    LinkHeader,
    NextLink(Value),
    Offset {
        offset_param: String,
        limit_param: String,
        limit: u32,
    },
    Page {
        param: String,
        from: u32,
        size: Option<(String, u32)>,
    },
}

#[derive(Debug, Clone)]
pub struct TestPlan {
    pub name: String,
    pub event: Value,
    /// The headers of the webhook request the event comes in, for the trigger's `header()`.
    pub headers: Vec<(String, Value)>,
    pub mocks: Vec<MockPlan>,
    pub expectations: Vec<ExpectationPlan>,
}

#[derive(Debug, Clone)]
pub struct MockPlan {
    pub connection: usize,
    pub method: Method,
    /// The path as written, without its query; a mock matches requests whose path (without
    /// the query) is it.
    pub path: String,
    /// Parameters the request's query must have (it may have more).
    pub query: Vec<(String, String)>,
    /// A condition on the request body (`$`).
    pub predicate: Option<Value>,
    pub answers: Vec<AnswerPlan>,
    /// After the last answer: `true` repeats it (a mock of one answer), `false` fails the
    /// test.
    pub repeats: bool,
}

#[derive(Debug, Clone)]
pub struct AnswerPlan {
    pub status: u16,
    pub body: Option<Value>,
    pub headers: Vec<(String, Value)>,
}

impl MockPlan {
    /// The mock as a spec writes it, for messages: `api GET "/orders?page=2" where ...`.
    pub fn label(&self, connection: &str) -> String {
        let mut path = self.path.clone();
        if !self.query.is_empty() {
            let query: String = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&self.query)
                .finish();
            path = format!("{path}?{query}");
        }
        let condition = if self.predicate.is_some() {
            " where ..."
        } else {
            ""
        };
        format!(
            "mock {connection} {} \"{path}\"{condition}",
            self.method.as_str()
        )
    }

    /// The answer a dry run shows: the first success, else the first answer.
    pub fn working_answer(&self) -> Option<&AnswerPlan> {
        self.answers
            .iter()
            .find(|a| (200..300).contains(&a.status))
            .or(self.answers.first())
    }
}

#[derive(Debug, Clone)]
pub enum ExpectationPlan {
    Request {
        connection: usize,
        method: Method,
        /// The path without its query.
        path: String,
        /// Parameters the request's query must have (it may have more).
        query: Vec<(String, String)>,
        predicate: Option<Value>,
        times: Option<u32>,
    },
    StepOutcome {
        step: String,
        outcome: model::Outcome,
    },
}

/// Default `for_each` concurrency when the spec gives none.
pub const DEFAULT_CONCURRENCY: usize = 4;

/// A schedule's cron expression, with or without seconds, as the plan reads it.
pub fn cron(text: &str) -> Result<croner::Cron, croner::errors::CronError> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Optional)
        .build()
        .parse(text)
}

/// Compiles a checked model for `environment` (the spec's own connections when `None`).
/// `base_dir` is where `file("...")` paths start: the spec's folder.
/// The plan of every part of `integration`, its tests included.
pub fn compile(
    integration: &model::Integration,
    environment: Option<&str>,
    base_dir: &FsPath,
) -> Result<Plan, PlanError> {
    compile_parts(integration, environment, base_dir, Parts::All)
}

/// The plan of `integration`, with or without its test blocks.
pub fn compile_parts(
    integration: &model::Integration,
    environment: Option<&str>,
    base_dir: &FsPath,
    parts: Parts,
) -> Result<Plan, PlanError> {
    let connections = match environment {
        None => &integration.connections,
        Some(name) => match integration.environments.iter().find(|e| e.name == name) {
            Some(environment) => &environment.connections,
            None => return Err(PlanError::UnknownEnvironment(name.to_string())),
        },
    };
    let mut compiler = Compiler::new(base_dir);
    // Each connection's secrets, apart: a connection only a poll uses is not a run's.
    let mut connection_secrets = Vec::new();
    let connection_plans = connections
        .iter()
        .map(|c| {
            let plan = compiler.connection(c);
            connection_secrets.push(std::mem::take(&mut compiler.secrets));
            plan
        })
        .collect::<Result<Vec<_>, _>>()?;
    // The checker made sure every name is a connection; a miss is a bug, not a panic.
    let index = |name: &str| {
        connection_plans
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| PlanError::UnknownConnection(name.to_string()))
    };
    let step = |compiler: &mut Compiler, s: &model::Step| {
        let at = index(&s.connection)?;
        let connection_rules = connections.get(at).map_or(&[][..], |c| &c.rules);
        compiler.step(s, at, connection_rules)
    };
    let steps: Vec<StepPlan> = integration
        .steps
        .iter()
        .map(|s| {
            let mut plan = step(&mut compiler, s)?;
            plan.per_page = match &s.per_page {
                None => None,
                Some(name) => Some(
                    integration
                        .steps
                        .iter()
                        .position(|p| &p.name == name)
                        .ok_or(PlanError::Unchecked("`per_page` of an unknown step"))?,
                ),
            };
            Ok(plan)
        })
        .collect::<Result<_, PlanError>>()?;
    let fallbacks: Vec<StepPlan> = integration
        .fallbacks
        .iter()
        .map(|s| step(&mut compiler, s))
        .collect::<Result<_, _>>()?;
    let mut run_secrets = std::mem::take(&mut compiler.secrets);
    for (index, secrets) in connection_secrets.into_iter().enumerate() {
        if steps
            .iter()
            .chain(&fallbacks)
            .any(|s| s.connection == index)
        {
            run_secrets.extend(secrets);
        } else {
            compiler.secrets.extend(secrets);
        }
    }
    let unused_connections = std::mem::take(&mut compiler.secrets);
    let tests = match parts {
        Parts::All => integration
            .tests
            .iter()
            .map(|t| compiler.test(t, &index))
            .collect::<Result<_, _>>()?,
        Parts::WithoutTests => Vec::new(),
    };
    let test_secrets = std::mem::take(&mut compiler.secrets);
    let webhooks = integration
        .triggers
        .iter()
        .filter_map(|t| match t {
            model::Trigger::Webhook(webhook) => Some(webhook),
            _ => None,
        })
        .map(|webhook| {
            let when = compiler.optional(webhook.when.as_ref())?;
            let dedupe = compiler.optional(webhook.dedupe.as_ref().map(|d| &d.key))?;
            Ok(WebhookPlan {
                path: webhook.path.clone(),
                method: webhook.method,
                signature: match &webhook.signature {
                    Some(signature) => {
                        Some((signature.preset.clone(), compiler.value(&signature.secret)?))
                    }
                    None => None,
                },
                tolerance: webhook.tolerance,
                each: compiler.optional(webhook.each.as_ref())?,
                reads_headers: when.iter().chain(&dedupe).any(Value::reads_header),
                when,
                dedupe,
                retention: webhook.dedupe.as_ref().and_then(|d| d.retention),
            })
        })
        .collect::<Result<_, PlanError>>()?;
    let schedules = integration
        .triggers
        .iter()
        .filter_map(|t| match t {
            model::Trigger::Schedule(schedule) => Some(schedule),
            _ => None,
        })
        .map(|schedule| {
            let cron = cron(&schedule.cron).map_err(|e| PlanError::Cron {
                cron: schedule.cron.clone(),
                detail: e.to_string(),
            })?;
            Ok(SchedulePlan {
                cron,
                text: schedule.cron.clone(),
                timezone: schedule.timezone,
                event: compiler.optional(schedule.event.as_ref())?,
                overlap: schedule.overlap,
                missed: schedule.missed,
            })
        })
        .collect::<Result<_, PlanError>>()?;
    let polls = integration
        .triggers
        .iter()
        .filter_map(|t| match t {
            model::Trigger::Poll(poll) => Some(poll),
            _ => None,
        })
        .map(|poll| {
            let at = index(&poll.connection)?;
            let connection_rules = connections.get(at).map_or(&[][..], |c| &c.rules);
            Ok(PollPlan {
                connection: at,
                method: poll.method,
                path: compiler.path(&poll.path)?,
                every: poll.every,
                query: compiler.entries(&poll.query)?,
                headers: compiler.entries(&poll.headers)?,
                items: compiler.optional(poll.items.as_ref())?,
                cursor: match &poll.cursor {
                    Some(cursor) => {
                        Some(compiler.page_style(&model::PaginationStyle::Cursor(cursor.clone()))?)
                    }
                    None => None,
                },
                when: compiler.optional(poll.when.as_ref())?,
                dedupe: compiler.optional(poll.dedupe.as_ref().map(|d| &d.key))?,
                retention: poll.dedupe.as_ref().and_then(|d| d.retention),
                body: match &poll.body {
                    Some(body) => Some(compiler.body(body)?),
                    None => None,
                },
                since: match &poll.since {
                    Some(since) => Some(SincePlan {
                        path: compiler.value(&since.path)?,
                        kind: since.kind,
                        send: since.send,
                        start: compiler.optional(since.start.as_ref())?,
                        lookback: since.lookback,
                    }),
                    None => None,
                },
                rules: poll
                    .rules
                    .iter()
                    .chain(connection_rules)
                    .map(|rule| compiler.rule(rule))
                    .collect::<Result<_, _>>()?,
            })
        })
        .collect::<Result<_, PlanError>>()?;
    let trigger_secrets = std::mem::take(&mut compiler.secrets);
    let alerts = integration
        .alerts
        .iter()
        .zip(model::alert::keys(&integration.alerts))
        .map(|(alert, key)| {
            Ok(AlertPlan {
                key,
                target: compiler.value(&alert.target)?,
                alert: alert.clone(),
            })
        })
        .collect::<Result<_, PlanError>>()?;
    let alert_secrets = std::mem::replace(&mut compiler.secrets, trigger_secrets);
    Ok(Plan {
        name: integration.name.clone(),
        concurrency: integration.concurrency,
        templates: Arc::new(compiler.env),
        connections: connection_plans,
        steps,
        fallbacks,
        tests,
        webhooks,
        schedules,
        polls,
        alerts,
        secrets: SecretNames {
            triggers: compiler
                .secrets
                .union(&unused_connections)
                .filter(|name| !run_secrets.contains(*name))
                .cloned()
                .collect(),
            tests: test_secrets
                .difference(&run_secrets)
                .filter(|name| !compiler.secrets.contains(*name))
                .cloned()
                .collect(),
            alerts: alert_secrets
                .into_iter()
                .filter(|name| !run_secrets.contains(name) && !compiler.secrets.contains(name))
                .collect(),
            runs: run_secrets,
        },
    })
}

struct Compiler {
    env: Environment<'static>,
    base_dir: PathBuf,
    secrets: BTreeSet<String>,
}

impl Compiler {
    fn new(base_dir: &FsPath) -> Self {
        Self {
            env: jinja::environment(),
            base_dir: base_dir.to_path_buf(),
            secrets: BTreeSet::new(),
        }
    }

    fn connection(&mut self, connection: &model::Connection) -> Result<ConnectionPlan, PlanError> {
        Ok(ConnectionPlan {
            name: connection.name.clone(),
            base_url: self.value(&connection.base_url)?,
            auth: match &connection.auth {
                model::Auth::None => AuthPlan::None,
                model::Auth::Bearer(token) => AuthPlan::Bearer(self.value(token)?),
                model::Auth::Basic { username, password } => AuthPlan::Basic {
                    username: self.value(username)?,
                    password: self.value(password)?,
                },
                model::Auth::ApiKey {
                    in_query,
                    name,
                    value,
                } => AuthPlan::ApiKey {
                    in_query: *in_query,
                    name: name.clone(),
                    value: self.value(value)?,
                },
                model::Auth::OAuth2(oauth) => AuthPlan::OAuth2(Box::new(OAuth2Plan {
                    token_url: self.value(&oauth.token_url)?,
                    client_id: self.value(&oauth.client_id)?,
                    client_secret: self.value(&oauth.client_secret)?,
                    refresh_token: self.optional(oauth.refresh_token.as_ref())?,
                    scopes: self.optional(oauth.scopes.as_ref())?,
                    audience: self.optional(oauth.audience.as_ref())?,
                })),
            },
            headers: self.entries(&connection.headers)?,
            connect_timeout: connection.connect_timeout,
            timeout: connection.timeout,
            encoding: connection.encoding,
            rate_limit: connection.rate_limit,
            max_concurrency: connection.max_concurrency,
            circuit_breaker: connection.circuit_breaker.clone(),
        })
    }

    fn step(
        &mut self,
        step: &model::Step,
        connection: usize,
        connection_rules: &[model::Rule],
    ) -> Result<StepPlan, PlanError> {
        Ok(StepPlan {
            name: step.name.clone(),
            connection,
            call: match &step.call {
                model::Call::Http(method) => CallPlan::Http(*method),
                model::Call::GraphQl {
                    document,
                    variables,
                } => CallPlan::GraphQl {
                    document: document.clone(),
                    variables: self.mapping(variables)?,
                    mutation: model::is_mutation(document),
                },
            },
            path: self.path(&step.path)?,
            query: self.entries(&step.query)?,
            headers: self.entries(&step.headers)?,
            body: match &step.body {
                None => None,
                Some(body) => Some(self.body(body)?),
            },
            when: self.optional(step.when.as_ref())?,
            for_each: match &step.for_each {
                None => None,
                Some(for_each) => Some(ForEachPlan {
                    items: self.value(&for_each.items)?,
                    concurrency: for_each
                        .concurrency
                        .map_or(DEFAULT_CONCURRENCY, |n| n.get() as usize),
                }),
            },
            pagination: match &step.pagination {
                None => None,
                Some(pagination) => Some(PaginationPlan {
                    style: self.page_style(&pagination.style)?,
                    items: self.value(&pagination.items)?,
                    max_pages: pagination.max_pages,
                    has_more: self.optional(pagination.has_more.as_ref())?,
                }),
            },
            items: self.optional(step.items.as_ref())?,
            cache: step.cache,
            idempotency_key: self.optional(step.idempotency_key.as_ref())?,
            timeout: step.timeout,
            retry: step.retry.clone(),
            on_error: step.on_error.clone(),
            encoding: step.encoding,
            rules: step
                .rules
                .iter()
                .chain(connection_rules)
                .map(|rule| self.rule(rule))
                .collect::<Result<_, _>>()?,
            partial_data: step.partial_data,
            // Set by `compile_parts`, which knows the other steps.
            per_page: None,
        })
    }

    fn rule(&mut self, rule: &model::Rule) -> Result<RulePlan, PlanError> {
        let action = match &rule.action {
            model::RuleAction::Succeed => ActionPlan::Succeed,
            model::RuleAction::Empty => ActionPlan::Empty,
            model::RuleAction::Fail { message } => ActionPlan::Fail {
                message: message.as_ref().map(|m| self.text(m)).transpose()?,
            },
            model::RuleAction::Retry { after, message } => ActionPlan::Retry {
                after: match after {
                    None => None,
                    Some(model::Delay::Header(name)) => Some(DelayPlan::Header(name.clone())),
                    Some(model::Delay::Value(value)) => Some(DelayPlan::Value(self.value(value)?)),
                },
                message: message.as_ref().map(|m| self.text(m)).transpose()?,
            },
        };
        Ok(RulePlan {
            statuses: rule.statuses.clone(),
            when: self.optional(rule.when.as_ref())?,
            action,
        })
    }

    /// A string as written: a template when it has `{{ }}`, else literal text.
    fn text(&mut self, text: &Text) -> Result<Value, PlanError> {
        let kind = if text.is_template() {
            ExprKind::Template(text.clone())
        } else {
            ExprKind::String(text.clone())
        };
        self.value(&Expr {
            kind,
            span: text.span,
        })
    }

    fn body(&mut self, body: &model::Body) -> Result<BodyPlan, PlanError> {
        Ok(match body {
            model::Body::Mapping(mapping) => BodyPlan::Mapping(self.mapping(mapping)?),
            model::Body::Raw(raw) => BodyPlan::Raw(self.value(raw)?),
        })
    }

    fn page_style(&mut self, style: &model::PaginationStyle) -> Result<PageStyle, PlanError> {
        Ok(match style {
            model::PaginationStyle::Cursor(model::Cursor::Param { path, param }) => {
                PageStyle::Cursor {
                    path: self.value(path)?,
                    param: param.clone(),
                }
            }
            model::PaginationStyle::Cursor(model::Cursor::Body { path, field }) => {
                PageStyle::BodyCursor {
                    path: self.value(path)?,
                    field: field.clone(),
                }
            }
            model::PaginationStyle::Cursor(model::Cursor::LinkHeader) => PageStyle::LinkHeader,
            model::PaginationStyle::Cursor(model::Cursor::NextLink(path)) => {
                PageStyle::NextLink(self.value(path)?)
            }
            model::PaginationStyle::Offset {
                offset_param,
                limit_param,
                limit,
            } => PageStyle::Offset {
                offset_param: offset_param.clone(),
                limit_param: limit_param.clone(),
                limit: limit.get(),
            },
            model::PaginationStyle::Page { param, from, size } => PageStyle::Page {
                param: param.clone(),
                from: *from,
                size: size.as_ref().map(|(name, n)| (name.clone(), n.get())),
            },
        })
    }

    fn test(
        &mut self,
        test: &model::Test,
        index: &dyn Fn(&str) -> Result<usize, PlanError>,
    ) -> Result<TestPlan, PlanError> {
        Ok(TestPlan {
            name: test.name.clone(),
            event: self.value(&test.event)?,
            headers: self.entries(&test.headers)?,
            mocks: test
                .mocks
                .iter()
                .map(|mock| {
                    Ok(MockPlan {
                        connection: index(&mock.connection)?,
                        method: mock.method,
                        path: mock.path.clone(),
                        query: mock.query.clone(),
                        predicate: self.optional(mock.predicate.as_ref())?,
                        answers: mock
                            .answers
                            .all()
                            .iter()
                            .map(|answer| {
                                Ok(AnswerPlan {
                                    status: answer.status,
                                    body: self.optional(answer.body.as_ref())?,
                                    headers: self.entries(&answer.headers)?,
                                })
                            })
                            .collect::<Result<_, PlanError>>()?,
                        repeats: matches!(mock.answers, model::Answers::Always(_)),
                    })
                })
                .collect::<Result<_, PlanError>>()?,
            expectations: test
                .expectations
                .iter()
                .map(|expectation| {
                    Ok(match expectation {
                        model::Expectation::Request {
                            connection,
                            method,
                            path,
                            query,
                            predicate,
                            times,
                        } => ExpectationPlan::Request {
                            connection: index(connection)?,
                            method: *method,
                            path: path.clone(),
                            query: query.clone(),
                            predicate: self.optional(predicate.as_ref())?,
                            times: *times,
                        },
                        model::Expectation::StepOutcome { step, outcome } => {
                            ExpectationPlan::StepOutcome {
                                step: step.clone(),
                                outcome: *outcome,
                            }
                        }
                    })
                })
                .collect::<Result<_, PlanError>>()?,
        })
    }

    fn entries(&mut self, entries: &[ast::Entry]) -> Result<Vec<(String, Value)>, PlanError> {
        entries
            .iter()
            .map(|e| Ok((e.key.node.clone(), self.value(&e.value)?)))
            .collect()
    }

    fn mapping(
        &mut self,
        mapping: &[ast::Assignment],
    ) -> Result<Vec<(Vec<TargetSegment>, Value)>, PlanError> {
        mapping
            .iter()
            .map(|a| Ok((a.target.node.clone(), self.value(&a.value)?)))
            .collect()
    }

    fn optional(&mut self, expr: Option<&Expr>) -> Result<Option<Value>, PlanError> {
        expr.map(|e| self.value(e)).transpose()
    }

    /// A request path: a template's expressions are percent-encoded, so no value can add
    /// a segment, a query or another host.
    fn path(&mut self, text: &Text) -> Result<Value, PlanError> {
        if text.is_template() {
            Ok(Value::Template(value::compile_template(
                &mut self.env,
                &text.value,
                true,
            )?))
        } else {
            Ok(Value::Literal(serde_json::Value::String(
                text.value.clone(),
            )))
        }
    }

    fn value(&mut self, expr: &Expr) -> Result<Value, PlanError> {
        Ok(match &expr.kind {
            ExprKind::Null => Value::Literal(serde_json::Value::Null),
            ExprKind::Bool(b) => Value::Literal(serde_json::Value::Bool(*b)),
            ExprKind::Number(n) => Value::Literal(serde_json::Value::Number(n.clone())),
            // A duration as a value is its number of seconds.
            ExprKind::Duration(d) => Value::Literal(serde_json::json!(d.as_secs_f64())),
            ExprKind::String(text) => Value::Literal(serde_json::Value::String(text.value.clone())),
            ExprKind::Template(text) => {
                Value::Template(value::compile_template(&mut self.env, &text.value, false)?)
            }
            ExprKind::Path(path) => {
                let query = jsonpath_rust::parser::parse_json_path(&path.query).map_err(|e| {
                    PlanError::JsonPath {
                        query: path.query.clone(),
                        detail: e.to_string(),
                    }
                })?;
                let root = match path.root.as_ref().map(|r| r.node.as_str()) {
                    None => Root::Document,
                    Some("item") => Root::Item,
                    Some(step) => Root::Step(step.to_string()),
                };
                Value::Path(Path {
                    root,
                    singular: is_singular(&query),
                    query,
                })
            }
            ExprKind::Call { function, args } => self.call(&function.node, args)?,
            ExprKind::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.value(i))
                    .collect::<Result<_, _>>()?,
            ),
            ExprKind::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| Ok((k.node.clone(), self.value(v)?)))
                    .collect::<Result<_, PlanError>>()?,
            ),
            ExprKind::Not(inner) => Value::Not(Box::new(self.value(inner)?)),
            ExprKind::Binary { op, lhs, rhs } => Value::Binary(
                op.node,
                Box::new(self.value(lhs)?),
                Box::new(self.value(rhs)?),
            ),
        })
    }

    /// `secret`, `header`, `env` and `file`; the checker made sure of their arguments.
    fn call(&mut self, function: &str, args: &[Expr]) -> Result<Value, PlanError> {
        let name = match args.first().map(|a| &a.kind) {
            Some(ExprKind::String(text)) => text.value.clone(),
            _ => String::new(),
        };
        Ok(match function {
            "secret" => {
                self.secrets.insert(name.clone());
                let around = match args.get(1).map(|a| &a.kind) {
                    Some(ExprKind::String(text)) => Credential::composed(&name, &text.value),
                    _ => Some(Credential::plain(&name)),
                };
                Value::Secret(around.ok_or(PlanError::Unchecked(
                    "the text around a secret has no single `{}`",
                ))?)
            }
            // Header names are compared without case, as HTTP does.
            "header" => Value::Header(name.to_ascii_lowercase()),
            "env" => Value::Env {
                name,
                default: args
                    .get(1)
                    .map(|d| self.value(d))
                    .transpose()?
                    .map(Box::new),
            },
            _ => Value::Literal(self.file(&name)?),
        })
    }

    /// `file("path")`: JSON when it parses as JSON, else the text.
    fn file(&self, path: &str) -> Result<serde_json::Value, PlanError> {
        let full = self.base_dir.join(path);
        let text = std::fs::read_to_string(&full).map_err(|source| PlanError::File {
            path: full.display().to_string(),
            source,
        })?;
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }
}

/// How a webhook trigger is named in the logs, in `integ triggers` and in metrics.
pub fn webhook_name(method: Method, path: &str) -> String {
    format!("webhook {} {path}", method.as_str())
}

/// How the poll trigger at `index` is named (see `webhook_name`).
pub fn poll_name(index: usize) -> String {
    format!("poll {index}")
}

/// How the schedule trigger at `index` is named (see `webhook_name`).
pub fn schedule_name(index: usize) -> String {
    format!("schedule {index}")
}
