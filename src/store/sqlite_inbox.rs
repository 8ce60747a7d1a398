//! The SQLite store's inbox: every call runs on the writer thread (`sqlite_writer`), inside
//! the transaction of the writes waiting with it.

use super::SqliteStore;
use super::sqlite::{exec, insert_dead_letter, insert_run};
use super::{
    Ending, Enqueued, Finished, Inbox, InboxItem, NewEvents, Owner, Pending, RunRecord,
    ScheduleMark,
};
use rusqlite::{Connection, params};
use serde_json::Value as Json;

impl Inbox for SqliteStore {
    fn enqueue(&self, new: NewEvents<'_>) -> Pending<Enqueued> {
        // Serialised here, on the caller's thread, so that the writer only writes.
        let integration = new.integration.to_string();
        let events: Vec<(String, Option<String>)> = new
            .events
            .iter()
            .map(|(event, key)| (event.to_string(), key.clone()))
            .collect();
        let position = new.position.map(|(t, p)| (t.to_string(), p.clone()));
        let trigger = new.trigger().map(str::to_string);
        let owner = new.owner.cloned();
        let mark = new.mark.cloned();
        let retention = new
            .retention
            .map(|r| i64::try_from(r.as_secs()).unwrap_or(i64::MAX));
        self.writer.call(move |transaction, now| {
            let claim = owner.as_ref().map(|o| (o.name(), o.lease_until(now)));
            let keep_until = retention.map(|r| now.saturating_add(r));
            let ids = events
                .iter()
                .map(|(event, key)| {
                    let key = key.as_deref().map(|k| (k, keep_until));
                    let source = (integration.as_str(), trigger.as_deref());
                    insert_event(transaction, source, event, key, claim, now)
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            if let Some((trigger, position)) = &position {
                exec(
                    transaction,
                    "INSERT OR REPLACE INTO poll_positions
                         (integration, trigger, page, mark, high, known)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        integration,
                        trigger,
                        position.page,
                        position.mark,
                        position.high,
                        position.known
                    ],
                )?;
            }
            if let Some(mark) = &mark {
                write_mark(transaction, &integration, mark, &ids)?;
            }
            Ok(Enqueued { ids, at: now })
        })
    }

    fn claim(&self, owner: &Owner, limit: usize, from: &[String]) -> Pending<Vec<InboxItem>> {
        let owner = owner.clone();
        // The names travel as one JSON array, so the statement stays the same (and cached)
        // whatever their number.
        let from = serde_json::to_string(from).unwrap_or_else(|_| "[]".into());
        self.writer
            .call(move |transaction, now| claim(transaction, &owner, limit, &from, now))
    }

    fn checkpoint(&self, id: i64, step: &str, result: Option<&Json>) -> Pending<()> {
        let step = step.to_string();
        let result = result.map(Json::to_string);
        self.writer.call(move |transaction, _| {
            exec(
                transaction,
                "INSERT OR REPLACE INTO checkpoints (inbox_id, step, result) VALUES (?1, ?2, ?3)",
                params![id, step, result],
            )?;
            Ok(())
        })
    }

    fn finish(&self, id: i64, ending: Ending) -> Pending<()> {
        self.writer
            .call(move |transaction, now| finish(transaction, id, ending.parts(), now))
    }

    fn heartbeat(&self, owner: &Owner) -> Pending<usize> {
        let owner = owner.clone();
        self.writer.call(move |transaction, now| {
            exec(
                transaction,
                "UPDATE inbox SET lease_until = ?2 WHERE status = 'running' AND owner = ?1",
                params![owner.name(), owner.lease_until(now)],
            )
        })
    }

    fn recover(&self, owner: &Owner) -> Pending<usize> {
        let owner = owner.name().to_string();
        // One process at a time serves a file (it holds the lock beside it), so every
        // other owner is gone, whatever its lease says.
        self.writer.call(move |transaction, _| {
            exec(
                transaction,
                "UPDATE inbox SET status = 'pending', owner = NULL, lease_until = NULL
                 WHERE status = 'running' AND owner IS NOT ?1",
                params![owner],
            )
        })
    }

    fn unclaim(&self, owner: &Owner, ids: &[i64]) -> Pending<()> {
        let owner = owner.name().to_string();
        let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        self.writer.call(move |transaction, _| {
            exec(
                transaction,
                "UPDATE inbox SET status = 'pending', owner = NULL, lease_until = NULL,
                     attempts = max(attempts - 1, 0)
                 WHERE status = 'running' AND owner = ?1
                     AND id IN (SELECT value FROM json_each(?2))",
                params![owner, ids],
            )?;
            Ok(())
        })
    }

    fn due(&self, from: &[String]) -> Pending<usize> {
        let from = serde_json::to_string(from).unwrap_or_else(|_| "[]".into());
        self.writer.call(move |transaction, now| {
            // Seeks in `inbox_claim` (status, integration, not_before) for each name.
            let count: i64 = transaction
                .prepare_cached(
                    "SELECT COUNT(*) FROM json_each(?1) AS names, inbox
                     WHERE inbox.integration = names.value
                         AND (status = 'running' OR (status = 'pending'
                             AND (not_before IS NULL OR not_before <= ?2)))",
                )?
                .query_row(params![from, now], |row| row.get(0))?;
            Ok(usize::try_from(count).unwrap_or(0))
        })
    }
}

/// Keeps what a schedule's tick handled, with the last event it enqueued as the
/// schedule's run in progress (an occurrence dropped as a duplicate leaves the one before),
/// and the runs it skipped.
fn write_mark(
    transaction: &Connection,
    integration: &str,
    mark: &ScheduleMark,
    ids: &[Option<i64>],
) -> rusqlite::Result<()> {
    let event = ids.iter().rev().find_map(|id| *id);
    let waiting = serde_json::to_string(&mark.waiting).unwrap_or_else(|_| "[]".into());
    exec(
        transaction,
        "INSERT INTO schedules (integration, trigger, schedule, occurrence, event, waiting)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (integration, trigger) DO UPDATE SET schedule = excluded.schedule,
             occurrence = excluded.occurrence, waiting = excluded.waiting,
             event = coalesce(excluded.event, schedules.event)",
        params![
            integration,
            mark.trigger,
            mark.schedule,
            mark.occurrence,
            event,
            waiting
        ],
    )?;
    for run in &mark.skipped {
        let run = RunRecord {
            trigger: run.trigger.clone().or_else(|| Some(mark.trigger.clone())),
            ..run.clone()
        };
        insert_run(transaction, &run, run.steps_text().as_deref())?;
    }
    Ok(())
}

/// Inserts one event unless its dedupe key was seen; returns its id, or `None` for a
/// duplicate. A key may be kept until a time of its trigger's (else the serve retention
/// applies). With a claim (owner, lease end) it is running from the start, attempt 1.
fn insert_event(
    transaction: &Connection,
    (integration, trigger): (&str, Option<&str>),
    event: &str,
    key: Option<(&str, Option<i64>)>,
    claim: Option<(&str, i64)>,
    now: i64,
) -> rusqlite::Result<Option<i64>> {
    if let Some((key, keep_until)) = key {
        let fresh = exec(
            transaction,
            "INSERT OR IGNORE INTO dedupe (integration, key, seen_at, keep_until)
             VALUES (?1, ?2, ?3, ?4)",
            params![integration, key, now, keep_until],
        )?;
        if fresh == 0 {
            return Ok(None);
        }
    }
    let (status, owner, lease_until, attempts) = match claim {
        Some((owner, until)) => ("running", Some(owner), Some(until), 1),
        None => ("pending", None, None, 0),
    };
    exec(
        transaction,
        "INSERT INTO inbox (integration, event, created_at, updated_at, status, owner,
             lease_until, attempts, trigger)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            integration,
            event,
            now,
            status,
            owner,
            lease_until,
            attempts,
            trigger
        ],
    )?;
    Ok(Some(transaction.last_insert_rowid()))
}

fn claim(
    transaction: &Connection,
    owner: &Owner,
    limit: usize,
    from: &str,
    now: i64,
) -> rusqlite::Result<Vec<InboxItem>> {
    // The oldest pending events turn running. Each integration's oldest events are found
    // by a seek in `inbox_claim` (events due now and deferred events whose time came are
    // two seeks), so a long backlog of an integration left out costs nothing.
    let mut claimed = transaction
        .prepare_cached(
            "UPDATE inbox SET status = 'running', updated_at = ?1, attempts = attempts + 1,
                 not_before = NULL, owner = ?4, lease_until = ?5
             WHERE id IN (
                 SELECT candidate.id FROM json_each(?3) AS names, inbox AS candidate
                 WHERE candidate.id IN (
                     SELECT id FROM inbox
                     WHERE status = 'pending' AND integration = names.value
                         AND not_before IS NULL
                     ORDER BY id LIMIT ?2)
                 OR candidate.id IN (
                     SELECT id FROM inbox
                     WHERE status = 'pending' AND integration = names.value
                         AND not_before <= ?1
                     ORDER BY id LIMIT ?2)
                 ORDER BY candidate.id LIMIT ?2)
             RETURNING id, integration, event, attempts, created_at",
        )?
        .query_map(
            params![
                now,
                limit as i64,
                from,
                owner.name(),
                owner.lease_until(now)
            ],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, u32>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    claimed.sort_by_key(|(id, ..)| *id);
    let mut items = Vec::with_capacity(claimed.len());
    for (id, integration, event, attempts, created_at) in claimed {
        items.push(InboxItem {
            done: checkpoints(transaction, id)?,
            // The store wrote this text from a JSON value; a row edited by hand into
            // something else runs as `null`, and the run's steps say what they miss.
            event: serde_json::from_str(&event).unwrap_or_default(),
            id,
            integration,
            attempts,
            created_at,
            committed: None,
        });
    }
    Ok(items)
}

/// The results of the steps event `id` completed, by step.
fn checkpoints(
    transaction: &Connection,
    id: i64,
) -> rusqlite::Result<serde_json::Map<String, Json>> {
    let mut statement =
        transaction.prepare_cached("SELECT step, result FROM checkpoints WHERE inbox_id = ?1")?;
    let rows = statement.query_map(params![id], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
    })?;
    let mut done = serde_json::Map::new();
    for row in rows {
        let (step, result) = row?;
        let result = result.and_then(|r| serde_json::from_str(&r).ok());
        done.insert(step, result.unwrap_or_default());
    }
    Ok(done)
}

fn finish(
    transaction: &Connection,
    id: i64,
    ending: &super::inbox::Encoded,
    now: i64,
) -> rusqlite::Result<()> {
    let status = &ending.status;
    exec(
        transaction,
        // A deferred run ended cleanly: its claim was no crash, so it is not counted.
        "UPDATE inbox SET status = ?2, updated_at = ?3, not_before = ?4, owner = NULL,
             lease_until = NULL,
             attempts = CASE WHEN ?4 IS NULL THEN attempts ELSE attempts - 1 END
         WHERE id = ?1",
        params![id, status.as_str(), now, status.not_before()],
    )?;
    // A deferred event resumes at its first unfinished step: its checkpoints stay.
    if status.ends() {
        exec(
            transaction,
            "DELETE FROM checkpoints WHERE inbox_id = ?1",
            params![id],
        )?;
    }
    let run = ending
        .run
        .as_ref()
        .map(|run| insert_run(transaction, run, ending.steps.as_deref()))
        .transpose()?;
    if let (Finished::DeadLettered(letter), Some(text)) = (status, &ending.letter) {
        insert_dead_letter(transaction, letter, text, letter.run.or(run))?;
    }
    Ok(())
}
