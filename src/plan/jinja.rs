//! The plan's template environment: how templates treat missing values (docs/language.md,
//! "Mapping rules"), and the filters integ adds or changes.
//!
//! Templates follow what Jinja users expect of payloads where a field may be absent or
//! `null` (GitHub's `pull_request.user`, Shopify's `address2`): both are false in `{% if %}`
//! and `or`, `default` replaces both, and attribute access through them gives another
//! missing value (`event.pr.author.login` with `author: null`). Only printing one fails
//! (`path::path_formatter`). minijinja's `Chainable` undefined behaviour is the one that
//! lets lookups chain; the formatter adds the refusal to print that `Strict` would give.

use super::path::{path_formatter, refuse_non_finite, segments};
use super::{decimal, time};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior, Value};

/// The filter that gives a lone `{{ expression }}` its typed value (see
/// `value::compile_template`); its name cannot be written in a spec (lint refuses unknown
/// filters, E207).
pub(super) const TYPED: &str = "integ_typed_value";

pub(super) fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_formatter(path_formatter);
    env.add_filter("default", default);
    // Lint knows the filters integ adds by name and arguments: `check::INTEG_FILTERS`.
    env.add_filter("segments", segments);
    env.add_function("now", time::now);
    env.add_filter("from_epoch", time::from_epoch);
    env.add_filter("from_epoch_ms", time::from_epoch_ms);
    env.add_filter("epoch", time::epoch);
    env.add_filter("epoch_ms", time::epoch_ms);
    env.add_filter("add_duration", time::add_duration);
    env.add_filter("format_time", time::format_time);
    env.add_filter("from_minor_units", decimal::from_minor_units);
    env.add_filter("to_minor_units", decimal::to_minor_units);
    env.add_filter("decimal", decimal::decimal);
    env.add_filter(TYPED, typed);
    env
}

/// `value | default(other)`: `other` (or `""`) when `value` is missing or null; with a true
/// second argument, also when `value` is false, `0`, `""` or empty. Jinja's own `default`
/// replaces only undefined values, but in JSON payloads "no value" is as often `null` as
/// absent, sometimes both for one field across API versions, and `??` treats them alike.
fn default(value: &Value, other: Option<Value>, lax: Option<bool>) -> Value {
    let replace =
        value.is_undefined() || value.is_none() || (lax == Some(true) && !value.is_true());
    if replace {
        other.unwrap_or_else(|| Value::from(""))
    } else {
        value.clone()
    }
}

/// The JSON of a lone expression's value; a missing value is an undefined error, which the
/// caller turns into *missing* (the field is left out).
fn typed(value: &Value) -> Result<String, Error> {
    if value.is_undefined() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            "the value is missing",
        ));
    }
    // serde_json would write a non-finite float as `null`.
    refuse_non_finite(value)?;
    serde_json::to_string(value).map_err(|e| Error::new(ErrorKind::BadSerialization, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_replaces_missing_and_null_and_with_true_every_false_value() {
        let env = environment();
        let context = minijinja::context! { n => (), zero => 0, empty => "" };
        let render = |template: &str| env.render_str(template, &context).unwrap();
        assert_eq!(render("{{ nope | default('d') }}"), "d");
        assert_eq!(render("{{ nope.a.b | default('d') }}"), "d");
        assert_eq!(render("{{ n | default('d') }}"), "d");
        assert_eq!(render("{{ n.a | default('d') }}"), "d");
        assert_eq!(
            render("{{ zero | default('d') }}{{ empty | default('d') }}"),
            "0"
        );
        assert_eq!(
            render("{{ zero | default('d', true) }}{{ empty | default('e', true) }}"),
            "de"
        );
        assert_eq!(render("[{{ nope | default }}]"), "[]");
    }

    #[test]
    fn every_filter_lint_knows_as_ours_is_registered() {
        let env = environment();
        for filter in crate::check::INTEG_FILTERS {
            let probe = format!("{{{{ 'a' | {} }}}}", filter.name);
            let unknown = env
                .render_str(&probe, ())
                .is_err_and(|e| e.kind() == ErrorKind::UnknownFilter);
            assert!(!unknown, "filter {}", filter.name);
        }
    }

    #[test]
    fn a_number_that_is_no_number_is_never_printed_nor_sent() {
        let env = environment();
        for template in [
            "{{ 1e308 * 10 }}",
            "x{{ (-1) ** 0.5 }}",
            "{{ 1 / 0 }}",
            "{{ 1 // 0 }}",
        ] {
            let error = env.render_str(template, ()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidOperation, "{template}");
        }
        let typed = format!("{{{{ (1e308 * 10) | {TYPED} }}}}");
        assert!(env.render_str(&typed, ()).is_err());
        // Integers overflow into i128 and then fail, never wrap.
        let error = env.render_str(
            "{{ 9223372036854775807 * 9223372036854775807 * 9223372036854775807 }}",
            (),
        );
        assert!(error.is_err());
    }
}
