//! Tokens to lines: where a line breaks, how deep it is indented, the spaces between tokens.
//!
//! Line breaks are the author's, with three rules on top: a block of settings written over
//! several lines has each setting on a line of its own and its `}` on its own line; the
//! `{` of such a block stays on the line of its statement; at most one blank line, and none
//! just inside brackets. A line is indented two spaces for each earlier line that opened a
//! rule still open at its start (a block, a statement continued, a bracket), and a line
//! that starts with a closing bracket goes back to the indentation of the line that opened
//! it.

use super::tokens::{Group, Kind, Token, Tokens};
use crate::syntax::{self, grammar::Rule};

/// One line of output. `code` holds several lines when a triple-quoted string spans them.
#[derive(Debug)]
pub struct Line {
    pub indent: usize,
    pub code: String,
    /// A comment written after the code on the same line.
    pub comment: Option<String>,
    pub blank_before: bool,
    /// The line is a comment alone.
    pub comment_only: bool,
    /// Where a setting's key ends, for aligning the values of settings on the lines around.
    pub key: Option<Key>,
}

/// The key of a setting that starts a line, such as `token_url` or `Accept =`'s `Accept`.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// The block the setting is in: keys align with the other keys of their block only.
    pub block: usize,
    /// Byte offset in `code` just after the key, where padding goes.
    pub at: usize,
}

const INDENT: usize = 2;

pub fn lines(text: &str, tokens: &Tokens<'_>) -> Vec<Line> {
    let blocks = Blocks::find(text, tokens);
    let mut layout = Layout {
        text,
        tokens: &tokens.tokens,
        groups: &tokens.groups,
        blocks,
        lines: Vec::new(),
        line_of: Vec::with_capacity(tokens.tokens.len()),
        brackets: Vec::new(),
        key_end: None,
    };
    for index in 0..tokens.tokens.len() {
        layout.place(index);
    }
    layout.lines
}

/// The blocks of settings: their `{` and `}` tokens, and whether they span lines.
struct Blocks {
    open: Vec<Option<usize>>,
    close: Vec<Option<usize>>,
    multiline: Vec<bool>,
}

/// The rules whose braces hold settings (statements) rather than values.
fn is_block(rule: Rule) -> bool {
    matches!(
        rule,
        Rule::integration
            | Rule::defaults
            | Rule::connection
            | Rule::auth_oauth2
            | Rule::headers
            | Rule::query
            | Rule::circuit_breaker
            | Rule::webhook
            | Rule::signature
            | Rule::poll
            | Rule::since
            | Rule::schedule
            | Rule::step
            | Rule::fallback
            | Rule::mapping
            | Rule::environment
            | Rule::test
            | Rule::answers
            | Rule::rules
    )
}

impl Blocks {
    fn find(text: &str, tokens: &Tokens<'_>) -> Self {
        let count = tokens.groups.len();
        let mut blocks = Self {
            open: vec![None; count],
            close: vec![None; count],
            multiline: vec![false; count],
        };
        for (index, token) in tokens.tokens.iter().enumerate() {
            let Some(&group) = token.groups.last() else {
                continue;
            };
            if !tokens.groups.get(group).is_some_and(|g| is_block(g.rule)) {
                continue;
            }
            match token.kind {
                Kind::Open if blocks.open[group].is_none() => blocks.open[group] = Some(index),
                Kind::Close => blocks.close[group] = Some(index),
                _ => {}
            }
        }
        for group in 0..count {
            if let (Some(open), Some(close)) = (blocks.open[group], blocks.close[group]) {
                let between = &text[tokens.tokens[open].start..tokens.tokens[close].start];
                blocks.multiline[group] = between.contains('\n');
            }
        }
        blocks
    }

    fn is_open(&self, group: usize, index: usize) -> bool {
        self.open.get(group).copied().flatten() == Some(index)
    }

    fn is_close(&self, group: usize, index: usize) -> bool {
        self.close.get(group).copied().flatten() == Some(index)
    }

    fn spans_lines(&self, group: usize) -> bool {
        self.multiline.get(group).copied().unwrap_or(false)
    }
}

struct Layout<'a, 't> {
    text: &'t str,
    tokens: &'a [Token<'t>],
    groups: &'a [Group],
    blocks: Blocks,
    lines: Vec<Line>,
    /// The output line of each token placed so far.
    line_of: Vec<usize>,
    /// The output line of each bracket still open.
    brackets: Vec<usize>,
    /// The token after which the key of the setting starting the current line ends.
    key_end: Option<(usize, usize)>,
}

impl Layout<'_, '_> {
    fn place(&mut self, index: usize) {
        let tokens = self.tokens;
        let token = &tokens[index];
        let newlines = match index.checked_sub(1) {
            Some(prev) => self.text[self.tokens[prev].end..token.start]
                .matches('\n')
                .count(),
            None => 0,
        };
        if token.kind == Kind::Comment && newlines == 0 && index > 0 {
            if let Some(line) = self.lines.last_mut() {
                line.comment = Some(token.text.trim_end().to_string());
            }
            self.line_of.push(self.lines.len().saturating_sub(1));
            return;
        }
        if index == 0 || self.breaks_before(index, newlines) {
            self.start_line(index, newlines);
        } else {
            if self.space_before(index) {
                self.current().code.push(' ');
            }
            // Settings that share a line are not aligned with those above and below.
            let line_block = self.key_end.map(|(_, block)| block);
            if line_block.is_some() && self.key_of(index).map(|(_, b)| b) == line_block {
                self.current().key = None;
                self.key_end = None;
            }
        }
        let indent = self.current().indent;
        let text = self.token_text(token, indent);
        self.current().code.push_str(&text);
        if let Some((after, block)) = self.key_end
            && after == index
        {
            let at = self.current().code.len();
            self.current().key = Some(Key { block, at });
        }
        self.line_of.push(self.lines.len() - 1);
        match token.kind {
            Kind::Open => self.brackets.push(self.lines.len() - 1),
            Kind::Close => {
                self.brackets.pop();
            }
            _ => {}
        }
    }

    fn current(&mut self) -> &mut Line {
        if self.lines.is_empty() {
            self.start_line(0, 0);
        }
        let last = self.lines.len() - 1;
        &mut self.lines[last]
    }

    fn start_line(&mut self, index: usize, newlines: usize) {
        let token = &self.tokens[index];
        let prev = index.checked_sub(1).map(|p| &self.tokens[p]);
        let blank_before = newlines >= 2
            && token.kind != Kind::Close
            && prev.is_some_and(|p| p.kind != Kind::Open);
        let indent = self.indent(index);
        self.key_end = self.key_of(index);
        self.lines.push(Line {
            indent,
            code: String::new(),
            comment: None,
            blank_before,
            comment_only: token.kind == Kind::Comment,
            key: None,
        });
    }

    fn breaks_before(&self, index: usize, newlines: usize) -> bool {
        let token = &self.tokens[index];
        let prev = &self.tokens[index - 1];
        if prev.kind == Kind::Comment {
            return true;
        }
        let Some(&owner) = token.groups.last() else {
            return newlines > 0;
        };
        if token.kind == Kind::Open && self.blocks.is_open(owner, index) {
            return false;
        }
        if token.kind == Kind::Close
            && self.blocks.is_close(owner, index)
            && self.blocks.spans_lines(owner)
        {
            return true;
        }
        if let Some(&prev_owner) = prev.groups.last()
            && self.blocks.is_open(prev_owner, index - 1)
            && self.blocks.spans_lines(prev_owner)
        {
            return true;
        }
        newlines > 0 || self.starts_setting_of_long_block(index)
    }

    /// Whether the token is the first of a setting in a block written over several lines.
    fn starts_setting_of_long_block(&self, index: usize) -> bool {
        let groups = &self.tokens[index].groups;
        groups.windows(2).any(|pair| {
            let (block, item) = (pair[0], pair[1]);
            self.blocks.spans_lines(block)
                && self.groups[item].first == index
                && self.blocks.open[block].is_some_and(|open| open < index)
        })
    }

    /// Two spaces per earlier line that opened a rule around the token; a closing bracket
    /// goes back to its opening line's indentation.
    fn indent(&self, index: usize) -> usize {
        let token = &self.tokens[index];
        if token.kind == Kind::Close
            && let Some(&line) = self.brackets.last()
        {
            return self.lines[line].indent;
        }
        let mut opened_on: Vec<usize> = token
            .groups
            .iter()
            .map(|&g| self.groups[g].first)
            .filter(|&first| first < index)
            .filter_map(|first| self.line_of.get(first).copied())
            .collect();
        opened_on.dedup();
        opened_on.len() * INDENT
    }

    /// For a line starting with a setting whose value aligns, the token ending its key.
    fn key_of(&self, index: usize) -> Option<(usize, usize)> {
        let groups = &self.tokens[index].groups;
        groups.windows(2).find_map(|pair| {
            let (block, item) = (pair[0], pair[1]);
            let group = self.groups[item];
            if group.first != index {
                return None;
            }
            match group.rule {
                Rule::assignment
                | Rule::entry
                | Rule::field
                | Rule::since_start
                | Rule::since_lookback
                | Rule::since_send => Some((index, block)),
                // `key: value`: the values align, after the colon.
                Rule::property => Some((index + 1, block)),
                _ => None,
            }
        })
    }

    fn space_before(&self, index: usize) -> bool {
        let token = &self.tokens[index];
        let prev = &self.tokens[index - 1];
        let tight = |t: &Token<'_>| t.kind == Kind::Literal && matches!(t.text, "." | "..");
        match (prev.kind, token.kind) {
            (Kind::Open, Kind::Close) => false,
            (_, Kind::Close) => token.text == "}",
            (Kind::Open, _) => prev.text == "{",
            // A function call: `env(`.
            (Kind::Pair(Rule::ident), Kind::Open) => false,
            (_, Kind::Literal) if matches!(token.text, "," | ":") => false,
            _ => !tight(prev) && !tight(token),
        }
    }

    /// The token's text. A comment loses its trailing blanks; a triple-quoted string's
    /// lines are indented one step past its line, when that keeps its value.
    fn token_text(&self, token: &Token<'_>, indent: usize) -> String {
        if token.kind == Kind::Comment {
            return token.text.trim_end().to_string();
        }
        if token.kind != Kind::Pair(Rule::string) {
            return token.text.to_string();
        }
        reindent(token.text, indent)
            .filter(|moved| syntax::string_value(moved) == syntax::string_value(token.text))
            .unwrap_or_else(|| token.text.to_string())
    }
}

/// A triple-quoted string written over lines of its own (`"""`, the lines, `"""`) with
/// its lines `INDENT` past `indent` and its closing quotes at `indent`. Its value is the
/// same, as the common indentation is dropped; `None` for any other string.
fn reindent(literal: &str, indent: usize) -> Option<String> {
    let body = literal.strip_prefix("\"\"\"\n")?.strip_suffix("\"\"\"")?;
    let (content, closing) = body.rsplit_once('\n')?;
    if !closing.chars().all(|c| c == ' ') {
        return None;
    }
    let lines: Vec<&str> = content.split('\n').collect();
    let was = lines
        .iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start_matches(' ').len())
        .min()?;
    let margin = " ".repeat(indent + INDENT);
    let mut out = String::from("\"\"\"\n");
    for line in lines {
        if line.trim().is_empty() && line.len() <= was {
            out.push('\n');
            continue;
        }
        out.push_str(&margin);
        out.push_str(line.get(was..)?);
        out.push('\n');
    }
    out.push_str(&" ".repeat(indent));
    out.push_str("\"\"\"");
    Some(out)
}
