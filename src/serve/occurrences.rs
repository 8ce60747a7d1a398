//! What a schedule's tick does, as a function of the clock and of what the store holds: which
//! occurrences run now, which wait for the run in progress, and which are skipped, by the
//! schedule's missed-run and overlap policies. No clock, no store: the loop in `schedule.rs`
//! reads them and commits what this decides.
//!
//! An occurrence is *missed* when no process served the schedule at its time: it fell before
//! this process started, or while the loop was stalled (a later occurrence is due with it).
//! One that fell less than `GRACE` (or less than its interval) before the start is on time:
//! a restart at the hour (a deploy at 09:00:03) does not make the 09:00 run a missed one.
//! Ticks that come while a run of the schedule is in progress are not missed: the overlap
//! policy handles them, so a run slower than its interval never piles up runs.

use crate::model::{Missed, Overlap};
use crate::plan::SchedulePlan;
use chrono::{DateTime, TimeZone};
use chrono_tz::Tz;
use croner::errors::CronError;

/// How many missed occurrences are counted for the record of those skipped: past it, the
/// record says "or more" (a per-second schedule down for a month has millions).
const COUNTED: usize = 1_000;

/// How late (in seconds) after an occurrence a process may start and still run it as on
/// time, Quartz's misfire threshold; at most the occurrence's interval, so that a start
/// never takes the one before the latest for the latest.
const GRACE: i64 = 60;

/// What the store holds of the schedule, as the tick sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Held {
    /// The last occurrence handled; the start of this process when none is held for this
    /// schedule, since a schedule never served has missed nothing.
    pub last: i64,
    /// Occurrences waiting for the run in progress, oldest first.
    pub waiting: Vec<i64>,
    /// The inbox event of the run in progress (pending or running), if any.
    pub busy: Option<i64>,
}

/// What a tick commits: the occurrences to enqueue now, what waits, what is skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tick {
    /// The last occurrence handled, after this tick.
    pub last: i64,
    /// Occurrences to run now, oldest first.
    pub fire: Vec<i64>,
    /// Occurrences waiting for the run in progress, oldest first.
    pub waiting: Vec<i64>,
    /// Why each skipped occurrence (or run of missed ones) did not run.
    pub skipped: Vec<String>,
}

/// What the tick at `now` (Unix seconds) does, for a process that started at `started`;
/// `None` when there is nothing to do.
pub(super) fn tick(plan: &SchedulePlan, held: &Held, started: i64, now: i64) -> Option<Tick> {
    let latest = latest_at_or_before(plan, now).filter(|at| *at > held.last);
    let mut tick = Tick {
        last: latest.unwrap_or(held.last),
        fire: Vec::new(),
        waiting: held.waiting.clone(),
        skipped: Vec::new(),
    };
    // The occurrence that came while this process served (or just before it started); the
    // others since the last one handled were missed.
    let current = latest.filter(|at| on_time(plan, *at, started));
    let mut catching_up = Vec::new();
    if let Some(latest) = latest {
        let missed = Missing {
            after: held.last,
            before: current.unwrap_or(latest.saturating_add(1)),
            superseded: current.is_some(),
        };
        catching_up = missed.made_up(plan, now, &mut tick.skipped);
        // The occurrence on time ends the catching up, in its order.
        if !catching_up.is_empty() {
            catching_up.extend(current);
        }
    }
    let busy = held.busy.is_some();
    if !catching_up.is_empty() {
        match plan.overlap {
            Overlap::Allow => tick.fire.append(&mut catching_up),
            // Made-up runs go one after another, as their ticks would have.
            Overlap::Skip | Overlap::Queue => tick.waiting.append(&mut catching_up),
        }
    } else if let Some(at) = current {
        let waits = !tick.waiting.is_empty();
        match plan.overlap {
            Overlap::Allow => tick.fire.push(at),
            Overlap::Skip | Overlap::Queue if !busy && !waits => tick.fire.push(at),
            Overlap::Queue if !waits => tick.waiting.push(at),
            Overlap::Skip | Overlap::Queue => tick.skipped.push(overlapped(plan, at, held)),
        }
    }
    // The schedule is free: the oldest occurrence waiting runs now.
    if !busy && tick.fire.is_empty() && !tick.waiting.is_empty() {
        tick.fire.push(tick.waiting.remove(0));
    }
    let changed = latest.is_some() || tick.waiting != held.waiting;
    changed.then_some(tick)
}

/// The occurrences in (`after`, `before`), missed.
struct Missing {
    after: i64,
    before: i64,
    /// An occurrence on time comes with them: it stands for the latest.
    superseded: bool,
}

impl Missing {
    /// Those the policy makes up, oldest first; a reason is added to `skipped` for those
    /// it does not.
    fn made_up(&self, plan: &SchedulePlan, now: i64, skipped: &mut Vec<String>) -> Vec<i64> {
        let (count, first) = count_between(plan, self.after, self.before);
        if count == 0 {
            return Vec::new();
        }
        let (kept, why) = match plan.missed {
            Missed::Skip => (Vec::new(), "`missed skip`"),
            Missed::Latest if self.superseded => (
                Vec::new(),
                "`missed latest`, and a later occurrence runs on time",
            ),
            Missed::Latest => (newest(plan, self.after, self.before, 1), "`missed latest`"),
            Missed::All { within, max } => {
                let window = i64::try_from(within.as_secs()).unwrap_or(i64::MAX);
                let from = self.after.max(now.saturating_sub(window).saturating_sub(1));
                let max = usize::try_from(max.get()).unwrap_or(usize::MAX);
                let kept = newest(plan, from, self.before, max);
                (
                    kept,
                    "`missed all` makes up those within its window, up to its `max`",
                )
            }
        };
        let left = count.saturating_sub(kept.len());
        if left > 0 {
            let or_more = if count >= COUNTED { " or more" } else { "" };
            let first = first.map_or_else(String::new, |at| {
                format!(" (the first at {})", show(plan, at))
            });
            skipped.push(format!(
                "{left}{or_more} occurrence(s) missed while no process served the schedule{first} not made up: {why}"
            ));
        }
        kept
    }
}

/// The reason an occurrence that came during a run of its schedule is skipped.
fn overlapped(plan: &SchedulePlan, at: i64, held: &Held) -> String {
    let run = held.busy.map_or_else(
        || "an occurrence waits".to_string(),
        |id| format!("the run of inbox event {id} is pending or running"),
    );
    let policy = match plan.overlap {
        Overlap::Queue => "`overlap queue` keeps one occurrence waiting",
        _ => "`overlap skip`",
    };
    format!(
        "the occurrence at {} did not run: {run} ({policy})",
        show(plan, at)
    )
}

/// Whether the occurrence at `at` came while this process (started at `started`) served,
/// or less than the grace before: late by less than `GRACE` and than its interval.
fn on_time(plan: &SchedulePlan, at: i64, started: i64) -> bool {
    let late = started.saturating_sub(at);
    let interval = next_after(plan, at).map_or(GRACE, |next| next.saturating_sub(at));
    late < GRACE.min(interval)
}

/// The latest occurrence at or before `now`.
fn latest_at_or_before(plan: &SchedulePlan, now: i64) -> Option<i64> {
    let now = at(plan, now)?;
    plan.cron
        .find_previous_occurrence(&now, true)
        .ok()
        .map(|t| t.timestamp())
}

/// How many occurrences fall in (`after`, `before`), counting up to `COUNTED`, and the first.
fn count_between(plan: &SchedulePlan, after: i64, before: i64) -> (usize, Option<i64>) {
    let mut times = std::iter::successors(next_after(plan, after), |at| next_after(plan, *at))
        .take_while(|t| *t < before)
        .take(COUNTED);
    let first = times.next();
    (first.map_or(0, |_| 1 + times.count()), first)
}

/// The newest `n` occurrences in (`after`, `before`), oldest first.
fn newest(plan: &SchedulePlan, after: i64, before: i64, n: usize) -> Vec<i64> {
    let earlier = |at: i64| previous_before(plan, at);
    let mut times: Vec<i64> = std::iter::successors(earlier(before), |at| earlier(*at))
        .take_while(|t| *t > after)
        .take(n)
        .collect();
    times.reverse();
    times
}

/// The next occurrence after `after`. (Occurrences are searched one by one, not with croner's
/// iterators: those print their errors on stderr, past the logs.)
pub(super) fn next_after(plan: &SchedulePlan, after: i64) -> Option<i64> {
    let after = at(plan, after)?;
    found(plan, plan.cron.find_next_occurrence(&after, false))
}

/// The latest occurrence before `before`.
fn previous_before(plan: &SchedulePlan, before: i64) -> Option<i64> {
    let before = at(plan, before)?;
    found(plan, plan.cron.find_previous_occurrence(&before, false))
}

/// The time a search found; none when the cron has no more occurrences (none before year 1
/// or after 5000), or when croner failed, which is logged.
fn found(plan: &SchedulePlan, search: Result<DateTime<Tz>, CronError>) -> Option<i64> {
    match search {
        Ok(found) => Some(found.timestamp()),
        Err(CronError::TimeSearchLimitExceeded) => None,
        Err(error) => {
            tracing::warn!(schedule = %plan.text, %error, "cannot compute an occurrence of the schedule");
            None
        }
    }
}

/// Unix seconds as a time of the schedule's zone.
pub(super) fn at(plan: &SchedulePlan, seconds: i64) -> Option<DateTime<Tz>> {
    plan.timezone.timestamp_opt(seconds, 0).single()
}

/// An occurrence as its event and records show it: RFC 3339 with the zone's offset.
pub(super) fn show(plan: &SchedulePlan, seconds: i64) -> String {
    at(plan, seconds).map_or_else(|| seconds.to_string(), |t| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;
    use std::time::Duration;

    fn plan(cron: &str, zone: &str, overlap: Overlap, missed: Missed) -> SchedulePlan {
        let parser = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build();
        SchedulePlan {
            cron: parser.parse(cron).unwrap(),
            text: cron.into(),
            timezone: zone.parse().unwrap(),
            event: None,
            overlap,
            missed,
        }
    }

    /// Unix seconds of an RFC 3339 time.
    fn t(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp()
    }

    fn all(days: u64, max: u32) -> Missed {
        Missed::All {
            within: Duration::from_secs(days * 86_400),
            max: NonZeroU32::new(max).unwrap(),
        }
    }

    fn weekly(missed: Missed) -> SchedulePlan {
        plan("0 9 * * MON", "Europe/Paris", Overlap::Skip, missed)
    }

    /// Last handled Monday 2 November; the process starts on Wednesday 25 November: the
    /// Mondays 9, 16 and 23 were missed.
    fn down_three_mondays() -> (Held, i64) {
        let held = Held {
            last: t("2026-11-02T09:00:00+01:00"),
            ..Held::default()
        };
        (held, t("2026-11-25T12:00:00+01:00"))
    }

    #[test]
    fn a_schedule_never_served_has_missed_nothing() {
        // Kestra (#17618): the last tick before a first start predates the trigger.
        let plan = weekly(Missed::Latest);
        let now = t("2026-11-25T12:00:00+01:00");
        let held = Held {
            last: now,
            ..Held::default()
        };
        assert_eq!(tick(&plan, &held, now, now), None);
    }

    #[test]
    fn missed_skip_makes_up_nothing_and_says_so() {
        let (held, now) = down_three_mondays();
        let tick = tick(&weekly(Missed::Skip), &held, now, now).unwrap();
        assert_eq!(tick.fire, Vec::<i64>::new());
        assert_eq!(tick.last, t("2026-11-23T09:00:00+01:00"));
        assert_eq!(tick.skipped.len(), 1, "{:?}", tick.skipped);
        assert!(
            tick.skipped[0].starts_with("3 occurrence(s) missed"),
            "{}",
            tick.skipped[0]
        );
        assert!(
            tick.skipped[0].contains("2026-11-09T09:00:00+01:00"),
            "{}",
            tick.skipped[0]
        );
    }

    #[test]
    fn missed_latest_runs_the_latest_missed_once() {
        let (held, now) = down_three_mondays();
        let tick = tick(&weekly(Missed::Latest), &held, now, now).unwrap();
        assert_eq!(tick.fire, vec![t("2026-11-23T09:00:00+01:00")]);
        assert!(tick.waiting.is_empty());
        assert!(
            tick.skipped[0].starts_with("2 occurrence(s) missed"),
            "{:?}",
            tick.skipped
        );
    }

    #[test]
    fn missed_all_makes_up_those_within_the_window_one_after_another() {
        let (held, now) = down_three_mondays();
        let tick = tick(&weekly(all(14, 10)), &held, now, now).unwrap();
        assert_eq!(tick.fire, vec![t("2026-11-16T09:00:00+01:00")]);
        assert_eq!(tick.waiting, vec![t("2026-11-23T09:00:00+01:00")]);
        assert!(
            tick.skipped[0].starts_with("1 occurrence(s) missed"),
            "{:?}",
            tick.skipped
        );
    }

    #[test]
    fn missed_all_makes_up_at_most_its_max_the_newest() {
        // Kestra (#3000): a schedule blocked for a night ran every occurrence after.
        let plan = plan("* * * * *", "UTC", Overlap::Skip, all(7, 5));
        let held = Held {
            last: t("2026-11-01T00:00:00Z"),
            ..Held::default()
        };
        let now = t("2026-11-30T00:00:30Z");
        let tick = tick(&plan, &held, now, now).unwrap();
        let mut made_up = tick.fire.clone();
        made_up.extend(&tick.waiting);
        // The five newest missed, then 00:00, 30 s before the start: on time, not missed.
        let newest: Vec<i64> = (0..6)
            .rev()
            .map(|m| t("2026-11-30T00:00:00Z") - 60 * m)
            .collect();
        assert_eq!(made_up, newest);
        assert!(tick.skipped[0].contains("or more"), "{:?}", tick.skipped);
    }

    #[test]
    fn made_up_daily_occurrences_keep_their_local_time_across_a_dst_change() {
        // Paris goes from +01:00 to +02:00 on 29 March 2026: 09:00 is 08:00Z before, 07:00Z
        // after; no day is lost or doubled.
        let plan = plan("0 9 * * *", "Europe/Paris", Overlap::Allow, all(30, 100));
        let held = Held {
            last: t("2026-03-26T09:00:00+01:00"),
            ..Held::default()
        };
        let now = t("2026-04-01T12:00:00+02:00");
        let tick = tick(&plan, &held, now, now).unwrap();
        let expected = [
            "2026-03-27T09:00:00+01:00",
            "2026-03-28T09:00:00+01:00",
            "2026-03-29T09:00:00+02:00",
            "2026-03-30T09:00:00+02:00",
            "2026-03-31T09:00:00+02:00",
            "2026-04-01T09:00:00+02:00",
        ];
        let shown: Vec<String> = tick.fire.iter().map(|at| show(&plan, *at)).collect();
        assert_eq!(shown, expected);
        // And back to +01:00 on 25 October.
        let held = Held {
            last: t("2026-10-23T09:00:00+02:00"),
            ..Held::default()
        };
        let now = t("2026-10-27T12:00:00+01:00");
        let tick = super::tick(&plan, &held, now, now).unwrap();
        let shown: Vec<String> = tick.fire.iter().map(|at| show(&plan, *at)).collect();
        let expected = [
            "2026-10-24T09:00:00+02:00",
            "2026-10-25T09:00:00+01:00",
            "2026-10-26T09:00:00+01:00",
            "2026-10-27T09:00:00+01:00",
        ];
        assert_eq!(shown, expected);
    }

    #[test]
    fn an_occurrence_in_the_repeated_or_skipped_hour_is_made_up_once_a_day() {
        // 02:30 happens twice in Paris on 25 October 2026 (it runs at the first), and not
        // at all on 29 March (it runs when the gap ends, at 03:00). Prefect (#7461) ran
        // such flows twice after the change; Airflow (#38098) and Home Assistant (#140771)
        // skipped the day.
        let plan = plan("30 2 * * *", "Europe/Paris", Overlap::Allow, all(30, 100));
        let cases = [
            (
                "2026-10-23T02:30:00+02:00",
                "2026-10-27T12:00:00+01:00",
                [
                    "2026-10-24T02:30:00+02:00",
                    "2026-10-25T02:30:00+02:00",
                    "2026-10-26T02:30:00+01:00",
                    "2026-10-27T02:30:00+01:00",
                ],
            ),
            (
                "2026-03-27T02:30:00+01:00",
                "2026-03-31T12:00:00+02:00",
                [
                    "2026-03-28T02:30:00+01:00",
                    "2026-03-29T03:00:00+02:00",
                    "2026-03-30T02:30:00+02:00",
                    "2026-03-31T02:30:00+02:00",
                ],
            ),
        ];
        for (last, now, expected) in cases {
            let held = Held {
                last: t(last),
                ..Held::default()
            };
            let tick = tick(&plan, &held, t(now), t(now)).unwrap();
            let shown: Vec<String> = tick.fire.iter().map(|at| show(&plan, *at)).collect();
            assert_eq!(shown, expected);
        }
    }

    #[test]
    fn a_tick_during_a_run_is_skipped_by_default_and_recorded() {
        // Windmill (#10917): a run slower than its interval silently lost occurrences.
        let plan = plan("*/10 * * * * *", "UTC", Overlap::Skip, Missed::Skip);
        let started = t("2026-11-30T00:00:00Z");
        let held = Held {
            last: t("2026-11-30T00:00:10Z"),
            waiting: Vec::new(),
            busy: Some(7),
        };
        let now = t("2026-11-30T00:00:20Z");
        let tick = tick(&plan, &held, started, now).unwrap();
        assert_eq!(
            (tick.fire.len(), tick.waiting.len(), tick.last),
            (0, 0, now)
        );
        assert!(
            tick.skipped[0].contains("inbox event 7 is pending or running"),
            "{:?}",
            tick.skipped
        );
    }

    #[test]
    fn overlap_queue_keeps_one_occurrence_waiting_at_most() {
        let plan = plan("*/10 * * * * *", "UTC", Overlap::Queue, Missed::Skip);
        let started = t("2026-11-30T00:00:00Z");
        let mut held = Held {
            last: t("2026-11-30T00:00:10Z"),
            waiting: Vec::new(),
            busy: Some(7),
        };
        let first = tick(&plan, &held, started, t("2026-11-30T00:00:20Z")).unwrap();
        assert_eq!(first.waiting, vec![t("2026-11-30T00:00:20Z")]);
        assert!(first.skipped.is_empty() && first.fire.is_empty());
        held.last = first.last;
        held.waiting = first.waiting;
        let second = tick(&plan, &held, started, t("2026-11-30T00:00:30Z")).unwrap();
        assert_eq!(second.waiting, vec![t("2026-11-30T00:00:20Z")]);
        assert_eq!(second.skipped.len(), 1);
        // The run ends: the waiting occurrence runs, with its own time.
        held.last = second.last;
        held.busy = None;
        let free = tick(&plan, &held, started, t("2026-11-30T00:00:31Z")).unwrap();
        assert_eq!(free.fire, vec![t("2026-11-30T00:00:20Z")]);
        assert!(free.waiting.is_empty());
    }

    #[test]
    fn overlap_allow_runs_beside_the_run_in_progress() {
        let plan = plan("*/10 * * * * *", "UTC", Overlap::Allow, Missed::Skip);
        let held = Held {
            last: t("2026-11-30T00:00:10Z"),
            waiting: Vec::new(),
            busy: Some(7),
        };
        let now = t("2026-11-30T00:00:20Z");
        let tick = tick(&plan, &held, t("2026-11-30T00:00:00Z"), now).unwrap();
        assert_eq!(tick.fire, vec![now]);
    }

    #[test]
    fn an_occurrence_just_before_a_restart_runs_as_on_time() {
        // Quartz's misfire threshold: a deploy at 09:00:05 does not skip the 09:00 report.
        let plan = plan("0 9 * * *", "Europe/Paris", Overlap::Skip, Missed::Skip);
        let held = Held {
            last: t("2026-11-29T09:00:00+01:00"),
            ..Held::default()
        };
        let nine = t("2026-11-30T09:00:00+01:00");
        for started in [nine, nine + 5, nine + 59] {
            let tick = tick(&plan, &held, started, started).unwrap();
            assert_eq!(tick.fire, vec![nine], "started {} s late", started - nine);
            assert!(tick.skipped.is_empty(), "{:?}", tick.skipped);
        }
        // A minute late, it was missed.
        let tick = tick(&plan, &held, nine + 60, nine + 60).unwrap();
        assert!(tick.fire.is_empty());
        assert!(tick.skipped[0].starts_with("1 occurrence(s) missed"));
    }

    #[test]
    fn the_grace_is_never_longer_than_the_interval() {
        // Every 10 s: started 3 s after :10, the :10 runs; 10 s or more after, it was missed.
        let plan = plan("*/10 * * * * *", "UTC", Overlap::Skip, Missed::Skip);
        let held = Held {
            last: t("2026-11-30T00:00:00Z"),
            ..Held::default()
        };
        let ten = t("2026-11-30T00:00:10Z");
        assert_eq!(
            tick(&plan, &held, ten + 3, ten + 3).unwrap().fire,
            vec![ten]
        );
        let held = Held {
            last: t("2026-11-29T23:59:50Z"),
            ..Held::default()
        };
        let tick = tick(&plan, &held, ten + 9, ten + 9).unwrap();
        assert_eq!(tick.fire, vec![ten]);
        assert!(tick.skipped[0].starts_with("1 occurrence(s) missed"));
    }

    #[test]
    fn a_stalled_loop_makes_up_by_the_missed_policy() {
        // The process served, but the tick came 25 s late: 10 s and 20 s were missed.
        let plan = plan("*/10 * * * * *", "UTC", Overlap::Skip, Missed::Skip);
        let started = t("2026-11-30T00:00:00Z");
        let held = Held {
            last: started,
            ..Held::default()
        };
        let now = t("2026-11-30T00:00:35Z");
        let tick = tick(&plan, &held, started, now).unwrap();
        assert_eq!(tick.fire, vec![t("2026-11-30T00:00:30Z")]);
        assert!(
            tick.skipped[0].starts_with("2 occurrence(s) missed"),
            "{:?}",
            tick.skipped
        );
    }
}
