//! §1 and the head of the file: what the integration is, where its spec is and which
//! version of it (a fingerprint, not a date, so that a re-run is byte-identical), its
//! owners (a hand-written block), and the flow.

use super::handwritten::Kept;
use super::markdown::{code, effective, heading, table};
use super::value::Source;
use super::{Effective, GENERATED, flow};
use crate::model::{Integration, Trigger};
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Debug, Serialize)]
pub struct Overview {
    pub integration: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub tags: Vec<String>,
    /// The spec's path as named on the command line (its file name when absolute).
    pub spec: String,
    /// SHA-256 of the spec's text, in hex.
    pub spec_sha256: String,
    pub concurrency: Effective<String>,
    /// One line per trigger: `webhook POST /hooks/x`.
    pub triggers: Vec<String>,
    /// The steps in the order they run.
    pub steps: Vec<String>,
    pub fallbacks: Vec<String>,
    /// Mermaid source.
    pub flowchart: String,
    /// Said under the chart when it grouped steps to stay readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flowchart_note: Option<String>,
}

pub fn build(model: &Integration, source: Source<'_>, text: &str, spec: &str) -> Overview {
    let path = std::path::Path::new(spec);
    let spec = if path.is_absolute() {
        path.file_name()
            .map_or(spec.to_string(), |n| n.to_string_lossy().into_owned())
    } else {
        spec.replace('\\', "/")
    };
    Overview {
        integration: model.name.clone(),
        description: model.description.clone(),
        owner: model.owner.clone(),
        tags: model.tags.clone(),
        spec,
        spec_sha256: spec_sha256(text),
        concurrency: match model.concurrency {
            Some(n) => Effective::set(n.to_string()),
            None => Effective::default_of("unbounded (`integ serve --workers` bounds all)".into()),
        },
        triggers: model.triggers.iter().map(trigger).collect(),
        steps: model.steps.iter().map(|s| s.name.clone()).collect(),
        fallbacks: model.fallbacks.iter().map(|s| s.name.clone()).collect(),
        flowchart: flow::flowchart(model, source),
        flowchart_note: flow::note(model),
    }
}

/// The fingerprint of a spec: the SHA-256 of its text, in hex. The same in the page `integ
/// doc` writes and in `integ serve`'s `integ_integration_info`, so that one leads to the other.
pub fn spec_sha256(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn trigger(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Webhook(hook) => format!("webhook {} {}", hook.method.as_str(), hook.path),
        Trigger::Poll(poll) => format!(
            "poll {} {} {} every {}",
            poll.connection,
            poll.method.as_str(),
            poll.path.value,
            crate::model::format_duration(poll.every)
        ),
        Trigger::Schedule(schedule) => {
            format!("schedule {} ({})", schedule.cron, schedule.timezone.name())
        }
        Trigger::Manual => "manual".into(),
    }
}

pub const SECTIONS: &[(&str, &str)] = &[
    ("overview", "1. Overview"),
    ("connections", "2. Connections and credentials"),
    ("triggers", "3. Triggers and endpoints"),
    ("mapping", "4. Data mapping"),
    ("errors", "5. Error handling"),
    ("capacity", "6. Rate limits and capacity"),
    ("environments", "7. Environments and tests"),
    ("monitoring", "8. Monitoring and alerting"),
    ("runbook", "9. Runbook"),
];

pub fn markdown(overview: &Overview, kept: &mut Kept) -> String {
    let mut out = format!(
        "{GENERATED} from the spec named below: edit the spec, not this file. Only the text \
        between BEGIN_HANDWRITTEN and END_HANDWRITTEN markers is kept when it is generated \
        again. -->\n\n",
    );
    out.push_str(&format!("# {}\n\n", overview.integration));
    if let Some(description) = &overview.description {
        out.push_str(&format!("{description}\n\n"));
    }
    let mut rows = vec![
        vec!["Spec".into(), code(&overview.spec)],
        vec!["Spec SHA-256".into(), code(&overview.spec_sha256)],
    ];
    if let Some(owner) = &overview.owner {
        rows.push(vec!["Owner".into(), super::markdown::cell(owner)]);
    }
    if !overview.tags.is_empty() {
        let tags: Vec<String> = overview.tags.iter().map(|t| code(t)).collect();
        rows.push(vec!["Tags".into(), tags.join(" ")]);
    }
    rows.push(vec![
        "Events run at once".into(),
        effective(
            overview.concurrency.value.clone(),
            overview.concurrency.default,
        ),
    ]);
    out.push_str(&table(&["", ""], &rows));
    out.push_str("**Owners and contacts** (hand-written):\n\n");
    out.push_str(&kept.block(
        "owners",
        "_Not written yet: the team that owns this integration, how to reach it._",
    ));
    out.push('\n');
    let contents: Vec<String> = SECTIONS
        .iter()
        .map(|(id, title)| format!("[{title}](#{id})"))
        .collect();
    out.push_str(&format!("Contents: {}\n\n", contents.join(" · ")));
    out.push_str(&heading(2, "overview", "1. Overview"));
    out.push_str(&summary(overview));
    out.push_str("```mermaid\n");
    out.push_str(&overview.flowchart);
    out.push_str("\n```\n\n");
    if let Some(note) = &overview.flowchart_note {
        out.push_str(&format!("{note}\n\n"));
    }
    out
}

fn summary(overview: &Overview) -> String {
    let triggers: Vec<String> = overview
        .triggers
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} ([3.{}](#trigger-{}))", code(t), i + 1, i + 1))
        .collect();
    let mut out = match triggers.as_slice() {
        [] => "No trigger: runs only with `integ run`. ".to_string(),
        _ => format!("Started by {}. ", triggers.join(", ")),
    };
    let steps: Vec<String> = overview.steps.iter().map(|s| code(s)).collect();
    out.push_str(&format!("Each event runs the steps {}", steps.join(" → ")));
    if !overview.fallbacks.is_empty() {
        let fallbacks: Vec<String> = overview.fallbacks.iter().map(|s| code(s)).collect();
        out.push_str(&format!(
            ", with the fallback steps {}",
            fallbacks.join(", ")
        ));
    }
    out.push_str(
        ". In the diagram, dashed arrows are what happens when a step fails after its last \
        attempt, and lines without arrows join a step to the API it calls.\n\n",
    );
    out
}
