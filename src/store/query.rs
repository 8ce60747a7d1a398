//! What the run history and the dead letters look like to programs, and the times their
//! filters take: shared by `integ runs`, `integ dlq` and the run-history page, so that each
//! page answers the JSON its command prints.

use super::{DeadLetter, RunLinks, RunRecord};
use serde_json::Value as Json;

/// As many dead letters as `integ dlq list` and the dead-letters page (JSON included) list
/// at once unless told: a next page (`--after`, `after`) has the others.
pub const LETTERS_PER_PAGE: usize = 1000;

/// A stored record for programs: its JSON with its id.
pub fn with_id(id: i64, record: &impl serde::Serialize) -> Json {
    let mut value = serde_json::to_value(record).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.insert("id".into(), id.into());
    }
    value
}

/// A run with what links it to others, for programs (`integ runs --id`, a run's page).
pub fn run_json(id: i64, run: &RunRecord, links: &RunLinks) -> Json {
    let mut value = with_id(id, run);
    if let (Some(fields), Ok(Json::Object(links))) =
        (value.as_object_mut(), serde_json::to_value(links))
    {
        fields.extend(links);
    }
    value
}

/// Runs for programs: one JSON object per line, each with its id.
pub fn runs_lines(runs: &[(i64, RunRecord)]) -> String {
    lines(runs.iter().map(|(id, run)| with_id(*id, run)))
}

/// Dead letters for programs: one JSON object per line, each with its id.
pub fn letters_lines(letters: &[(i64, DeadLetter)]) -> String {
    lines(letters.iter().map(|(id, letter)| with_id(*id, letter)))
}

fn lines(values: impl Iterator<Item = Json>) -> String {
    values.map(|v| format!("{v}\n")).collect()
}

/// A time a filter takes, as seconds since the Unix epoch: a time ago (`2h`, `7d`), an
/// RFC 3339 time, or a date or a time without a zone, taken as UTC.
pub fn parse_time(text: &str) -> Result<i64, String> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(at.timestamp());
    }
    let naive = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_time(Default::default()))
        });
    if let Ok(at) = naive {
        return Ok(at.and_utc().timestamp());
    }
    let ago = crate::syntax::parse_duration(text)
        .filter(|ago| !ago.is_zero())
        .ok_or_else(|| {
            format!(
                "`{text}` is neither a time ago such as `2h` nor a time such as `2026-12-01` \
                 or `2026-12-01T09:00:00Z`"
            )
        })?;
    let ago = i64::try_from(ago.as_secs()).unwrap_or(i64::MAX);
    Ok(super::now().saturating_sub(ago))
}
