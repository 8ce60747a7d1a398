//! What the store keeps of each schedule: the last occurrence handled, the run it started
//! and the occurrences waiting for that run to end. A tick commits it together with the
//! events it enqueues and the runs it skipped, so that a crash neither loses nor doubles an
//! occurrence.

/// What a schedule's tick commits with its events (see `NewEvents::marking`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleMark {
    /// `schedule 0`: the trigger's place among the integration's schedules.
    pub trigger: String,
    /// The schedule as declared (cron and time zone): a mark left by another schedule at
    /// the same place is not this one's.
    pub schedule: String,
    /// The last occurrence handled, fired, skipped or put to wait (Unix seconds).
    pub occurrence: i64,
    /// Occurrences waiting for the schedule's run in progress to end, oldest first (Unix
    /// seconds).
    pub waiting: Vec<i64>,
    /// Occurrences skipped, each a run of the history with its reason.
    pub skipped: Vec<super::RunRecord>,
}

/// What the store holds of a schedule, as a tick reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleState {
    /// The schedule as declared when the mark was left.
    pub schedule: String,
    /// The last occurrence handled (Unix seconds).
    pub occurrence: i64,
    /// Occurrences waiting for the run in progress, oldest first.
    pub waiting: Vec<i64>,
    /// The inbox event of the schedule's last run, while it is pending or running.
    pub busy: Option<i64>,
}
