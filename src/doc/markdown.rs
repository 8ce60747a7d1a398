//! Markdown that GitHub renders the same whatever a spec holds: inline code that survives a
//! table cell, anchors made from names, long expressions shortened.

use super::value::Value;

/// `text` as inline code on one line, safe in a table cell: pipes escaped (GitHub's
/// tables split on them even inside code), fenced with more backticks than it holds.
pub fn code(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let escaped = one_line.replace('|', "\\|");
    let longest = longest_run(&escaped, '`');
    let fence = "`".repeat(longest + 1);
    let pad = if escaped.starts_with('`') || escaped.ends_with('`') || escaped.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{escaped}{pad}{fence}")
}

/// Plain text for a table cell: one line, pipes escaped.
pub fn cell(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.replace('|', "\\|")
}

/// At most `max` characters, cut with `…`.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// A value in words, with its names and constants as code.
pub fn value(value: &Value) -> String {
    match value {
        Value::Constant { text } => code(&shorten(text, 120)),
        Value::Expression { text } => code(&shorten(text, 120)),
        Value::Env {
            name,
            default: Some(default),
        } => format!(
            "env {}, default {}",
            code(name),
            code(&shorten(default, 120))
        ),
        Value::Env {
            name,
            default: None,
        } => format!("env {}", code(name)),
        Value::Secret { name } => format!("secret {}", code(name)),
        Value::Withheld => "*(written in the spec, not shown)*".into(),
    }
}

/// An id for an HTML anchor: lower case, letters, digits and `-`.
pub fn slug(name: &str) -> String {
    name.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '-',
        })
        .collect()
}

/// A heading with an explicit anchor, so links hold whatever GitHub does to titles.
pub fn heading(level: usize, id: &str, title: &str) -> String {
    format!("{} <a id=\"{id}\"></a>{title}\n\n", "#".repeat(level))
}

/// A value marked as the engine's default when the spec does not set it.
pub fn effective(text: String, default: bool) -> String {
    if default {
        format!("{text} *(default)*")
    } else {
        text
    }
}

/// A table: a header row, then the rows.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out.push('\n');
    out
}

fn longest_run(text: &str, c: char) -> usize {
    let (mut longest, mut run) = (0, 0);
    for ch in text.chars() {
        run = if ch == c { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    longest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_survives_pipes_backticks_and_new_lines() {
        assert_eq!(code("a | b"), "`a \\| b`");
        assert_eq!(code("x `y` z"), "``x `y` z``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("a\n   b"), "`a b`");
    }

    #[test]
    fn slugs_are_plain() {
        assert_eq!(slug("rb-Dead_letters 2"), "rb-dead-letters-2");
    }
}
