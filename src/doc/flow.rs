//! §1: the flow as a Mermaid flowchart that GitHub renders: triggers, their filters, the
//! steps in run order with their conditions, what a failure leads to, and the APIs called.
//! Node ids are a prefix and a spec name (never a bare `end`); labels are quoted and
//! escaped; there is no styling, which would break GitHub's dark mode.

use super::markdown::shorten;
use super::value::Source;
use crate::model::{Integration, OnError, Step, Trigger};

pub fn flowchart(model: &Integration, source: Source<'_>) -> String {
    let mut chart = Chart::default();
    chart.line("flowchart LR".into());
    let first = model.steps.first().map_or("ok".to_string(), entry);
    for (index, trigger) in model.triggers.iter().enumerate() {
        chart.trigger(index + 1, trigger, source, &first);
    }
    for (index, step) in model.steps.iter().enumerate() {
        let next = model.steps.get(index + 1).map_or("ok".to_string(), entry);
        chart.step(step, source, &next, model);
    }
    for connection in &model.connections {
        let id = format!("conn_{}", connection.name);
        chart.node(&id, "{{", &[format!("{} API", connection.name)], "}}");
    }
    chart.ends();
    chart.lines.join("\n")
}

/// The node a step is entered by: its condition when it has one.
fn entry(step: &Step) -> String {
    if step.when.is_some() {
        format!("cond_{}", step.name)
    } else {
        format!("st_{}", step.name)
    }
}

#[derive(Default)]
struct Chart {
    lines: Vec<String>,
    dropped: bool,
    dead_letters: bool,
    failed: bool,
}

impl Chart {
    fn line(&mut self, line: String) {
        self.lines.push(line);
    }

    /// A node whose label has a line per part.
    fn node(&mut self, id: &str, open: &str, parts: &[String], close: &str) {
        let parts: Vec<String> = parts.iter().map(|p| escape(p)).collect();
        self.line(format!("  {id}{open}\"{}\"{close}", parts.join("<br/>")));
    }

    fn edge(&mut self, from: &str, arrow: &str, label: Option<&str>, to: &str) {
        match label {
            Some(label) => self.line(format!("  {from} {arrow}|{label}| {to}")),
            None => self.line(format!("  {from} {arrow} {to}")),
        }
    }

    fn trigger(&mut self, number: usize, trigger: &Trigger, source: Source<'_>, first: &str) {
        let id = format!("trg_{number}");
        let (label, filters, connection) = match trigger {
            Trigger::Webhook(hook) => {
                let mut label = vec![format!("webhook {} {}", hook.method.as_str(), hook.path)];
                if let Some(signature) = &hook.signature {
                    let preset = super::triggers::preset_name(&signature.preset);
                    label.push(format!("signature {preset}"));
                }
                let mut filters = Vec::new();
                if let Some(each) = &hook.each {
                    filters.push(format!("each {}", source.written(each.span)));
                }
                if let Some(when) = &hook.when {
                    filters.push(format!("when {}", source.written(when.span)));
                }
                if let Some(dedupe) = &hook.dedupe {
                    filters.push(format!("dedupe {}", source.written(dedupe.key.span)));
                }
                (label, filters, None)
            }
            Trigger::Poll(poll) => {
                let label = vec![
                    format!(
                        "poll {} {} {}",
                        poll.connection,
                        poll.method.as_str(),
                        poll.path.value
                    ),
                    format!("every {}", crate::model::format_duration(poll.every)),
                ];
                let mut filters = Vec::new();
                if let Some(when) = &poll.when {
                    filters.push(format!("when {}", source.written(when.span)));
                }
                if let Some(dedupe) = &poll.dedupe {
                    filters.push(format!("dedupe {}", source.written(dedupe.key.span)));
                }
                (label, filters, Some(poll.connection.clone()))
            }
            Trigger::Schedule(schedule) => (
                vec![
                    format!("schedule {}", schedule.cron),
                    schedule.timezone.name().to_string(),
                ],
                Vec::new(),
                None,
            ),
            Trigger::Manual => (vec!["manual: integ run".to_string()], Vec::new(), None),
        };
        self.node(&id, "[", &label, "]");
        if let Some(connection) = connection {
            self.edge(&id, "---", None, &format!("conn_{connection}"));
        }
        let passes = filters.iter().any(|f| !f.starts_with("each "));
        if filters.is_empty() {
            self.edge(&id, "-->", None, first);
            return;
        }
        let filter = format!("flt_{number}");
        self.node(&filter, "{", &filters, "}");
        self.edge(&id, "-->", None, &filter);
        self.edge(&filter, "-->", passes.then_some("pass"), first);
        if passes {
            self.dropped = true;
            self.edge(&filter, "-.->", Some("filtered or seen before"), "dropped");
        }
    }

    fn step(&mut self, step: &Step, source: Source<'_>, next: &str, model: &Integration) {
        let id = format!("st_{}", step.name);
        if let Some(when) = &step.when {
            let condition = format!("cond_{}", step.name);
            let label = format!("when {}", source.written(when.span));
            self.node(&condition, "{", &[label], "}");
            self.edge(&condition, "-->", Some("yes"), &id);
            self.edge(&condition, "-->", Some("no"), next);
        }
        self.step_node(step, &id, source);
        self.edge(&id, "-->", None, next);
        self.failure(step, &id, next, model, source);
    }

    fn step_node(&mut self, step: &Step, id: &str, source: Source<'_>) {
        let mut label = vec![
            step.name.clone(),
            format!("{} {}", step.connection, super::steps::call(step)),
        ];
        if let Some(pages) = &step.per_page {
            label.push(format!("on each page of {pages}"));
        }
        if let Some(for_each) = &step.for_each {
            label.push(format!("for each {}", source.written(for_each.items.span)));
        }
        self.node(id, "[", &label, "]");
        self.edge(id, "---", None, &format!("conn_{}", step.connection));
    }

    /// Where a step goes once its last attempt failed.
    fn failure(
        &mut self,
        step: &Step,
        id: &str,
        next: &str,
        model: &Integration,
        source: Source<'_>,
    ) {
        let attempts = step.retry.attempts.get();
        let after = if attempts == 1 {
            "fails".to_string()
        } else {
            format!("fails after {attempts} attempts")
        };
        match &step.on_error {
            OnError::DeadLetter => {
                self.dead_letters = true;
                self.edge(id, "-.->", Some(&after), "dlq");
            }
            OnError::Fail => {
                self.failed = true;
                self.edge(id, "-.->", Some(&after), "failed");
            }
            OnError::Skip => self.edge(id, "-.->", Some(&format!("{after}, skipped")), next),
            OnError::Fallback(name) => {
                let fallback = format!("fb_{name}");
                self.edge(id, "-.->", Some(&after), &fallback);
                if let Some(step) = model.fallbacks.iter().find(|f| &f.name == name) {
                    // Several steps may fall back on one: it is drawn once.
                    if !self
                        .lines
                        .iter()
                        .any(|l| l.starts_with(&format!("  {fallback}[")))
                    {
                        self.step_node(step, &fallback, source);
                        self.failure(step, &fallback, next, model, source);
                    }
                    self.edge(&fallback, "-->", None, next);
                }
            }
        }
    }

    fn ends(&mut self) {
        let ends = [
            (true, "ok", "([", "run succeeded", "])"),
            (self.failed, "failed", "([", "run failed", "])"),
            (self.dead_letters, "dlq", "[(", "dead letters", ")]"),
            (
                self.dropped,
                "dropped",
                "([",
                "dropped: filtered or duplicate",
                "])",
            ),
        ];
        for (used, id, open, label, close) in ends {
            if used {
                self.node(id, open, &[label.to_string()], close);
            }
        }
    }
}

/// A label part Mermaid shows as written: quotes and angle brackets as entities (`#` first,
/// which starts them), backticks (Markdown strings to Mermaid) as quotes, one line, short.
fn escape(text: &str) -> String {
    let short = shorten(&text.split_whitespace().collect::<Vec<_>>().join(" "), 60);
    short
        .replace('#', "#35;")
        .replace('"', "#quot;")
        .replace('<', "#lt;")
        .replace('>', "#gt;")
        .replace('`', "'")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn labels_hold_no_quote_bracket_or_backtick() {
        assert_eq!(
            escape("when $.a == \"x\" and `b` < 2 #c"),
            "when $.a == #quot;x#quot; and 'b' #lt; 2 #35;c"
        );
    }
}
