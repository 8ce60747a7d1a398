//! Response rules: what an answer means, before the retry policy reads its status.

use super::{Expr, Name, Text};
use crate::span::{Span, Spanned};

/// `rules slack { 404 empty }`: the rules written out, then a named preset's, if any.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// `slack`, `shopify`; the checker knows the names.
    pub preset: Option<Name>,
    pub list: Vec<Rule>,
}

/// `404 empty`, `when $.ok == false fail "Slack: {{ body.error }}"`,
/// `429, 5xx when $.code == "busy" retry after header "Retry-After"`.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// The statuses the rule looks at; none written means every `2xx`.
    pub statuses: Vec<Spanned<StatusMatch>>,
    pub when: Option<Expr>,
    /// `succeed`, `empty`, `fail`, `retry`; the checker knows the names.
    pub action: Name,
    /// `after header "Retry-After"` or `after VALUE` (seconds); only for `retry`.
    pub after: Option<Spanned<Delay>>,
    /// The failure's message; only for `fail` and `retry`.
    pub message: Option<Text>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusMatch {
    Code(u16),
    /// `4xx`: the digit of the class.
    Class(u8),
}

impl StatusMatch {
    pub fn matches(self, status: u16) -> bool {
        match self {
            Self::Code(code) => code == status,
            Self::Class(class) => status / 100 == u16::from(class),
        }
    }

    /// Whether every status this one matches, `other` matches too.
    pub fn within(self, other: StatusMatch) -> bool {
        match (self, other) {
            (Self::Code(code), other) => other.matches(code),
            (Self::Class(a), Self::Class(b)) => a == b,
            (Self::Class(_), Self::Code(_)) => false,
        }
    }
}

/// Where a `retry` rule reads its wait.
#[derive(Clone, Debug, PartialEq)]
pub enum Delay {
    /// A header in seconds or as an HTTP date, as `Retry-After` is written.
    Header(Text),
    /// A value read from the answer: a number of seconds.
    Value(Expr),
}
