//! Response rules, resolved: what an answer means before the retry policy reads its status.

pub use crate::ast::StatusMatch;
use crate::ast::{Expr, Text};

/// One rule: the first whose statuses and condition match an answer decides it.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Never empty: a rule written without statuses looks at every `2xx`.
    pub statuses: Vec<StatusMatch>,
    /// Read over the answer: `$` is its body.
    pub when: Option<Expr>,
    pub action: RuleAction,
    pub origin: RuleOrigin,
}

/// Where a rule was written: its spans index the spec, or a preset's own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuleOrigin {
    Written,
    /// `rules slack`: `text` is what the preset's rules were parsed from.
    Preset {
        name: String,
        text: &'static str,
    },
}

#[derive(Debug, Clone)]
pub enum RuleAction {
    /// The answer is a success, whatever its status.
    Succeed,
    /// A success with no result: no items, no next page.
    Empty,
    /// A failure the retry policy does not retry.
    Fail { message: Option<Text> },
    /// A failure retried under the step's retry policy, after the wait the answer names
    /// (else the policy's backoff).
    Retry {
        after: Option<Delay>,
        message: Option<Text>,
    },
}

#[derive(Debug, Clone)]
pub enum Delay {
    /// Seconds or an HTTP date, as `Retry-After` is written.
    Header(String),
    /// A number of seconds read from the answer.
    Value(Expr),
}

/// What a GraphQL answer with both `data` and `errors` means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartialData {
    /// The step fails with the errors' messages (the default).
    #[default]
    Fail,
    /// The data is the result; the errors are logged and shown in the report.
    Accept,
}

impl PartialData {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "fail" => Some(Self::Fail),
            "accept" => Some(Self::Accept),
            _ => None,
        }
    }
}
