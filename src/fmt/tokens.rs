//! The parse tree as a flat list of tokens, each knowing the rules (groups) around it.
//!
//! The grammar's literals (`{`, `=`, `,`, `oauth2`...) make no pairs: they are read from
//! the text between a pair's children. Comments are pairs wherever pest skipped them; a
//! comment after the last token of a rule (pest lets a rule run on over the comments after
//! an optional clause) belongs to the rule around it, so it is moved out to that rule.

use crate::syntax::grammar::Rule;
use pest::iterators::{Pair, Pairs};

/// What a token is, as far as layout cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Comment,
    /// `{`, `[` or `(`.
    Open,
    /// `}`, `]` or `)`.
    Close,
    /// Any other literal of the grammar: `=`, `,`, `:`, `.`, `..`, `oauth2`.
    Literal,
    /// A pair the grammar names: a keyword, a name, a string, a JSONPath, a number...
    Pair(Rule),
}

#[derive(Clone, Debug)]
pub struct Token<'t> {
    pub text: &'t str,
    pub kind: Kind,
    /// Byte offsets in the source.
    pub start: usize,
    pub end: usize,
    /// The groups around the token, outermost first (the file itself left out).
    pub groups: Vec<usize>,
}

/// A rule as written: one pair of the tree that is not a token.
#[derive(Clone, Copy, Debug)]
pub struct Group {
    pub rule: Rule,
    /// The index of its first token.
    pub first: usize,
}

#[derive(Debug, Default)]
pub struct Tokens<'t> {
    pub tokens: Vec<Token<'t>>,
    pub groups: Vec<Group>,
}

/// The tokens of a parsed file, in source order.
pub fn tokens<'t>(text: &'t str, file: Pairs<'t, Rule>) -> Tokens<'t> {
    let mut out = Tokens::default();
    let mut stack = Vec::new();
    for pair in file {
        // `file` is every token's outermost rule: it adds no indentation.
        let (start, end) = (pair.as_span().start(), pair.as_span().end());
        let mut pos = start;
        for child in pair.into_inner() {
            out.gap(text, pos, child.as_span().start(), &stack);
            pos = child.as_span().end();
            out.child(child, &mut stack);
        }
        out.gap(text, pos, end, &stack);
    }
    out
}

impl<'t> Tokens<'t> {
    fn child(&mut self, pair: Pair<'t, Rule>, stack: &mut Vec<usize>) {
        let span = pair.as_span();
        if span.start() == span.end() {
            return;
        }
        let rule = pair.as_rule();
        if rule == Rule::COMMENT {
            self.push(span.as_str(), Kind::Comment, span.start(), stack);
        } else if is_token(&pair) {
            self.push(span.as_str(), Kind::Pair(rule), span.start(), stack);
        } else {
            self.group(pair, stack);
        }
    }

    fn group(&mut self, pair: Pair<'t, Rule>, stack: &mut Vec<usize>) {
        let text = pair.get_input();
        let (start, end) = (pair.as_span().start(), pair.as_span().end());
        let id = self.groups.len();
        let first = self.tokens.len();
        self.groups.push(Group {
            rule: pair.as_rule(),
            first,
        });
        stack.push(id);
        let mut pos = start;
        for child in pair.into_inner() {
            self.gap(text, pos, child.as_span().start(), stack);
            pos = child.as_span().end();
            self.child(child, stack);
        }
        self.gap(text, pos, end, stack);
        stack.pop();
        for token in self.tokens[first..].iter_mut().rev() {
            if token.kind != Kind::Comment {
                break;
            }
            token.groups.clone_from(stack);
        }
    }

    fn push(&mut self, text: &'t str, kind: Kind, start: usize, stack: &[usize]) {
        self.tokens.push(Token {
            text,
            kind,
            start,
            end: start + text.len(),
            groups: stack.to_vec(),
        });
    }

    /// The literals in `text[from..to]`, between two pairs.
    fn gap(&mut self, text: &'t str, from: usize, to: usize, stack: &[usize]) {
        let gap = text.get(from..to).unwrap_or_default();
        let mut chars = gap.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            let start = from + i;
            let (len, kind) = match c {
                c if c.is_whitespace() => continue,
                '{' | '[' | '(' => (1, Kind::Open),
                '}' | ']' | ')' => (1, Kind::Close),
                '.' if gap[i..].starts_with("..") => (2, Kind::Literal),
                c if c.is_ascii_alphanumeric() => {
                    let word = gap[i..]
                        .find(|c: char| !c.is_ascii_alphanumeric())
                        .unwrap_or(gap.len() - i);
                    (word, Kind::Literal)
                }
                c => (c.len_utf8(), Kind::Literal),
            };
            while chars.next_if(|&(j, _)| j < i + len).is_some() {}
            self.push(&text[start..start + len], kind, start, stack);
        }
    }
}

/// A pair laid out as one piece of text: one without children, or a string, a quoted key
/// or a mapping target (whose children are parts of one word).
fn is_token(pair: &Pair<'_, Rule>) -> bool {
    matches!(pair.as_rule(), Rule::string | Rule::key | Rule::target)
        || pair.clone().into_inner().next().is_none()
}
