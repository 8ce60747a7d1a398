//! §5: what happens when a call fails, in words: each step's retry rule (attempts, backoff,
//! what is retried, `Retry-After`), its response rules, its timeout, what happens after the
//! last attempt; then what a dead letter holds and how it is replayed.

use super::markdown::{code, effective, heading, table};
use super::value::Source;
use crate::model::format_duration;
use crate::model::{
    Backoff, Call, Defaults, Delay, Integration, OnError, RetryCondition, RetryPolicy, Rule,
    RuleAction, RuleOrigin, StatusMatch, Step,
};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct ErrorDoc {
    pub step: String,
    /// `step-NAME`, the step's anchor in §4.
    pub id: String,
    pub retry: String,
    /// Whether this is the engine's own policy (no `retry` in the step or the defaults).
    pub retry_default: bool,
    /// Only for a call that is not idempotent.
    pub unsafe_call: Option<String>,
    pub timeout: String,
    pub after_last_attempt: String,
    /// The step's rules, then its connection's, in the order they are tried.
    pub rules: Vec<String>,
    /// What the step takes from the spec's `defaults { }`: `retry`, `timeout`, `on_error`.
    pub from_defaults: Vec<&'static str>,
}

/// The spec's `defaults { }`, in words; what it leaves out is the engine's.
#[derive(Debug, Serialize)]
pub struct DefaultsDoc {
    pub retry: Option<String>,
    pub timeout: Option<String>,
    pub after_last_attempt: Option<String>,
}

/// The spec's `defaults { }`, or `None` when it has none.
pub fn defaults(model: &Integration) -> Option<DefaultsDoc> {
    let defaults = &model.defaults;
    (*defaults != Defaults::default()).then(|| DefaultsDoc {
        retry: defaults.retry.as_ref().map(retry),
        timeout: defaults.timeout.map(format_duration),
        after_last_attempt: defaults.on_error.as_ref().map(after),
    })
}

/// The settings `step` has as the defaults set them (its own may say the same).
fn from_defaults(step: &Step, defaults: &Defaults) -> Vec<&'static str> {
    let mut taken = Vec::new();
    if defaults.retry.as_ref() == Some(&step.retry) {
        taken.push("retry");
    }
    if defaults.timeout.is_some() && defaults.timeout == step.timeout {
        taken.push("timeout");
    }
    if defaults.on_error.as_ref() == Some(&step.on_error) {
        taken.push("on_error");
    }
    taken
}

pub fn build(model: &Integration, source: Source<'_>) -> Vec<ErrorDoc> {
    model
        .steps
        .iter()
        .chain(&model.fallbacks)
        .map(|step| {
            let connection = model.connection(&step.connection);
            let connection_rules = connection.map_or(&[][..], |c| c.rules.as_slice());
            let timeout = match (step.timeout, connection.and_then(|c| c.timeout)) {
                (Some(t), _) => format_duration(t),
                (None, Some(t)) => format!("{} (the connection's)", format_duration(t)),
                (None, None) => effective(format_duration(crate::model::DEFAULT_TIMEOUT), true),
            };
            ErrorDoc {
                step: step.name.clone(),
                id: format!("step-{}", super::markdown::slug(&step.name)),
                retry: retry(&step.retry),
                retry_default: step.retry == RetryPolicy::default(),
                unsafe_call: unsafe_call(step),
                timeout,
                after_last_attempt: after(&step.on_error),
                rules: step
                    .rules
                    .iter()
                    .map(|r| rule(r, source, ""))
                    .chain(
                        connection_rules
                            .iter()
                            .map(|r| rule(r, source, " (the connection's)")),
                    )
                    .collect(),
                from_defaults: from_defaults(step, &model.defaults),
            }
        })
        .collect()
}

/// A retry policy in words.
pub fn retry(policy: &RetryPolicy) -> String {
    let attempts = policy.attempts.get();
    if attempts == 1 {
        return "1 attempt, no retry".into();
    }
    let backoff = match policy.backoff {
        Backoff::Constant => format!("{} between attempts", format_duration(policy.initial_delay)),
        Backoff::Linear => format!(
            "linear backoff from {} to {}",
            format_duration(policy.initial_delay),
            format_duration(policy.max_delay)
        ),
        Backoff::Exponential => format!(
            "exponential backoff from {} to {}",
            format_duration(policy.initial_delay),
            format_duration(policy.max_delay)
        ),
    };
    let jitter = if policy.jitter { " with jitter" } else { "" };
    let on: Vec<String> = policy.on.iter().map(|c| condition(*c)).collect();
    let mut words = format!(
        "{attempts} attempts, {backoff}{jitter}; retried on {}",
        on.join(", ")
    );
    if policy.honor_retry_after {
        words.push_str(&format!(
            "; a `Retry-After` (or rate-limit reset) sets the wait, up to {}, and a longer one \
            fails the attempt (under `integ serve` the event waits instead)",
            format_duration(policy.max_delay)
        ));
    } else {
        words.push_str("; `Retry-After` is not read");
    }
    if let Some(total) = policy.max_elapsed {
        words.push_str(&format!(
            "; no retry starts after {} in all",
            format_duration(total)
        ));
    }
    words
}

fn condition(condition: RetryCondition) -> String {
    match condition {
        RetryCondition::Status(status) => status.to_string(),
        RetryCondition::Class(class) => format!("{class}xx"),
        RetryCondition::Timeout => "timeouts".into(),
        RetryCondition::Network => "connection errors".into(),
    }
}

/// A POST or PATCH without an idempotency key, and a GraphQL mutation, may have been done
/// when an answer is lost: the engine re-sends those only when the failure proves not.
fn unsafe_call(step: &Step) -> Option<String> {
    let unsafe_method = match &step.call {
        Call::Http(method) => !method.is_idempotent(),
        Call::GraphQl { document, .. } => crate::model::is_mutation(document),
    };
    (unsafe_method && step.idempotency_key.is_none() && step.retry.attempts.get() > 1).then(|| {
        "not idempotent and without an idempotency key: retried only after a `429` or a \
        connection that was never made, never after a timeout or a `5xx` (the API may have \
        done it)"
            .into()
    })
}

fn after(on_error: &OnError) -> String {
    match on_error {
        OnError::DeadLetter => "dead letter: the event is kept with its input, the step, the \
            request, the answer and the error, for `integ dlq replay`"
            .into(),
        OnError::Skip => "skip: the step's result is null and the run goes on".into(),
        OnError::Fail => "the run fails, recorded in `integ runs`; the event is not kept for \
            replay"
            .into(),
        OnError::Fallback(name) => format!(
            "runs the fallback step [{name}](#step-{}); its result becomes this step's",
            super::markdown::slug(name)
        ),
    }
}

/// A response rule in words.
fn rule(rule: &Rule, source: Source<'_>, whose: &str) -> String {
    // A preset's rule is shown from the preset's text, which its spans index.
    let (source, preset) = match &rule.origin {
        RuleOrigin::Written => (source, String::new()),
        RuleOrigin::Preset { name, text } => {
            (Source::new(text, &[]), format!(" (preset `{name}`)"))
        }
    };
    let statuses: Vec<String> = rule
        .statuses
        .iter()
        .map(|s| match s {
            StatusMatch::Code(code) => code.to_string(),
            StatusMatch::Class(class) => format!("{class}xx"),
        })
        .collect();
    let mut words = format!("an answer {}", statuses.join(", "));
    if let Some(when) = &rule.when {
        words.push_str(&format!(" where {}", code(&source.written(when.span))));
    }
    let message = |m: &Option<crate::model::Text>| {
        m.as_ref()
            .map(|m| format!(" with the message {}", code(&m.value)))
            .unwrap_or_default()
    };
    let action = match &rule.action {
        RuleAction::Succeed => "is a success".to_string(),
        RuleAction::Empty => "is a success with no result (no items, no next page)".into(),
        RuleAction::Fail { message: m } => format!("fails without retry{}", message(m)),
        RuleAction::Retry { after, message: m } => {
            let wait = match after {
                Some(Delay::Header(header)) => format!(" after the wait in {}", code(header)),
                Some(Delay::Value(value)) => {
                    format!(" after {} seconds", code(&source.written(value.span)))
                }
                None => String::new(),
            };
            format!(
                "is retried{wait}{} (the wait pauses the whole connection)",
                message(m)
            )
        }
    };
    format!("{words} {action}{preset}{whose}")
}

pub fn markdown(integration: &str, defaults: Option<&DefaultsDoc>, errors: &[ErrorDoc]) -> String {
    let mut out = heading(2, "errors", "5. Error handling");
    out.push_str(
        "Each step's effective policy: its own, else the spec's `defaults` (marked *(from \
        defaults)*), else the engine's (marked *(default)*). A step's response rules read each \
        answer before its status does, the step's first, then its connection's.\n\n",
    );
    if let Some(defaults) = defaults {
        out.push_str(&heading(3, "errors-defaults", "The spec's defaults"));
        let engine = "*(not set: the engine's)*".to_string();
        let rows = [
            ("Retry", &defaults.retry),
            ("Timeout per attempt", &defaults.timeout),
            ("After the last attempt", &defaults.after_last_attempt),
        ]
        .map(|(what, set)| vec![what.to_string(), set.clone().unwrap_or(engine.clone())]);
        out.push_str(&table(&["", ""], &rows));
    }
    for error in errors {
        let marked = |text: &str, setting: &str| {
            if error.from_defaults.contains(&setting) {
                format!("{text} *(from defaults)*")
            } else {
                text.to_string()
            }
        };
        let mut rows = vec![
            vec![
                "Retry".into(),
                effective(marked(&error.retry, "retry"), error.retry_default),
            ],
            vec![
                "Timeout per attempt".into(),
                marked(&error.timeout, "timeout"),
            ],
        ];
        if let Some(unsafe_call) = &error.unsafe_call {
            rows.push(vec!["Not idempotent".into(), unsafe_call.clone()]);
        }
        for rule in &error.rules {
            rows.push(vec!["Response rule".into(), rule.clone()]);
        }
        rows.push(vec![
            "After the last attempt".into(),
            marked(&error.after_last_attempt, "on_error"),
        ]);
        let id = format!("errors-{}", error.id);
        out.push_str(&heading(
            3,
            &id,
            &format!("[`{}`](#{})", error.step, error.id),
        ));
        out.push_str(&table(&["", ""], &rows));
    }
    out.push_str(&heading(3, "dead-letters", "Dead letters and replay"));
    out.push_str(&format!(
        "A dead letter holds the event, the step that failed, its last request and answer \
        (secrets redacted), the error and the attempts. `integ dlq list --integration \
        {integration}` and `integ dlq show ID` read them; `integ dlq replay ID` (or `integ dlq \
        replay --all --integration {integration}`) puts them back in the inbox for `integ \
        serve` to run again from the start. Delivery is at least once: a replayed or \
        recovered event runs its steps again, so a step that creates something should send \
        an idempotency key.\n\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"integration orders {
  defaults {
    retry 5 exponential 1s..30s on 5xx
    timeout 7s
  }
  connection shop { base_url "https://shop.example.com" auth none }
  trigger manual
  step first = shop GET "/a"
  step second = shop GET "/b" { retry 2 constant 1s on 429 }
}
"#;

    fn page(spec: &str) -> String {
        let (parsed, _) = crate::syntax::parse(spec);
        let model = crate::check::lower(&parsed.expect("a spec")).expect("a valid spec");
        let source = Source::new(spec, &[]);
        markdown("orders", defaults(&model).as_ref(), &build(&model, source))
    }

    #[test]
    fn the_defaults_get_their_table_and_each_setting_taken_from_them_says_so() {
        let page = page(SPEC);
        let defaults = page.split("The spec's defaults").nth(1).expect("the table");
        assert!(defaults.contains("| Timeout per attempt | 7s |"), "{page}");
        assert!(
            defaults.contains("*(not set: the engine's)*"),
            "on_error: {page}"
        );
        let first = page.split("[`first`]").nth(1).expect("step first");
        let first = first.split("[`second`]").next().unwrap_or_default();
        assert!(
            first.contains("5 attempts") && first.contains("5xx"),
            "{first}"
        );
        assert_eq!(
            first.matches("*(from defaults)*").count(),
            2,
            "retry, timeout: {first}"
        );
        let second = page.split("[`second`]").nth(1).expect("step second");
        assert!(
            second.contains("| Timeout per attempt | 7s *(from defaults)* |"),
            "{second}"
        );
        assert!(
            !second.contains("attempts, constant backoff from 1s *(from"),
            "{second}"
        );
        assert_eq!(second.matches("*(from defaults)*").count(), 1, "{second}");
    }

    #[test]
    fn a_spec_without_defaults_has_no_such_table() {
        let without = SPEC.replace("retry 5 exponential 1s..30s on 5xx\n    timeout 7s\n", "");
        assert!(!page(&without).contains("The spec's defaults"));
        assert!(!page(&without).contains("*(from defaults)* |"));
    }
}
