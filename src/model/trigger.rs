//! Triggers, resolved.

use super::{Body, MarkType};
use crate::ast::{Entry, Expr, Lookback, Method, Text};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Trigger {
    /// Boxed, as a poll is: each carries many more settings than a schedule.
    Webhook(Box<Webhook>),
    Poll(Box<Poll>),
    Schedule(Schedule),
    Manual,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub path: String,
    /// `POST` unless declared.
    pub method: Method,
    pub signature: Option<Signature>,
    pub tolerance: Option<Duration>,
    pub each: Option<Expr>,
    pub when: Option<Expr>,
    pub dedupe: Option<Dedupe>,
}

/// A trigger's dedupe key, and how long its keys are kept.
#[derive(Debug, Clone)]
pub struct Dedupe {
    pub key: Expr,
    /// `integ serve --retention` when absent.
    pub retention: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct Signature {
    pub preset: SignaturePreset,
    pub secret: Expr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignaturePreset {
    /// A generic HMAC-SHA256 of the body in `header`, `prefix` stripped first.
    HmacSha256 {
        header: String,
        encoding: SignatureEncoding,
        prefix: Option<String>,
    },
    Stripe,
    Github,
    HubspotV3,
    Shopify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureEncoding {
    Hex,
    Base64,
}

#[derive(Debug, Clone)]
pub struct Poll {
    pub connection: String,
    /// `GET` unless declared.
    pub method: Method,
    pub path: Text,
    pub every: Duration,
    pub items: Option<Expr>,
    pub cursor: Option<Cursor>,
    pub dedupe: Option<Dedupe>,
    pub query: Vec<Entry>,
    pub headers: Vec<Entry>,
    /// The request body; only with a method that sends one.
    pub body: Option<Body>,
    pub when: Option<Expr>,
    /// An incremental poll's high-water mark (boxed: most polls have none).
    pub since: Option<Box<Since>>,
    /// The poll's own response rules, tried before its connection's.
    pub rules: Vec<super::Rule>,
}

/// An incremental poll: each round asks for what changed since the largest value of a
/// field seen in the rounds before (less a look-back), given to the request as `since`.
#[derive(Debug, Clone)]
pub struct Since {
    /// The field of each item (`$` is an item).
    pub path: Expr,
    pub kind: MarkType,
    /// How `since` is written in the request: `kind` unless declared (a time type then).
    pub send: MarkType,
    /// The mark of the first round; without one, `since` is missing in the first round.
    pub start: Option<Expr>,
    /// Of the kind `kind` takes (the checker made sure).
    pub lookback: Option<Lookback>,
}

/// Where the next request's position comes from.
#[derive(Debug, Clone)]
pub enum Cursor {
    /// A value of the response, sent as this query parameter.
    Param { path: Expr, param: String },
    /// The next page's URL in the `Link` header.
    LinkHeader,
    /// The next page's URL in the response body.
    NextLink(Expr),
    /// A value of the response, sent as this top-level field of the request body.
    Body { path: Expr, field: String },
}

#[derive(Debug, Clone)]
pub struct Schedule {
    /// The cron expression as written, already known to parse.
    pub cron: String,
    /// UTC unless declared.
    pub timezone: chrono_tz::Tz,
    pub event: Option<Expr>,
    pub overlap: Overlap,
    pub missed: Missed,
}

/// What a schedule's tick does while the schedule's previous run is pending or running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overlap {
    /// The tick is skipped, and recorded in the run history.
    #[default]
    Skip,
    /// The tick waits for the run to end, unless another occurrence waits already (then it
    /// is skipped): one waiting run at most, so a run slower than its interval never
    /// builds a queue that only grows.
    Queue,
    /// The tick starts its run at once, beside the one in progress.
    Allow,
}

impl Overlap {
    /// The policy a spec names, as `overlap NAME` writes it.
    pub fn named(name: &str) -> Option<Self> {
        match name {
            "skip" => Some(Self::Skip),
            "queue" => Some(Self::Queue),
            "allow" => Some(Self::Allow),
            _ => None,
        }
    }
}

/// Which occurrences that fell while no process served the schedule (or while it was
/// stalled) are made up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Missed {
    /// None: the next occurrence runs as usual.
    #[default]
    Skip,
    /// The latest missed occurrence runs once.
    Latest,
    /// Each missed occurrence within `within` of now, the newest `max` of them.
    All {
        within: Duration,
        max: std::num::NonZeroU32,
    },
}

impl Missed {
    /// The most occurrences `missed all` may make up at once.
    pub const MOST: u32 = 100;
    /// How many `missed all` makes up when it does not say.
    pub const DEFAULT_MAX: u32 = 10;
}
