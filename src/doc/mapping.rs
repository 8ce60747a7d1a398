//! §4: per step, where each field of its request comes from (target ← source, with its
//! fallback), and a field lineage index: each source field and every place that uses it.

use super::markdown::{code, heading, long_code, slug, table, value};
use super::steps::call;
use super::value::{Source, Value};
use crate::ast::{Assignment, BinaryOp, Expr, ExprKind, TargetSegment};
use crate::model::{Body, Call, Integration, Step, Trigger};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct StepDoc {
    pub name: String,
    pub id: String,
    /// Whether it runs only in place of a failed step.
    pub fallback: bool,
    pub connection: String,
    pub call: String,
    /// When it runs, how often, and what it keeps: in words.
    pub notes: Vec<String>,
    pub fields: Vec<FieldDoc>,
}

/// One value sent: where it goes, what it is, what stands in when it is missing.
#[derive(Debug, Serialize)]
pub struct FieldDoc {
    /// `path`, `query.limit`, `header.Accept`, `body.data.type`, `variables.q`.
    pub target: String,
    pub source: Value,
    /// What the value reads: `event.objectId`, `contact.properties.email`.
    pub reads: Vec<String>,
    /// The right side of `??`, in words.
    pub fallback: Option<Value>,
}

/// A source field and each place that reads it.
#[derive(Debug, Serialize)]
pub struct LineageDoc {
    pub field: String,
    pub used_in: Vec<String>,
}

pub fn build(model: &Integration, source: Source<'_>) -> Vec<StepDoc> {
    let steps = model.steps.iter().map(|s| (s, false));
    let fallbacks = model.fallbacks.iter().map(|s| (s, true));
    steps
        .chain(fallbacks)
        .map(|(step, fallback)| step_doc(step, fallback, source))
        .collect()
}

fn step_doc(step: &Step, fallback: bool, source: Source<'_>) -> StepDoc {
    let written = |e: &Expr| long_code(&source.written(e.span), 120);
    let mut notes = Vec::new();
    if fallback {
        notes.push("Runs only in place of a failed step that names it.".to_string());
    }
    if let Some(pages) = &step.per_page {
        notes.push(format!(
            "Runs on each page of [{pages}](#step-{}) as it arrives.",
            slug(pages)
        ));
    }
    if let Some(when) = &step.when {
        notes.push(format!(
            "Runs only when {}; otherwise it is skipped.",
            written(when)
        ));
    }
    if let Some(each) = &step.for_each {
        let at_once = each.concurrency.map_or_else(
            || format!("{} *(default)*", crate::plan::DEFAULT_CONCURRENCY),
            |n| n.to_string(),
        );
        notes.push(format!(
            "One request per element of {} (`item`), {at_once} at once.",
            written(&each.items)
        ));
    }
    if let Some(pagination) = &step.pagination {
        let pages = pagination.max_pages.map_or_else(
            || format!("{} *(default)*", crate::engine::PAGE_LIMIT),
            |n| n.to_string(),
        );
        notes.push(format!(
            "Pages ({}): the records of each page are {}, at most {pages} pages.",
            paging(&pagination.style),
            written(&pagination.items)
        ));
    } else if let Some(items) = &step.items {
        notes.push(format!("Its result is the records {}.", written(items)));
    }
    if let Some(ttl) = step.cache {
        notes.push(format!(
            "Answers are cached {} (in memory, per process).",
            crate::model::format_duration(ttl)
        ));
    }
    if let Some(key) = &step.idempotency_key {
        notes.push(format!(
            "Idempotency key {}: the same on every retry and replay, so the API can drop a \
            repeat.",
            written(key)
        ));
    }
    StepDoc {
        name: step.name.clone(),
        id: format!("step-{}", slug(&step.name)),
        fallback,
        connection: step.connection.clone(),
        call: call(step),
        notes,
        fields: fields(step, source),
    }
}

fn paging(style: &crate::model::PaginationStyle) -> String {
    use crate::model::PaginationStyle;
    match style {
        PaginationStyle::Cursor(_) => "by cursor".into(),
        PaginationStyle::Offset {
            offset_param,
            limit_param,
            limit,
        } => {
            format!("offset `{offset_param}`, `{limit_param}` {limit}")
        }
        PaginationStyle::Page { param, .. } => format!("page number `{param}`"),
    }
}

fn fields(step: &Step, source: Source<'_>) -> Vec<FieldDoc> {
    let mut fields = Vec::new();
    if step.path.is_template() {
        fields.push(FieldDoc {
            target: "path".into(),
            source: Value::Expression {
                text: format!("\"{}\"", step.path.value),
            },
            reads: template_reads(&step.path.value),
            fallback: template_defaults(&step.path.value),
        });
    }
    for entry in &step.query {
        fields.push(field(
            format!("query.{}", entry.key.node),
            &entry.value,
            source,
        ));
    }
    for entry in &step.headers {
        let mut header = field(format!("header.{}", entry.key.node), &entry.value, source);
        if crate::secrets::is_credential_name(&entry.key.node) {
            header.source = header.source.credential();
        }
        fields.push(header);
    }
    match &step.body {
        Some(Body::Mapping(assignments)) => {
            fields.extend(assignments.iter().map(|a| assignment("body", a, source)));
        }
        Some(Body::Raw(raw)) => fields.push(field("body".into(), raw, source)),
        None => {}
    }
    if let Call::GraphQl { variables, .. } = &step.call {
        fields.extend(variables.iter().map(|a| assignment("variables", a, source)));
    }
    fields
}

fn assignment(root: &str, assignment: &Assignment, source: Source<'_>) -> FieldDoc {
    let mut target = root.to_string();
    for segment in &assignment.target.node {
        match segment {
            TargetSegment::Key(key) => {
                target.push('.');
                target.push_str(key);
            }
            TargetSegment::Index(index) => target.push_str(&format!("[{index}]")),
        }
    }
    field(target, &assignment.value, source)
}

fn field(target: String, expr: &Expr, source: Source<'_>) -> FieldDoc {
    let mut reads = Vec::new();
    collect_reads(expr, &mut reads);
    match &expr.kind {
        ExprKind::Binary { op, lhs, rhs } if op.node == BinaryOp::Fallback => FieldDoc {
            target,
            source: source.value(lhs),
            reads,
            fallback: Some(source.value(rhs)),
        },
        ExprKind::Template(text) => FieldDoc {
            target,
            source: source.value(expr),
            reads,
            fallback: template_defaults(&text.value),
        },
        _ => FieldDoc {
            target,
            source: source.value(expr),
            reads,
            fallback: None,
        },
    }
}

/// The `default(...)` filters of a template, as written: what stands in for a missing or
/// null value there, as `??` does outside templates.
fn template_defaults(template: &str) -> Option<Value> {
    let mut found = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find("default(") {
        let args = &rest[at..];
        let end = closing_paren(args).unwrap_or(args.len());
        let before = rest[..at].trim_end();
        if before.ends_with('|') {
            found.push(args[..end].to_string());
        }
        rest = &args[end.max(1)..];
    }
    (!found.is_empty()).then(|| Value::Expression {
        text: found.join(", "),
    })
}

/// The end (past its `)`) of the call that `text` begins with, quotes respected.
fn closing_paren(text: &str) -> Option<usize> {
    super::value::paren_depths(text)
        .skip_while(|(_, depth)| *depth == 0)
        .find(|(_, depth)| *depth == 0)
        .map(|(end, _)| end)
}

/// The fields a value reads: `$.a` is the event's `a`, `$contact.b` the step `contact`'s.
fn collect_reads(expr: &Expr, reads: &mut Vec<String>) {
    let mut push = |field: String| {
        if !reads.contains(&field) {
            reads.push(field);
        }
    };
    match &expr.kind {
        ExprKind::Path(path) => {
            let root = path.root.as_ref().map_or("event", |r| r.node.as_str());
            push(format!("{root}{}", path.query.trim_start_matches('$')));
        }
        ExprKind::Template(text) => template_reads(&text.value).into_iter().for_each(push),
        ExprKind::Call { args, .. } | ExprKind::Array(args) => {
            args.iter().for_each(|a| collect_reads(a, reads))
        }
        ExprKind::Object(fields) => fields.iter().for_each(|(_, v)| collect_reads(v, reads)),
        ExprKind::Not(inner) => collect_reads(inner, reads),
        ExprKind::Binary { lhs, rhs, .. } => {
            collect_reads(lhs, reads);
            collect_reads(rhs, reads);
        }
        _ => {}
    }
}

/// The variables a template reads, as dotted paths (`contact.properties.email`).
fn template_reads(template: &str) -> Vec<String> {
    let environment = minijinja::Environment::new();
    let Ok(parsed) = environment.template_from_str(template) else {
        return Vec::new();
    };
    let mut reads: Vec<String> = parsed.undeclared_variables(true).into_iter().collect();
    reads.sort();
    reads
}

/// Each source field, in the order first used, with every place that uses it.
pub fn lineage(model: &Integration, steps: &[StepDoc]) -> Vec<LineageDoc> {
    let mut index: Vec<LineageDoc> = Vec::new();
    let mut add = |field: &str, place: String| match index.iter_mut().find(|l| l.field == field) {
        Some(entry) if !entry.used_in.contains(&place) => entry.used_in.push(place),
        Some(_) => {}
        None => index.push(LineageDoc {
            field: field.to_string(),
            used_in: vec![place],
        }),
    };
    for (number, trigger) in model.triggers.iter().enumerate() {
        let at = format!("[trigger {}](#trigger-{})", number + 1, number + 1);
        for (what, expr) in trigger_reads(trigger) {
            let mut reads = Vec::new();
            collect_reads(expr, &mut reads);
            reads.iter().for_each(|f| add(f, format!("{at} {what}")));
        }
    }
    let all = model.steps.iter().chain(&model.fallbacks);
    for (step, doc) in all.zip(steps) {
        let at = format!("[{}](#{})", step.name, doc.id);
        let conditions = [("condition", step.when.as_ref())]
            .into_iter()
            .chain([("`for_each`", step.for_each.as_ref().map(|f| &f.items))])
            .chain([("idempotency key", step.idempotency_key.as_ref())]);
        for (what, expr) in conditions {
            let mut reads = Vec::new();
            expr.into_iter().for_each(|e| collect_reads(e, &mut reads));
            reads.iter().for_each(|f| add(f, format!("{at} {what}")));
        }
        for field in &doc.fields {
            for read in &field.reads {
                add(read, format!("{at} → `{}`", field.target));
            }
        }
    }
    index
}

fn trigger_reads(trigger: &Trigger) -> Vec<(&'static str, &Expr)> {
    match trigger {
        Trigger::Webhook(hook) => {
            let mut reads: Vec<(&str, &Expr)> = Vec::new();
            reads.extend(hook.when.iter().map(|e| ("`when`", e)));
            reads.extend(hook.dedupe.iter().map(|d| ("`dedupe` key", &d.key)));
            reads
        }
        Trigger::Poll(poll) => {
            let mut reads: Vec<(&str, &Expr)> = Vec::new();
            reads.extend(poll.when.iter().map(|e| ("`when`", e)));
            reads.extend(poll.dedupe.iter().map(|d| ("`dedupe` key", &d.key)));
            reads
        }
        Trigger::Schedule(_) | Trigger::Manual => Vec::new(),
    }
}

pub fn markdown(steps: &[StepDoc], lineage: &[LineageDoc]) -> String {
    let mut out = heading(2, "mapping", "4. Data mapping");
    out.push_str(
        "Per step, what each part of its request is made of. `$.x` and `event.x` read the \
        event, `$name.x` and `name.x` the result of the step `name`, `item` the element of a \
        `for_each`. A missing value leaves its field out; `??` gives the fallback when the \
        value is missing or null.\n\n",
    );
    for (number, step) in steps.iter().enumerate() {
        let title = format!(
            "4.{} `{}`: {} {}",
            number + 1,
            step.name,
            step.connection,
            code(&step.call)
        );
        out.push_str(&heading(3, &step.id, &title));
        for note in &step.notes {
            out.push_str(&format!("{note}\n"));
        }
        if !step.notes.is_empty() {
            out.push('\n');
        }
        if step.fields.is_empty() {
            out.push_str("Sends no mapped values.\n\n");
            continue;
        }
        let rows: Vec<Vec<String>> = step
            .fields
            .iter()
            .map(|f| {
                let reads: Vec<String> = f.reads.iter().map(|r| code(r)).collect();
                vec![
                    code(&f.target),
                    value(&f.source),
                    if reads.is_empty() {
                        "—".into()
                    } else {
                        reads.join(", ")
                    },
                    f.fallback.as_ref().map_or("—".into(), value),
                ]
            })
            .collect();
        out.push_str(&table(
            &["Target", "Source", "Reads", "When missing or null"],
            &rows,
        ));
    }
    out.push_str(&heading(3, "lineage", "Field lineage (source → uses)"));
    if lineage.is_empty() {
        out.push_str("No field of the event or of a step's result is read.\n\n");
        return out;
    }
    let rows: Vec<Vec<String>> = lineage
        .iter()
        .map(|l| vec![code(&l.field), l.used_in.join("<br/>")])
        .collect();
    out.push_str(&table(&["Source field", "Used in"], &rows));
    out
}

#[cfg(test)]
mod tests {
    use super::template_defaults;

    #[test]
    fn a_templates_default_filters_are_its_fallbacks() {
        let text = |t: &str| template_defaults(t).map(|v| v.to_string());
        assert_eq!(
            text("/c/{{ a | default(b) }}/{{ c|default(\")\", true) }}"),
            Some("default(b), default(\")\", true)".into())
        );
        assert_eq!(text("{{ default(x) }} {{ y | upper }}"), None);
    }
}
