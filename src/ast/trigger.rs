//! Triggers: what starts a run.

use super::{Body, Entry, Expr, Method, Name, Rules, Setting, Text};
use crate::span::{Span, Spanned};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TriggerKind {
    Webhook(Webhook),
    Poll(Poll),
    Schedule(Schedule),
    Manual,
}

/// `trigger webhook "/hooks/hubspot" { ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Webhook {
    pub path: Text,
    pub settings: Vec<Spanned<WebhookSetting>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum WebhookSetting {
    Method(Method),
    Signature(Signature),
    /// `signature none`: unsigned on purpose.
    Unsigned,
    Tolerance(Duration),
    /// A JSONPath splitting one request into several events.
    Each(Expr),
    When(Expr),
    Dedupe(Dedupe),
}

impl Setting for WebhookSetting {
    fn keyword(&self) -> &'static str {
        match self {
            Self::Method(_) => "method",
            Self::Signature(_) | Self::Unsigned => "signature",
            Self::Tolerance(_) => "tolerance",
            Self::Each(_) => "each",
            Self::When(_) => "when",
            Self::Dedupe(_) => "dedupe",
        }
    }
}

/// `signature stripe secret("STRIPE_WEBHOOK_SECRET") { header "..." encoding hex prefix "..." }`
#[derive(Clone, Debug, PartialEq)]
pub struct Signature {
    pub preset: Name,
    pub secret: Expr,
    pub options: Vec<Spanned<SignatureOption>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SignatureOption {
    Header(Text),
    Encoding(Name),
    Prefix(Text),
}

impl Setting for SignatureOption {
    fn keyword(&self) -> &'static str {
        match self {
            Self::Header(_) => "header",
            Self::Encoding(_) => "encoding",
            Self::Prefix(_) => "prefix",
        }
    }
}

/// `trigger poll hubspot GET "/crm/v3/objects/contacts" { every 5m ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Poll {
    pub connection: Name,
    pub method: Option<Spanned<Method>>,
    pub path: Text,
    pub settings: Vec<Spanned<PollSetting>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum PollSetting {
    Every(Duration),
    Items(Expr),
    Cursor(Cursor),
    Dedupe(Dedupe),
    Query(Vec<Entry>),
    Headers(Vec<Entry>),
    When(Expr),
    Since(Since),
    Body(Body),
    /// Tried in order before the connection's rules.
    Rules(Rules),
}

impl Setting for PollSetting {
    fn keyword(&self) -> &'static str {
        match self {
            Self::Every(_) => "every",
            Self::Items(_) => "items",
            Self::Cursor(_) => "cursor",
            Self::Dedupe(_) => "dedupe",
            Self::Query(_) => "query",
            Self::Headers(_) => "headers",
            Self::When(_) => "when",
            Self::Since(_) => "since",
            Self::Body(_) => "body",
            Self::Rules(_) => "rules",
        }
    }
}

/// `dedupe $.id for 30d`: a key per event, and how long this trigger's keys are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct Dedupe {
    pub key: Expr,
    /// `for DURATION`; `integ serve --retention` when absent.
    pub retention: Option<Spanned<Duration>>,
}

/// `since $.updated_at rfc3339 { start "2026-01-01T00:00:00Z" lookback 10m }`: an
/// incremental poll, which asks for what changed since the largest value of a field seen.
#[derive(Clone, Debug, PartialEq)]
pub struct Since {
    /// Where the value is in each item (`$` is an item).
    pub path: Expr,
    /// The type of the value, a name the checker validates (`rfc3339`, `epoch_s`, ...).
    pub kind: Name,
    pub settings: Vec<Spanned<SinceSetting>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SinceSetting {
    /// The mark of the first round, before any value was seen.
    Start(Expr),
    /// How far before the mark each round asks from.
    Lookback(Lookback),
    /// The time type `since` is written in, when the API asks in another than it answers.
    Send(Name),
}

impl Setting for SinceSetting {
    fn keyword(&self) -> &'static str {
        match self {
            Self::Start(_) => "start",
            Self::Lookback(_) => "lookback",
            Self::Send(_) => "send",
        }
    }
}

/// A look-back: a duration for a time, a count for an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookback {
    Duration(Duration),
    Count(u64),
}

/// Where the next request's position comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum Cursor {
    Param(CursorParam),
    /// `cursor PATH into body "FIELD"`: the position sent as a field of the request body.
    Body(CursorParam),
    NextLink(NextLink),
}

/// `$.paging.next.after into "after"`: a value of the response sent as a query parameter.
#[derive(Clone, Debug, PartialEq)]
pub struct CursorParam {
    pub path: Expr,
    pub param: Text,
}

/// The URL of the next page: in the RFC 8288 `Link` header, or in the response body.
#[derive(Clone, Debug, PartialEq)]
pub enum NextLink {
    Header,
    Body(Expr),
}

/// `trigger schedule "0 9 * * MON-FRI" { timezone "Europe/Paris" }`
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub cron: Text,
    pub settings: Vec<Spanned<ScheduleSetting>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleSetting {
    Timezone(Text),
    /// The event each scheduled run starts with.
    Event(Expr),
    /// `overlap skip`: what a tick does while the schedule's previous run is not over.
    Overlap(Name),
    /// `missed all within 7d max 10`: which occurrences missed while no process served
    /// the schedule are made up.
    Missed(Missed),
}

/// `missed POLICY [within DURATION] [max N]`, as written; the checker knows the policies.
#[derive(Clone, Debug, PartialEq)]
pub struct Missed {
    pub policy: Name,
    pub within: Option<Spanned<Duration>>,
    pub max: Option<Spanned<u32>>,
}

impl Setting for ScheduleSetting {
    fn keyword(&self) -> &'static str {
        match self {
            Self::Timezone(_) => "timezone",
            Self::Event(_) => "event",
            Self::Overlap(_) => "overlap",
            Self::Missed(_) => "missed",
        }
    }
}
