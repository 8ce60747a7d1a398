//! High-water marks of incremental polls: typed values read from API answers, compared as
//! values (never as text: `"9" > "10"` as text, and `2026-01-01T00:00:00+01:00` is before
//! `2026-01-01T00:00:00Z`), and sent back in the type the API uses.

use crate::ast::Lookback;
use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value as Json;

/// How a mark is written in the API's answers (and sent back).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkType {
    /// `"2026-12-01T09:30:00.123Z"`, any offset.
    Rfc3339,
    /// Seconds since 1970, a number or a numeric string, possibly with a fraction.
    EpochSeconds,
    /// Milliseconds since 1970, a number or a numeric string.
    EpochMillis,
    /// A plain integer, such as an increasing id.
    Integer,
}

/// A mark's value. Values of one `MarkType` are all of one variant, so they compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mark {
    Time(DateTime<Utc>),
    Integer(i64),
}

/// Why a value is not a mark of its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkError {
    #[error("{shown} is not {expected}")]
    NotOfType {
        shown: String,
        expected: &'static str,
    },
    #[error("{0} is out of range")]
    OutOfRange(String),
    #[error("a look-back of that kind does not apply to this mark")]
    LookbackMismatch,
}

impl MarkType {
    /// The names a spec writes.
    pub const NAMES: &'static [&'static str] = &["rfc3339", "epoch_s", "epoch_ms", "integer"];

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "rfc3339" => Self::Rfc3339,
            "epoch_s" => Self::EpochSeconds,
            "epoch_ms" => Self::EpochMillis,
            "integer" => Self::Integer,
            _ => return None,
        })
    }

    /// The name a spec writes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rfc3339 => "rfc3339",
            Self::EpochSeconds => "epoch_s",
            Self::EpochMillis => "epoch_ms",
            Self::Integer => "integer",
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Self::Rfc3339 => "an RFC 3339 time such as \"2026-12-01T09:30:00Z\"",
            Self::EpochSeconds => "a number of seconds since 1970",
            Self::EpochMillis => "a number of milliseconds since 1970",
            Self::Integer => "an integer",
        }
    }

    /// Whether a look-back of this kind applies: a duration to a time, a count to an
    /// integer.
    pub fn takes(self, lookback: &Lookback) -> bool {
        matches!(
            (self, lookback),
            (Self::Integer, Lookback::Count(_))
                | (
                    Self::Rfc3339 | Self::EpochSeconds | Self::EpochMillis,
                    Lookback::Duration(_)
                )
        )
    }

    /// Whether a mark of this type can be sent as `send`: a time as any time type, an
    /// integer as an integer.
    pub fn sends_as(self, send: MarkType) -> bool {
        (self == Self::Integer) == (send == Self::Integer)
    }

    /// Reads a value of an answer (or a spec's `start`).
    pub fn read(self, value: &Json) -> Result<Mark, MarkError> {
        let wrong = || MarkError::NotOfType {
            shown: shown(value),
            expected: self.expected(),
        };
        let text = match value {
            Json::String(text) => text.trim().to_string(),
            Json::Number(number) if self != Self::Rfc3339 => number.to_string(),
            _ => return Err(wrong()),
        };
        match self {
            Self::Rfc3339 => DateTime::parse_from_rfc3339(&text)
                .map(|time| Mark::Time(time.with_timezone(&Utc)))
                .map_err(|_| wrong()),
            Self::Integer => text.parse::<i64>().map(Mark::Integer).map_err(|_| {
                if is_integer(&text) {
                    MarkError::OutOfRange(shown(value))
                } else {
                    wrong()
                }
            }),
            Self::EpochSeconds => epoch(&text, 9)
                .ok_or_else(wrong)?
                .ok_or_else(|| MarkError::OutOfRange(shown(value))),
            Self::EpochMillis => epoch(&text, 6)
                .ok_or_else(wrong)?
                .ok_or_else(|| MarkError::OutOfRange(shown(value))),
        }
    }

    /// Reads a mark as the store keeps it (`Mark::stored`).
    pub fn from_stored(self, text: &str) -> Result<Mark, MarkError> {
        match self {
            Self::Integer => self.read(&Json::String(text.into())),
            _ => Self::Rfc3339.read(&Json::String(text.into())),
        }
    }

    /// The mark as the API writes it: what `{{ since }}` gives. A time is rounded down to
    /// the type's precision, which asks for a little more, never less.
    pub fn render(self, mark: Mark) -> Json {
        match (self, mark) {
            // An integer type never reads a time; shown as one rather than lost.
            (Self::Rfc3339 | Self::Integer, Mark::Time(time)) => {
                Json::String(time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            }
            (Self::EpochSeconds, Mark::Time(time)) => Json::from(time.timestamp()),
            (Self::EpochMillis, Mark::Time(time)) => Json::from(time.timestamp_millis()),
            (_, Mark::Integer(n)) => Json::from(n),
        }
    }
}

impl Mark {
    /// The text the store keeps: RFC 3339 in UTC for every time (so that a change between
    /// time types keeps the mark), the number for an integer.
    pub fn stored(self) -> String {
        match self {
            Mark::Time(time) => time.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            Mark::Integer(n) => n.to_string(),
        }
    }

    /// The mark a round asks from: this one less the look-back.
    pub fn minus(self, lookback: Option<&Lookback>) -> Result<Mark, MarkError> {
        match (self, lookback) {
            (mark, None) => Ok(mark),
            (Mark::Time(time), Some(Lookback::Duration(duration))) => {
                chrono::Duration::from_std(*duration)
                    .ok()
                    .and_then(|d| time.checked_sub_signed(d))
                    .map(Mark::Time)
                    .ok_or_else(|| MarkError::OutOfRange(self.stored()))
            }
            (Mark::Integer(n), Some(Lookback::Count(count))) => i64::try_from(*count)
                .ok()
                .and_then(|count| n.checked_sub(count))
                .map(Mark::Integer)
                .ok_or_else(|| MarkError::OutOfRange(self.stored())),
            _ => Err(MarkError::LookbackMismatch),
        }
    }
}

/// A value as an error shows it: short, so a huge field does not flood a log line.
fn shown(value: &Json) -> String {
    let text = value.to_string();
    match text.char_indices().nth(64) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text,
    }
}

fn is_integer(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// A decimal count of units since 1970, where one unit is `10^scale` nanoseconds
/// (`scale` 9: seconds, 6: milliseconds). `None`: not a decimal number; `Some(None)`: out
/// of range. Decimal arithmetic on the text, so that `1512085950.000216` keeps its
/// microseconds (a float would not).
fn epoch(text: &str, scale: u32) -> Option<Option<Mark>> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) {
        return None;
    }
    let unit = 10i128.pow(scale);
    let nanos_of_fraction = fraction
        .bytes()
        .take(scale as usize)
        .chain(std::iter::repeat(b'0'))
        .take(scale as usize)
        .fold(0i128, |n, digit| n * 10 + i128::from(digit - b'0'));
    let total = whole
        .parse::<i128>()
        .ok()
        .and_then(|w| w.checked_mul(unit))
        .and_then(|w| w.checked_add(nanos_of_fraction))
        .map(|n| if negative { -n } else { n });
    let Some(total) = total else {
        return Some(None);
    };
    let seconds = i64::try_from(total.div_euclid(1_000_000_000)).ok();
    let nanos = u32::try_from(total.rem_euclid(1_000_000_000)).ok();
    Some(
        seconds
            .zip(nanos)
            .and_then(|(s, n)| Utc.timestamp_opt(s, n).single())
            .map(Mark::Time),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Duration;

    fn time(text: &str) -> Mark {
        MarkType::Rfc3339.read(&json!(text)).unwrap()
    }

    #[test]
    fn times_compare_as_instants_not_as_text() {
        // As text the first is larger; as instants it is an hour earlier.
        let paris = time("2026-01-01T00:30:00+01:00");
        let utc = time("2026-01-01T00:00:00Z");
        assert!(paris < utc);
        assert_eq!(paris.stored(), "2025-12-31T23:30:00Z");
    }

    #[test]
    fn integers_compare_as_numbers_and_zero_is_a_mark() {
        let nine = MarkType::Integer.read(&json!("9")).unwrap();
        let ten = MarkType::Integer.read(&json!(10)).unwrap();
        assert!(nine < ten);
        // dlt#4363: a mark of 0 was taken for "no mark" and the look-back skipped.
        let zero = MarkType::Integer.read(&json!(0)).unwrap();
        assert_eq!(zero.minus(Some(&Lookback::Count(5))), Ok(Mark::Integer(-5)));
    }

    #[test]
    fn epochs_keep_their_fraction_and_render_rounded_down() {
        let slack = MarkType::EpochSeconds
            .read(&json!("1512085950.000216"))
            .unwrap();
        assert_eq!(slack.stored(), "2017-11-30T23:52:30.000216Z");
        assert_eq!(MarkType::EpochSeconds.render(slack), json!(1512085950));
        let hubspot = MarkType::EpochMillis.read(&json!("1572480000123")).unwrap();
        assert_eq!(hubspot.stored(), "2019-10-31T00:00:00.123Z");
        assert_eq!(
            MarkType::EpochMillis.render(hubspot),
            json!(1572480000123i64)
        );
        assert_eq!(
            MarkType::Rfc3339.render(hubspot),
            json!("2019-10-31T00:00:00.123Z")
        );
    }

    #[test]
    fn what_is_not_a_mark_says_why_and_never_panics() {
        for (kind, value) in [
            (MarkType::Rfc3339, json!("yesterday")),
            (MarkType::Rfc3339, json!(1572480000)),
            (MarkType::EpochMillis, json!("12abc")),
            (MarkType::Integer, json!(1.5)),
            (MarkType::Integer, json!(null)),
            (MarkType::EpochSeconds, json!({"a": 1})),
        ] {
            assert!(
                matches!(kind.read(&value), Err(MarkError::NotOfType { .. })),
                "{kind:?} {value}"
            );
        }
        for (kind, value) in [
            (MarkType::Integer, json!("99999999999999999999")),
            (MarkType::EpochSeconds, json!("99999999999999999999999")),
            (MarkType::EpochMillis, json!(u64::MAX)),
        ] {
            assert!(
                matches!(kind.read(&value), Err(MarkError::OutOfRange(_))),
                "{kind:?} {value}"
            );
        }
        let earliest = Mark::Integer(i64::MIN);
        assert!(earliest.minus(Some(&Lookback::Count(1))).is_err());
        let early = time("0001-01-01T00:00:00Z");
        let ages = Lookback::Duration(Duration::from_secs(u64::MAX / 2));
        assert!(early.minus(Some(&ages)).is_err());
    }

    #[test]
    fn a_stored_mark_reads_back_whatever_the_time_type() {
        let mark = time("2026-12-01T09:30:00.5Z");
        for kind in [
            MarkType::Rfc3339,
            MarkType::EpochSeconds,
            MarkType::EpochMillis,
        ] {
            assert_eq!(kind.from_stored(&mark.stored()), Ok(mark));
        }
        assert_eq!(
            MarkType::Integer.from_stored(&Mark::Integer(-3).stored()),
            Ok(Mark::Integer(-3))
        );
    }
}
