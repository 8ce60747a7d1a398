//! Expressions: JSONPaths and templates compile, their roots exist and have run, functions
//! are known and called right.

use super::template_names::{self, NameKind};
use super::{Checker, suggest};
use crate::ast::{Expr, ExprKind, PathExpr, Text};
use crate::diagnostic::DiagnosticKind;
use crate::span::Span;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

/// Each step's position in the run, by name.
pub(super) type StepOrder<'a> = HashMap<&'a str, usize>;

/// What an expression may read where it stands.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Scope<'a> {
    /// The steps of the integration, if the expression may read step results at all.
    pub steps: Option<&'a StepOrder<'a>>,
    /// How many steps have run here: those at positions below it.
    pub ran: usize,
    /// The step being checked, so that reading its own result is explained.
    pub current: Option<&'a str>,
    /// Inside a `for_each` step: `$item` and `item` read the current element.
    pub item: bool,
    /// Whether templates may read `event` (false in connections, which are static).
    pub event: bool,
    /// In a response rule: templates read the answer as `body`, `status` and `headers`.
    pub answer: bool,
    /// In the request of an incremental poll: templates read its mark as `since`.
    pub since: bool,
    /// In a webhook trigger's `when` and `dedupe`: `header()` reads the request's headers.
    pub request: Option<Request<'a>>,
}

/// A webhook request, whose headers `header()` may read.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Request<'a> {
    /// The `hmac_sha256` signature's header, a secret like the presets' own.
    pub signature_header: Option<&'a str>,
}

/// The names a response rule's templates read the answer by.
pub(super) const ANSWER_NAMES: &[&str] = &["body", "status", "headers"];

impl Scope<'_> {
    fn position(&self, name: &str) -> Option<usize> {
        self.steps.and_then(|steps| steps.get(name).copied())
    }

    fn has_run(&self, name: &str) -> bool {
        self.position(name).is_some_and(|at| at < self.ran)
    }

    fn runs_later(&self, name: &str) -> bool {
        self.position(name).is_some_and(|at| at >= self.ran)
    }

    /// The names readable here, for help texts: the steps that ran, in order, and `item`.
    fn known(&self) -> Vec<String> {
        let mut ran: Vec<(usize, &str)> = self
            .steps
            .into_iter()
            .flatten()
            .filter(|(_, at)| **at < self.ran)
            .map(|(name, at)| (*at, *name))
            .collect();
        ran.sort();
        let item = self.item.then_some("item");
        ran.into_iter()
            .map(|(_, name)| name)
            .chain(item)
            .map(String::from)
            .collect()
    }
}

/// The functions a spec may call, with the arguments they take.
/// The functions a spec may call: what arguments they take, and an example.
const FUNCTIONS: &[(&str, &str, &str)] = &[
    (
        "secret",
        "a string argument, the secret's name, and optionally the text sent around it with `{}` once where the secret goes",
        r#"secret("KLAVIYO_KEY", "Klaviyo-API-Key {}")"#,
    ),
    (
        "header",
        "one string argument, the name of a header of the webhook request",
        r#"header("X-GitHub-Event")"#,
    ),
    (
        "env",
        "a string argument, the variable's name, and an optional default",
        r#"env("HUBSPOT_URL", "https://api.hubapi.com")"#,
    ),
    (
        "file",
        "one string argument, a path relative to the spec",
        r#"file("fixtures/event.json")"#,
    ),
];

/// Functions minijinja provides to every template, and integ's `now()`.
const TEMPLATE_GLOBALS: &[&str] = &["range", "dict", "debug", "namespace", "loop", "now"];

static TEMPLATES: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
    let mut env = minijinja::Environment::new();
    env.set_debug(true);
    env
});

/// Common minijinja filters and tests, to suggest from; whether a name exists is asked of
/// minijinja itself (`exists`).
const TEMPLATE_FILTERS: &[&str] = &[
    "abs",
    "add_duration",
    "attr",
    "batch",
    "bool",
    "capitalize",
    "count",
    "decimal",
    "default",
    "dictsort",
    "epoch",
    "epoch_ms",
    "escape",
    "first",
    "float",
    "format_time",
    "from_epoch",
    "from_epoch_ms",
    "from_minor_units",
    "groupby",
    "indent",
    "int",
    "items",
    "join",
    "last",
    "length",
    "lines",
    "list",
    "lower",
    "map",
    "max",
    "min",
    "reject",
    "rejectattr",
    "replace",
    "reverse",
    "round",
    "safe",
    "segments",
    "select",
    "selectattr",
    "slice",
    "sort",
    "split",
    "string",
    "sum",
    "title",
    "to_minor_units",
    "tojson",
    "trim",
    "unique",
    "upper",
    "urlencode",
];
const TEMPLATE_TESTS: &[&str] = &[
    "boolean",
    "defined",
    "divisibleby",
    "endingwith",
    "eq",
    "even",
    "false",
    "filter",
    "float",
    "ge",
    "gt",
    "in",
    "integer",
    "iterable",
    "le",
    "lower",
    "lt",
    "mapping",
    "ne",
    "none",
    "number",
    "odd",
    "safe",
    "sameas",
    "sequence",
    "startingwith",
    "string",
    "test",
    "true",
    "undefined",
    "upper",
];

/// Whether minijinja knows filter or test `name`: a template naming it renders without an
/// unknown-filter (or test) error. Asked once per name.
fn exists(kind: NameKind, name: &str) -> bool {
    static ASKED: LazyLock<Mutex<HashMap<(NameKind, String), bool>>> =
        LazyLock::new(Mutex::default);
    if kind == NameKind::Filter && super::template_filters::integ_filter(name).is_some() {
        return true;
    }
    let key = (kind, name.to_string());
    if let Some(known) = ASKED.lock().ok().and_then(|asked| asked.get(&key).copied()) {
        return known;
    }
    let probe = match kind {
        NameKind::Filter => format!("{{{{ none | {name} }}}}"),
        NameKind::Test => format!("{{{{ none is {name} }}}}"),
    };
    let known = match TEMPLATES.render_str(&probe, ()) {
        Ok(_) => true,
        Err(error) => !matches!(
            error.kind(),
            minijinja::ErrorKind::UnknownFilter | minijinja::ErrorKind::UnknownTest
        ),
    };
    if let Ok(mut asked) = ASKED.lock() {
        asked.insert(key, known);
    }
    known
}

impl<'a> Checker<'a> {
    pub(super) fn expr(&mut self, expr: &Expr, scope: &Scope<'_>) {
        match &expr.kind {
            ExprKind::Null
            | ExprKind::Bool(_)
            | ExprKind::Number(_)
            | ExprKind::Duration(_)
            | ExprKind::String(_) => {}
            ExprKind::Template(text) => self.template(text, scope),
            ExprKind::Path(path) => self.path(path, expr.span, scope),
            ExprKind::Call { function, args } => {
                self.call(function, args, expr.span, scope);
                for arg in args {
                    self.expr(arg, scope);
                }
            }
            ExprKind::Array(items) => items.iter().for_each(|item| self.expr(item, scope)),
            ExprKind::Object(properties) => {
                for (_, value) in properties {
                    self.expr(value, scope);
                }
            }
            ExprKind::Not(inner) => self.expr(inner, scope),
            ExprKind::Binary { op, lhs, rhs } => {
                if is_comparison(op.node) && is_comparison_expr(lhs) {
                    self.report(DiagnosticKind::ChainedComparison, expr.span);
                }
                self.expr(lhs, scope);
                self.expr(rhs, scope);
            }
        }
    }

    /// An expression that must be a JSONPath, such as `items` or `each`.
    pub(super) fn path_only(&mut self, expr: &Expr, what: &'static str, scope: &Scope<'_>) {
        if !matches!(expr.kind, ExprKind::Path(_)) {
            self.report(DiagnosticKind::NotAPath { what }, expr.span);
        }
        self.expr(expr, scope);
    }

    fn path(&mut self, path: &PathExpr, span: Span, scope: &Scope<'_>) {
        if let Some(root) = &path.root {
            let name = root.node.as_str();
            let is_item = scope.item && name == "item";
            if !is_item && !scope.has_run(name) {
                self.unknown_name(&format!("${name}"), name, root.span, scope);
            } else if !is_item {
                self.note_read(name, root.span);
            }
        }
        match jsonpath_rust::parser::parse_json_path(&path.query) {
            Err(error) => {
                let (reason, at) = jsonpath_error(&error, &path.query);
                let at = at.map_or(span, |range| path.span_of(range));
                self.report(DiagnosticKind::InvalidJsonPath { reason }, at);
            }
            Ok(query) => {
                if let Some((pattern, error)) = super::jsonpath_regex::invalid_regex(&query) {
                    let reason =
                        format!("the regular expression `{pattern}` does not compile: {error}");
                    self.report(DiagnosticKind::InvalidJsonPath { reason }, span);
                }
            }
        }
    }

    fn template(&mut self, text: &Text, scope: &Scope<'_>) {
        let template = match TEMPLATES.template_from_str(&text.value) {
            Ok(template) => template,
            Err(error) => {
                let at = error.range().map_or(text.span, |range| text.span_of(range));
                let reason = error.detail().unwrap_or("it does not parse").to_string();
                self.report(DiagnosticKind::InvalidTemplate { reason }, at);
                return;
            }
        };
        self.note_prints(text);
        self.integ_filter_arguments(text);
        for (kind, range) in template_names::names(&text.value) {
            let name = &text.value[range.clone()];
            if !exists(kind, name) {
                let known = match kind {
                    NameKind::Filter => TEMPLATE_FILTERS,
                    NameKind::Test => TEMPLATE_TESTS,
                };
                self.report(
                    DiagnosticKind::UnknownTemplateName {
                        what: kind.as_str(),
                        name: name.to_string(),
                        suggestion: suggest::closest(name, known.iter().copied()),
                    },
                    text.span_of(range),
                );
            }
        }
        let mut names: Vec<String> = template.undeclared_variables(false).into_iter().collect();
        names.sort();
        for name in names {
            // `secret` names the function, unless a step of that name is in sight.
            if name == "secret" && scope.position(&name).is_none() {
                let at = find_word(&text.value, &name).map_or(text.span, |r| text.span_of(r));
                self.report(DiagnosticKind::SecretInTemplate, at);
                continue;
            }
            if scope.has_run(&name) && !(scope.item && name == "item") {
                let at = find_word(&text.value, &name).map_or(text.span, |r| text.span_of(r));
                self.note_read(&name, at);
            }
            let known = (scope.event && name == "event")
                || (scope.item && name == "item")
                || (scope.answer && ANSWER_NAMES.contains(&name.as_str()))
                || (scope.since && name == "since")
                || scope.has_run(&name)
                || TEMPLATE_GLOBALS.contains(&name.as_str());
            if !known {
                let at = find_word(&text.value, &name).map_or(text.span, |r| text.span_of(r));
                self.unknown_name(&name, &name, at, scope);
            }
        }
    }

    /// `shown` is how the name is written (`$contact` in a path, `contact` in a template).
    fn unknown_name(&mut self, shown: &str, name: &str, at: Span, scope: &Scope<'_>) {
        if scope.runs_later(name) {
            let is_self = scope.current == Some(name);
            self.report(
                DiagnosticKind::StepNotYetRun {
                    name: name.to_string(),
                    is_self,
                },
                at,
            );
            return;
        }
        let known = scope.known();
        let mut candidates: Vec<&str> = known.iter().map(String::as_str).collect();
        // Templates read `event`; JSONPaths read the event as `$` alone, never `$event`.
        if scope.event && !shown.starts_with('$') {
            candidates.push("event");
        }
        if scope.answer && !shown.starts_with('$') {
            candidates.extend(ANSWER_NAMES);
        }
        let suggestion = suggest::closest(name, candidates).map(|s| {
            if shown.starts_with('$') {
                format!("${s}")
            } else {
                s
            }
        });
        let reason = match name {
            "event" if !scope.event => Some(
                "connections, alerts and test data are fixed before any event arrives; they cannot read `event`",
            ),
            "item" if !scope.item => Some("`item` exists only in a step with `for_each`"),
            "since" if !scope.since => Some(
                "`since` exists only in the request (path, query, headers, body) of a poll that declares `since`",
            ),
            _ if scope.answer => Some(
                "a response rule reads the answer as `body`, `status` and `headers` in templates, and its body as `$` in JSONPaths",
            ),
            _ => None,
        };
        let kind = DiagnosticKind::UnknownRoot {
            name: shown.to_string(),
            known,
            suggestion,
            reason,
        };
        self.report(kind, at);
    }

    fn call(&mut self, function: &crate::ast::Name, args: &[Expr], span: Span, scope: &Scope<'_>) {
        let Some(&(name, expected, example)) = FUNCTIONS.iter().find(|(f, ..)| *f == function.node)
        else {
            let suggestion = suggest::closest(&function.node, FUNCTIONS.iter().map(|(f, ..)| *f));
            let kind = DiagnosticKind::UnknownFunction {
                name: function.node.clone(),
                suggestion,
            };
            self.report(kind, function.span);
            return;
        };
        let arity_ok = match name {
            "env" => (1..=2).contains(&args.len()),
            "secret" => (1..=2).contains(&args.len()) && args.get(1).is_none_or(is_secret_text),
            _ => args.len() == 1,
        };
        let first_is_string = matches!(
            args.first(),
            Some(Expr {
                kind: ExprKind::String(_),
                ..
            })
        );
        if !arity_ok || !first_is_string {
            self.report(
                DiagnosticKind::BadArguments {
                    function: name,
                    expected,
                    example,
                },
                span,
            );
        } else if let (Some(first), "secret" | "env") = (args.first(), name)
            && let ExprKind::String(text) = &first.kind
        {
            self.variable_name(name, &text.value, first.span);
        } else if let (Some(first), "header") = (args.first(), name)
            && let ExprKind::String(text) = &first.kind
        {
            self.request_header(&text.value, first.span, span, scope);
        }
    }

    /// `header("NAME")`: only where a webhook request is read, a valid header name, never a
    /// credential or a signature.
    fn request_header(&mut self, name: &str, at: Span, call: Span, scope: &Scope<'_>) {
        let Some(request) = scope.request else {
            self.report(DiagnosticKind::HeaderWithoutRequest, call);
            return;
        };
        self.header_name(name, at);
        let signature = request
            .signature_header
            .is_some_and(|header| header.eq_ignore_ascii_case(name));
        if crate::secrets::is_secret_header(name) || signature {
            let kind = DiagnosticKind::SecretHeader {
                name: name.to_string(),
            };
            self.report(kind, at);
        }
    }
}

/// The text written around a secret: a plain string with `{}` once and no other brace.
fn is_secret_text(arg: &Expr) -> bool {
    match &arg.kind {
        ExprKind::String(text) => crate::secrets::Credential::composed("", &text.value).is_some(),
        _ => false,
    }
}

fn is_comparison(op: crate::ast::BinaryOp) -> bool {
    use crate::ast::BinaryOp::*;
    matches!(op, Eq | Ne | Lt | Le | Gt | Ge)
}

fn is_comparison_expr(expr: &Expr) -> bool {
    matches!(&expr.kind, ExprKind::Binary { op, .. } if is_comparison(op.node))
}

/// The reason and, where the library gives one, the byte range in the query.
fn jsonpath_error(
    error: &jsonpath_rust::parser::errors::JsonPathError,
    query: &str,
) -> (String, Option<std::ops::Range<usize>>) {
    use jsonpath_rust::parser::errors::JsonPathError;
    match error {
        JsonPathError::PestError(pest_error) => {
            let offset = match pest_error.location {
                pest::error::InputLocation::Pos(pos) => pos,
                pest::error::InputLocation::Span((start, _)) => start,
            };
            let rest = query.get(offset..).unwrap_or("");
            let len = rest.chars().next().map_or(0, char::len_utf8);
            let reason = match rest.chars().next() {
                Some(c) => format!("unexpected `{c}`"),
                None => "the query ends too early".into(),
            };
            (reason, Some(offset..offset + len))
        }
        other => (other.to_string(), None),
    }
}

/// The first whole-word occurrence of `word` in `text`.
/// Whether template `text` reads the name `name` (a variable or a function it calls), as
/// its parsed form says: a word inside a string literal is no read. `None` when it does not
/// parse (that is reported as such).
pub(super) fn template_reads(text: &str, name: &str) -> Option<bool> {
    let template = TEMPLATES.template_from_str(text).ok()?;
    Some(template.undeclared_variables(false).contains(name))
}

fn find_word(text: &str, word: &str) -> Option<std::ops::Range<usize>> {
    let is_word = |c: char| c.is_alphanumeric() || c == '_';
    text.match_indices(word)
        .map(|(i, _)| i..i + word.len())
        .find(|range| {
            let before = text[..range.start].chars().next_back();
            let after = text[range.end..].chars().next();
            !before.is_some_and(is_word) && !after.is_some_and(is_word)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_suggested_filter_and_test_exists_and_a_misspelling_does_not() {
        for name in TEMPLATE_FILTERS {
            assert!(exists(NameKind::Filter, name), "filter {name}");
        }
        for name in TEMPLATE_TESTS {
            assert!(exists(NameKind::Test, name), "test {name}");
        }
        assert!(!exists(NameKind::Filter, "uper"));
        assert!(!exists(NameKind::Test, "defind"));
    }
}
