//! What every section needs to know of a step: its call in a few words, and every value it
//! holds (for the index of secrets and environment variables).

use crate::ast::Expr;
use crate::model::{Body, Call, PaginationStyle, Step};

/// `GET /path` or `graphql /path` (query or mutation).
pub fn call(step: &Step) -> String {
    match &step.call {
        Call::Http(method) => format!("{} {}", method.as_str(), step.path.value),
        Call::GraphQl { document, .. } => {
            let kind = if crate::model::is_mutation(document) {
                "mutation"
            } else {
                "query"
            };
            format!("GraphQL {kind} POST {}", step.path.value)
        }
    }
}

/// The values of a request body.
pub fn body_values(body: &Body) -> Box<dyn Iterator<Item = &Expr> + '_> {
    match body {
        Body::Mapping(assignments) => Box::new(assignments.iter().map(|a| &a.value)),
        Body::Raw(value) => Box::new(std::iter::once(value)),
    }
}

/// Every value a step holds, in the order written.
pub fn values(step: &Step) -> impl Iterator<Item = &Expr> {
    let variables = match &step.call {
        Call::GraphQl { variables, .. } => variables.iter().map(|a| &a.value).collect(),
        Call::Http(_) => Vec::new(),
    };
    let pagination = step.pagination.iter().flat_map(|p| {
        let cursor = match &p.style {
            PaginationStyle::Cursor(cursor) => cursor_value(cursor),
            _ => None,
        };
        [Some(&p.items), p.has_more.as_ref(), cursor]
    });
    step.query
        .iter()
        .chain(&step.headers)
        .map(|e| &e.value)
        .chain(step.body.iter().flat_map(body_values))
        .chain(variables)
        .chain(step.when.iter())
        .chain(step.for_each.iter().map(|f| &f.items))
        .chain(step.items.iter())
        .chain(step.idempotency_key.iter())
        .chain(pagination.flatten())
}

fn cursor_value(cursor: &crate::model::Cursor) -> Option<&Expr> {
    match cursor {
        crate::model::Cursor::Param { path, .. }
        | crate::model::Cursor::Body { path, .. }
        | crate::model::Cursor::NextLink(path) => Some(path),
        crate::model::Cursor::LinkHeader => None,
    }
}
