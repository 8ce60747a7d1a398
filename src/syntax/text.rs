//! Decoding string literals into `Text`, keeping the way back to source offsets.

use crate::ast::Text;
use crate::diagnostic::{Diagnostic, DiagnosticKind};
use crate::span::Span;

/// Decodes `"..."` (with escapes) or `"""..."""` (raw, dedented). `start` is the source
/// offset of `literal`.
pub fn decode(literal: &str, start: usize, diagnostics: &mut Vec<Diagnostic>) -> Text {
    let span = Span::new(start, start + literal.len());
    if let Some(inner) = literal
        .strip_prefix("\"\"\"")
        .and_then(|s| s.strip_suffix("\"\"\""))
    {
        return decode_triple(inner, start + 3, span);
    }
    let inner = literal
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(literal);
    decode_quoted(inner, start + 1, span, diagnostics)
}

fn decode_quoted(inner: &str, start: usize, span: Span, diagnostics: &mut Vec<Diagnostic>) -> Text {
    let mut value = String::with_capacity(inner.len());
    let mut runs = vec![(0, start)];
    let mut chars = inner.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '\\' {
            value.push(c);
            continue;
        }
        let escape_end = match chars.next() {
            Some((_, 'n')) => push(&mut value, '\n', i + 2),
            Some((_, 't')) => push(&mut value, '\t', i + 2),
            Some((_, 'r')) => push(&mut value, '\r', i + 2),
            Some((_, c @ ('"' | '\\' | '/'))) => push(&mut value, c, i + 2),
            Some((_, 'u')) => unicode_escape(inner, i, &mut value),
            _ => None,
        };
        match escape_end {
            Some(end) => {
                while chars.peek().is_some_and(|&(j, _)| j < end) {
                    chars.next();
                }
                runs.push((value.len(), start + end));
            }
            None => {
                let end = inner[i + 1..]
                    .chars()
                    .next()
                    .map_or(i + 1, |c| i + 1 + c.len_utf8());
                let escape = inner[i..end].to_string();
                let at = Span::new(start + i, start + end);
                diagnostics.push(Diagnostic::new(
                    DiagnosticKind::InvalidEscape { escape },
                    at,
                ));
            }
        }
    }
    Text { value, span, runs }
}

fn push(value: &mut String, c: char, end: usize) -> Option<usize> {
    value.push(c);
    Some(end)
}

/// `\u{1F600}`: returns the offset just after the closing brace.
fn unicode_escape(inner: &str, at: usize, value: &mut String) -> Option<usize> {
    let rest = inner.get(at + 2..)?.strip_prefix('{')?;
    let close = rest.find('}')?;
    let c = u32::from_str_radix(&rest[..close], 16)
        .ok()
        .and_then(char::from_u32)?;
    value.push(c);
    Some(at + 3 + close + 1)
}

/// Triple-quoted strings are raw; a newline right after the opening quotes is dropped, and
/// so is the indentation common to every non-blank line, so a GraphQL document can be
/// indented with the spec.
fn decode_triple(inner: &str, start: usize, span: Span) -> Text {
    let newline = ["\r\n", "\n"].into_iter().find(|nl| inner.starts_with(nl));
    let (inner, start) = match newline {
        Some(nl) => (&inner[nl.len()..], start + nl.len()),
        None => (inner, start),
    };
    let indent = inner
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start_matches([' ', '\t']).len())
        .min()
        .unwrap_or(0);
    let mut value = String::with_capacity(inner.len());
    let mut runs = Vec::new();
    let mut line_start = 0;
    for line in inner.split_inclusive('\n') {
        let cut = indent.min(line.len() - line.trim_start_matches([' ', '\t']).len());
        runs.push((value.len(), start + line_start + cut));
        value.push_str(&line[cut..]);
        line_start += line.len();
    }
    if value.ends_with('\n') || value.trim_end_matches([' ', '\t']).ends_with('\n') {
        let trimmed = value.trim_end_matches([' ', '\t']).len();
        value.truncate(trimmed);
    }
    if runs.is_empty() {
        runs.push((0, start));
    }
    Text { value, span, runs }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(literal: &str) -> (Text, Vec<Diagnostic>) {
        let mut diagnostics = Vec::new();
        (decode(literal, 10, &mut diagnostics), diagnostics)
    }

    #[test]
    fn escapes_decode_and_offsets_map_back_to_the_source() {
        let (t, d) = text(r#""a\n{{ x }}\u{e9}z""#);
        assert!(d.is_empty());
        assert_eq!(t.value, "a\n{{ x }}éz");
        // `{{` is at value offset 2; in the source at 10 + 1 (quote) + 3 (`a\n`).
        assert_eq!(t.span_of(2..4), Span::new(14, 16));
        // `z` follows the 6-byte `\u{e9}` escape.
        let z = t.value.find('z').unwrap_or_default();
        assert_eq!(t.span_of(z..z + 1).start, 10 + 1 + 3 + 7 + 6);
    }

    #[test]
    fn an_unknown_escape_is_reported_at_its_span() {
        let (_, d) = text(r#""a\qb""#);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].span, Span::new(12, 14));
        assert_eq!(
            d[0].kind,
            DiagnosticKind::InvalidEscape {
                escape: "\\q".into()
            }
        );
    }

    #[test]
    fn triple_quoted_strings_are_dedented_and_keep_their_offsets() {
        let literal = "\"\"\"\n    query {\n      shop\n    }\n  \"\"\"";
        let (t, _) = text(literal);
        assert_eq!(t.value, "query {\n  shop\n}\n");
        let shop = t.value.find("shop").unwrap_or_default();
        let source = &literal[t.span_of(shop..shop + 4).start - 10..][..4];
        assert_eq!(source, "shop");
    }
}
