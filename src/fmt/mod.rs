//! `integ fmt`: a spec laid out the one canonical way, from its parse tree.
//!
//! The formatter works on the parse tree alone (never the checked model): it keeps every
//! token and comment in order and changes only the whitespace between them, so the AST of
//! the result is the AST of the input. Indentation, spaces and alignment are canonical;
//! line breaks inside a statement are the author's (see `layout`). A spec that does not
//! parse is not formatted.

mod align;
mod layout;
mod tokens;

use crate::diagnostic::Diagnostic;
use crate::syntax;

/// The canonical text of a spec, or the diagnostics that keep it from being formatted
/// (a syntax error, or anything else the parser reports).
pub fn format(text: &str) -> Result<String, Vec<Diagnostic>> {
    let (spec, diagnostics) = syntax::parse(text);
    if spec.is_none() || !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    let Some(tree) = syntax::tree(text) else {
        return Err(diagnostics);
    };
    let tokens = tokens::tokens(text, tree);
    Ok(align::render(layout::lines(text, &tokens)))
}
