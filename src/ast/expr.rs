//! Values and expressions.

use crate::span::{Span, Spanned};
use std::time::Duration;

/// A decoded string literal, with the map from offsets in `value` back to the source, so
/// that an error inside the string (a JSONPath or template error) is labelled exactly.
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    pub value: String,
    /// The whole literal, quotes included.
    pub span: Span,
    /// `(offset in value, offset in source)` at the start of each run of bytes that were
    /// copied verbatim; sorted by both offsets.
    pub runs: Vec<(usize, usize)>,
}

impl Text {
    /// The source span of `range`, a byte range of the decoded value.
    pub fn span_of(&self, range: std::ops::Range<usize>) -> Span {
        let start = self.source_offset(range.start);
        let end = self.source_offset(range.end).max(start);
        Span::new(start, end)
    }

    fn source_offset(&self, offset: usize) -> usize {
        let index = self
            .runs
            .partition_point(|&(value_at, _)| value_at <= offset);
        match index.checked_sub(1).and_then(|i| self.runs.get(i)) {
            Some(&(value_at, source_at)) => (source_at + offset - value_at).min(self.span.end),
            None => self.span.start,
        }
    }

    /// Whether the string holds minijinja syntax and is therefore a template.
    pub fn is_template(&self) -> bool {
        self.value.contains("{{") || self.value.contains("{%")
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Duration(Duration),
    /// A string literal without template syntax.
    String(Text),
    /// A string literal with `{{ }}` or `{% %}`: a minijinja template.
    Template(Text),
    Path(PathExpr),
    /// `secret("NAME")`, `env("NAME", default)`, `file("path")`; the checker knows them.
    Call {
        function: Spanned<String>,
        args: Vec<Expr>,
    },
    Array(Vec<Expr>),
    Object(Vec<(Spanned<String>, Expr)>),
    Not(Box<Expr>),
    Binary {
        op: Spanned<BinaryOp>,
        lhs: Box<Expr>,
        rhs: Box<Expr>,
    },
}

/// A JSONPath with an optional named root: `$.id` reads the event (or the document the
/// setting is about), `$contact.properties.email` the result of the step `contact`.
#[derive(Clone, Debug, PartialEq)]
pub struct PathExpr {
    pub root: Option<Spanned<String>>,
    /// The RFC 9535 query with the root name removed: `$.properties.email`.
    pub query: String,
    /// Source offset of the query's `$`; query offset `i` is at source `query_start + i`,
    /// except inside the root name, which `root` spans.
    pub query_start: usize,
}

impl PathExpr {
    /// The source span of a byte range of `query`.
    pub fn span_of(&self, range: std::ops::Range<usize>) -> Span {
        let shift = |offset: usize| match (&self.root, offset) {
            (Some(_), 0) => self.query_start,
            (Some(root), _) => root.span.end + offset - 1,
            (None, _) => self.query_start + offset,
        };
        Span::new(shift(range.start), shift(range.end))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinaryOp {
    Or,
    And,
    /// `a ?? b`: `a` unless it is missing or null.
    Fallback,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Or => "or",
            Self::And => "and",
            Self::Fallback => "??",
            Self::Eq => "==",
            Self::Ne => "!=",
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
        }
    }
}
