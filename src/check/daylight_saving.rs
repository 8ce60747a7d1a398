//! Schedules that fire at a local time daylight saving skips or repeats (W017): users of
//! Airflow and Home Assistant found out only when a 02:00 run did not happen, and Prefect's
//! when one ran twice.

use chrono::{Days, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;
use std::time::Duration;

/// A schedule firing more often than this loses or gains a run in a change, as the clock
/// does, and means to; one firing at most once a day is a report at a time of day.
const DAILY: Duration = Duration::from_secs(23 * 3600);

/// The first local time of day (`HH:MM`) within the next year at which `cron` fires and
/// which `zone` skips or repeats; only for schedules that fire at most about once a day.
pub(super) fn clash(cron: &croner::Cron, zone: Tz, interval: Duration) -> Option<String> {
    if interval < DAILY {
        return None;
    }
    let today = chrono::Utc::now().date_naive();
    (0..=366)
        .filter_map(|day| today.checked_add_days(Days::new(day)))
        .filter(|day| changes_on(zone, *day))
        .find_map(|day| clash_on(cron, zone, day))
}

/// Whether the zone's offset changes between `day` and the day after (at noon UTC).
fn changes_on(zone: Tz, day: NaiveDate) -> bool {
    let offset = |day: NaiveDate| {
        let noon = day.and_hms_opt(12, 0, 0)?;
        Some(zone.offset_from_utc_datetime(&noon))
    };
    let next = day.checked_add_days(Days::new(1));
    next.is_some_and(|next| offset(day) != offset(next))
}

/// The first wall-clock second of `day` and the day after that the zone skips or repeats
/// and at which `cron` fires, as `HH:MM`.
fn clash_on(cron: &croner::Cron, zone: Tz, day: NaiveDate) -> Option<String> {
    let start = day.and_hms_opt(0, 0, 0)?;
    (0..2 * 24 * 60)
        .map(|minute| start + chrono::Duration::minutes(minute))
        .filter(|local| !matches!(zone.from_local_datetime(local), LocalResult::Single(_)))
        .find(|local| fires_within_minute(cron, *local))
        .map(|local| format!("{:02}:{:02}", local.hour(), local.minute()))
}

/// Whether `cron` fires at a second of the minute starting at `local` (a wall-clock time:
/// cron fields are read off the clock, whatever its zone).
fn fires_within_minute(cron: &croner::Cron, local: NaiveDateTime) -> bool {
    (0..60).any(|second| {
        let at = chrono::Utc.from_utc_datetime(&(local + chrono::Duration::seconds(second)));
        cron.is_time_matching(&at).unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clash_of(cron: &str, zone: &str) -> Option<String> {
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build();
        let cron = parser.parse(cron).unwrap();
        let interval = super::super::triggers::shortest_interval(&cron).unwrap();
        clash(&cron, zone.parse().unwrap(), interval)
    }

    #[test]
    fn a_daily_time_in_the_changed_hour_is_found_and_others_are_not() {
        assert_eq!(
            clash_of("30 2 * * *", "Europe/Paris").as_deref(),
            Some("02:30")
        );
        // New York repeats 01:00-02:00 in November and skips 02:00-03:00 in March.
        assert_eq!(
            clash_of("15 1 * * *", "America/New_York").as_deref(),
            Some("01:15")
        );
        assert_eq!(clash_of("0 9 * * *", "Europe/Paris"), None);
        assert_eq!(
            clash_of("30 2 * * *", "Asia/Tokyo"),
            None,
            "no daylight saving"
        );
        // An hourly schedule loses or gains a run as the clock does: that is no surprise.
        assert_eq!(clash_of("30 * * * *", "Europe/Paris"), None);
    }
}
