//! The filters and tests a template names. minijinja looks them up only when a template
//! renders, so a misspelt `| uper` would pass a compile and fail every event at run time.

use std::ops::Range;

/// What a name in a template stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum NameKind {
    /// `value | NAME`, `{% filter NAME %}`
    Filter,
    /// `value is NAME`, `value is not NAME`
    Test,
}

impl NameKind {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            NameKind::Filter => "filter",
            NameKind::Test => "test",
        }
    }
}

/// Every filter and test named inside the `{{ }}` and `{% %}` tags of `template`, with its
/// byte range; string literals, comments and raw blocks are passed over.
pub(super) fn names(template: &str) -> Vec<(NameKind, Range<usize>)> {
    let mut found = Vec::new();
    let mut at = 0;
    while let Some(offset) = template[at..].find('{') {
        let start = at + offset;
        let rest = &template[start..];
        at = if rest.starts_with("{#") {
            skip_past(template, start, "#}")
        } else if rest.starts_with("{%") && is_raw(&rest[2..]) {
            let end = template[start..]
                .find("endraw")
                .map_or(template.len(), |i| start + i);
            skip_past(template, end, "%}")
        } else if rest.starts_with("{{") {
            tag(template, start + 2, "}}", &mut found)
        } else if rest.starts_with("{%") {
            block_filter(template, start + 2, &mut found);
            tag(template, start + 2, "%}", &mut found)
        } else {
            start + 1
        };
    }
    found
}

/// `{% raw %}` (with optional whitespace control).
fn is_raw(tag: &str) -> bool {
    let tag = tag.trim_start_matches('-').trim_start();
    tag.strip_prefix("raw")
        .is_some_and(|after| after.trim_start().trim_start_matches('-').starts_with("%}"))
}

/// The offset just past the next `end` from `from`, or the end of the text.
fn skip_past(text: &str, from: usize, end: &str) -> usize {
    text[from..]
        .find(end)
        .map_or(text.len(), |i| from + i + end.len())
}

/// Scans one tag from `from` to its `end`, collecting names; returns the offset past it.
fn tag(text: &str, from: usize, end: &str, found: &mut Vec<(NameKind, Range<usize>)>) -> usize {
    let bytes = text.as_bytes();
    let mut i = from;
    let mut previous_word: Option<Range<usize>> = None;
    let mut before_previous: Option<Range<usize>> = None;
    // Map literals open braces of their own: `{{ {'a': {'b': 1}} | tojson }}` ends at the
    // last `}}`, not the first.
    let mut depth = 0usize;
    while i < bytes.len() {
        // Bytes, not `str` slices: `i` may sit inside a multi-byte character.
        if depth == 0 && bytes[i..].starts_with(end.as_bytes()) {
            return i + end.len();
        }
        let c = bytes[i];
        if c == b'{' {
            depth += 1;
        } else if c == b'}' {
            depth = depth.saturating_sub(1);
        }
        if c == b'"' || c == b'\'' {
            i = string_end(bytes, i);
            continue;
        }
        if c == b'|' {
            let name_start = skip_spaces(bytes, i + 1);
            let name = word(bytes, name_start);
            if !name.is_empty() {
                found.push((NameKind::Filter, name.clone()));
                i = name.end;
            } else {
                i += 1;
            }
            previous_word = None;
            continue;
        }
        if is_word_start(c) {
            let this = word(bytes, i);
            let last = previous_word.as_ref().map(|r| &text[r.clone()]);
            let one_before = before_previous.as_ref().map(|r| &text[r.clone()]);
            let is_test = last == Some("is") || (last == Some("not") && one_before == Some("is"));
            if is_test && &text[this.clone()] != "not" {
                found.push((NameKind::Test, this.clone()));
            }
            i = this.end;
            before_previous = previous_word.replace(this);
            continue;
        }
        if !c.is_ascii_whitespace() && c != b'-' {
            // Any other token breaks `is NAME` and `filter NAME` apart.
            before_previous = None;
            previous_word = None;
            if c == b'.' || c.is_ascii_digit() {
                // `x.is`, `1is`: not the keyword; skip the attribute or number whole.
                i += 1;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                continue;
            }
        }
        i += 1;
    }
    i
}

/// `{% filter NAME %}`: a filter named by the statement's first two words (a variable
/// called `filter` elsewhere is just a variable).
fn block_filter(text: &str, from: usize, found: &mut Vec<(NameKind, Range<usize>)>) {
    let bytes = text.as_bytes();
    let mut start = from;
    if bytes.get(start) == Some(&b'-') {
        start += 1;
    }
    let keyword = word(bytes, skip_spaces(bytes, start));
    if &text[keyword.clone()] == "filter" {
        let name = word(bytes, skip_spaces(bytes, keyword.end));
        if !name.is_empty() {
            found.push((NameKind::Filter, name));
        }
    }
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

/// The identifier starting at `start` (empty when there is none).
fn word(bytes: &[u8], start: usize) -> Range<usize> {
    if start >= bytes.len() || !is_word_start(bytes[start]) {
        return start..start;
    }
    let mut end = start + 1;
    while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
        end += 1;
    }
    start..end
}

fn skip_spaces(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len() && bytes[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// The offset past the string literal opening at `start`, escapes included.
pub(super) fn string_end(bytes: &[u8], start: usize) -> usize {
    let quote = bytes[start];
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            c if c == quote => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(template: &str) -> Vec<(NameKind, &str)> {
        names(template)
            .into_iter()
            .map(|(kind, range)| (kind, &template[range]))
            .collect()
    }

    #[test]
    fn filters_and_tests_are_found_where_they_are_named() {
        use NameKind::{Filter, Test};
        assert_eq!(
            named("{{ contact.name | upper }} and {{ x|default('a|b') | join(', ') }}"),
            [(Filter, "upper"), (Filter, "default"), (Filter, "join")]
        );
        assert_eq!(
            named(
                "{% if pulls is defined and x is not none %}{{ n is divisibleby(3) }}{% endif %}"
            ),
            [(Test, "defined"), (Test, "none"), (Test, "divisibleby")]
        );
        assert_eq!(
            named("{% filter upper %}hi{% endfilter %}"),
            [(Filter, "upper")]
        );
        assert_eq!(
            named("{{ {'a': {'b': 1}} | tojson }} {{ {'x': '}}'} | length }}"),
            [(Filter, "tojson"), (Filter, "length")]
        );
    }

    #[test]
    fn strings_comments_raw_blocks_and_attributes_are_passed_over() {
        assert!(
            named("{{ 'a | b is c' }} {# x | y #} {% raw %}{{ z | w }}{% endraw %}").is_empty()
        );
        assert!(named("{{ event.is }} {{ thing.filter }} text | not a tag").is_empty());
        // A step or variable may be called `filter`.
        assert_eq!(
            named(
                "{{ filter if a else b }}{{ filter or 'x' }}{% set y = filter %}{{ filter is defined }}"
            ),
            [(NameKind::Test, "defined")]
        );
        assert!(named("{{ 'unterminated").is_empty());
        assert_eq!(
            named("{{ «é» ~ 'ü' | lower }}{{ ñ is odd }}"),
            [(NameKind::Filter, "lower"), (NameKind::Test, "odd")]
        );
    }
}
