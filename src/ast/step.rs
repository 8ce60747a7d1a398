//! Steps and their error policies.

use super::{CursorParam, Entry, Expr, Method, Name, NextLink, Rules, Setting, Text};
use crate::span::{Span, Spanned};
use std::time::Duration;

/// `step contact = hubspot GET "/contacts/{{ event.id }}" { ... }`; fallbacks have the
/// same shape and run only when a step's `on_error fallback NAME` names them.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    pub name: Name,
    pub call: Call,
    pub settings: Vec<Spanned<StepSetting>>,
    pub span: Span,
}

impl Step {
    pub fn setting<T>(&self, pick: impl Fn(&StepSetting) -> Option<&T>) -> Option<&T> {
        self.settings.iter().find_map(|s| pick(&s.node))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub connection: Name,
    pub kind: Spanned<CallKind>,
    pub path: Text,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    Http(Method),
    /// A GraphQL POST of `{query, variables}` to the path.
    GraphQl,
}

#[derive(Clone, Debug, PartialEq)]
pub enum StepSetting {
    Query(Vec<Entry>),
    Headers(Vec<Entry>),
    Body(Body),
    Document(Text),
    Variables(Vec<Assignment>),
    When(Expr),
    ForEach {
        items: Expr,
        concurrency: Option<Spanned<u32>>,
    },
    Paginate(Pagination),
    Items(Expr),
    MaxPages(u32),
    /// Read on each page: the next page is fetched only while it is true.
    HasMore(Expr),
    Cache(Duration),
    /// `per_page contacts`: runs once per page of the paged step `contacts`, as it arrives.
    PerPage(Name),
    IdempotencyKey(Expr),
    Timeout(Duration),
    Retry(Retry),
    OnError(OnError),
    Encoding(Name),
    /// Tried in order before the connection's rules.
    Rules(Rules),
    /// GraphQL: `partial_data fail` (the default) or `partial_data accept`.
    PartialData(Name),
}

impl Setting for StepSetting {
    fn keyword(&self) -> &'static str {
        match self {
            Self::Query(_) => "query",
            Self::Headers(_) => "headers",
            Self::Body(_) => "body",
            Self::Document(_) => "document",
            Self::Variables(_) => "variables",
            Self::When(_) => "when",
            Self::ForEach { .. } => "for_each",
            Self::Paginate(_) => "paginate",
            Self::Items(_) => "items",
            Self::MaxPages(_) => "max_pages",
            Self::HasMore(_) => "has_more",
            Self::Cache(_) => "cache",
            Self::PerPage(_) => "per_page",
            Self::IdempotencyKey(_) => "idempotency_key",
            Self::Timeout(_) => "timeout",
            Self::Retry(_) => "retry",
            Self::OnError(_) => "on_error",
            Self::Encoding(_) => "encoding",
            Self::Rules(_) => "rules",
            Self::PartialData(_) => "partial_data",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    /// `body { data.type = "prospect" ... }`: each target path gets a value.
    Mapping(Vec<Assignment>),
    /// `body $.payload`: one value sent as it is.
    Raw(Expr),
}

/// `data.attributes.emails[0] = $contact.properties.email`
#[derive(Clone, Debug, PartialEq)]
pub struct Assignment {
    pub target: Spanned<Vec<TargetSegment>>,
    pub value: Expr,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetSegment {
    Key(String),
    Index(usize),
}

impl TargetSegment {
    /// The largest list index a target may write: `[n]` fills the list with nulls up to
    /// `n`, so a large index is a large allocation (`a[4000000000]` asked for 128 GB).
    /// Lint refuses more (E208) and the engine refuses it again rather than allocate.
    pub const MAX_INDEX: usize = 1000;
}

#[derive(Clone, Debug, PartialEq)]
pub enum Pagination {
    Cursor(CursorParam),
    NextLink(NextLink),
    /// `offset "offset" limit "limit" 100`
    Offset {
        offset_param: Text,
        limit_param: Text,
        limit: Spanned<u32>,
    },
    /// `page "page" from 1 size "per_page" 50`
    Page {
        param: Text,
        from: Option<Spanned<u32>>,
        size: Option<(Text, Spanned<u32>)>,
    },
}

/// Integration-wide defaults for steps.
#[derive(Clone, Debug, PartialEq)]
pub enum PolicySetting {
    Retry(Retry),
    OnError(OnError),
    Timeout(Duration),
}

impl Setting for PolicySetting {
    fn keyword(&self) -> &'static str {
        match self {
            Self::Retry(_) => "retry",
            Self::OnError(_) => "on_error",
            Self::Timeout(_) => "timeout",
        }
    }
}

/// `retry 5 exponential 1s..2m jitter on 429, 5xx, timeout max_elapsed 10m`
#[derive(Clone, Debug, PartialEq)]
pub struct Retry {
    /// Attempts in all, the first one included.
    pub attempts: Spanned<u32>,
    pub clauses: Vec<Spanned<RetryClause>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RetryClause {
    Backoff(Backoff),
    Delay {
        initial: Spanned<Duration>,
        max: Option<Spanned<Duration>>,
    },
    Jitter,
    On(Vec<Spanned<RetryCondition>>),
    MaxElapsed(Duration),
    /// `retry_after honor` (the default) or `retry_after ignore`.
    RetryAfter(Name),
}

impl Setting for RetryClause {
    fn keyword(&self) -> &'static str {
        match self {
            Self::Backoff(_) => "backoff",
            Self::Delay { .. } => "delay",
            Self::Jitter => "jitter",
            Self::On(_) => "on",
            Self::MaxElapsed(_) => "max_elapsed",
            Self::RetryAfter(_) => "retry_after",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backoff {
    Constant,
    Linear,
    Exponential,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryCondition {
    Status(u16),
    /// `5xx`: the digit of the class.
    Class(u8),
    /// `timeout`, `network`; the checker knows the names.
    Kind(String),
}

#[derive(Clone, Debug, PartialEq)]
pub enum OnError {
    /// `dead_letter`, `skip`, `fail`; the checker knows the names.
    Action(Name),
    Fallback(Name),
}
