//! Named presets of response rules (`rules slack`): what an API's refusals in a `200`
//! mean, written once in the language itself and parsed by the same grammar, so that a
//! preset says exactly what the rules written out would.

use crate::ast::{ConnectionSetting, Rule};
use std::sync::LazyLock;

/// Each preset's rules, as a spec would write them.
const PRESETS: &[(&str, &str)] = &[
    (
        // Slack's Web API answers `200 {"ok": false, "error": "..."}` when it refuses a
        // call. `ratelimited` normally comes with a 429 and `Retry-After`, which the retry
        // policy honours; should it come with a 200, it waits the same.
        "slack",
        r#"when $.ok == false and $.error == "ratelimited" retry after header "Retry-After" "Slack: {{ body.error }}"
           when $.ok == false fail "Slack refused the call: {{ body.error }}""#,
    ),
    (
        // Shopify's GraphQL Admin API answers a query over its cost budget with a
        // `THROTTLED` error and the bucket's state: wait for what is missing, at the rate
        // the bucket refills.
        "shopify",
        r#"2xx, 429 when $.errors[0].extensions.code == "THROTTLED"
             retry after "{{ (body.extensions.cost.requestedQueryCost - body.extensions.cost.throttleStatus.currentlyAvailable) / body.extensions.cost.throttleStatus.restoreRate }}"
             "Shopify throttled the query (cost {{ body.extensions.cost.requestedQueryCost }})""#,
    ),
];

/// A preset's name, the text its rules were parsed from (their spans index it) and its
/// rules (`None`: its text does not parse, which the tests rule out).
type Parsed = (&'static str, String, Option<Vec<Rule>>);

static PARSED: LazyLock<Vec<Parsed>> = LazyLock::new(|| {
    PRESETS
        .iter()
        .map(|(name, rules)| {
            let text = wrapped(rules);
            let parsed = parse(&text);
            (*name, text, parsed)
        })
        .collect()
});

/// The rules of the preset `name`, with the text their spans index; `None` for a name that
/// is no preset.
pub(crate) fn preset(name: &str) -> Option<(&'static [Rule], &'static str)> {
    PARSED
        .iter()
        .find(|(known, _, _)| *known == name)
        .and_then(|(_, text, rules)| Some((rules.as_deref()?, text.as_str())))
}

/// A preset's rules as the rules of a connection of a spec of their own.
fn wrapped(rules: &str) -> String {
    format!(
        "integration preset {{ connection api {{ base_url \"https://api.example.com\" rules {{ {rules} }} }} }}"
    )
}

/// A preset's text, parsed as the rules of a connection. `None` if it does not parse, which
/// the tests below rule out.
fn parse(text: &str) -> Option<Vec<Rule>> {
    let (spec, _) = crate::syntax::parse(text);
    spec?
        .integration
        .connections
        .into_iter()
        .flat_map(|c| c.settings)
        .find_map(|s| match s.node {
            ConnectionSetting::Rules(rules) => Some(rules.list),
            _ => None,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostic::RULE_PRESETS;

    /// Each preset parses, and written out on a connection it lints clean: its conditions,
    /// messages and waits read what an answer has.
    #[test]
    fn every_preset_parses_and_lints_clean_written_out() {
        let mut names: Vec<&str> = PRESETS.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        assert_eq!(names, RULE_PRESETS, "the diagnostic's list of presets");
        for (name, text) in PRESETS {
            let (rules, _) = preset(name).unwrap_or_else(|| panic!("`{name}` does not parse"));
            assert!(!rules.is_empty(), "{name}");
            let spec = format!(
                r#"integration written_out {{
  connection api {{
    base_url "https://api.example.com"
    auth bearer secret("API_TOKEN")
    rules {{ {text} }}
  }}
  trigger manual
  step get = api GET "/items"
}}"#
            );
            let (parsed, errors) = crate::syntax::parse(&spec);
            assert!(errors.is_empty(), "{name}: {errors:?}");
            let diagnostics = crate::check::check(&parsed.unwrap());
            assert!(diagnostics.is_empty(), "{name}: {diagnostics:?}");
        }
    }
}
