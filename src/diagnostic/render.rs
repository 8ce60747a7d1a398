//! Rendering diagnostics: miette's graphical report for people, records for programs.

use super::{Diagnostic, Severity};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use std::fmt;

/// How a report is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Unicode and colours, for a terminal.
    Color,
    /// Unicode without colours: pipes, `NO_COLOR`, golden files.
    Plain,
}

/// One diagnostic together with the source it points into, ready for miette.
#[derive(Debug)]
pub struct Report<'a> {
    diagnostic: &'a Diagnostic,
    source: NamedSource<String>,
}

impl<'a> Report<'a> {
    pub fn new(diagnostic: &'a Diagnostic, file: &str, text: &str) -> Self {
        let source = NamedSource::new(file, text.to_string());
        Self { diagnostic, source }
    }

    /// The whole report as text, in a fixed width so golden files do not depend on the
    /// terminal.
    pub fn render(&self, style: Style) -> String {
        let theme = match style {
            Style::Color => GraphicalTheme::unicode(),
            Style::Plain => GraphicalTheme::unicode_nocolor(),
        };
        let handler = GraphicalReportHandler::new_themed(theme).with_width(100);
        let mut out = String::new();
        if handler.render_report(&mut out, self).is_err() {
            out = format!(
                "{}: {}\n",
                self.diagnostic.code().as_str(),
                self.diagnostic.kind
            );
        }
        out
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.diagnostic.kind)
    }
}

impl std::error::Error for Report<'_> {}

impl miette::Diagnostic for Report<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        Some(Box::new(self.diagnostic.code().as_str()))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn fmt::Display + 'b>> {
        self.diagnostic
            .kind
            .help()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let primary = LabeledSpan::new_primary_with_span(
            Some(self.diagnostic.kind.label()),
            self.diagnostic.span,
        );
        let secondary = self
            .diagnostic
            .secondary
            .iter()
            .map(|(span, label)| LabeledSpan::new_with_span(Some(label.clone()), *span));
        Some(Box::new(std::iter::once(primary).chain(secondary)))
    }
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let (line, before) = line_and_prefix(text, offset);
    (line, before.chars().count() + 1)
}

/// 1-based line and column in UTF-16 code units of a byte offset: SARIF's default column
/// unit, the one GitHub and VS Code count in.
pub fn line_col_utf16(text: &str, offset: usize) -> (usize, usize) {
    let (line, before) = line_and_prefix(text, offset);
    (line, before.encode_utf16().count() + 1)
}

/// The 1-based line of a byte offset and the part of that line before it.
fn line_and_prefix(text: &str, offset: usize) -> (usize, &str) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, &before[line_start..])
}

fn floor_char_boundary(text: &str, mut offset: usize) -> usize {
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The `--format json` record of one diagnostic.
pub fn json_record(diagnostic: &Diagnostic, file: &str, text: &str) -> serde_json::Value {
    let (line, column) = line_col(text, diagnostic.span.start);
    serde_json::json!({
        "file": file,
        "code": diagnostic.code().as_str(),
        "severity": diagnostic.severity(),
        "message": diagnostic.kind.to_string(),
        "span": { "start": diagnostic.span.start, "end": diagnostic.span.end },
        "line": line,
        "column": column,
        "label": diagnostic.kind.label(),
        "help": diagnostic.kind.help(),
    })
}
