//! A spec's value as the documentation shows it: a constant, an environment variable, a
//! secret's name (never its value: the doc never reads one), or the expression as written.

use crate::ast::{Expr, ExprKind};
use crate::span::Span;
use serde::Serialize;

/// The text of the spec, to show expressions as they are written, and where its comments
/// are (the parser's spans), to leave them out.
#[derive(Debug, Clone, Copy)]
pub struct Source<'a> {
    text: &'a str,
    comments: &'a [Span],
}

impl<'a> Source<'a> {
    pub fn new(text: &'a str, comments: &'a [Span]) -> Self {
        Self { text, comments }
    }

    /// The text of `span` on one line (runs of white space made one), without the comments
    /// written inside it (a multi-line condition may explain its parts). An expression's span
    /// leaves out the parentheses around its first or last operand (`($.a ?? "") != ""`
    /// starts at `$.a`): those are taken back in, so that the text reads as written.
    pub fn written(&self, span: Span) -> String {
        let (mut start, mut end) = (span.start, span.end);
        let (lowest, balance) = paren_balance(&self.uncommented(start, end));
        let mut opens = -lowest;
        while opens > 0 {
            match self.text.get(..start).map(|before| before.trim_end()) {
                Some(before) if before.ends_with('(') => {
                    start = before.len() - 1;
                    opens -= 1;
                }
                _ => break,
            }
        }
        let mut closes = balance - lowest;
        while closes > 0 {
            let after = self.text.get(end..).unwrap_or("");
            let trimmed = after.trim_start();
            if !trimmed.starts_with(')') {
                break;
            }
            end += after.len() - trimmed.len() + 1;
            closes -= 1;
        }
        let shown = self.uncommented(start, end);
        shown.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// The text from `start` to `end`, each comment in it made a space.
    fn uncommented(&self, start: usize, end: usize) -> String {
        let text = |start, end| self.text.get(start..end).unwrap_or("");
        let mut shown = String::new();
        let mut at = start;
        for comment in self
            .comments
            .iter()
            .filter(|c| c.start >= start && c.end <= end)
        {
            shown.push_str(text(at, comment.start));
            shown.push(' ');
            at = comment.end;
        }
        shown.push_str(text(at, end));
        shown
    }

    pub fn value(&self, expr: &Expr) -> Value {
        match &expr.kind {
            ExprKind::String(text) => Value::Constant {
                text: text.value.clone(),
            },
            ExprKind::Call { function, args } if function.node == "secret" => {
                match args.first().map(|a| &a.kind) {
                    Some(ExprKind::String(name)) => Value::Secret {
                        name: name.value.clone(),
                    },
                    _ => self.expression(expr),
                }
            }
            ExprKind::Call { function, args } if function.node == "env" => {
                match (args.first().map(|a| &a.kind), args.get(1)) {
                    (Some(ExprKind::String(name)), default) => Value::Env {
                        name: name.value.clone(),
                        default: default.map(|d| self.value(d).to_string()),
                    },
                    _ => self.expression(expr),
                }
            }
            ExprKind::Number(_) | ExprKind::Bool(_) | ExprKind::Null => Value::Constant {
                text: self.written(expr.span),
            },
            _ => self.expression(expr),
        }
    }

    fn expression(&self, expr: &Expr) -> Value {
        Value::Expression {
            text: self.written(expr.span),
        }
    }
}

/// The lowest running count of `(` less `)` outside string literals (how many `(` are
/// missing before the text), and the count at the end.
fn paren_balance(text: &str) -> (i64, i64) {
    paren_depths(text).fold((0, 0), |(lowest, _), (_, depth)| (lowest.min(depth), depth))
}

/// After each character of `text`, where it ends and how many `(` are open (less the `)`),
/// what is inside string literals (`"..."`, `'...'`, with `\` escapes) not counted.
pub fn paren_depths(text: &str) -> impl Iterator<Item = (usize, i64)> + '_ {
    let (mut quote, mut escaped, mut depth) = (None, false, 0i64);
    text.char_indices().map(move |(at, c)| {
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '(') => depth += 1,
            (None, ')') => depth -= 1,
            (None, _) => {}
        }
        (at + c.len_utf8(), depth)
    })
}

/// How a value is resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Value {
    Constant {
        text: String,
    },
    /// `env("NAME", default)`: read from the environment when the spec is run.
    Env {
        name: String,
        default: Option<String>,
    },
    /// `secret("NAME")`: only the name, never a value.
    Secret {
        name: String,
    },
    /// Evaluated per event (a JSONPath, a template, an operator), as written.
    Expression {
        text: String,
    },
    /// A credential that is neither a secret nor an environment variable: never shown.
    Withheld,
}

impl Value {
    /// The value of a credential: its name when it has one, else nothing of it. (The
    /// checker refuses a credential written out; this holds even if it let one through.)
    pub fn credential(self) -> Self {
        match self {
            Self::Secret { name } => Self::Secret { name },
            Self::Env { name, .. } => Self::Env {
                name,
                default: None,
            },
            _ => Self::Withheld,
        }
    }
}

/// Plain text, for labels and JSON.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Constant { text } | Self::Expression { text } => f.write_str(text),
            Self::Env {
                name,
                default: Some(default),
            } => write!(f, "env {name} (default {default})"),
            Self::Env {
                name,
                default: None,
            } => write!(f, "env {name}"),
            Self::Secret { name } => write!(f, "secret {name}"),
            Self::Withheld => f.write_str("(not shown)"),
        }
    }
}

/// Every `secret()` and `env()` name a value reads, in the order written (templates can
/// call neither: the checker refuses them there).
pub fn names(expr: &Expr, found: &mut Vec<(NameKind, String)>) {
    match &expr.kind {
        ExprKind::Call { function, args } => {
            let kind = match function.node.as_str() {
                "secret" => Some(NameKind::Secret),
                "env" => Some(NameKind::Env),
                _ => None,
            };
            if let (Some(kind), Some(ExprKind::String(name))) =
                (kind, args.first().map(|a| &a.kind))
            {
                found.push((kind, name.value.clone()));
            }
            args.iter().for_each(|a| names(a, found));
        }
        ExprKind::Array(items) => items.iter().for_each(|i| names(i, found)),
        ExprKind::Object(fields) => fields.iter().for_each(|(_, v)| names(v, found)),
        ExprKind::Not(inner) => names(inner, found),
        ExprKind::Binary { lhs, rhs, .. } => {
            names(lhs, found);
            names(rhs, found);
        }
        _ => {}
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NameKind {
    Secret,
    Env,
}

#[cfg(test)]
mod tests {
    use super::Source;
    use crate::span::Span;

    #[test]
    fn the_parentheses_an_expression_span_leaves_out_are_taken_back() {
        let text = r#"when ($.note ?? "(") != "" or ($.a == 1)"#;
        let start = text.find("$.note").unwrap_or(0);
        let end = text.rfind("== 1").unwrap_or(0) + 4;
        assert_eq!(
            Source::new(text, &[]).written(Span::new(start, end)),
            r#"($.note ?? "(") != "" or ($.a == 1)"#
        );
    }

    #[test]
    fn comments_inside_a_span_are_left_out_and_hashes_in_strings_kept() {
        let text = "when $.a == \"#1\" # first\n  and $.b # second ( \n  == 2";
        let comments = [" # first", " # second ( "].map(|c| {
            let start = text.find(c).unwrap_or(0) + 1;
            Span::new(start, start + c.len() - 1)
        });
        let start = text.find("$.a").unwrap_or(0);
        assert_eq!(
            Source::new(text, &comments).written(Span::new(start, text.len())),
            "$.a == \"#1\" and $.b == 2"
        );
    }
}
