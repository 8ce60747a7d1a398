//! Text to AST: the pest grammar parses, the builder turns pairs into spanned AST nodes.

mod builder;
pub mod grammar;
mod syntax_error;
mod text;

pub use builder::parse_duration;

use crate::ast::Spec;
use crate::diagnostic::Diagnostic;
use grammar::{IntegParser, Rule};
use pest::Parser;
use pest::iterators::Pairs;
use std::num::NonZeroUsize;

/// Bounds the parser's work on hostile input: no spec needs this many rule calls per byte.
const CALLS_PER_BYTE: usize = 400;

/// The byte-order mark some editors write first. UTF-8 needs none: a spec may begin with
/// one, and it is read as if it did not (`integ fmt` writes the spec without it).
pub const BOM: &[u8] = "\u{feff}".as_bytes();

/// Parses one spec. On a syntax error the result holds that one diagnostic (pest stops at
/// the first); otherwise the AST and any diagnostics found while building it (a bad escape,
/// an overflowing duration) that the checker should report with its own.
pub fn parse(text: &str) -> (Option<Spec>, Vec<Diagnostic>) {
    match tree(text) {
        Some(pairs) => builder::build(pairs),
        None => (None, vec![syntax_error::diagnose(text)]),
    }
}

/// The parse tree of a spec, comments included, or `None` on a syntax error: what the
/// formatter lays out again.
pub fn tree(text: &str) -> Option<Pairs<'_, Rule>> {
    let limit = NonZeroUsize::new(text.len().saturating_mul(CALLS_PER_BYTE).max(100_000));
    pest::set_call_limit(limit);
    IntegParser::parse(Rule::file, text).ok()
}

/// The value of a string literal (`"..."` or `"""..."""`) as the AST holds it.
pub fn string_value(literal: &str) -> String {
    text::decode(literal, 0, &mut Vec::new()).value
}
