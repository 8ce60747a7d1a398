//! `test` blocks: an event, mocked responses and expectations.

use super::{Entry, Expr, Method, Name, Text};
use crate::span::{Span, Spanned};

#[derive(Clone, Debug, PartialEq)]
pub struct Test {
    pub name: Text,
    pub items: Vec<Spanned<TestItem>>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum TestItem {
    Event(TestEvent),
    Mock(Mock),
    /// `expect step enroll skipped`
    ExpectStep {
        step: Name,
        outcome: Name,
    },
    ExpectRequest(ExpectRequest),
}

/// `event file("fixtures/release.json") headers { "X-GitHub-Event" = "release" }`: the
/// event, and the headers of the webhook request that brings it (for `header()`).
#[derive(Clone, Debug, PartialEq)]
pub struct TestEvent {
    pub value: Expr,
    pub headers: Vec<Entry>,
}

/// `mock hubspot GET "/contacts/123" 200 file("fixtures/contact.json")`, or a match with
/// answers given in turn: `mock api GET "/orders?page=2" where $.x == 1 { answer 429 ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Mock {
    pub connection: Name,
    pub method: Spanned<Method>,
    /// The path, with the query parameters the request must carry after a `?`.
    pub path: Text,
    /// `where CONDITION` on the request body.
    pub predicate: Option<Expr>,
    /// The answers, in turn; `span` is the block's (or the lone answer's).
    pub answers: Spanned<Vec<Answer>>,
}

/// One response of a mock: `answer 429 { error: "slow down" } headers { ... }`
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    pub status: Spanned<u16>,
    pub body: Option<Expr>,
    pub headers: Vec<Entry>,
}

/// `expect outreach POST "/prospects" where $.data.type == "prospect" times 1`
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectRequest {
    pub connection: Name,
    pub method: Spanned<Method>,
    pub path: Text,
    pub predicate: Option<Expr>,
    pub times: Option<Spanned<u32>>,
}
