//! Values compiled once, evaluated per event.
//!
//! The rules a user can predict (docs/language.md, "Mappings"):
//! - a JSONPath that can only select one node (names and indexes only) gives that value, or
//!   *missing* when there is none; any other JSONPath (wildcards, filters, slices, `..`)
//!   gives the list of what it selects, possibly empty;
//! - a template that is a single `{{ expression }}` gives the expression's typed value
//!   (numbers stay numbers), or missing when it reads something missing; a template with
//!   text around its expressions renders a string, and printing something missing or null
//!   there is an error, because a string with a hole in it (`/contacts/`) is never meant;
//! - `a ?? b` is `b` when `a` is missing or null;
//! - in a body mapping or an object, a missing value leaves its field out; in a list it is
//!   left out too (`[$contact.email]` is `[]` for a contact without email, never `[null]`);
//! - in templates, missing and null are false, `default` replaces both, lookups through
//!   them give missing; only printing one fails (`jinja.rs`).

use super::PlanError;
use crate::ast::BinaryOp;
use crate::secrets::{Credential, Secrets};
use jsonpath_rust::parser::model::{JpQuery, Segment, Selector};
use minijinja::{Environment, ErrorKind};
use serde_json::{Map, Value as Json};
use std::sync::Arc;

/// A compiled value.
#[derive(Debug, Clone)]
pub enum Value {
    Literal(Json),
    Path(Path),
    Template(Template),
    /// `secret("NAME")`, or with literal text around it: one credential, never a template.
    Secret(Credential),
    /// `header("X-GitHub-Event")`: a header of the webhook request, by its lowercase name.
    Header(String),
    Env {
        name: String,
        default: Option<Box<Value>>,
    },
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
    Not(Box<Value>),
    Binary(BinaryOp, Box<Value>, Box<Value>),
}

impl Value {
    /// Whether evaluating this reads a request header (`header()`), anywhere inside it.
    pub fn reads_header(&self) -> bool {
        match self {
            Value::Header(_) => true,
            Value::Env { default, .. } => default.as_deref().is_some_and(Value::reads_header),
            Value::Array(items) => items.iter().any(Value::reads_header),
            Value::Object(fields) => fields.iter().any(|(_, value)| value.reads_header()),
            Value::Not(inner) => inner.reads_header(),
            Value::Binary(_, left, right) => left.reads_header() || right.reads_header(),
            Value::Literal(_) | Value::Path(_) | Value::Template(_) | Value::Secret(_) => false,
        }
    }
}

/// A compiled JSONPath and the document it reads.
#[derive(Debug, Clone)]
pub struct Path {
    pub root: Root,
    pub query: JpQuery,
    /// Selects at most one node, so it gives a value rather than a list.
    pub singular: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Root {
    /// `$`: the event, or the document the setting is about (a response, a request body).
    Document,
    Step(String),
    Item,
}

/// A template, compiled into the plan's environment under `name`.
#[derive(Debug, Clone)]
pub struct Template {
    pub name: String,
    pub source: String,
    /// A single `{{ expression }}`: evaluates to the expression's typed value.
    pub typed: bool,
}

/// What an expression reads: the document `$`, the results of the steps that ran, the
/// current `for_each` element, and the secrets.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub document: &'a Json,
    pub event: &'a Json,
    pub steps: &'a Map<String, Json>,
    pub item: Option<&'a Json>,
    /// An incremental poll's mark, in its request: `since` in templates.
    pub since: Option<&'a Json>,
    pub secrets: &'a Secrets,
    /// In a response rule: the answer whose body is `document`; templates read it as
    /// `body`, `status` and `headers`.
    pub answer: Option<Answer<'a>>,
    /// What `now()` gives: one instant for all of a run's templates.
    pub clock: super::Clock,
    /// The headers of the webhook request, where a trigger reads them (`header()`).
    pub headers: Option<&'a super::RequestHeaders>,
}

/// What a response rule reads of an answer besides its body.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub status: u16,
    pub headers: &'a reqwest::header::HeaderMap,
}

static NOTHING: Json = Json::Null;
static NO_STEPS: std::sync::LazyLock<Map<String, Json>> = std::sync::LazyLock::new(Map::new);

impl<'a> Scope<'a> {
    /// The scope of values fixed before any event: connections, schedules, test data.
    pub fn fixed(secrets: &'a Secrets) -> Self {
        Self::of(&NOTHING, secrets)
    }

    /// The scope of a step: the event, the results of the steps run before it, and the
    /// run's clock.
    pub fn of_step(
        event: &'a Json,
        steps: &'a Map<String, Json>,
        secrets: &'a Secrets,
        clock: super::Clock,
    ) -> Self {
        Scope {
            document: event,
            event,
            steps,
            item: None,
            since: None,
            secrets,
            answer: None,
            clock,
            headers: None,
        }
    }

    /// The scope of one document read alone: a request body, an answer, an item.
    pub fn of(document: &'a Json, secrets: &'a Secrets) -> Self {
        Scope {
            document,
            event: document,
            steps: &NO_STEPS,
            item: None,
            since: None,
            secrets,
            answer: None,
            clock: super::Clock::now(),
            headers: None,
        }
    }
}

/// Why a value could not be computed for one event.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("secret `{0}` is not set (give it in the environment or with --secrets)")]
    MissingSecret(String),
    #[error("environment variable `{0}` is not set and has no default")]
    MissingEnv(String),
    #[error("template `{template}` {detail}")]
    MissingInTemplate { template: String, detail: String },
    #[error("template `{template}` failed: {detail}")]
    Template { template: String, detail: String },
}

/// Whether a JSONPath can select at most one node: only names and indexes, one per segment.
pub fn is_singular(query: &JpQuery) -> bool {
    query.segments.iter().all(|segment| {
        matches!(
            segment,
            Segment::Selector(Selector::Name(_) | Selector::Index(_))
        )
    })
}

/// Compiles a template into `env` under a fresh name. Path templates percent-encode what
/// their expressions produce (see `engine::url`), so their names end in `.path`.
pub fn compile_template(
    env: &mut Environment<'static>,
    source: &str,
    path: bool,
) -> Result<Template, PlanError> {
    let name = format!(
        "t{}{}",
        env.templates().count(),
        if path { ".path" } else { "" }
    );
    // `{{ x }}}}` looks like one expression but is `{{ x }}` then text: its typed form does
    // not compile, and the template is text, as lint read it.
    let typed = (!path)
        .then(|| typed_body(source.trim()))
        .flatten()
        .filter(|body| env.add_template_owned(name.clone(), body.clone()).is_ok());
    if typed.is_none() {
        env.add_template_owned(name.clone(), source.to_string())
            .map_err(|e| PlanError::Template {
                template: source.to_string(),
                detail: e.to_string(),
            })?;
    }
    Ok(Template {
        name,
        source: source.to_string(),
        typed: typed.is_some(),
    })
}

/// The template that gives the typed value of a single `{{ expression }}`.
fn typed_body(trimmed: &str) -> Option<String> {
    if !is_single_expression(trimmed) {
        return None;
    }
    // `{{- x -}}`: the whitespace controls belong to the delimiters, not the expression.
    let controls: &[char] = &['-', '+', '~'];
    let inner = trimmed[2..trimmed.len() - 2]
        .trim_start_matches(controls)
        .trim_end_matches(controls);
    Some(format!("{{{{ ({inner}) | {} }}}}", super::jinja::TYPED))
}

/// `{{ expr }}` and nothing else: no second expression, statement or comment.
fn is_single_expression(text: &str) -> bool {
    text.starts_with("{{")
        && text.ends_with("}}")
        && text[2..text.len() - 2].find("{{").is_none()
        && !text.contains("{%")
        && !text.contains("{#")
}

impl Value {
    /// The value for one event; `Ok(None)` is *missing*.
    pub fn eval(
        &self,
        env: &Arc<Environment<'static>>,
        scope: &Scope<'_>,
    ) -> Result<Option<Json>, EvalError> {
        Ok(match self {
            Value::Literal(value) => Some(value.clone()),
            Value::Path(path) => path.eval(scope),
            Value::Template(template) => template.eval(env, scope)?,
            Value::Secret(credential) => match scope.secrets.get(&credential.name) {
                Some(secret) => Some(Json::String(credential.fill(secret))),
                None => return Err(EvalError::MissingSecret(credential.name.clone())),
            },
            Value::Header(name) => scope
                .headers
                .and_then(|headers| headers.get(name))
                .map(|value| Json::String(value.to_string())),
            Value::Env { name, default } => match std::env::var(name) {
                Ok(value) => Some(Json::String(value)),
                Err(_) => match default {
                    Some(default) => default.eval(env, scope)?,
                    None => return Err(EvalError::MissingEnv(name.clone())),
                },
            },
            Value::Array(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    values.extend(item.eval(env, scope)?);
                }
                Some(Json::Array(values))
            }
            Value::Object(fields) => {
                let mut object = Map::new();
                for (key, value) in fields {
                    if let Some(value) = value.eval(env, scope)? {
                        object.insert(key.clone(), value);
                    }
                }
                Some(Json::Object(object))
            }
            Value::Not(inner) => Some(Json::Bool(!truthy(inner.eval(env, scope)?.as_ref()))),
            Value::Binary(op, lhs, rhs) => binary(*op, lhs, rhs, env, scope)?,
        })
    }

    /// The value as a condition: missing, null, false, 0, "" and empty lists and objects
    /// are false.
    pub fn test(
        &self,
        env: &Arc<Environment<'static>>,
        scope: &Scope<'_>,
    ) -> Result<bool, EvalError> {
        Ok(truthy(self.eval(env, scope)?.as_ref()))
    }
}

impl Path {
    fn eval(&self, scope: &Scope<'_>) -> Option<Json> {
        let document = match &self.root {
            Root::Document => scope.document,
            Root::Item => scope.item?,
            Root::Step(name) => scope.steps.get(name)?,
        };
        let found =
            jsonpath_rust::query::js_path_process(&self.query, document).unwrap_or_default();
        if self.singular {
            found.into_iter().next().map(|r| r.val().clone())
        } else {
            Some(Json::Array(
                found.into_iter().map(|r| r.val().clone()).collect(),
            ))
        }
    }
}

impl Template {
    fn eval(
        &self,
        env: &Arc<Environment<'static>>,
        scope: &Scope<'_>,
    ) -> Result<Option<Json>, EvalError> {
        let rendered = render(env, &self.name, scope);
        match (rendered, self.typed) {
            (Ok(text), false) => Ok(Some(Json::String(text))),
            (Ok(json), true) => {
                serde_json::from_str(&json)
                    .map(Some)
                    .map_err(|e| EvalError::Template {
                        template: self.source.clone(),
                        detail: e.to_string(),
                    })
            }
            (Err(e), true) if e.kind() == ErrorKind::UndefinedError => Ok(None),
            (Err(e), false) if e.kind() == ErrorKind::UndefinedError => {
                let printed = e.range().and_then(|range| self.source.get(range));
                let detail = e.detail().unwrap_or("prints a missing value");
                let hint = "(where it may be missing, give it one with `| default(...)`)";
                Err(EvalError::MissingInTemplate {
                    template: self.source.clone(),
                    detail: match printed {
                        Some(expression) => format!("{detail}: `{expression}` {hint}"),
                        None => format!("{detail} {hint}"),
                    },
                })
            }
            // The kind and detail, without minijinja's internal template name (`t3.path`).
            (Err(e), _) => Err(EvalError::Template {
                template: self.source.clone(),
                detail: match e.detail() {
                    Some(detail) => format!("{}: {detail}", e.kind()),
                    None => e.kind().to_string(),
                },
            }),
        }
    }
}

/// Renders template `name` with `event`, the step results, `item` and `since` as its
/// variables.
pub fn render(
    env: &Environment<'static>,
    name: &str,
    scope: &Scope<'_>,
) -> Result<String, minijinja::Error> {
    let mut context: std::collections::BTreeMap<&str, minijinja::Value> = scope
        .steps
        .iter()
        .map(|(step, result)| (step.as_str(), serde_value(result)))
        .collect();
    context.insert("event", serde_value(scope.event));
    context.insert(super::time::CLOCK, scope.clock.seconds().into());
    if let Some(item) = scope.item {
        context.insert("item", serde_value(item));
    }
    if let Some(answer) = scope.answer {
        context.insert("body", serde_value(scope.document));
        context.insert("status", minijinja::Value::from(answer.status));
        let headers: std::collections::BTreeMap<&str, &str> = answer
            .headers
            .iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
            .collect();
        context.insert(
            "headers",
            minijinja::Value::from(minijinja::value::Serde(&headers)),
        );
    }
    if let Some(since) = scope.since {
        context.insert("since", serde_value(since));
    }
    env.get_template(name)?.render(context)
}

fn serde_value(json: &Json) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(json))
}

fn binary(
    op: BinaryOp,
    lhs: &Value,
    rhs: &Value,
    env: &Arc<Environment<'static>>,
    scope: &Scope<'_>,
) -> Result<Option<Json>, EvalError> {
    let left = lhs.eval(env, scope)?;
    Ok(Some(match op {
        BinaryOp::Fallback => match left {
            None | Some(Json::Null) => return rhs.eval(env, scope),
            present => return Ok(present),
        },
        BinaryOp::And => Json::Bool(truthy(left.as_ref()) && rhs.test(env, scope)?),
        BinaryOp::Or => Json::Bool(truthy(left.as_ref()) || rhs.test(env, scope)?),
        compare => {
            let right = rhs.eval(env, scope)?;
            let (left, right) = (left.unwrap_or(Json::Null), right.unwrap_or(Json::Null));
            Json::Bool(match compare {
                BinaryOp::Eq => equal(&left, &right),
                BinaryOp::Ne => !equal(&left, &right),
                order => match ordering(&left, &right) {
                    Some(ordering) => match order {
                        BinaryOp::Lt => ordering.is_lt(),
                        BinaryOp::Le => ordering.is_le(),
                        BinaryOp::Gt => ordering.is_gt(),
                        _ => ordering.is_ge(),
                    },
                    None => false,
                },
            })
        }
    }))
}

/// JSON equality, with numbers compared by value (`1 == 1.0`).
fn equal(left: &Json, right: &Json) -> bool {
    match (left, right) {
        (Json::Number(a), Json::Number(b)) => a.as_f64() == b.as_f64(),
        _ => left == right,
    }
}

/// Numbers order by value and strings lexically; anything else does not order.
fn ordering(left: &Json, right: &Json) -> Option<std::cmp::Ordering> {
    match (left, right) {
        (Json::Number(a), Json::Number(b)) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        (Json::String(a), Json::String(b)) => Some(a.cmp(b)),
        _ => None,
    }
}

pub fn truthy(value: Option<&Json>) -> bool {
    match value {
        None | Some(Json::Null) => false,
        Some(Json::Bool(b)) => *b,
        Some(Json::Number(n)) => n.as_f64().is_some_and(|n| n != 0.0),
        Some(Json::String(s)) => !s.is_empty(),
        Some(Json::Array(items)) => !items.is_empty(),
        Some(Json::Object(fields)) => !fields.is_empty(),
    }
}

/// A value as text in a URL, header or form: strings as they are, other JSON as JSON.
pub fn as_text(value: Option<&Json>) -> String {
    match value {
        None | Some(Json::Null) => String::new(),
        Some(Json::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}
