//! Time in templates: `now()`, seconds and milliseconds since 1970, durations added, and
//! formatting in a time zone.
//!
//! What peers' users keep tripping on is made impossible rather than documented:
//! - a time is an RFC 3339 text *with its offset* (`2024-05-01T09:30:00Z`,
//!   `2024-05-01T11:30:00+02:00`); a text without one (`2024-05-01 09:30`, `2024-05-01`) is
//!   refused, never read in the server's zone (n8n's date-only strings shifted by the host's
//!   time zone);
//! - a number is never guessed to count seconds or milliseconds: `| from_epoch` and
//!   `| from_epoch_ms` say which, and read fractions exactly (Slack's `ts`);
//! - `now()` is one instant per run (`Clock`), so every step, retry and page of a run agrees
//!   on it, and a test can bound it;
//! - every failure is an error with a message, never a panic (chrono's formatter panics on a
//!   bad format when printed with `to_string`, so formats are checked before use).

use super::decimal::decimal_of;
use crate::model::filters::{format_problem, signed_duration};
use chrono::format::StrftimeItems;
use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, Utc};
use minijinja::{Error, ErrorKind, State, Value};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// The context variable holding the run's `Clock`, in seconds since 1970; `now()` reads it.
/// Not a name a spec can read (lint knows only `event`, steps, `item` and the globals).
pub(super) const CLOCK: &str = "__integ_clock";

/// The instant `now()` gives, in whole seconds: taken once when a run starts (or a webhook
/// or poll is read), so that all of a run's templates see the same time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock(i64);

impl Clock {
    /// The current time, to the second.
    pub fn now() -> Self {
        Self(Utc::now().timestamp())
    }

    /// A fixed time, in seconds since 1970 (tests).
    pub fn at(seconds: i64) -> Self {
        Self(seconds)
    }

    pub(super) fn seconds(self) -> i64 {
        self.0
    }
}

/// `now()`: the run's clock as RFC 3339 in UTC, such as `2024-05-01T09:30:00Z`.
pub(super) fn now(state: &State) -> Result<Value, Error> {
    let seconds = state
        .lookup(CLOCK)
        .and_then(|clock| i64::try_from(clock).ok())
        .ok_or_else(|| invalid("`now()` has no clock here"))?;
    DateTime::from_timestamp(seconds, 0)
        .and_then(|time| text(&time.fixed_offset()))
        .map(Value::from)
        .ok_or_else(|| invalid("the clock is out of range"))
}

/// `seconds | from_epoch`: seconds since 1970 (a fraction is kept exactly) as RFC 3339 UTC.
pub(super) fn from_epoch(value: &Value) -> Result<String, Error> {
    at(decimal_of(value, "from_epoch")?, "from_epoch")
}

/// `millis | from_epoch_ms`: milliseconds since 1970 as RFC 3339 UTC.
pub(super) fn from_epoch_ms(value: &Value) -> Result<String, Error> {
    let millis = decimal_of(value, "from_epoch_ms")?;
    let seconds = millis
        .checked_div(Decimal::from(1000))
        .ok_or_else(|| out_of_range("from_epoch_ms"))?;
    at(seconds, "from_epoch_ms")
}

/// `time | epoch`: whole seconds since 1970 (earlier instants round down).
pub(super) fn epoch(value: &Value) -> Result<i64, Error> {
    Ok(parse(value, "epoch")?.timestamp())
}

/// `time | epoch_ms`: milliseconds since 1970.
pub(super) fn epoch_ms(value: &Value) -> Result<i64, Error> {
    Ok(parse(value, "epoch_ms")?.timestamp_millis())
}

/// `time | add_duration("7d")`, `add_duration("-1h30m")`: the time moved by a duration as
/// specs write them, keeping its offset. A day is 24 hours.
pub(super) fn add_duration(value: &Value, duration: &str) -> Result<String, Error> {
    let time = parse(value, "add_duration")?;
    let delta = signed_duration(duration).ok_or_else(|| {
        invalid(format!(
            "`add_duration` takes a duration such as \"7d\", \"-1h30m\" or \"500ms\", not \"{duration}\""
        ))
    })?;
    time.checked_add_signed(delta)
        .and_then(|moved| text(&moved))
        .ok_or_else(|| out_of_range("add_duration"))
}

/// `time | format_time("%Y-%m-%d")`, `format_time("%H:%M", "Europe/Paris")`: the time in
/// its own offset, or in the named IANA zone, formatted with strftime's specifiers.
pub(super) fn format_time(
    value: &Value,
    format: &str,
    zone: Option<&str>,
) -> Result<String, Error> {
    let time = parse(value, "format_time")?;
    if let Some(problem) = format_problem(format) {
        return Err(invalid(format!("`format_time`: {problem}")));
    }
    let items = StrftimeItems::new(format);
    let mut out = String::new();
    let written = match zone {
        None => write_formatted(&mut out, time.format_with_items(items)),
        Some(name) => {
            let zone: chrono_tz::Tz = name
                .parse()
                .map_err(|_| invalid(format!("`format_time`: unknown time zone `{name}`")))?;
            write_formatted(&mut out, time.with_timezone(&zone).format_with_items(items))
        }
    };
    written
        .map(|()| out)
        .map_err(|_| invalid("`format_time` could not format the time"))
}

fn write_formatted(out: &mut String, formatted: impl std::fmt::Display) -> std::fmt::Result {
    use std::fmt::Write as _;
    write!(out, "{formatted}")
}

/// A time as RFC 3339, `Z` for UTC, with a fraction only when there is one; `None` past
/// the years RFC 3339 can write (0000 to 9999), which chrono would print as `+10136-...`.
fn text(time: &DateTime<FixedOffset>) -> Option<String> {
    (0..=9999)
        .contains(&time.year())
        .then(|| time.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// `seconds` since 1970 (exact, with a fraction) as RFC 3339 UTC.
fn at(seconds: Decimal, filter: &str) -> Result<String, Error> {
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * Decimal::from(1_000_000_000)).trunc();
    whole
        .to_i64()
        .zip(nanos.to_u32())
        .and_then(|(whole, nanos)| DateTime::from_timestamp(whole, nanos))
        .and_then(|time| text(&time.fixed_offset()))
        .ok_or_else(|| out_of_range(filter))
}

/// An RFC 3339 time with its offset; anything else is refused with what to write instead.
fn parse(value: &Value, filter: &str) -> Result<DateTime<FixedOffset>, Error> {
    if value.is_undefined() || value.is_none() {
        return Err(Error::new(
            ErrorKind::UndefinedError,
            format!("gives `{filter}` a missing or null value"),
        ));
    }
    let Some(written) = value.as_str() else {
        return Err(invalid(format!(
            "`{filter}` takes an RFC 3339 time; {value} is a number: say what it counts with \
             `| from_epoch` (seconds) or `| from_epoch_ms` (milliseconds) first"
        )));
    };
    DateTime::parse_from_rfc3339(written.trim()).map_err(|_| {
        invalid(format!(
            "`{filter}` takes an RFC 3339 time with its offset, such as 2024-05-01T09:30:00Z; \
             \"{written}\" is not one (a time without an offset is never guessed to be in some zone)"
        ))
    })
}

fn invalid(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, detail.into())
}

fn out_of_range(filter: &str) -> Error {
    invalid(format!("`{filter}` gives a time out of the range of dates"))
}

#[cfg(test)]
mod tests {
    use super::super::jinja::environment;
    use minijinja::context;

    fn render(template: &str) -> Result<String, String> {
        let env = environment();
        let clock = super::Clock::at(1_714_555_800).seconds();
        env.render_str(
            template,
            context! { __integ_clock => clock, t => "2024-05-01T09:30:00Z" },
        )
        .map_err(|e| e.detail().unwrap_or_default().to_string())
    }

    #[test]
    fn now_is_the_clock_of_the_run() {
        assert_eq!(render("{{ now() }}").unwrap(), "2024-05-01T09:30:00Z");
        assert_eq!(render("{{ now() | epoch }}").unwrap(), "1714555800");
    }

    #[test]
    fn epochs_in_seconds_and_milliseconds_both_ways_exactly() {
        assert_eq!(
            render("{{ 1714555800 | from_epoch }}").unwrap(),
            "2024-05-01T09:30:00Z"
        );
        assert_eq!(
            render("{{ '1714555800' | from_epoch }}").unwrap(),
            "2024-05-01T09:30:00Z"
        );
        // Slack's `ts`: seconds with microseconds, as text.
        assert_eq!(
            render("{{ '1714555800.000200' | from_epoch }}").unwrap(),
            "2024-05-01T09:30:00.000200Z"
        );
        assert_eq!(
            render("{{ 1714555800123 | from_epoch_ms }}").unwrap(),
            "2024-05-01T09:30:00.123Z"
        );
        assert_eq!(
            render("{{ (-1) | from_epoch }}").unwrap(),
            "1969-12-31T23:59:59Z"
        );
        assert_eq!(render("{{ t | epoch_ms }}").unwrap(), "1714555800000");
        assert_eq!(
            render("{{ '2024-05-01T11:30:00.5+02:00' | epoch_ms }}").unwrap(),
            "1714555800500"
        );
    }

    #[test]
    fn durations_move_a_time_and_keep_its_offset() {
        assert_eq!(
            render("{{ t | add_duration('7d') }}").unwrap(),
            "2024-05-08T09:30:00Z"
        );
        assert_eq!(
            render("{{ t | add_duration('-1h30m') }}").unwrap(),
            "2024-05-01T08:00:00Z"
        );
        assert_eq!(
            render("{{ '2024-05-01T11:30:00+02:00' | add_duration('1d') }}").unwrap(),
            "2024-05-02T11:30:00+02:00"
        );
        assert_eq!(
            render("{{ now() | add_duration('-7d') | format_time('%Y-%m-%d') }}").unwrap(),
            "2024-04-24"
        );
    }

    #[test]
    fn formats_in_the_time_s_offset_or_a_named_zone() {
        assert_eq!(
            render("{{ t | format_time('%d/%m/%Y %H:%M') }}").unwrap(),
            "01/05/2024 09:30"
        );
        assert_eq!(
            render("{{ t | format_time('%Y-%m-%d %H:%M %Z', 'Europe/Paris') }}").unwrap(),
            "2024-05-01 11:30 CEST"
        );
        // Late in the evening in New York is the next day in UTC: the date is New York's.
        assert_eq!(
            render("{{ '2024-05-02T02:00:00Z' | format_time('%Y-%m-%d', 'America/New_York') }}")
                .unwrap(),
            "2024-05-01"
        );
    }

    #[test]
    fn what_peers_guess_is_refused_with_what_to_write() {
        // A date without an offset is not read in the server's zone.
        for unzoned in [
            "'2024-05-01'",
            "'2024-05-01 09:30:00'",
            "'2024-05-01T09:30:00'",
        ] {
            let error = render(&format!("{{{{ {unzoned} | epoch }}}}")).unwrap_err();
            assert!(error.contains("with its offset"), "{unzoned}: {error}");
        }
        // A number is never guessed to be seconds or milliseconds.
        let error = render("{{ 1714555800123 | format_time('%Y') }}").unwrap_err();
        assert!(error.contains("from_epoch_ms"), "{error}");
        assert!(
            render("{{ t | format_time('%Q') }}")
                .unwrap_err()
                .contains("not a strftime format")
        );
        assert!(
            render("{{ t | format_time('%Y', 'Mars/Base') }}")
                .unwrap_err()
                .contains("unknown time zone")
        );
        assert!(
            render("{{ t | add_duration('7 days') }}")
                .unwrap_err()
                .contains("takes a duration")
        );
        assert!(render("{{ t | add_duration('') }}").is_err());
        // Far past the range of dates: an error, not a panic.
        assert!(
            render("{{ 99999999999999999 | from_epoch }}")
                .unwrap_err()
                .contains("out of the range")
        );
        assert!(
            render("{{ '9999-12-31T00:00:00Z' | add_duration('49710d') }}")
                .unwrap_err()
                .contains("out of the range")
        );
        assert!(render("{{ nope | epoch }}").is_err());
    }
}
