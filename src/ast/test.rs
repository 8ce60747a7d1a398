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
    Event(Expr),
    Mock(Mock),
    /// `expect step enroll skipped`
    ExpectStep {
        step: Name,
        outcome: Name,
    },
    ExpectRequest(ExpectRequest),
}

/// `mock hubspot GET "/contacts/123" 200 file("fixtures/contact.json")`
#[derive(Clone, Debug, PartialEq)]
pub struct Mock {
    pub connection: Name,
    pub method: Spanned<Method>,
    pub path: Text,
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
