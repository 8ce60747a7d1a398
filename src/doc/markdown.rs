//! Markdown that GitHub renders the same whatever a spec holds: inline code and text that
//! read as written where they stand (a table cell escapes its pipes, nothing else does),
//! anchors made from names, long expressions shortened with their full form at hand.

use super::value::Value;

/// `text` as inline code on one line, fenced with more backticks than it holds. Its pipes
/// are left alone: `table` escapes those of its cells, and outside a table a `\|` in code
/// would show its backslash.
pub fn code(text: &str) -> String {
    let one_line = one_line(text);
    let longest = longest_run(&one_line, '`');
    let fence = "`".repeat(longest + 1);
    let pad = if one_line.starts_with('`') || one_line.ends_with('`') || one_line.is_empty() {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{one_line}{pad}{fence}")
}

/// Text a spec wrote (a description, an owner), HTML-significant characters escaped: GitHub
/// would take `<!--` or `<details>` in it as HTML and hide or swallow what follows.
pub fn text(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `text` for a table cell: on one line, HTML-significant characters escaped.
pub fn cell(text: &str) -> String {
    self::text(&one_line(text))
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// At most `max` characters, cut with `…`.
pub fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// `text` as inline code; past `max` characters, shortened with the full form in a
/// `<details>` that opens on a click (inline, so it holds in a table cell and a sentence).
pub fn long_code(text: &str, max: usize) -> String {
    let text = one_line(text);
    let short = shorten(&text, max);
    if short == text {
        return code(&text);
    }
    format!(
        "<details><summary>{}</summary>{}</details>",
        code(&short),
        code(&text)
    )
}

/// A value in words, with its names and constants as code.
pub fn value(value: &Value) -> String {
    match value {
        Value::Constant { text } | Value::Expression { text } => long_code(text, 120),
        Value::Env {
            name,
            default: Some(default),
        } => format!("env {}, default {}", code(name), long_code(default, 120)),
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
/// Every `|` of a cell is escaped, in code spans too: GitHub splits a row on each `|` that
/// is not, before it reads any code span.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", header.join(" | "));
    out.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
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
    fn code_survives_backticks_and_new_lines_and_keeps_its_pipes() {
        assert_eq!(code("a | b"), "`a | b`");
        assert_eq!(code("x `y` z"), "``x `y` z``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("a\n   b"), "`a b`");
    }

    #[test]
    fn pipes_are_escaped_in_table_cells_only() {
        let row = vec![code("{{ x | upper }}"), cell("a | b")];
        assert_eq!(
            table(&["Code", "Text"], &[row]),
            "| Code | Text |\n|---|---|\n| `{{ x \\| upper }}` | a \\| b |\n\n"
        );
    }

    #[test]
    fn text_cannot_open_html() {
        assert_eq!(text("a <!-- b & <c>"), "a &lt;!-- b &amp; &lt;c&gt;");
        assert_eq!(cell("x\n <y>"), "x &lt;y&gt;");
    }

    #[test]
    fn a_long_text_keeps_its_full_form() {
        assert_eq!(long_code("a  b", 3), "`a b`");
        assert_eq!(
            long_code("abcdef", 3),
            "<details><summary>`abc…`</summary>`abcdef`</details>"
        );
    }

    #[test]
    fn slugs_are_plain() {
        assert_eq!(slug("rb-Dead_letters 2"), "rb-dead-letters-2");
    }
}
