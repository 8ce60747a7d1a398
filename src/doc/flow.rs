//! §1: the flow as a Mermaid flowchart that GitHub renders: triggers, their filters, the
//! steps in run order with their conditions, what a failure leads to, and the APIs called.
//! Node ids are a prefix and a spec name (never a bare `end`); labels are quoted and
//! escaped; there is no styling, which would break GitHub's dark mode.

use super::markdown::shorten;
use super::value::Source;
use crate::model::{Integration, OnError, Step, Trigger};

/// Above this many steps the chart draws each run of plain steps (no condition, no
/// fallback, no skip: nothing branches off them) as one node, so that it stays readable.
const MAX_STEPS: usize = 25;

pub fn flowchart(model: &Integration, source: Source<'_>) -> String {
    let mut chart = Chart::default();
    chart.line("flowchart LR".into());
    let units = units(&model.steps);
    let first = units.first().map_or("ok".to_string(), Unit::entry);
    for (index, trigger) in model.triggers.iter().enumerate() {
        chart.trigger(index + 1, trigger, source, &first);
    }
    for (index, unit) in units.iter().enumerate() {
        let next = units.get(index + 1).map_or("ok".to_string(), Unit::entry);
        match unit {
            Unit::Step(step) => chart.step(step, source, &next, model),
            Unit::Group(steps) => chart.group(steps, &next),
        }
    }
    for connection in &model.connections {
        let id = format!("conn_{}", connection.name);
        chart.node(&id, "{{", &[format!("{} API", connection.name)], "}}");
    }
    chart.ends();
    chart.lines.join("\n")
}

/// What the chart says under it when it grouped steps: how many, and where every step is.
pub fn note(model: &Integration) -> Option<String> {
    let groups: Vec<usize> = units(&model.steps)
        .iter()
        .filter_map(|unit| match unit {
            Unit::Group(steps) => Some(steps.len()),
            Unit::Step(_) => None,
        })
        .collect();
    if groups.is_empty() {
        return None;
    }
    Some(format!(
        "With {} steps, the chart draws each run of consecutive steps without a condition, \
        fallback or skip as one node: {} steps in {} nodes. Every step is in \
        [4. Data mapping](#mapping) and [5. Error handling](#errors).",
        model.steps.len(),
        groups.iter().sum::<usize>(),
        groups.len()
    ))
}

/// What the chart draws as one: a step, or a run of plain steps.
enum Unit<'a> {
    Step(&'a Step),
    Group(&'a [Step]),
}

impl Unit<'_> {
    /// The node the unit is entered by: a step's condition when it has one.
    fn entry(&self) -> String {
        match self {
            Unit::Step(step) if step.when.is_some() => format!("cond_{}", step.name),
            Unit::Step(step) => format!("st_{}", step.name),
            Unit::Group(steps) => group_id(steps),
        }
    }
}

/// Every step on its own, or, above `MAX_STEPS`, runs of two or more plain steps grouped.
fn units(steps: &[Step]) -> Vec<Unit<'_>> {
    if steps.len() <= MAX_STEPS {
        return steps.iter().map(Unit::Step).collect();
    }
    let mut units = Vec::new();
    let mut rest = steps;
    while let Some(step) = rest.first() {
        let run = rest.iter().take_while(|s| plain(s)).count();
        let (unit, taken) = if run >= 2 {
            (Unit::Group(&rest[..run]), run)
        } else {
            (Unit::Step(step), 1)
        };
        units.push(unit);
        rest = &rest[taken..];
    }
    units
}

/// A step nothing branches off besides the end of the run: no condition, and a failure
/// that ends the run (dead letter or failed), which its group's edges show.
fn plain(step: &Step) -> bool {
    step.when.is_none() && matches!(step.on_error, OnError::DeadLetter | OnError::Fail)
}

fn group_id(steps: &[Step]) -> String {
    format!("grp_{}", steps.first().map_or("", |s| s.name.as_str()))
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

    /// A run of plain steps as one node: its connections, and an edge for each way one of
    /// its steps can end the run.
    fn group(&mut self, steps: &[Step], next: &str) {
        let (Some(first), Some(last)) = (steps.first(), steps.last()) else {
            return;
        };
        let id = group_id(steps);
        let label = format!("steps {} … {} ({})", first.name, last.name, steps.len());
        self.node(&id, "[", &[label], "]");
        let mut connections: Vec<&str> = Vec::new();
        for step in steps {
            if !connections.contains(&step.connection.as_str()) {
                connections.push(&step.connection);
                self.edge(&id, "---", None, &format!("conn_{}", step.connection));
            }
        }
        self.edge(&id, "-->", None, next);
        for (end, on_error) in [("dlq", OnError::DeadLetter), ("failed", OnError::Fail)] {
            let failing: Vec<&str> = steps
                .iter()
                .filter(|s| s.on_error == on_error)
                .map(|s| s.name.as_str())
                .collect();
            let label = match failing.as_slice() {
                [] => continue,
                [one] => format!("{one} fails"),
                _ => "a step fails".to_string(),
            };
            self.dead_letters |= end == "dlq";
            self.failed |= end == "failed";
            self.edge(&id, "-.->", Some(&label), end);
        }
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
