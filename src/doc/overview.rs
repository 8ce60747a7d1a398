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
use std::path::{Component, Path};

#[derive(Debug, Serialize)]
pub struct Overview {
    pub integration: String,
    pub description: Option<String>,
    pub owner: Option<String>,
    pub tags: Vec<String>,
    /// The spec's path relative to the folder `integ doc` ran in (`spec_path`).
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
    Overview {
        integration: model.name.clone(),
        description: model.description.clone(),
        owner: model.owner.clone(),
        tags: model.tags.clone(),
        spec: spec.to_string(),
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

/// How the doc names the spec at `path`: relative to `cwd` (the folder `integ doc` runs in,
/// where its commands are meant to be typed), `.` and `..` resolved, with `/`. So `specs/x`,
/// `./specs/x` and the absolute path give the same bytes. Without a `cwd`, an absolute path
/// is named by its file name (no machine's folders in the output).
pub fn spec_path(path: &Path, cwd: Option<&Path>) -> String {
    let absolute = match cwd {
        Some(cwd) if cwd.is_absolute() => Some((clean(&cwd.join(path)), clean(cwd))),
        _ => None,
    };
    let parts = match absolute {
        Some((path, cwd)) => {
            let common = path.iter().zip(&cwd).take_while(|(a, b)| a == b).count();
            let up = std::iter::repeat_n("..".to_string(), cwd.len() - common);
            up.chain(path[common..].iter().cloned()).collect()
        }
        None if path.is_absolute() => path
            .file_name()
            .map(|n| vec![n.to_string_lossy().into_owned()])
            .unwrap_or_default(),
        None => clean(path),
    };
    parts.join("/")
}

/// The names of `path`'s parts, `.` dropped and each `..` taking off the part before it
/// (kept at the start of a relative path, dropped at the root).
fn clean(path: &Path) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
            Component::ParentDir if parts.last().is_some_and(|p| p != "..") => {
                parts.pop();
            }
            Component::ParentDir if path.is_absolute() => {}
            Component::ParentDir => parts.push("..".into()),
            Component::Normal(name) => parts.push(name.to_string_lossy().into_owned()),
        }
    }
    parts
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
        out.push_str(&format!("{}\n\n", super::markdown::text(description)));
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

#[cfg(test)]
mod tests {
    use super::spec_path;
    use std::path::Path;

    #[test]
    fn every_spelling_of_a_spec_path_names_it_alike() {
        let cwd = Some(Path::new("/repo"));
        for spelt in [
            "specs/x.integ",
            "./specs/x.integ",
            "specs//./x.integ",
            "/repo/specs/x.integ",
            "/repo/./docs/../specs/x.integ",
        ] {
            assert_eq!(spec_path(Path::new(spelt), cwd), "specs/x.integ", "{spelt}");
        }
        assert_eq!(
            spec_path(Path::new("/elsewhere/x.integ"), cwd),
            "../elsewhere/x.integ"
        );
        assert_eq!(spec_path(Path::new("../up/x.integ"), cwd), "../up/x.integ");
        assert_eq!(spec_path(Path::new("/abs/x.integ"), None), "x.integ");
        assert_eq!(spec_path(Path::new("./a/x.integ"), None), "a/x.integ");
    }
}
