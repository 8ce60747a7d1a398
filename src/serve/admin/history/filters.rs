//! The pages' filters, from a query string or a form: the names and forms of the flags of
//! `integ runs` and `integ dlq list`, so that a page answers what its command prints.

use crate::store::{LETTERS_PER_PAGE, LetterQuery, LetterStates, RunQuery, RunStatus, parse_time};
use std::collections::BTreeMap;
use std::num::NonZeroUsize;

/// As many runs as `integ runs` shows by default.
const RUNS_PER_PAGE: usize = 50;
/// No page lists more than this (Temporal's cap): a filter or the next page finds others.
pub(super) const MOST_PER_PAGE: usize = 1000;

/// The fields of a query string or a form, empty ones left out (a form sends them all).
#[derive(Debug, Clone, Default)]
pub(super) struct Fields(BTreeMap<String, Vec<String>>);

impl Fields {
    pub(super) fn parse(text: &[u8]) -> Self {
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(text) {
            let value = value.trim();
            if !value.is_empty() {
                fields
                    .entry(name.into_owned())
                    .or_default()
                    .push(value.to_string());
            }
        }
        Self(fields)
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.first()).map(String::as_str)
    }

    pub(super) fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }

    fn time(&self, name: &str) -> Result<Option<i64>, String> {
        self.get(name)
            .map(|t| parse_time(t).map_err(|e| format!("{name}: {e}")))
            .transpose()
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String> {
        self.get(name)
            .map(|n| {
                n.parse()
                    .map_err(|_| format!("{name}: `{n}` is not a number"))
            })
            .transpose()
    }

    /// The ids a form checked (`id`, once per box).
    pub(super) fn ids(&self) -> Result<Vec<i64>, String> {
        self.all("id")
            .iter()
            .map(|n| n.parse().map_err(|_| format!("id: `{n}` is not a number")))
            .collect()
    }

    /// The filter fields, for links to the next page and for the forms' hidden fields.
    pub(super) fn filters(&self, names: &[&str]) -> Vec<(String, String)> {
        names
            .iter()
            .filter_map(|name| self.get(name).map(|v| (name.to_string(), v.to_string())))
            .collect()
    }

    /// The query string of these fields, with `extra` added.
    pub(super) fn link(pairs: &[(String, String)], extra: &[(&str, String)]) -> String {
        let mut out = form_urlencoded::Serializer::new(String::new());
        for (name, value) in pairs {
            out.append_pair(name, value);
        }
        for (name, value) in extra {
            out.append_pair(name, value);
        }
        out.finish()
    }

    /// At most `limit` (1 to `MOST_PER_PAGE`), or `default`.
    fn limit(&self, default: Option<usize>) -> Result<Option<NonZeroUsize>, String> {
        let limit = self.number::<usize>("limit")?.or(default);
        match limit {
            None => Ok(None),
            Some(n) if (1..=MOST_PER_PAGE).contains(&n) => Ok(NonZeroUsize::new(n)),
            Some(n) => Err(format!("limit: {n} is not from 1 to {MOST_PER_PAGE}")),
        }
    }
}

/// The fields that filter runs, as `integ runs` names its flags.
pub(super) const RUN_FILTERS: [&str; 7] = [
    "integration",
    "outcome",
    "trigger",
    "since",
    "until",
    "failed",
    "limit",
];

/// The fields that filter dead letters, as `integ dlq list` names its flags.
pub(super) const LETTER_FILTERS: [&str; 6] =
    ["integration", "step", "since", "until", "show", "limit"];

/// The runs `fields` ask for: `limit` of them (50 unless said), newest first.
pub(super) fn runs(fields: &Fields) -> Result<RunQuery, String> {
    let outcome = fields
        .get("outcome")
        .map(|o| o.parse::<RunStatus>().map_err(|e| format!("outcome: {e}")))
        .transpose()?;
    Ok(RunQuery {
        integration: fields.get("integration").map(String::from),
        failed_only: fields.get("failed").is_some_and(|f| f != "false"),
        outcome,
        trigger: fields.get("trigger").map(String::from),
        since: fields.time("since")?,
        until: fields.time("until")?,
        before: fields.number("before")?,
        id: None,
        limit: fields.limit(Some(RUNS_PER_PAGE))?,
    })
}

/// The dead letters a confirmed change acts on: as `letters`, with the instants the
/// confirmation showed (RFC 3339; `until` always), never a time ago read again now.
pub(super) fn confirmed_letters(fields: &Fields) -> Result<LetterQuery, String> {
    let instant = |text: &str| chrono::DateTime::parse_from_rfc3339(text).is_ok();
    let since = fields.get("since").is_none_or(instant);
    let until = fields.get("until").is_some_and(instant);
    if !(since && until) {
        return Err(
            "since, until: not the instants the confirmation showed; start again from the dead letters"
                .into(),
        );
    }
    let query = letters(fields)?;
    // A confirmation shows letters that failed before it was drawn: an `until` to come
    // would take in letters nobody saw.
    if query
        .until
        .is_some_and(|until| until > crate::store::now() + 1)
    {
        return Err("until: a time to come; start again from the dead letters".into());
    }
    if let (Some(since), Some(until)) = (query.since, query.until)
        && since > until
    {
        return Err("since: after until".into());
    }
    Ok(query)
}

/// The dead letters `fields` ask for: `limit` of them (as many as `integ dlq list` unless
/// said), oldest first, after dead letter `after` when given.
pub(super) fn letters(fields: &Fields) -> Result<LetterQuery, String> {
    let states = fields
        .get("show")
        .map(|s| s.parse::<LetterStates>().map_err(|e| format!("show: {e}")))
        .transpose()?
        .unwrap_or_default();
    Ok(LetterQuery {
        ids: None,
        integration: fields.get("integration").map(String::from),
        step: fields.get("step").map(String::from),
        since: fields.time("since")?,
        until: fields.time("until")?,
        states,
        after: fields.number("after")?,
        limit: fields.limit(Some(LETTERS_PER_PAGE))?,
    })
}
