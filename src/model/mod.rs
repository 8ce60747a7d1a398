//! The checked model: what a spec means, once every check passed. Settings are resolved
//! (defaults applied, each written at most once), closed sets are enums, and limits that
//! must be positive are `NonZero`. Values stay expressions (`ast::Expr`); the plan compiles
//! them.
//!
//! Built only from a spec without errors (`check::check_and_lower`), so no field carries
//! the possibility of a mistake the checker already reported.

pub mod alert;
mod defaults;
pub mod filters;
pub mod http;
pub use http::split_query;
mod mark;
mod policy;
mod rule;
mod step;
mod trigger;

pub use alert::{Alert, AlertChannel, AlertMetric, AlertStatus, format_duration};
pub use defaults::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Effective};
pub use mark::{Mark, MarkError, MarkType};
pub use policy::{Backoff, OnError, RetryCondition, RetryPolicy};
pub use rule::{Delay, PartialData, Rule, RuleAction, RuleOrigin, StatusMatch};
pub use step::{
    Answer, Answers, Body, Call, Expectation, ForEach, Mock, Outcome, Pagination, PaginationStyle,
    Step, Test, is_mutation,
};
pub use trigger::{
    Cursor, Dedupe, Missed, Overlap, Poll, Schedule, Signature, SignatureEncoding, SignaturePreset,
    Since, Trigger, Webhook,
};

use crate::ast::{Entry, Expr};
use std::num::NonZeroU32;
use std::time::Duration;

pub use crate::ast::Text;

#[derive(Debug, Clone)]
pub struct Integration {
    pub name: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub tags: Vec<String>,
    /// At most this many events of the integration run at once; unbounded when absent.
    pub concurrency: Option<NonZeroU32>,
    pub connections: Vec<Connection>,
    pub triggers: Vec<Trigger>,
    /// The steps in the order they run.
    pub steps: Vec<Step>,
    /// Steps that run only in place of a failed step that names them.
    pub fallbacks: Vec<Step>,
    pub alerts: Vec<Alert>,
    pub environments: Vec<Environment>,
    pub tests: Vec<Test>,
    /// The spec's `defaults { }`, already applied to each step: kept for the docs, which
    /// say where a step's policy comes from.
    pub defaults: Defaults,
}

/// A spec's `defaults { }`: what a step that does not say gets instead of the engine's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Defaults {
    pub retry: Option<RetryPolicy>,
    pub on_error: Option<OnError>,
    pub timeout: Option<Duration>,
}

impl Integration {
    pub fn connection(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Connection {
    pub name: String,
    pub base_url: Expr,
    pub auth: Auth,
    pub headers: Vec<Entry>,
    pub connect_timeout: Option<Duration>,
    pub timeout: Option<Duration>,
    pub rate_limit: Option<RateLimit>,
    pub encoding: Encoding,
    pub max_concurrency: Option<NonZeroU32>,
    pub circuit_breaker: Option<CircuitBreaker>,
    /// Tried for each of its steps' answers after the step's own rules.
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Bearer(Expr),
    Basic {
        username: Expr,
        password: Expr,
    },
    ApiKey {
        in_query: bool,
        name: String,
        value: Expr,
    },
    OAuth2(Box<OAuth2>),
}

#[derive(Debug, Clone)]
pub struct OAuth2 {
    pub token_url: Expr,
    pub client_id: Expr,
    pub client_secret: Expr,
    /// Present for the refresh-token grant; absent for client credentials.
    pub refresh_token: Option<Expr>,
    pub scopes: Option<Expr>,
    pub audience: Option<Expr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Form,
}

impl Encoding {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "json" => Some(Self::Json),
            "form" => Some(Self::Form),
            _ => None,
        }
    }
}

/// `count` requests per `per`, with bursts of up to `burst` (the count when absent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub count: NonZeroU32,
    pub per: Duration,
    pub burst: Option<NonZeroU32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CircuitBreaker {
    pub failures: Option<NonZeroU32>,
    pub ratio: Option<FailureRatio>,
    pub cooldown: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FailureRatio {
    pub percent: f64,
    pub window: Duration,
    pub min_calls: Option<u32>,
}

/// An environment: every connection of the integration with the environment's overrides
/// applied.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: String,
    pub connections: Vec<Connection>,
}
