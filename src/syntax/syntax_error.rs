//! Turns pest's errors into our diagnostics: user words instead of rule names, labelled at
//! the offending token, with a hint where the likely mistake is recognisable.

use super::grammar::{IntegParser, Rule};
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::Span;
use pest::Parser;
use pest::error::{ErrorVariant, InputLocation};

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
    let expected = if is_call_limit(&error) {
        vec!["a spec that nests less deeply".to_string()]
    } else {
        expected(&error)
    };
    let span = token_at(text, offset);
    let token = text.get(span.start..span.end).unwrap_or("");
    if let Some(diagnostic) = misplaced(text, span, &expected) {
        return diagnostic;
    }
    let kind = match unterminated_string(text, span) {
        Some(hint) => DiagnosticKind::Syntax {
            found: "end of line inside a string".into(),
            expected: "a closing `\"`".into(),
            hint: Some(hint),
        },
        None => DiagnosticKind::Syntax {
            found: found(text, span),
            hint: hint(token, &expected),
            expected: join_alternatives(expected),
        },
    };
    let diagnostic = Diagnostic::new(kind, label_span(text, span));
    match (span.start >= text.trim_end().len(), unclosed_brace(text)) {
        (true, Some(open)) => diagnostic.with_secondary(open, "this block is never closed"),
        _ => diagnostic,
    }
}

/// Mistakes the parser notices only later than where they are: labelled where they are.
fn misplaced(text: &str, span: Span, expected: &[String]) -> Option<Diagnostic> {
    if expected.iter().any(|e| e == "`(`") {
        return bare_word(text, span.start);
    }
    let token = text.get(span.start..span.end).unwrap_or("");
    let wants_close = expected.iter().any(|e| e == "`}`");
    if wants_close && TOP_LEVEL.contains(&token) && !expected.contains(&format!("`{token}`")) {
        let kind = DiagnosticKind::Syntax {
            found: format!("`{token}`"),
            expected: join_alternatives(expected.to_vec()),
            hint: Some(format!(
                "`{token}` starts a new block: the block before it needs its closing `}}`"
            )),
        };
        let diagnostic = Diagnostic::new(kind, span);
        return Some(match unclosed_brace(&text[..span.start]) {
            Some(open) => diagnostic.with_secondary(open, "this block is never closed"),
            None => diagnostic,
        });
    }
    if token == "}" && expected.iter().any(|e| e == "the end of the file") {
        let kind = DiagnosticKind::Syntax {
            found: "`}`".into(),
            expected: "the end of the file".into(),
            hint: Some("this `}` closes no block: remove it".into()),
        };
        return Some(Diagnostic::new(kind, span));
    }
    if token == "[" && in_json_path(text, span.start) {
        let kind = DiagnosticKind::Syntax {
            found: "`[`".into(),
            expected: "its selector and a closing `]`".into(),
            hint: Some(
                "a JSONPath bracket holds an index, `*`, a quoted name or a filter: \
                 `$.items[0]`, `$.items[*]`, `$['a b']`, `$.items[?@.open == true]`"
                    .into(),
            ),
        };
        return Some(Diagnostic::new(kind, span));
    }
    None
}

/// A bare word where a value belongs: the parser takes it for a function's name and wants
/// its `(`, so it complains about whatever follows, maybe on the next line. The word itself
/// is the mistake; the hint quotes it, or reads it as a secret when it looks like one.
fn bare_word(text: &str, offset: usize) -> Option<Diagnostic> {
    let before = text.get(..offset)?.trim_end();
    let start = before
        .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_')
        .len();
    let word = &before[start..];
    if !word.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        return None;
    }
    let function = before[..start]
        .trim_end()
        .strip_suffix('(')
        .map(|rest| {
            let rest = rest.trim_end();
            let name_start = rest
                .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_')
                .len();
            &rest[name_start..]
        })
        .filter(|name| !name.is_empty());
    let looks_like_a_secret = word
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        || CREDENTIAL_KEYWORDS.contains(&previous_word(&before[..start]));
    let argument = text.get(offset..).and_then(string_literal);
    let hint = match (function, argument) {
        // `secret "NAME"`: a function without its parentheses.
        (None, Some(argument)) if FUNCTIONS.contains(&word) => {
            format!("a function takes its arguments in parentheses: `{word}({argument})`")
        }
        (Some(function), _) => format!("the name is text, in quotes: `{function}(\"{word}\")`"),
        (None, _) if looks_like_a_secret => format!(
            "a bare word is not a value: read the secret with `secret(\"{word}\")`, or quote \
             text as `\"{word}\"`"
        ),
        (None, _) => format!("a bare word is not a value: quote text as `\"{word}\"`"),
    };
    let kind = DiagnosticKind::Syntax {
        found: format!("`{word}`"),
        expected: "a value".into(),
        hint: Some(hint),
    };
    Some(Diagnostic::new(kind, Span::new(start, before.len())))
}

/// The functions of the language, named in hints.
const FUNCTIONS: &[&str] = &["secret", "env", "file", "header"];

/// The words after which a value is a credential.
const CREDENTIAL_KEYWORDS: &[&str] = &["bearer", "basic"];

/// The last word of `text`.
fn previous_word(text: &str) -> &str {
    let text = text.trim_end();
    let start = text
        .trim_end_matches(|c: char| c.is_ascii_alphanumeric() || c == '_')
        .len();
    &text[start..]
}

/// The string literal at the start of `text` (after spaces), quotes included, if on one line.
fn string_literal(text: &str) -> Option<&str> {
    let text = text.trim_start();
    let body = text.strip_prefix('"')?;
    let end = body.find(['"', '\n'])?;
    body[end..].starts_with('"').then(|| &text[..end + 2])
}

/// Whether `offset` is inside a JSONPath: after a `$` with no space since.
fn in_json_path(text: &str, offset: usize) -> bool {
    let before = text.get(..offset).unwrap_or("");
    let word = before.rsplit(char::is_whitespace).next().unwrap_or("");
    word.contains('$')
}

fn is_call_limit(error: &pest::error::Error<Rule>) -> bool {
    matches!(&error.variant, ErrorVariant::CustomError { message } if message.contains("limit"))
}

/// What the parser would have accepted, in user words, most useful first.
fn expected(error: &pest::error::Error<Rule>) -> Vec<String> {
    let mut expected: Vec<String> = Vec::new();
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        expected.extend(positives.iter().filter_map(|rule| describe(*rule)));
    }
    if let Some(attempts) = error.parse_attempts() {
        let tokens: Vec<String> = attempts
            .expected_tokens()
            .iter()
            .map(|t| t.to_string())
            .collect();
        let covered = |token: &str| covered_by_description(token, &expected);
        let words: Vec<String> = tokens
            .iter()
            .filter(|t| !covered(t))
            .filter_map(|t| token_word(t))
            .collect();
        expected.extend(words);
    }
    expected
}

/// What a user calls the thing a rule parses.
fn describe(rule: Rule) -> Option<String> {
    let words = match rule {
        Rule::name | Rule::ident => "a name",
        Rule::key | Rule::target | Rule::target_key => "a name or a string",
        Rule::string | Rule::quoted_string | Rule::triple_string => "a string",
        Rule::integer => "a whole number",
        Rule::number => "a number",
        Rule::percent => "a percentage like `50%`",
        Rule::duration => "a duration like `30s` (units `ms`, `s`, `m`, `h`, `d`)",
        Rule::method => {
            "an HTTP method (`GET`, `POST`, `PUT`, `PATCH`, `DELETE`, `HEAD`, `OPTIONS`)"
        }
        Rule::expr | Rule::function | Rule::array | Rule::object | Rule::boolean | Rule::null => {
            "a value"
        }
        Rule::jsonpath => "a JSONPath such as `$.items[*]`",
        Rule::compare_op | Rule::op_or | Rule::op_and | Rule::op_fallback => "an operator",
        Rule::backoff => "a backoff (`constant`, `linear`, `exponential`)",
        Rule::retry_condition => "a retry condition (`429`, `5xx`, `timeout`)",
        Rule::rule_status | Rule::rule_statuses => "a status like `404` or `4xx`",
        Rule::EOI => "the end of the file",
        Rule::mapping => "a block of `field = value` lines",
        Rule::word_manual => "`manual`",
        Rule::word_jitter => "`jitter`",
        Rule::word_on => "`on`",
        Rule::graphql => "`graphql`",
        other => {
            // `kw_step` is the keyword `step`; a statement rule is named after its keyword.
            let name = format!("{other:?}");
            let keyword = name.strip_prefix("kw_").unwrap_or(&name);
            let is_keyword = KEYWORD_RULES.contains(&keyword);
            return is_keyword.then(|| format!("`{keyword}`"));
        }
    };
    Some(words.to_string())
}

/// The keywords that start a block of an integration.
const TOP_LEVEL: &[&str] = &[
    "connection",
    "trigger",
    "step",
    "fallback",
    "alert",
    "environment",
    "test",
    "defaults",
];

/// Rules named after the keyword that starts them, listed as that keyword when expected.
const KEYWORD_RULES: &[&str] = &[
    "description",
    "owner",
    "tags",
    "defaults",
    "connection",
    "trigger",
    "step",
    "fallback",
    "alert",
    "environment",
    "test",
    "base_url",
    "auth",
    "headers",
    "connect_timeout",
    "timeout",
    "rate_limit",
    "encoding",
    "max_concurrency",
    "circuit_breaker",
    "rules",
    "partial_data",
    "webhook",
    "poll",
    "schedule",
    "query",
    "body",
    "document",
    "variables",
    "when",
    "for_each",
    "paginate",
    "items",
    "max_pages",
    "cache",
    "idempotency_key",
    "retry",
    "on_error",
    "each",
    "dedupe",
    "signature",
    "tolerance",
    "every",
    "cursor",
    "timezone",
    "event",
    "mock",
    "expect",
    "integration",
    "method",
    "per",
    "burst",
    "into",
    "where",
    "times",
    "in",
    "notify",
    "over",
    "min_calls",
    "failures",
    "ratio",
    "cooldown",
    "header",
    "prefix",
    "next_link",
    "offset",
    "limit",
    "page",
    "from",
    "size",
    "concurrency",
    "max_elapsed",
    "retry_after",
    "bearer",
    "basic",
    "api_key",
    "oauth2",
    "none",
];

/// Tokens already said by a description in the list (the letters of a duration's units, the
/// first characters of a value) would only clutter it.
fn covered_by_description(token: &str, expected: &[String]) -> bool {
    let has = |prefix: &str| expected.iter().any(|e| e.starts_with(prefix));
    let value_start = [
        "\"", "\"\"\"", "$", "(", "-", "[", "{", "true", "false", "null", "not",
    ];
    let operator = ["==", "!=", "<", "<=", ">", ">=", "??", "and", "or"];
    (has("a duration") && ["ms", "s", "m", "h", "d"].contains(&token))
        || (has("an HTTP method") && token.chars().all(|c| c.is_ascii_uppercase()))
        || ((has("a value") || has("a JSONPath")) && value_start.contains(&token))
        || (has("an operator") && operator.contains(&token))
        || (has("a string") && (token == "\"" || token == "\"\"\""))
}

/// A literal the parser would have accepted, as a user would want it listed. Whitespace,
/// comment starts and character ranges (the inside of a name or a number) say nothing.
fn token_word(token: &str) -> Option<String> {
    let is_range = token.chars().count() == 4 && token.get(1..3) == Some("..");
    let noise = token.trim().is_empty() || token == "#" || token == "_" || is_range;
    (!noise && token != "BUILTIN_RULE").then(|| format!("`{token}`"))
}

/// A hint for a mistake recognisable from the token and what was expected.
fn hint(token: &str, expected: &[String]) -> Option<String> {
    let first = token.chars().next()?;
    if !first.is_ascii() && first.is_alphanumeric() {
        return Some("names are ASCII letters, digits and `_`; other text goes in quotes".into());
    }
    if first == '\'' {
        return Some("strings are written in double quotes: \"...\"".into());
    }
    if expected.iter().any(|e| e.starts_with("an HTTP method")) {
        let upper = token.to_ascii_uppercase();
        if crate::ast::Method::parse(&upper).is_some() {
            return Some(format!("HTTP methods are written in capitals: `{upper}`"));
        }
    }
    let is_status = token.len() == 3 && token.starts_with(|c: char| c.is_ascii_digit());
    if is_status && expected.iter().any(|e| e.starts_with("a backoff")) {
        return Some("separate retry conditions with commas: `on 429, 5xx, timeout`".into());
    }
    let keywords = expected
        .iter()
        .filter_map(|e| e.strip_prefix('`')?.strip_suffix('`'));
    // A hint that repeats the token itself says nothing.
    let closest = crate::diagnostic::suggest::closest(token, keywords).filter(|c| c != token)?;
    Some(format!("did you mean `{closest}`?"))
}

/// A `"` with no closing quote before the end of its line.
fn unterminated_string(text: &str, span: Span) -> Option<String> {
    let rest = text.get(span.start..)?.strip_prefix('"')?;
    if let Some(triple) = rest.strip_prefix("\"\"") {
        return (!triple.contains("\"\"\"")).then(|| "close it with `\"\"\"`".into());
    }
    let line = rest.split('\n').next().unwrap_or("");
    let mut escaped = false;
    let closed = line.chars().any(|c| {
        let end = c == '"' && !escaped;
        escaped = c == '\\' && !escaped;
        end
    });
    (!closed).then(|| {
        "close it with `\"` on the same line, or use `\"\"\"` for text over several lines".into()
    })
}

/// The span of the word, number or character at `offset`, for the label.
fn token_at(text: &str, offset: usize) -> Span {
    let offset = offset.min(text.len());
    let rest = &text[offset..];
    let in_token = |c: char| {
        c.is_alphanumeric()
            || c == '_'
            || (rest.starts_with(|d: char| d.is_ascii_digit()) && c == '.')
    };
    let word = rest
        .char_indices()
        .find(|(_, c)| !in_token(*c))
        .map_or(rest.len(), |(i, _)| i);
    let len = if word > 0 {
        word
    } else {
        rest.chars().next().map_or(0, char::len_utf8)
    };
    Span::new(offset, offset + len)
}

/// At the end of the file there is nothing to underline: label the last character instead.
fn label_span(text: &str, span: Span) -> Span {
    if !span.is_empty() {
        return span;
    }
    let end = text.trim_end().len();
    let start = text[..end].char_indices().next_back().map_or(0, |(i, _)| i);
    Span::new(start, end)
}

fn found(text: &str, span: Span) -> String {
    match text.get(span.start..span.end) {
        None | Some("") => "end of file".into(),
        Some("\n") => "end of line".into(),
        Some(token) if token.trim().is_empty() => "whitespace".into(),
        Some(token) => format!("`{token}`"),
    }
}

/// The last `{` left open at the end of the text, outside strings and comments.
fn unclosed_brace(text: &str) -> Option<Span> {
    let mut open = Vec::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => open.push(i),
            '}' => {
                open.pop();
            }
            '#' => {
                chars.by_ref().find(|(_, c)| *c == '\n');
            }
            '"' => {
                let mut escaped = false;
                chars.by_ref().find(|(_, c)| {
                    let end = *c == '"' && !escaped;
                    escaped = *c == '\\' && !escaped;
                    end
                });
            }
            _ => {}
        }
    }
    open.pop().map(|at| Span::new(at, at + 1))
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
