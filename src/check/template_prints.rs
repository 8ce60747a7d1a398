//! What a template prints and what it tests for presence, for two hints: a value the spec
//! itself treats as possibly missing, printed without a default elsewhere (W009), and a
//! value named like a path printed into one path segment (W008).
//!
//! Lint cannot know which fields of a payload may be absent or `null` (that is the
//! vendor's schema, not the spec), so W009 speaks only where the spec says so itself: a
//! value tested in an `{% if %}`, given a `default` or an `or` somewhere is optional, and
//! printing it (or a value read through it) bare, outside an `{% if %}` that tests it, is a
//! step that fails on the first event without it.

use super::Checker;
use super::template_names::string_end;
use crate::ast::Text;
use crate::diagnostic::DiagnosticKind;
use crate::span::Span;
use std::ops::Range;

/// What the spec's templates print bare and test for presence, gathered while checking.
#[derive(Debug, Default)]
pub(super) struct Notes {
    /// Plain prints outside any `{% if %}` that tests them, in templates with text.
    printed: Vec<(Span, String)>,
    tested: Vec<String>,
}

/// A `{{ a.b.c | filter }}` tag whose expression is a plain chain of names.
#[derive(Debug, PartialEq)]
pub(super) struct Print {
    /// The chain's byte range in the template.
    pub range: Range<usize>,
    pub filters: Vec<String>,
    /// Inside an `{% if %}` whose condition reads the chain, a part of it, or a value
    /// read through it.
    pub guarded: bool,
}

/// Every plain print of `template`, and every chain it tests for presence.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Scan {
    pub prints: Vec<Print>,
    pub tested: Vec<String>,
}

pub(super) fn scan(template: &str) -> Scan {
    let mut scan = Scan::default();
    // The chains each enclosing `{% if %}` (with its `elif`s) reads.
    let mut guards: Vec<Vec<String>> = Vec::new();
    let mut at = 0;
    while let Some(offset) = template[at..].find('{') {
        let start = at + offset;
        let rest = &template[start..];
        let (end, inner) = match rest.get(..2) {
            Some("{#") => (skip_past(template, start, "#}"), None),
            Some("{{") => tag(template, start, "}}"),
            Some("{%") => tag(template, start, "%}"),
            _ => (start + 1, None),
        };
        at = end;
        let Some(inner) = inner else { continue };
        if rest.starts_with("{{") {
            print(template, inner, &guards, &mut scan);
            continue;
        }
        let words = &template[inner.clone()];
        let keyword = words.split_whitespace().next().unwrap_or("");
        match keyword {
            "raw" => at = skip_past(template, at, "endraw"),
            "if" | "elif" => {
                let condition = inner.start + keyword.len()..inner.end;
                let read = chains(template, condition.clone());
                let tested = read
                    .iter()
                    .filter(|r| is_truth_test(template, &condition, r));
                scan.tested
                    .extend(tested.map(|r| template[r.clone()].to_string()));
                let read = read.into_iter().map(|r| template[r].to_string());
                match (keyword, guards.last_mut()) {
                    ("elif", Some(frame)) => frame.extend(read),
                    _ => guards.push(read.collect()),
                }
            }
            "endif" => {
                guards.pop();
            }
            _ => {}
        }
    }
    scan
}

/// Whether the chain at `chain` in an `{% if %}` condition is tested for presence (`x`,
/// `not x`, `x is defined`, `x and y`) rather than compared or transformed (`x == 1`,
/// `x | length > 0`), which says nothing about whether it may be missing.
fn is_truth_test(text: &str, condition: &Range<usize>, chain: &Range<usize>) -> bool {
    let before = format!(" {}", text[condition.start..chain.start].trim_end());
    let after = text[chain.end..condition.end].trim_start();
    let opens = before == " "
        || before.ends_with('(')
        || before.ends_with(" not")
        || before.ends_with(" and")
        || before.ends_with(" or");
    let presence_test = ["is defined", "is undefined", "is none", "is not none"]
        .iter()
        .any(|t| after.starts_with(t));
    let closes = after.is_empty()
        || after.starts_with(')')
        || after.starts_with("and ")
        || after.starts_with("or ");
    presence_test || (opens && closes)
}

/// Whether `chain` reads through `tested` (or is it): `event.a` covers `event.a.b`.
pub(super) fn reads_through(chain: &str, tested: &str) -> bool {
    chain
        .strip_prefix(tested)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
}

/// One `{{ }}` tag: a plain print, or chains tested with `or` and `default`.
fn print(template: &str, inner: Range<usize>, guards: &[Vec<String>], scan: &mut Scan) {
    let parts = split_filters(template, inner.clone());
    let Some(head) = parts.first().cloned() else {
        return;
    };
    let filters: Vec<String> = parts[1..]
        .iter()
        .map(|part| {
            let text = template[part.clone()].trim_start();
            let end = text
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(text.len());
            text[..end].to_string()
        })
        .collect();
    let expression = trimmed(template, head);
    let read = chains(template, expression.clone());
    let is_plain = read.first() == Some(&expression);
    let defaulted = filters.iter().any(|f| f == "default");
    // `a or b`: `a` is tested for presence; `b` is what prints when it is missing.
    let tested = read.iter().filter(|r| {
        defaulted
            || template[r.end..expression.end]
                .trim_start()
                .starts_with("or ")
    });
    scan.tested
        .extend(tested.map(|r| template[r.clone()].to_string()));
    if defaulted {
        return;
    }
    if is_plain {
        let chain = &template[expression.clone()];
        let guarded = guards
            .iter()
            .flatten()
            .any(|tested| reads_through(chain, tested) || reads_through(tested, chain));
        scan.prints.push(Print {
            range: expression,
            filters,
            guarded,
        });
    }
}

/// The tag opening at `start`: the offset past it and its inside, without the delimiters
/// and whitespace controls.
fn tag(text: &str, start: usize, end: &str) -> (usize, Option<Range<usize>>) {
    // An unclosed tag (lint reports it as E202) has no inside to read.
    let Some(length) = text[start + 2..].find(end) else {
        return (text.len(), None);
    };
    let close = start + 2 + length;
    let mut inner = start + 2..close;
    let controls = ['-', '+', '~'];
    if text[inner.clone()].starts_with(controls) {
        inner.start += 1;
    }
    if inner.end > inner.start && text[inner.clone()].ends_with(controls) {
        inner.end -= 1;
    }
    (close + end.len(), Some(trimmed(text, inner)))
}

/// `range` without the whitespace around it.
fn trimmed(text: &str, range: Range<usize>) -> Range<usize> {
    let inside = &text[range.clone()];
    let start = range.start + (inside.len() - inside.trim_start().len());
    let end = range.end - (inside.len() - inside.trim_end().len());
    start..end.max(start)
}

/// The parts of an expression between top-level `|`s (outside strings and brackets).
fn split_filters(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut parts = Vec::new();
    let (mut depth, mut from, mut i) = (0usize, range.start, range.start);
    while i < range.end {
        match bytes[i] {
            b'"' | b'\'' => {
                i = string_end(bytes, i).min(range.end);
                continue;
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'|' if depth == 0 => {
                parts.push(from..i);
                from = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(from..range.end);
    parts
}

/// Every chain of names (`event.a.b`, `items[0].id`) in `range`, outside strings; an
/// attribute after a call or a bracketed expression is not a chain.
fn chains(text: &str, range: Range<usize>) -> Vec<Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = range.start;
    while i < range.end {
        let c = bytes[i];
        if c == b'"' || c == b'\'' {
            i = string_end(bytes, i);
            continue;
        }
        let after_dot = i > range.start && bytes[i - 1] == b'.';
        if !(c.is_ascii_alphabetic() || c == b'_') || after_dot {
            i += 1;
            continue;
        }
        let start = i;
        i = name_end(bytes, i, range.end);
        loop {
            if bytes.get(i) == Some(&b'.')
                && bytes
                    .get(i + 1)
                    .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
                && i + 1 < range.end
            {
                i = name_end(bytes, i + 1, range.end);
            } else if bytes.get(i) == Some(&b'[') {
                let digits = bytes[i + 1..range.end]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if digits == 0 || bytes.get(i + 1 + digits) != Some(&b']') {
                    break;
                }
                i += digits + 2;
            } else {
                break;
            }
        }
        let word = &text[start..i];
        let before = text[range.start..start].trim_end();
        let is_test = before.ends_with(" is") || before.ends_with(" is not");
        let is_filter = before.ends_with('|');
        let is_call = bytes.get(i) == Some(&b'(');
        if !(is_keyword(word) || is_test || is_filter || is_call) {
            found.push(start..i);
        }
    }
    found
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "and" | "or" | "not" | "is" | "in" | "if" | "else" | "none" | "true" | "false"
    )
}

fn name_end(bytes: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    i
}

fn skip_past(text: &str, from: usize, end: &str) -> usize {
    text[from..]
        .find(end)
        .map_or(text.len(), |i| from + i + end.len())
}

/// `{{ expression }}` and nothing else (as `plan` compiles it into a typed value).
fn is_lone_expression(template: &str) -> bool {
    let text = template.trim();
    text.starts_with("{{")
        && text.ends_with("}}")
        && !text[2..].contains("{{")
        && !text.contains("{%")
        && !text.contains("{#")
}

/// A name that says its value is a path of several segments.
fn is_path_like(name: &str) -> bool {
    name == "full_name" || name == "path" || name.ends_with("_path")
}

impl Checker<'_> {
    /// Notes what a template prints and tests; W009 is decided once the spec is read.
    pub(super) fn note_prints(&mut self, text: &Text) {
        let scan = scan(&text.value);
        self.prints.tested.extend(scan.tested);
        // A lone `{{ x }}` gives a typed value; a missing one leaves its field out.
        if is_lone_expression(&text.value) {
            return;
        }
        // A filter gives a value even for a missing one (`| length` is 0); only a bare
        // print fails.
        let bare = scan
            .prints
            .into_iter()
            .filter(|p| !p.guarded && p.filters.is_empty());
        for print in bare {
            let value = text.value[print.range.clone()].to_string();
            self.prints.printed.push((text.span_of(print.range), value));
        }
    }

    /// W009: a bare print of a value that the spec tests for presence elsewhere.
    pub(super) fn optional_prints(&mut self) {
        let notes = std::mem::take(&mut self.prints);
        for (span, value) in notes.printed {
            let tested = notes.tested.iter().find(|t| reads_through(&value, t));
            if let Some(tested) = tested {
                let tested = tested.clone();
                self.report(DiagnosticKind::OptionalPrinted { value, tested }, span);
            }
        }
    }

    /// W008: a request path that prints a path-like value into one segment without
    /// saying how it is meant: `| segments` for several, `| string` for one.
    pub(super) fn path_like_segments(&mut self, path: &Text) {
        if !path.is_template() {
            return;
        }
        for print in scan(&path.value).prints {
            let chain = &path.value[print.range.clone()];
            let last = chain.rsplit('.').next().unwrap_or(chain);
            if is_path_like(last)
                && !print
                    .filters
                    .iter()
                    .any(|f| f == "segments" || f == "string")
            {
                let kind = DiagnosticKind::PathLikeSegment {
                    value: chain.to_string(),
                };
                self.report(kind, path.span_of(print.range));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prints(template: &str) -> Vec<(&str, bool)> {
        scan(template)
            .prints
            .into_iter()
            .map(|p| (&template[p.range], p.guarded))
            .collect()
    }

    #[test]
    fn plain_prints_and_their_guards() {
        assert_eq!(
            prints(
                "{% if event.note %}Note: {{ event.note }}{% endif %} {{- event.pr.author.login | upper -}}"
            ),
            [("event.note", true), ("event.pr.author.login", false)]
        );
        assert_eq!(
            prints(
                "{% if a %}{% elif event.c %}{{ event.c.d }}{% else %}{{ x[0].y }}{% endif %}{{ event.c }}"
            ),
            [("event.c.d", true), ("x[0].y", false), ("event.c", false)]
        );
        // Not plain: calls, operators, literals, defaults.
        assert!(
            prints("{{ f(x) }}{{ a ~ b }}{{ 'x' }}{{ a | default('b') }}{{ a or b }}{{ a.b() }}")
                .is_empty()
        );
        assert!(prints("{# {{ a }} #}{% raw %}{{ b }}{% endraw %}").is_empty());
        // Unclosed tags, escapes and characters of several bytes do not trip the scan.
        for text in [
            "{{ é",
            "{{ a }}{{ 'é\\é' | x }}{% if é",
            "{{ a['\\é'] }}",
            "{{-}}",
            "{%%}",
        ] {
            scan(text);
        }
    }

    #[test]
    fn tested_chains() {
        let scan = scan(
            "{% if event.a is defined and event.b.c %}{% endif %}{{ event.d or '' }}{{ event.e | default('x') | upper }}",
        );
        assert_eq!(scan.tested, ["event.a", "event.b.c", "event.d", "event.e"]);
        // Compared or transformed values say nothing about presence; an `or`'s last
        // operand is what prints.
        let scan = super::scan(
            "{% if x == 1 or y | length > 0 %}{% elif not (z) and w is not none %}{% endif %}{{ a.b or c.d }}",
        );
        assert_eq!(scan.tested, ["z", "w", "a.b"]);
        assert!(reads_through("event.b.c.d", "event.b"));
        assert!(reads_through("event.b", "event.b"));
        assert!(!reads_through("event.bc", "event.b"));
    }
}
