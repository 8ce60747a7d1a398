//! Diagnostics are data: a kind (what went wrong, with its code and wording) at a span.
//! Rendering lives in `render`, apart from the checks that produce them.

mod code;
mod kind;
mod render;
mod sarif;
pub mod suggest;

pub use code::Code;
pub use kind::{
    ALERT_CHANNELS, ALERT_METRICS, DiagnosticKind, MISSED_POLICIES, OVERLAP_POLICIES, RULE_ACTIONS,
    RULE_PRESETS, SIGNATURE_PRESETS, STEP_OUTCOMES, Severity,
};
pub use render::{Report, Style, json_record, line_col, line_col_utf16};
pub use sarif::{SarifFile, SarifLinks, sarif_log};

use crate::span::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    pub kind: DiagnosticKind,
    pub span: Span,
    /// Other places worth showing, such as where a name was first declared.
    pub secondary: Vec<(Span, String)>,
}

impl Diagnostic {
    pub fn new(kind: DiagnosticKind, span: Span) -> Self {
        Self {
            kind,
            span,
            secondary: Vec::new(),
        }
    }

    pub fn with_secondary(mut self, span: Span, label: impl Into<String>) -> Self {
        self.secondary.push((span, label.into()));
        self
    }

    pub fn code(&self) -> Code {
        self.kind.code()
    }

    pub fn severity(&self) -> Severity {
        self.kind.severity()
    }
}
