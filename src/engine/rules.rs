//! Response rules at run time: the first rule whose statuses and condition match an answer
//! gives its verdict. Compiled once in the plan; evaluated only for steps that have rules.

use super::http::{Response, Verdict, excerpt, header_wait};
use crate::plan::{ActionPlan, Answer, DelayPlan, RulePlan, Scope, Value, as_text};
use minijinja::Environment;
use serde_json::Value as Json;
use std::sync::Arc;
use std::time::Duration;

/// The verdict of the first rule that matches `response`, read in `scope` (the step's:
/// its event, earlier results and `for_each` element), with `$` the answer's body.
pub(super) fn judge(
    rules: &[RulePlan],
    env: &Arc<Environment<'static>>,
    scope: &Scope<'_>,
    response: &Response,
) -> Option<Verdict> {
    let status = response.status;
    let scope = Scope {
        document: &response.body,
        answer: Some(Answer {
            status,
            headers: &response.headers,
        }),
        ..*scope
    };
    let rule = rules.iter().find(|rule| matches(rule, env, &scope))?;
    let message = |message: &Option<Value>| self::message(message.as_ref(), env, &scope);
    Some(match &rule.action {
        ActionPlan::Succeed => Verdict::Succeed,
        ActionPlan::Empty => Verdict::Empty,
        ActionPlan::Fail { message: written } => Verdict::Fail(message(written)),
        ActionPlan::Retry {
            after,
            message: written,
        } => Verdict::Retry {
            after: after.as_ref().and_then(|after| wait(after, env, &scope)),
            message: message(written),
        },
    })
}

fn matches(rule: &RulePlan, env: &Arc<Environment<'static>>, scope: &Scope<'_>) -> bool {
    let status = scope.answer.map_or(0, |a| a.status);
    if !rule.statuses.iter().any(|s| s.matches(status)) {
        return false;
    }
    let Some(when) = &rule.when else {
        return true;
    };
    // A body that is not JSON (an HTML error page, an empty 204) is a string or null: a
    // condition on its fields reads them as missing, so it does not match; it never fails.
    match when.test(env, scope) {
        Ok(holds) => holds,
        Err(error) => {
            let error = scope.secrets.redact(&error.to_string());
            tracing::warn!(status, %error, "a response rule's condition could not be read; the rule is passed over");
            false
        }
    }
}

/// The failure's message: the rule's, else an excerpt of the body; either at most 512 bytes.
fn message(written: Option<&Value>, env: &Arc<Environment<'static>>, scope: &Scope<'_>) -> String {
    let excerpt_of_body = || {
        let body = match scope.document {
            Json::String(text) => text.clone(),
            other => other.to_string(),
        };
        format!(
            "a response rule failed the answer: {}",
            excerpt(body.as_bytes())
        )
    };
    match written.map(|m| m.eval(env, scope)) {
        None => excerpt_of_body(),
        // Bounded like the default: a message quoting the body would carry all of it
        // into the report, the run history, dead letters and log lines.
        Some(Ok(text)) => excerpt(as_text(text.as_ref()).as_bytes()),
        Some(Err(error)) => {
            let error = scope.secrets.redact(&error.to_string());
            tracing::warn!(%error, "a response rule's message could not be written; the body is shown instead");
            excerpt_of_body()
        }
    }
}

/// The wait an answer names, if it names one that can be read; the retry policy bounds it.
fn wait(after: &DelayPlan, env: &Arc<Environment<'static>>, scope: &Scope<'_>) -> Option<Duration> {
    match after {
        DelayPlan::Header(name) => scope.answer.and_then(|a| header_wait(a.headers, name)),
        DelayPlan::Value(value) => match value.eval(env, scope) {
            Ok(Some(seconds)) => {
                let wait = self::seconds(&seconds);
                if wait.is_none() {
                    tracing::warn!(value = %excerpt(seconds.to_string().as_bytes()), "a response rule's wait is not a number of seconds; the backoff applies");
                }
                wait
            }
            Ok(None) => None,
            Err(error) => {
                let error = scope.secrets.redact(&error.to_string());
                tracing::warn!(%error, "a response rule's wait could not be read; the backoff applies");
                None
            }
        },
    }
}

/// A number of seconds, or digits in a string: negative or not a number is no wait; one
/// too large for a `Duration` is the longest there is (the retry policy refuses it).
fn seconds(value: &Json) -> Option<Duration> {
    let seconds = match value {
        Json::Number(number) => number.as_f64()?,
        Json::String(text) => text.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if seconds.is_nan() || seconds < 0.0 {
        return None;
    }
    Some(Duration::try_from_secs_f64(seconds).unwrap_or(Duration::MAX))
}

#[cfg(test)]
mod tests {
    use super::seconds;
    use serde_json::json;
    use std::time::Duration;

    #[test]
    fn hostile_waits_are_bounded_never_a_panic() {
        assert_eq!(seconds(&json!(3)), Some(Duration::from_secs(3)));
        assert_eq!(seconds(&json!(1.5)), Some(Duration::from_millis(1500)));
        assert_eq!(seconds(&json!("2")), Some(Duration::from_secs(2)));
        assert_eq!(seconds(&json!(1e308)), Some(Duration::MAX));
        assert_eq!(seconds(&json!("inf")), Some(Duration::MAX));
        assert_eq!(seconds(&json!(-1)), None);
        assert_eq!(seconds(&json!("NaN")), None);
        assert_eq!(seconds(&json!("soon")), None);
        assert_eq!(seconds(&json!(null)), None);
        assert_eq!(seconds(&json!({"s": 1})), None);
    }
}
