//! `integ doc`: the documentation of a spec, generated from its checked model so that it
//! cannot drift from what runs. `Doc` is the model the documentation shows (the JSON of
//! `--format json`); `markdown` renders it as one GitHub-flavoured file, the same bytes
//! for the same spec (no time, spec order, anchors made from names), keeping the
//! hand-written blocks of the file it replaces. One section per file.
//!
//! The doc reads no secret and no environment variable: it shows names and where each is
//! read from, never a value.

mod capacity;
mod connections;
mod environments;
mod errors;
mod flow;
mod handwritten;
mod index;
mod mapping;
mod markdown;
mod monitoring;
mod overview;
mod runbook;
mod steps;
mod triggers;
mod value;

pub use handwritten::MarkerError;
pub use index::index;

use handwritten::Kept;
use serde::Serialize;
use value::Source;

/// The version of the JSON schema; bumped when a field changes meaning or goes.
pub const SCHEMA: &str = "integ-doc/1";

/// What the doc needs besides the spec.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The base URL senders reach `integ serve` at (`--public-url`).
    pub public_url: Option<String>,
}

/// The documentation of one integration.
#[derive(Debug, Serialize)]
pub struct Doc {
    pub schema: &'static str,
    pub overview: overview::Overview,
    pub connections: Vec<connections::ConnectionDoc>,
    pub names: Vec<connections::NameDoc>,
    pub triggers: Vec<triggers::TriggerDoc>,
    pub steps: Vec<mapping::StepDoc>,
    pub lineage: Vec<mapping::LineageDoc>,
    pub errors: Vec<errors::ErrorDoc>,
    pub capacity: capacity::Capacity,
    pub environments: Vec<environments::EnvironmentDoc>,
    pub tests: Vec<environments::TestDoc>,
    pub monitoring: monitoring::Monitoring,
    pub runbook: Vec<runbook::Entry>,
}

/// A setting's value in force, and whether it is the engine's default (not in the spec).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Effective<T> {
    pub value: T,
    pub default: bool,
}

impl<T> Effective<T> {
    pub fn new(value: T, default: bool) -> Self {
        Self { value, default }
    }

    pub fn set(value: T) -> Self {
        Self::new(value, false)
    }

    pub fn default_of(value: T) -> Self {
        Self::new(value, true)
    }
}

/// The documentation of `model`, the checked model of the spec `text` found at `spec`
/// (a path as the user named it).
pub fn document(
    model: &crate::model::Integration,
    text: &str,
    spec: &str,
    options: &Options,
) -> Doc {
    let source = Source(text);
    let steps = mapping::build(model, source);
    Doc {
        schema: SCHEMA,
        lineage: mapping::lineage(model, &steps),
        steps,
        errors: errors::build(model, source),
        capacity: capacity::build(model),
        tests: environments::tests(model, source),
        monitoring: monitoring::build(model, source),
        runbook: runbook::build(model),
        overview: overview::build(model, source, text, spec),
        connections: model
            .connections
            .iter()
            .map(|c| connections::connection(c, source))
            .collect(),
        names: connections::names_index(model),
        triggers: triggers::build(model, source, options),
        environments: environments::build(model, source),
    }
}

/// The Markdown file of `doc`, keeping the hand-written blocks of `previous` (the file as
/// it is now, if there is one).
pub fn markdown(doc: &Doc, previous: Option<&str>) -> Result<String, MarkerError> {
    let mut kept = match previous {
        Some(previous) => Kept::read(previous)?,
        None => Kept::default(),
    };
    let mut out = overview::markdown(&doc.overview, &mut kept);
    out.push_str(&connections::markdown(
        &doc.connections,
        &doc.environments,
        &doc.names,
    ));
    out.push_str(&triggers::markdown(&doc.triggers));
    out.push_str(&mapping::markdown(&doc.steps, &doc.lineage));
    out.push_str(&errors::markdown(&doc.errors));
    let concurrency = &doc.overview.concurrency;
    let concurrency = markdown::effective(concurrency.value.clone(), concurrency.default);
    out.push_str(&capacity::markdown(&doc.capacity, &concurrency));
    out.push_str(&environments::markdown(
        &doc.environments,
        &doc.connections,
        &doc.tests,
        &doc.overview.spec,
    ));
    out.push_str(&monitoring::markdown(
        &doc.monitoring,
        &doc.overview.integration,
    ));
    out.push_str(&runbook::markdown(&doc.runbook, &mut kept));
    let orphans = kept.orphans();
    if !orphans.is_empty() {
        out.push_str(&markdown::heading(2, "kept", "Hand-written text kept"));
        out.push_str(
            "These blocks were written for parts the spec no longer has. They are kept \
            until someone moves or deletes them.\n\n",
        );
        for block in orphans {
            out.push_str(&block);
            out.push('\n');
        }
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    Ok(out)
}

/// `doc` as JSON, for portals and other tools.
pub fn json(doc: &Doc) -> String {
    // Plain structs with string keys: serializing them cannot fail.
    serde_json::to_string_pretty(doc).unwrap_or_default() + "\n"
}

/// `doc` as JSON on one line.
pub fn json_line(doc: &Doc) -> String {
    serde_json::to_string(doc).unwrap_or_default() + "\n"
}
