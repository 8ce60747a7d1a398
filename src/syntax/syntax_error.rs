//! Turns pest's errors into our diagnostics: user words instead of rule names, labelled at
//! the offending token.

use super::grammar::{IntegParser, Rule};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::Span;
use pest::Parser;
use pest::error::InputLocation;

/// Parses `text` again with pest's detailed error tracking (slower, so only on failure) and
/// describes the first error.
pub fn diagnose(text: &str) -> Diagnostic {
    pest::set_error_detail(true);
    let result = IntegParser::parse(Rule::file, text);
    pest::set_error_detail(false);
    let Err(error) = result else {
        let kind = DiagnosticKind::InternalError("the parser failed only once".into());
        return Diagnostic::new(kind, Span::new(0, 0));
    };
    let offset = match error.location {
        InputLocation::Pos(pos) => pos,
        InputLocation::Span((start, _)) => start,
    };
    let mut expected: Vec<String> = Vec::new();
    if let pest::error::ErrorVariant::ParsingError { positives, .. } = &error.variant {
        expected.extend(
            positives
                .iter()
                .filter_map(|rule| describe(*rule))
                .map(String::from),
        );
    }
    if let Some(attempts) = error.parse_attempts() {
        let tokens = attempts.expected_tokens();
        expected.extend(tokens.iter().filter_map(token_words));
    }
    if is_call_limit(&error) {
        expected = vec!["a spec that nests less deeply".into()];
    }
    let span = token_at(text, offset);
    let non_ascii = text
        .get(span.start..)
        .and_then(|t| t.chars().next())
        .is_some_and(|c| !c.is_ascii());
    let kind = DiagnosticKind::Syntax {
        found: found(text, span),
        expected: join_alternatives(expected),
        hint: non_ascii
            .then_some("names are ASCII letters, digits and `_`; other text goes in quotes"),
    };
    Diagnostic::new(kind, span)
}

fn is_call_limit(error: &pest::error::Error<Rule>) -> bool {
    matches!(&error.variant, pest::error::ErrorVariant::CustomError { message } if message.contains("limit"))
}

/// What a user calls the thing a rule parses; `None` for rules that are keywords in
/// another's clothing (their literal appears among the expected tokens anyway).
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::name | Rule::ident => "a name",
        Rule::key | Rule::target | Rule::target_key => "a name or a string",
        Rule::string | Rule::quoted_string | Rule::triple_string => "a string",
        Rule::integer => "a whole number",
        Rule::number => "a number",
        Rule::percent => "a percentage like `50%`",
        Rule::duration => "a duration like `30s`",
        Rule::method => "an HTTP method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`)",
        Rule::expr
        | Rule::jsonpath
        | Rule::function
        | Rule::array
        | Rule::object
        | Rule::boolean
        | Rule::null => "a value",
        Rule::compare_op | Rule::op_or | Rule::op_and | Rule::op_fallback => "an operator",
        Rule::backoff => "a backoff (`constant`, `linear`, `exponential`)",
        Rule::retry_condition => "a retry condition (`429`, `5xx`, `timeout`)",
        Rule::EOI => "the end of the file",
        Rule::webhook => "`webhook`",
        Rule::poll => "`poll`",
        Rule::schedule => "`schedule`",
        Rule::manual | Rule::word_manual => "`manual`",
        Rule::graphql => "`graphql`",
        Rule::word_jitter => "`jitter`",
        Rule::word_on => "`on`",
        Rule::mapping => "a block of `field = value` lines",
        _ => return None,
    })
}

/// A literal the parser would have accepted, as a user would want it listed: keywords and
/// punctuation. Whitespace, comment starts and character ranges (the inside of a name or a
/// number, which `describe` covers) say nothing useful.
fn token_words(token: impl std::fmt::Display) -> Option<String> {
    let token = token.to_string();
    let is_range = token.len() == 4 && token.get(1..3) == Some("..");
    let noise = token.trim().is_empty() || token == "#" || token == "_" || is_range;
    (!noise && token != BUILT_IN_RULE).then(|| format!("`{token}`"))
}

/// How pest displays a token that stands for one of its built-in rules (`ANY`, `ASCII_DIGIT`).
const BUILT_IN_RULE: &str = "BUILTIN_RULE";

/// The span of the word or character at `offset`, for the label.
fn token_at(text: &str, offset: usize) -> Span {
    let offset = offset.min(text.len());
    let rest = &text[offset..];
    let word = rest
        .char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(rest.len(), |(i, _)| i);
    let len = if word > 0 {
        word
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    };
    Span::new(offset, offset + len)
}

fn found(text: &str, span: Span) -> String {
    match text.get(span.start..span.end) {
        None | Some("") => "end of file".into(),
        Some("\n") => "end of line".into(),
        Some(token) if token.trim().is_empty() => "whitespace".into(),
        Some(token) => format!("`{token}`"),
    }
}

fn join_alternatives(mut items: Vec<String>) -> String {
    let mut seen = std::collections::HashSet::new();
    items.retain(|item| seen.insert(item.clone()));
    match items.as_slice() {
        [] => "something else".into(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}
