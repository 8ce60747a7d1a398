//! Triggers, resolved.

use crate::ast::{Entry, Expr, Method, Text};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Trigger {
    Webhook(Webhook),
    Poll(Poll),
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
    pub dedupe: Option<Expr>,
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
    pub dedupe: Option<Expr>,
    pub query: Vec<Entry>,
    pub headers: Vec<Entry>,
    pub when: Option<Expr>,
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
}

#[derive(Debug, Clone)]
pub struct Schedule {
    /// The cron expression as written, already known to parse.
    pub cron: String,
    /// UTC unless declared.
    pub timezone: chrono_tz::Tz,
    pub event: Option<Expr>,
}
