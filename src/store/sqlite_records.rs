//! The SQLite store's records: dead letters, the run history, poll positions, the triggers'
//! health, the inbox's counts, pruning and the engine's sealed refresh tokens. Off the hot
//! path: on the records' connection, outside the writer thread.

use super::sqlite::{SqliteStore, exec, insert_dead_letter, insert_run};
use super::sqlite_filter::Filter;
use super::{
    AlertChange, AlertCounts, AlertKey, AlertState, Backlog, DeadLetter, LetterQuery, LetterState,
    LetterStates, Position, Pruned, Records, RunCount, RunLinks, RunQuery, RunRecord,
    ScheduleState, StoreError, TriggerHealth, now,
};
use crate::model::AlertStatus;
use rusqlite::{OptionalExtension, TransactionBehavior, params};

impl SqliteStore {
    /// Runs `sql` (statements taking the cutoff `?1` and a batch size `?2`) until a batch
    /// deletes less than a full one; returns the rows its last statement deleted. Each
    /// batch is its own transaction, so webhooks and workers get the store in between.
    fn delete_in_batches(&self, sql: &str, cutoff: i64) -> Result<usize, StoreError> {
        const BATCH: usize = 2_000;
        let mut total = 0;
        loop {
            let mut connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.error(e))?;
            let mut deleted = 0;
            for statement in sql.split(';') {
                deleted = exec(&transaction, statement, params![cutoff, BATCH as i64])
                    .map_err(|e| self.error(e))?;
            }
            transaction.commit().map_err(|e| self.error(e))?;
            total += deleted;
            if deleted < BATCH {
                return Ok(total);
            }
        }
    }
}

/// The clause of the dead letters `query` picks, for an index to find them.
fn letter_filter(query: &LetterQuery) -> Filter {
    let mut filter = Filter::default();
    if let Some(ids) = &query.ids {
        // The ids as one bound JSON array: each a seek by primary key.
        let ids = serde_json::to_string(ids).unwrap_or_default();
        filter.and("id IN (SELECT value FROM json_each(?))", ids);
    }
    filter.and_some("integration = ?", query.integration.clone());
    filter.and_some("step = ?", query.step.clone());
    filter.and_some("failed_at >= ?", query.since);
    filter.and_some("failed_at < ?", query.until);
    filter.and_some("id > ?", query.after);
    match query.states {
        LetterStates::Open => filter.and_always("settled_at IS NULL"),
        LetterStates::Replayed => filter.and_always("replay_event IS NOT NULL"),
        LetterStates::Discarded => {
            filter.and_always("settled_at IS NOT NULL AND replay_event IS NULL")
        }
        LetterStates::All => {}
    }
    filter
}

/// The clause of the runs `query` picks, for an index to find them.
fn run_filter(query: &RunQuery) -> Filter {
    let mut filter = Filter::default();
    filter.and_some("id = ?", query.id);
    filter.and_some("integration = ?", query.integration.clone());
    if query.failed_only {
        filter.and_always("outcome IN ('failed', 'dead_lettered')");
    }
    filter.and_some("outcome = ?", query.outcome.map(|o| o.as_str().to_string()));
    filter.and_some("trigger = ?", query.trigger.clone());
    filter.and_some("started_at >= ?", query.since);
    filter.and_some("started_at < ?", query.until);
    filter.and_some("id < ?", query.before);
    filter
}

fn letters_sql(filter: &Filter) -> String {
    format!(
        "SELECT id, integration, step, event, requests, status, error, attempts,
             failed_at, run, settled_at, replay_event, reason
         FROM dead_letters{} ORDER BY id LIMIT ?",
        filter.sql()
    )
}

fn runs_sql(filter: &Filter) -> String {
    format!(
        "SELECT id, integration, outcome, started_at, duration_ms, attempts, error, event,
             reason, trigger, replay_of, steps, retries, rate_limited
         FROM runs{} ORDER BY id DESC LIMIT ?",
        filter.sql()
    )
}

/// The dead letter run `?1` left.
const LETTER_OF_RUN: &str = "SELECT id FROM dead_letters INDEXED BY dead_letters_by_run
     WHERE run = ?1 ORDER BY id LIMIT 1";
/// The run whose dead letter run `?1` replays.
const RUN_REPLAYED: &str = "SELECT dead_letters.run FROM runs JOIN dead_letters
         ON dead_letters.id = runs.replay_of
     WHERE runs.id = ?1";
/// The runs that replay the dead letters of run `?1`.
const REPLAYED_BY: &str = "SELECT runs.id FROM dead_letters INDEXED BY dead_letters_by_run
         JOIN runs INDEXED BY runs_replay_of ON runs.replay_of = dead_letters.id
     WHERE dead_letters.run = ?1 AND runs.replay_of IS NOT NULL ORDER BY runs.id";
/// When the last run of `?1` that succeeded started: the end of one range of an index.
const LAST_SUCCESS: &str = "SELECT max(started_at) FROM runs INDEXED BY runs_by_outcome
     WHERE integration = ?1 AND outcome = 'succeeded'";
/// Each integration's open dead letters, from the index of the open ones alone.
const OPEN_LETTERS: &str = "SELECT integration, COUNT(*) FROM dead_letters
         INDEXED BY dead_letters_open
     WHERE settled_at IS NULL GROUP BY integration";

/// A limit as SQLite takes it; `None` is no limit.
fn limit(limit: Option<std::num::NonZeroUsize>) -> i64 {
    limit.map_or(i64::MAX, |n| i64::try_from(n.get()).unwrap_or(i64::MAX))
}

/// A count as SQLite stores it: a signed 64-bit integer.
fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Records for SqliteStore {
    fn dead_letter(&self, letter: &DeadLetter) -> Result<i64, StoreError> {
        let text = letter.text();
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        insert_dead_letter(&connection, letter, &text, letter.run).map_err(|e| self.error(e))
    }

    fn letters(&self, query: &LetterQuery) -> Result<Vec<(i64, DeadLetter)>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let filter = letter_filter(query);
        let mut statement = connection
            .prepare_cached(&letters_sql(&filter))
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map(filter.params(limit(query.limit)), |row| {
                let event: String = row.get(3)?;
                let requests: String = row.get(4)?;
                let settled: Option<i64> = row.get(10)?;
                let replay_event: Option<i64> = row.get(11)?;
                let reason: Option<String> = row.get(12)?;
                let state = match (settled, replay_event) {
                    (None, _) => LetterState::Open,
                    (Some(settled_at), Some(replay_event)) => LetterState::Replayed {
                        settled_at,
                        replay_event,
                        reason,
                    },
                    (Some(settled_at), None) => LetterState::Discarded {
                        settled_at,
                        reason: reason.unwrap_or_default(),
                    },
                };
                Ok((
                    row.get(0)?,
                    DeadLetter {
                        integration: row.get(1)?,
                        step: row.get(2)?,
                        event: serde_json::from_str(&event).unwrap_or_default(),
                        requests: serde_json::from_str(&requests).unwrap_or_default(),
                        status: row.get(5)?,
                        error: row.get(6)?,
                        attempts: row.get(7)?,
                        failed_at: row.get(8)?,
                        run: row.get(9)?,
                        state,
                    },
                ))
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.error(e))
    }

    fn position(&self, integration: &str, trigger: &str) -> Result<Option<Position>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        connection
            .query_row(
                "SELECT page, mark, high, known FROM poll_positions
                 WHERE integration = ?1 AND trigger = ?2",
                params![integration, trigger],
                |row| {
                    Ok(Position {
                        page: row.get(0)?,
                        mark: row.get(1)?,
                        high: row.get(2)?,
                        known: row.get(3)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.error(e))
    }

    fn schedule_state(
        &self,
        integration: &str,
        trigger: &str,
    ) -> Result<Option<ScheduleState>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let row = connection
            .query_row(
                "SELECT schedule, occurrence, waiting, CASE WHEN inbox.status IN ('pending', 'running')
                     THEN inbox.id END
                 FROM schedules LEFT JOIN inbox
                     ON inbox.id = schedules.event AND inbox.integration = schedules.integration
                 WHERE schedules.integration = ?1 AND schedules.trigger = ?2",
                params![integration, trigger],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, String>(2)?,
                        row.get::<_, Option<i64>>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.error(e))?;
        Ok(
            row.map(|(schedule, occurrence, waiting, busy)| ScheduleState {
                schedule,
                occurrence,
                // The store wrote this array; one edited by hand into something else waits for
                // nothing rather than stop the schedule.
                waiting: serde_json::from_str(&waiting).unwrap_or_default(),
                busy,
            }),
        )
    }

    fn inbox_counts(&self) -> Result<Vec<(String, usize)>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let mut statement = connection
            .prepare("SELECT status, COUNT(*) FROM inbox GROUP BY status ORDER BY status")
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as usize))
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.error(e))
    }

    fn backlog(&self) -> Result<Vec<Backlog>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let mut backlog = std::collections::BTreeMap::<String, Backlog>::new();
        let count = |n: i64| usize::try_from(n).unwrap_or(0);
        let mut statement = connection
            .prepare(
                "SELECT integration, status, COUNT(*), MIN(created_at) FROM inbox
                 WHERE status IN ('pending', 'running') GROUP BY integration, status",
            )
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, i64>(3)?,
                ))
            })
            .map_err(|e| self.error(e))?;
        for row in rows {
            let (integration, status, n, oldest) = row.map_err(|e| self.error(e))?;
            let part = backlog
                .entry(integration.clone())
                .or_insert_with(|| Backlog {
                    integration,
                    ..Backlog::default()
                });
            match status.as_str() {
                "running" => part.running = count(n),
                _ => part.pending = count(n),
            }
            part.oldest = Some(part.oldest.map_or(oldest, |o| o.min(oldest)));
        }
        let mut statement = connection
            .prepare(OPEN_LETTERS)
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })
            .map_err(|e| self.error(e))?;
        for row in rows {
            let (integration, n) = row.map_err(|e| self.error(e))?;
            let part = backlog
                .entry(integration.clone())
                .or_insert_with(|| Backlog {
                    integration,
                    ..Backlog::default()
                });
            part.dead_letters = count(n);
        }
        Ok(backlog.into_values().collect())
    }

    fn replay_matching(
        &self,
        query: &LetterQuery,
        reason: Option<&str>,
    ) -> Result<Vec<i64>, StoreError> {
        let open = LetterQuery {
            states: LetterStates::Open,
            ..query.clone()
        };
        let letters = self.letters(&open)?;
        let mut connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let transaction = connection.transaction().map_err(|e| self.error(e))?;
        let now = now();
        let mut replayed = Vec::new();
        for (id, letter) in &letters {
            // Settled in this transaction, and only if still open: a form sent twice (a
            // double click), or two people at once, replays a letter once.
            let claimed = exec(
                &transaction,
                "UPDATE dead_letters SET settled_at = ?2, reason = ?3
                 WHERE id = ?1 AND settled_at IS NULL",
                params![id, now, reason],
            )
            .map_err(|e| self.error(e))?;
            if claimed == 0 {
                continue;
            }
            // The replay comes from the trigger the original event came from.
            exec(
                &transaction,
                "INSERT INTO inbox (integration, event, created_at, updated_at, replay_of, trigger)
                 VALUES (?1, ?2, ?3, ?3, ?4, (SELECT trigger FROM runs WHERE id = ?5))",
                params![
                    letter.integration,
                    letter.event.to_string(),
                    now,
                    id,
                    letter.run
                ],
            )
            .map_err(|e| self.error(e))?;
            let event = transaction.last_insert_rowid();
            exec(
                &transaction,
                "UPDATE dead_letters SET replay_event = ?2 WHERE id = ?1",
                params![id, event],
            )
            .map_err(|e| self.error(e))?;
            replayed.push(*id);
        }
        transaction.commit().map_err(|e| self.error(e))?;
        Ok(replayed)
    }

    fn discard(&self, query: &LetterQuery, reason: &str) -> Result<Vec<i64>, StoreError> {
        let open = LetterQuery {
            states: LetterStates::Open,
            ..query.clone()
        };
        let ids: Vec<i64> = self.letters(&open)?.into_iter().map(|(id, _)| id).collect();
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        // Only those still open: a letter replayed or discarded meanwhile keeps its record.
        let mut statement = connection
            .prepare_cached(
                "UPDATE dead_letters SET settled_at = ?2, reason = ?3
                 WHERE settled_at IS NULL AND id IN (SELECT value FROM json_each(?1))
                 RETURNING id",
            )
            .map_err(|e| self.error(e))?;
        let ids = serde_json::to_string(&ids).unwrap_or_default();
        let mut discarded = statement
            .query_map(params![ids, now(), reason], |row| row.get(0))
            .map_err(|e| self.error(e))?
            .collect::<rusqlite::Result<Vec<i64>>>()
            .map_err(|e| self.error(e))?;
        discarded.sort_unstable();
        Ok(discarded)
    }

    fn prune(&self, retention: std::time::Duration) -> Result<Pruned, StoreError> {
        let cutoff = now().saturating_sub(retention.as_secs() as i64);
        // The same query twice in one transaction, with no change to the inbox between,
        // picks the same events: their checkpoints go, then they do.
        let finished = "SELECT id FROM inbox INDEXED BY inbox_finished
             WHERE status IN ('done', 'failed', 'dead_lettered') AND updated_at < ?1
             LIMIT ?2";
        Ok(Pruned {
            // Rows are added in time order: each batch looks at the oldest only, and the
            // first batch with a recent row ends the pruning.
            // Keys of the serve retention, oldest first (those of a trigger's own retention
            // are passed over, so that a batch of them does not end the pruning), then the
            // keys whose own time ended, by their index.
            dedupe_keys: self.delete_in_batches(
                "DELETE FROM dedupe WHERE seen_at < ?1 AND rowid IN (
                     SELECT rowid FROM dedupe WHERE keep_until IS NULL ORDER BY rowid LIMIT ?2)",
                cutoff,
            )? + self.delete_in_batches(
                "DELETE FROM dedupe WHERE rowid IN (
                     SELECT rowid FROM dedupe INDEXED BY dedupe_keep_until
                     WHERE keep_until IS NOT NULL AND keep_until < ?1 LIMIT ?2)",
                now(),
            )?,
            events: self.delete_in_batches(
                &format!(
                    "DELETE FROM checkpoints WHERE inbox_id IN ({finished});
                     DELETE FROM inbox WHERE id IN ({finished})"
                ),
                cutoff,
            )?,
            runs: self.delete_in_batches(
                "DELETE FROM runs WHERE started_at < ?1
                 AND id IN (SELECT id FROM runs ORDER BY id LIMIT ?2)",
                cutoff,
            )?,
            // Settled letters only, by their index: an open one waits for a person.
            dead_letters: self.delete_in_batches(
                "DELETE FROM dead_letters WHERE id IN (
                     SELECT id FROM dead_letters INDEXED BY dead_letters_settled
                     WHERE settled_at IS NOT NULL AND settled_at < ?1 LIMIT ?2)",
                cutoff,
            )?,
        })
    }

    fn record_run(&self, run: &RunRecord) -> Result<i64, StoreError> {
        let steps = run.steps_text();
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        insert_run(&connection, run, steps.as_deref()).map_err(|e| self.error(e))
    }

    fn runs(&self, query: &RunQuery) -> Result<Vec<(i64, RunRecord)>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let filter = run_filter(query);
        let mut statement = connection
            .prepare_cached(&runs_sql(&filter))
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map(filter.params(limit(query.limit)), |row| {
                let steps: Option<String> = row.get(11)?;
                let record = RunRecord {
                    integration: row.get(1)?,
                    outcome: row.get(2)?,
                    started_at: row.get(3)?,
                    duration_ms: row.get(4)?,
                    attempts: row.get(5)?,
                    retries: row.get(12)?,
                    rate_limited: row.get(13)?,
                    error: row.get(6)?,
                    event: row.get(7)?,
                    reason: row.get(8)?,
                    trigger: row.get(9)?,
                    replay_of: row.get(10)?,
                    // The store wrote this array; one edited by hand into something else
                    // shows no steps rather than hide the run.
                    steps: steps
                        .and_then(|s| serde_json::from_str(&s).ok())
                        .unwrap_or_default(),
                };
                Ok((row.get(0)?, record))
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.error(e))
    }

    fn run_links(&self, id: i64) -> Result<RunLinks, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let links = || -> rusqlite::Result<RunLinks> {
            let dead_letter = connection
                .query_row(LETTER_OF_RUN, params![id], |row| row.get(0))
                .optional()?;
            let replay_of_run = connection
                .query_row(RUN_REPLAYED, params![id], |row| row.get(0))
                .optional()?
                .flatten();
            let mut statement = connection.prepare_cached(REPLAYED_BY)?;
            let replayed_by = statement
                .query_map(params![id], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            Ok(RunLinks {
                dead_letter,
                replay_of_run,
                replayed_by,
            })
        };
        links().map_err(|e| self.error(e))
    }

    fn run_counts(
        &self,
        integration: &str,
        since: i64,
        width: std::num::NonZeroU32,
    ) -> Result<Vec<RunCount>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let mut statement = connection
            .prepare_cached(
                "SELECT started_at / ?3 * ?3 AS bucket, outcome, COUNT(*) FROM runs
                 WHERE integration = ?1 AND started_at >= ?2
                 GROUP BY bucket, outcome ORDER BY bucket, outcome",
            )
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map(params![integration, since, width.get()], |row| {
                Ok(RunCount {
                    bucket: row.get(0)?,
                    outcome: row.get(1)?,
                    runs: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.error(e))
    }

    fn last_success(&self, integration: &str) -> Result<Option<i64>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        connection
            .query_row(LAST_SUCCESS, params![integration], |row| row.get(0))
            .map_err(|e| self.error(e))
    }

    fn save_triggers(&self, triggers: &[TriggerHealth]) -> Result<(), StoreError> {
        let mut connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let transaction = connection.transaction().map_err(|e| self.error(e))?;
        for t in triggers {
            exec(
                &transaction,
                "INSERT OR REPLACE INTO triggers (integration, trigger, last_success_at,
                     last_error_at, last_error, consecutive_failures, successes, failures)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    t.integration,
                    t.trigger,
                    t.last_success_at,
                    t.last_error_at,
                    t.last_error,
                    count(t.consecutive_failures),
                    count(t.successes),
                    count(t.failures)
                ],
            )
            .map_err(|e| self.error(e))?;
        }
        transaction.commit().map_err(|e| self.error(e))
    }

    fn triggers(&self) -> Result<Vec<TriggerHealth>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let mut statement = connection
            .prepare(
                "SELECT integration, trigger, last_success_at, last_error_at, last_error,
                     consecutive_failures, successes, failures
                 FROM triggers ORDER BY integration, trigger",
            )
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| {
                Ok(TriggerHealth {
                    integration: row.get(0)?,
                    trigger: row.get(1)?,
                    last_success_at: row.get(2)?,
                    last_error_at: row.get(3)?,
                    last_error: row.get(4)?,
                    consecutive_failures: u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
                    successes: u64::try_from(row.get::<_, i64>(6)?).unwrap_or(0),
                    failures: u64::try_from(row.get::<_, i64>(7)?).unwrap_or(0),
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.error(e))
    }

    fn alert_counts(&self, integration: &str, since: i64) -> Result<AlertCounts, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        connection
            .query_row(
                "SELECT COALESCE(SUM(outcome = 'dead_lettered'), 0),
                     COALESCE(SUM(outcome IN ('failed', 'dead_lettered')), 0),
                     COALESCE(SUM(retries), 0), COALESCE(SUM(rate_limited), 0)
                 FROM runs INDEXED BY runs_by_time WHERE integration = ?1 AND started_at >= ?2",
                params![integration, since],
                |row| {
                    let n = |i| row.get::<_, i64>(i).map(|n| u64::try_from(n).unwrap_or(0));
                    Ok(AlertCounts {
                        dead_letters: n(0)?,
                        failed_runs: n(1)?,
                        retries: n(2)?,
                        rate_limited: n(3)?,
                    })
                },
            )
            .map_err(|e| self.error(e))
    }

    fn alerts(&self) -> Result<Vec<AlertState>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let mut statement = connection
            .prepare(
                "SELECT integration, alert, status, value, changed_at, notified, notified_at, error
                 FROM alerts ORDER BY integration, alert",
            )
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| {
                // The store wrote these; one edited by hand into something else reads as
                // `ok`, which at worst notifies once more.
                let status = |i| {
                    row.get::<_, String>(i)
                        .map(|s| AlertStatus::parse(&s).unwrap_or(AlertStatus::Ok))
                };
                Ok(AlertState {
                    integration: row.get(0)?,
                    alert: row.get(1)?,
                    status: status(2)?,
                    value: u64::try_from(row.get::<_, i64>(3)?).unwrap_or(0),
                    changed_at: row.get(4)?,
                    notified: status(5)?,
                    notified_at: row.get(6)?,
                    error: row.get(7)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.error(e))
    }

    fn save_alert(&self, alert: AlertKey<'_>, change: AlertChange<'_>) -> Result<(), StoreError> {
        let AlertKey { integration, alert } = alert;
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let written = match change {
            AlertChange::Status { status, value } => exec(
                &connection,
                "INSERT INTO alerts (integration, alert, status, value, changed_at, notified)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'ok')
                 ON CONFLICT (integration, alert) DO UPDATE
                     SET status = excluded.status, value = excluded.value,
                         changed_at = excluded.changed_at",
                params![integration, alert, status.as_str(), count(value), now()],
            ),
            AlertChange::Notified { status, error } => exec(
                &connection,
                "UPDATE alerts SET notified = ?3, notified_at = ?4, error = ?5
                 WHERE integration = ?1 AND alert = ?2",
                params![integration, alert, status.as_str(), now(), error],
            ),
        };
        written.map(|_| ()).map_err(|e| self.error(e))
    }

    fn rename_alert(&self, alert: AlertKey<'_>, to: &str) -> Result<(), StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        exec(
            &connection,
            "UPDATE alerts SET alert = ?3 WHERE integration = ?1 AND alert = ?2",
            params![alert.integration, alert.alert, to],
        )
        .map(|_| ())
        .map_err(|e| self.error(e))
    }

    fn forget_alert(&self, alert: AlertKey<'_>) -> Result<(), StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        exec(
            &connection,
            "DELETE FROM alerts WHERE integration = ?1 AND alert = ?2",
            params![alert.integration, alert.alert],
        )
        .map(|_| ())
        .map_err(|e| self.error(e))
    }

    fn purge(&self) -> Result<usize, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        exec(&connection, "DELETE FROM dead_letters", []).map_err(|e| self.error(e))
    }
}

/// The engine's rotated refresh tokens, sealed by it, kept here: written before the engine
/// sends one, so a restart sends the current one.
impl crate::engine::RefreshTokens for SqliteStore {
    fn load(
        &self,
        integration: &str,
        connection: &str,
    ) -> Result<Option<Vec<u8>>, crate::engine::KeeperError> {
        let lock = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        lock.query_row(
            "SELECT sealed FROM refresh_tokens WHERE integration = ?1 AND connection = ?2",
            params![integration, connection],
            |row| row.get(0),
        )
        .optional()
        .map_err(|e| self.error(e).into())
    }

    fn save(
        &self,
        integration: &str,
        connection: &str,
        sealed: &[u8],
    ) -> Result<(), crate::engine::KeeperError> {
        let lock = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        exec(
            &lock,
            "INSERT OR REPLACE INTO refresh_tokens (integration, connection, sealed) VALUES (?1, ?2, ?3)",
            params![integration, connection, sealed],
        )
        .map(|_| ())
        .map_err(|e| self.error(e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::tests::fresh;
    use crate::store::{LetterQuery, RunQuery, RunStatus};

    /// SQLite's plan for `sql`, one line per step.
    fn plan(store: &SqliteStore, sql: &str, params: impl rusqlite::Params) -> Vec<String> {
        let connection = store.connection.lock().unwrap();
        let mut statement = connection
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        statement
            .query_map(params, |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    /// Whether a step of `plan` reads all of a table: a `SCAN` that uses no index.
    fn scans_a_table(plan: &[String]) -> bool {
        plan.iter()
            .any(|step| step.starts_with("SCAN ") && !step.contains("INDEX"))
    }

    fn run_plan(store: &SqliteStore, query: RunQuery) -> Vec<String> {
        let filter = run_filter(&query);
        let sql = runs_sql(&filter);
        plan(store, &sql, filter.params(10))
    }

    fn letter_plan(store: &SqliteStore, query: LetterQuery) -> Vec<String> {
        let filter = letter_filter(&query);
        let sql = letters_sql(&filter);
        plan(store, &sql, filter.params(10))
    }

    #[test]
    fn reads_of_one_record_or_one_integration_seek_an_index_and_scan_no_table() {
        // The records' connection is the one the serve path shares (tokens, positions,
        // alerts, gauges): a page that scans a table holds all of them up.
        let (dir, store) = fresh("seeks");
        let by_id = run_plan(
            &store,
            RunQuery {
                id: Some(7),
                ..RunQuery::default()
            },
        );
        assert!(
            by_id.iter().any(|s| s.contains("INTEGER PRIMARY KEY")),
            "{by_id:?}"
        );
        let rare = run_plan(
            &store,
            RunQuery {
                integration: Some("rare".into()),
                outcome: Some(RunStatus::Failed),
                ..RunQuery::default()
            },
        );
        assert!(!scans_a_table(&rare), "{rare:?}");
        let mut integration_only = RunQuery {
            integration: Some("rare".into()),
            ..RunQuery::default()
        };
        integration_only.before = Some(100);
        let page = run_plan(&store, integration_only);
        assert!(!scans_a_table(&page), "{page:?}");
        let letter = letter_plan(
            &store,
            LetterQuery {
                ids: Some(vec![7]),
                states: LetterStates::All,
                ..LetterQuery::default()
            },
        );
        assert!(!scans_a_table(&letter), "{letter:?}");
        let open = letter_plan(
            &store,
            LetterQuery {
                integration: Some("rare".into()),
                ..LetterQuery::default()
            },
        );
        assert!(!scans_a_table(&open), "{open:?}");
        for sql in [LETTER_OF_RUN, RUN_REPLAYED, REPLAYED_BY, LAST_SUCCESS] {
            let steps = plan(&store, sql, params![7]);
            assert!(!scans_a_table(&steps), "{sql}: {steps:?}");
        }
        let steps = plan(&store, OPEN_LETTERS, []);
        assert!(!scans_a_table(&steps), "{steps:?}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
