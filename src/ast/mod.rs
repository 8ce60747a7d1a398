//! The abstract syntax tree of a spec: faithful to the text, every node with its byte span.
//!
//! Blocks keep their settings as a list in source order (`Vec<Spanned<...Setting>>`), so
//! that the checker can report a setting written twice; the checker, not the builder,
//! decides what the settings mean together.

mod connection;
mod expr;
mod rule;
mod step;
mod test;
mod trigger;

pub use connection::{Auth, BreakerSetting, ConnectionSetting, Entry, Field, RateLimit};
pub use expr::{BinaryOp, Expr, ExprKind, PathExpr, Text};
pub use rule::{Delay, Rule, Rules, StatusMatch};
pub use step::{
    Assignment, Backoff, Body, Call, CallKind, OnError, Pagination, PolicySetting, Retry,
    RetryClause, RetryCondition, Step, StepSetting, TargetSegment,
};
pub use test::{Answer, ExpectRequest, Mock, Test, TestEvent, TestItem};
pub use trigger::{
    Cursor, CursorParam, Dedupe, Lookback, Missed, NextLink, Poll, PollSetting, Schedule,
    ScheduleSetting, Signature, SignatureOption, Since, SinceSetting, Trigger, TriggerKind,
    Webhook, WebhookSetting,
};

use crate::span::{Span, Spanned};

/// An identifier as written: a connection, step, environment or keyword-like value.
pub type Name = Spanned<String>;

/// A parsed `.integ` file.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    pub integration: Integration,
    /// Every `# comment` of the file in source order, kept for a future formatter.
    pub comments: Vec<Spanned<String>>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Integration {
    pub name: Name,
    pub description: Vec<Text>,
    pub owner: Vec<Text>,
    pub tags: Vec<Spanned<Vec<Text>>>,
    /// `concurrency N`: at most N events of this integration run at once.
    pub concurrency: Vec<Spanned<u32>>,
    pub defaults: Vec<Spanned<PolicySetting>>,
    pub connections: Vec<Connection>,
    pub triggers: Vec<Trigger>,
    pub steps: Vec<Step>,
    pub fallbacks: Vec<Step>,
    pub alerts: Vec<Alert>,
    pub environments: Vec<Environment>,
    pub tests: Vec<Test>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Connection {
    pub name: Name,
    pub settings: Vec<Spanned<ConnectionSetting>>,
    pub span: Span,
}

/// `alert when dead_letters > 10 in 1h notify slack secret("SLACK_WEBHOOK_URL")`
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub metric: Name,
    pub op: Spanned<BinaryOp>,
    pub threshold: Spanned<f64>,
    pub window: Spanned<std::time::Duration>,
    pub channel: Name,
    pub target: Expr,
    pub span: Span,
}

/// `environment staging { hubspot.base_url "http://localhost:4010" }`
#[derive(Clone, Debug, PartialEq)]
pub struct Environment {
    pub name: Name,
    pub overrides: Vec<Override>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Override {
    pub connection: Name,
    pub setting: Spanned<OverrideSetting>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum OverrideSetting {
    Known(ConnectionSetting),
    /// A field that connections do not have; kept so the checker can name it.
    Unknown {
        field: Name,
        value: Expr,
    },
}

/// An HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
    Head,
    Options,
}

impl Method {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "GET" => Self::Get,
            "POST" => Self::Post,
            "PUT" => Self::Put,
            "PATCH" => Self::Patch,
            "DELETE" => Self::Delete,
            "HEAD" => Self::Head,
            "OPTIONS" => Self::Options,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
            Self::Head => "HEAD",
            Self::Options => "OPTIONS",
        }
    }

    /// RFC 9110 idempotent methods: repeating them has the effect of sending them once.
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Self::Post | Self::Patch)
    }

    /// Whether requests of this method carry a body as a rule (RFC 9110 gives a GET, HEAD
    /// or OPTIONS body no meaning).
    pub fn sends_body(self) -> bool {
        !matches!(self, Self::Get | Self::Head | Self::Options)
    }
}

/// A setting inside a block, named by the keyword that introduces it.
pub trait Setting {
    fn keyword(&self) -> &'static str;
}
