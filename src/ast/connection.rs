//! Connections: where an API lives and how to talk to it.

use super::{Expr, Name, Rules, Setting, Text};
use crate::span::Spanned;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
pub enum ConnectionSetting {
    BaseUrl(Expr),
    Auth(Auth),
    Headers(Vec<Entry>),
    ConnectTimeout(Duration),
    Timeout(Duration),
    RateLimit(RateLimit),
    /// `json` or `form`; checked by the checker so a typo gets a suggestion.
    Encoding(Name),
    MaxConcurrency(u32),
    CircuitBreaker(Vec<Spanned<BreakerSetting>>),
    /// The rules of every step on the connection, tried after the step's own.
    Rules(Rules),
}

impl Setting for ConnectionSetting {
    fn keyword(&self) -> &'static str {
        match self {
            Self::BaseUrl(_) => "base_url",
            Self::Auth(_) => "auth",
            Self::Headers(_) => "headers",
            Self::ConnectTimeout(_) => "connect_timeout",
            Self::Timeout(_) => "timeout",
            Self::RateLimit(_) => "rate_limit",
            Self::Encoding(_) => "encoding",
            Self::MaxConcurrency(_) => "max_concurrency",
            Self::CircuitBreaker(_) => "circuit_breaker",
            Self::Rules(_) => "rules",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Auth {
    None,
    Bearer(Expr),
    Basic {
        username: Expr,
        password: Expr,
    },
    ApiKey {
        in_query: bool,
        name: Text,
        value: Expr,
    },
    /// Client credentials, or refresh token when a `refresh_token` field is given.
    OAuth2(Vec<Field>),
}

/// `name value` inside a block whose field names the checker validates.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    pub name: Name,
    pub value: Expr,
}

/// `key = value` in `headers { }` and `query { }`.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: Spanned<String>,
    pub value: Expr,
}

/// `rate_limit 100 per 10s burst 20`
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    pub count: Spanned<u32>,
    pub per: Spanned<Duration>,
    pub burst: Option<Spanned<u32>>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum BreakerSetting {
    /// Opens after this many consecutive failures.
    Failures(u32),
    /// Opens when this share of calls fail within the window, once `min_calls` were made.
    Ratio {
        percent: Spanned<f64>,
        window: Spanned<Duration>,
        min_calls: Option<Spanned<u32>>,
    },
    Cooldown(Duration),
}

impl Setting for BreakerSetting {
    fn keyword(&self) -> &'static str {
        match self {
            Self::Failures(_) => "failures",
            Self::Ratio { .. } => "ratio",
            Self::Cooldown(_) => "cooldown",
        }
    }
}
