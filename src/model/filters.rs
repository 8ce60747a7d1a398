//! What integ's template filters accept as arguments (`| add_duration("7d")`,
//! `| format_time("%Y-%m-%d")`, `| decimal(2)`): lint checks the arguments a spec writes out
//! with these rules, and the filters the values known only at run time.

use chrono::TimeDelta;
use chrono::format::{Item, StrftimeItems};

/// The most decimal places the money filters take: 10^18 still fits an i64 of minor units.
pub const MAX_PLACES: u32 = 18;

/// Why a strftime format cannot format a time, or `None` when it can.
pub fn format_problem(format: &str) -> Option<String> {
    StrftimeItems::new(format)
        .any(|item| matches!(item, Item::Error))
        .then(|| format!("`{format}` is not a strftime format (`%Y-%m-%d`, `%H:%M`)"))
}

/// A duration as specs write them, with an optional `-`: `7d`, `-1h30m`.
pub fn signed_duration(text: &str) -> Option<TimeDelta> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let duration = crate::syntax::parse_duration(digits)?;
    let delta = TimeDelta::from_std(duration).ok()?;
    Some(if negative { -delta } else { delta })
}
