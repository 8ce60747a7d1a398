//! Steps and tests, resolved.

use super::{Cursor, Encoding, OnError, PartialData, RetryPolicy, Rule};
use crate::ast::{Assignment, Entry, Expr, Method, Text};
use std::num::NonZeroU32;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub connection: String,
    pub call: Call,
    pub path: Text,
    pub query: Vec<Entry>,
    pub headers: Vec<Entry>,
    pub body: Option<Body>,
    pub when: Option<Expr>,
    pub for_each: Option<ForEach>,
    pub pagination: Option<Pagination>,
    /// The records of a response, when the step declares them without paginating.
    pub items: Option<Expr>,
    pub cache: Option<Duration>,
    pub idempotency_key: Option<Expr>,
    /// The step's own timeout, else the integration default; the connection's applies
    /// when neither is set.
    pub timeout: Option<Duration>,
    /// The step's policy, else the integration default, else `RetryPolicy::default()`.
    pub retry: RetryPolicy,
    /// The step's action, else the integration default, else dead letter.
    pub on_error: OnError,
    /// Overrides the connection's encoding.
    pub encoding: Option<Encoding>,
    /// The step's own response rules, tried before its connection's.
    pub rules: Vec<Rule>,
    /// GraphQL: what an answer with both `data` and `errors` means.
    pub partial_data: PartialData,
    /// The paged step this one runs on, once per page as it arrives.
    pub per_page: Option<String>,
}

/// Whether a GraphQL document holds a mutation: any of its operations is one (a document
/// may open with a fragment, or hold a query before its mutation). Mutations are not
/// idempotent; queries are. A document that does not parse counts as a mutation, so that
/// a call that may write is never re-sent blindly (the API refuses it anyway).
pub fn is_mutation(document: &str) -> bool {
    use graphql_parser::query::{Definition, OperationDefinition};
    graphql_parser::parse_query::<&str>(document).map_or(true, |parsed| {
        parsed.definitions.iter().any(|definition| {
            matches!(
                definition,
                Definition::Operation(OperationDefinition::Mutation(_))
            )
        })
    })
}

#[cfg(test)]
mod tests {
    use super::is_mutation;

    #[test]
    fn a_mutation_anywhere_among_the_operations_is_one() {
        assert!(is_mutation("mutation { a }"));
        assert!(is_mutation("# c\nmutation M { a }"));
        assert!(is_mutation(
            "fragment F on Order { id }\nmutation M { a { ...F } }"
        ));
        assert!(is_mutation("query A { a }\nmutation B { b }"));
        assert!(is_mutation("query { a "), "a document that does not parse");
        assert!(!is_mutation("query { mutation }"));
        assert!(!is_mutation("{ orders { id } }"));
        assert!(!is_mutation("query Q($x: String = \"}mutation\") { a }"));
        assert!(!is_mutation(
            "query { a(s: \"\"\" } mutation \"\"\") { b } }"
        ));
        assert!(!is_mutation("# mutation\nquery { a }"));
        assert!(!is_mutation(
            "fragment F on Order { id }\nquery { orders { ...F } }"
        ));
    }
}

#[derive(Debug, Clone)]
pub enum Call {
    Http(Method),
    GraphQl {
        document: String,
        variables: Vec<Assignment>,
    },
}

#[derive(Debug, Clone)]
pub enum Body {
    Mapping(Vec<Assignment>),
    Raw(Expr),
}

#[derive(Debug, Clone)]
pub struct ForEach {
    pub items: Expr,
    pub concurrency: Option<NonZeroU32>,
}

#[derive(Debug, Clone)]
pub struct Pagination {
    pub style: PaginationStyle,
    /// The records of each page.
    pub items: Expr,
    pub max_pages: Option<NonZeroU32>,
    /// Read on each page; the next one is fetched only while it is true.
    pub has_more: Option<Expr>,
}

#[derive(Debug, Clone)]
pub enum PaginationStyle {
    Cursor(Cursor),
    Offset {
        offset_param: String,
        limit_param: String,
        limit: NonZeroU32,
    },
    Page {
        param: String,
        from: u32,
        size: Option<(String, NonZeroU32)>,
    },
}

#[derive(Debug, Clone)]
pub struct Test {
    pub name: String,
    pub event: Expr,
    /// The headers of the webhook request that brings the event.
    pub headers: Vec<Entry>,
    pub mocks: Vec<Mock>,
    pub expectations: Vec<Expectation>,
}

/// A mocked API answer: what requests it matches and what it answers them.
#[derive(Debug, Clone)]
pub struct Mock {
    pub connection: String,
    pub method: Method,
    /// The path without its query.
    pub path: String,
    /// Parameters the request's query must have (it may have more).
    pub query: Vec<(String, String)>,
    /// A condition on the request body (`$`).
    pub predicate: Option<Expr>,
    pub answers: Answers,
}

/// A mock's answers: one, given to every request it matches; or several, each given once in
/// turn, and a request after the last fails the test (a retry or a page more than the
/// test expected is a finding, not something to paper over by repeating).
#[derive(Debug, Clone)]
pub enum Answers {
    Always(Answer),
    InTurn(Vec<Answer>),
}

impl Answers {
    pub fn all(&self) -> &[Answer] {
        match self {
            Self::Always(answer) => std::slice::from_ref(answer),
            Self::InTurn(answers) => answers,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Option<Expr>,
    pub headers: Vec<Entry>,
}

#[derive(Debug, Clone)]
pub enum Expectation {
    Request {
        connection: String,
        method: Method,
        /// The path without its query.
        path: String,
        /// Parameters the request's query must have (it may have more).
        query: Vec<(String, String)>,
        predicate: Option<Expr>,
        times: Option<u32>,
    },
    StepOutcome {
        step: String,
        outcome: Outcome,
    },
}

/// How a step ended in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Skipped,
    Failed,
    DeadLettered,
    FellBack,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Skipped => "skipped",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::FellBack => "fell_back",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "succeeded" => Self::Succeeded,
            "skipped" => Self::Skipped,
            "failed" => Self::Failed,
            "dead_lettered" => Self::DeadLettered,
            "fell_back" => Self::FellBack,
            _ => return None,
        })
    }
}
