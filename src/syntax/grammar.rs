//! The pest parser generated from `grammar/integ.pest`.

/// Parser for `.integ` text; its `Rule` enum names every grammar rule.
#[derive(pest_derive::Parser, Debug)]
#[grammar = "grammar/integ.pest"]
pub struct IntegParser;
