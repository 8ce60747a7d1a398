//! Durable state: dead letters, in SQLite by default (one file, WAL, nothing to install,
//! readable with `sqlite3`). The store is a trait so that a Redis store can serve a fleet of
//! workers later.

use crate::engine::{RunReport, StepReport};
use crate::secrets::Secrets;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// An event that could not complete, with everything needed to inspect and replay it.
/// Secrets are redacted from every field before it is stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetter {
    pub integration: String,
    pub step: String,
    pub event: serde_json::Value,
    /// `METHOD URL` of each request the step made.
    pub requests: Vec<String>,
    /// The last response status, when there was a response.
    pub status: Option<u16>,
    /// The error, with the response excerpt when the server answered.
    pub error: String,
    pub attempts: u32,
    /// Seconds since the Unix epoch.
    pub failed_at: i64,
}

impl DeadLetter {
    /// The dead letter of a run that ended at `step`.
    pub fn from_run(
        report: &RunReport,
        step: &StepReport,
        event: &serde_json::Value,
        secrets: &Secrets,
    ) -> Self {
        let event = serde_json::from_str(&secrets.redact(&event.to_string())).unwrap_or_default();
        let last = step.requests.last();
        Self {
            integration: report.integration.clone(),
            step: step.name.clone(),
            event,
            requests: step
                .requests
                .iter()
                .map(|r| secrets.redact(&format!("{} {}", r.method, r.url)))
                .collect(),
            status: last.and_then(|r| r.status),
            error: secrets.redact(step.error.as_deref().unwrap_or("")),
            attempts: step.requests.iter().map(|r| r.attempts).sum(),
            failed_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state store `{path}`: {source}")]
    Sqlite {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("cannot create the folder of `{path}`: {source}")]
    Folder {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the state store is unusable after an earlier failure")]
    Poisoned,
    /// The failure of a group commit, shared by every enqueue in it.
    #[error(transparent)]
    Shared(Arc<StoreError>),
}

/// Where dead letters go.
pub trait Store: Send + Sync {
    /// Stores a dead letter and returns its id.
    fn dead_letter(&self, letter: &DeadLetter) -> Result<i64, StoreError>;
    /// Every dead letter, oldest first, with its id.
    fn dead_letters(&self) -> Result<Vec<(i64, DeadLetter)>, StoreError>;
    /// Commits events to the inbox in one transaction, each with its dedupe key; an event
    /// whose key was seen before is dropped. Returns how many were enqueued and dropped.
    fn enqueue(
        &self,
        integration: &str,
        events: &[(serde_json::Value, Option<String>)],
    ) -> Result<(usize, usize), StoreError> {
        self.enqueue_page(integration, None, events)
    }
    /// Like `enqueue`, and in the same transaction moves the position of a poll trigger:
    /// a cursor is never stored past events that are not committed.
    fn enqueue_page(
        &self,
        integration: &str,
        position: Option<(&str, &str)>,
        events: &[(serde_json::Value, Option<String>)],
    ) -> Result<(usize, usize), StoreError>;
    /// The stored position of poll trigger `trigger`.
    fn position(&self, integration: &str, trigger: &str) -> Result<Option<String>, StoreError>;
    /// Takes up to `limit` of the oldest pending events of the integrations named in `from`
    /// (marking them running), oldest first, each with the results of the steps it already
    /// completed. Events of other integrations stay pending, however old.
    fn claim(&self, limit: usize, from: &[&str]) -> Result<Vec<InboxItem>, StoreError>;
    /// Records that `step` of inbox event `id` completed, with its result.
    fn checkpoint(
        &self,
        id: i64,
        step: &str,
        result: Option<&serde_json::Value>,
    ) -> Result<(), StoreError>;
    /// Ends inbox event `id`, with its run added to the history in the same transaction.
    fn finish(&self, id: i64, status: Finished, run: Option<&RunRecord>) -> Result<(), StoreError>;
    /// Puts back the events a stopped process left running; returns how many.
    fn recover(&self) -> Result<usize, StoreError>;
    /// Inbox events by status, for tests and operations.
    fn inbox_counts(&self) -> Result<Vec<(String, usize)>, StoreError>;
    /// Moves dead letters back to the inbox (all of them when `ids` is `None`), to run
    /// again; returns the ids replayed.
    fn replay(&self, ids: Option<&[i64]>) -> Result<Vec<i64>, StoreError>;
    /// Deletes every dead letter; returns how many there were.
    fn purge(&self) -> Result<usize, StoreError>;
    /// Forgets what is older than `retention`: dedupe keys first seen before, finished
    /// events (with their checkpoints) and runs. Pending and running events, and dead
    /// letters, are kept whatever their age.
    fn prune(&self, retention: std::time::Duration) -> Result<Pruned, StoreError>;
    /// Adds a run to the history.
    fn record_run(&self, run: &RunRecord) -> Result<(), StoreError>;
    /// The history, newest first: of one integration or all, of failed runs or all.
    fn runs(
        &self,
        integration: Option<&str>,
        failed_only: bool,
    ) -> Result<Vec<RunRecord>, StoreError>;
}

/// What a `prune` forgot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub dedupe_keys: usize,
    pub events: usize,
    pub runs: usize,
}

/// One run in the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunRecord {
    pub integration: String,
    /// `succeeded`, `failed` or `dead_lettered`.
    pub outcome: String,
    /// Seconds since the Unix epoch.
    pub started_at: i64,
    pub duration_ms: i64,
    /// Requests made, retries included.
    pub attempts: u32,
    /// The step that failed and why; secrets redacted.
    pub error: Option<String>,
}

impl RunRecord {
    pub fn from_run(report: &RunReport, secrets: &Secrets) -> Self {
        let outcome = serde_json::to_value(report.outcome)
            .ok()
            .and_then(|v| v.as_str().map(String::from));
        let failed = report
            .steps
            .iter()
            .find(|s| s.error.is_some() && s.outcome != crate::model::Outcome::Skipped);
        let duration_ms = report.duration.as_millis() as i64;
        Self {
            integration: report.integration.clone(),
            outcome: outcome.unwrap_or_default(),
            started_at: now() - duration_ms / 1000,
            duration_ms,
            attempts: report
                .steps
                .iter()
                .flat_map(|s| &s.requests)
                .map(|r| r.attempts)
                .sum(),
            error: failed.map(|s| {
                secrets.redact(&format!("{}: {}", s.name, s.error.as_deref().unwrap_or("")))
            }),
        }
    }
}

/// An event of the inbox, claimed by a worker.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    pub id: i64,
    pub integration: String,
    pub event: serde_json::Value,
    /// The results of the steps already completed, by step name (`null` for a step that
    /// completed without a result, such as a skipped one).
    pub done: serde_json::Map<String, serde_json::Value>,
}

/// How an inbox event ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    Done,
    Failed,
    /// Kept in the dead letters, in the transaction that ends the event: a crash cannot
    /// leave a dead letter for an event that will run again.
    DeadLettered(Box<DeadLetter>),
}

impl Finished {
    fn as_str(&self) -> &'static str {
        match self {
            Finished::Done => "done",
            Finished::Failed => "failed",
            Finished::DeadLettered(_) => "dead_lettered",
        }
    }
}

/// The schema, one migration per version; `PRAGMA user_version` records how many ran.
/// Append only: a released migration is never edited or reordered.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE dead_letters (
        id          INTEGER PRIMARY KEY,
        integration TEXT NOT NULL,
        step        TEXT NOT NULL,
        event       TEXT NOT NULL,
        requests    TEXT NOT NULL,
        status      INTEGER,
        error       TEXT NOT NULL,
        attempts    INTEGER NOT NULL,
        failed_at   INTEGER NOT NULL
    )",
    "CREATE TABLE inbox (
        id          INTEGER PRIMARY KEY,
        integration TEXT NOT NULL,
        event       TEXT NOT NULL,
        status      TEXT NOT NULL DEFAULT 'pending',
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE INDEX inbox_pending ON inbox (status, id);
    CREATE TABLE dedupe (
        integration TEXT NOT NULL,
        key         TEXT NOT NULL,
        seen_at     INTEGER NOT NULL,
        PRIMARY KEY (integration, key)
    );
    CREATE TABLE checkpoints (
        inbox_id INTEGER NOT NULL REFERENCES inbox (id),
        step     TEXT NOT NULL,
        result   TEXT,
        PRIMARY KEY (inbox_id, step)
    )",
    "CREATE TABLE cursors (
        integration TEXT NOT NULL,
        trigger     TEXT NOT NULL,
        position    TEXT NOT NULL,
        PRIMARY KEY (integration, trigger)
    )",
    "CREATE TABLE runs (
        id          INTEGER PRIMARY KEY,
        integration TEXT NOT NULL,
        outcome     TEXT NOT NULL,
        started_at  INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        attempts    INTEGER NOT NULL,
        error       TEXT
    )",
    // Claims seek each integration's oldest pending events; pruning finds old finished
    // events without reading the whole inbox. Partial, so that only finishing an event
    // writes to it. (Dedupe keys and runs are pruned in rowid order, their time order.)
    "DROP INDEX inbox_pending;
    CREATE INDEX inbox_claim ON inbox (status, integration, id);
    CREATE INDEX inbox_finished ON inbox (updated_at)
        WHERE status IN ('done', 'failed', 'dead_lettered')",
];

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[derive(Debug)]
pub struct SqliteStore {
    path: String,
    connection: Mutex<Connection>,
    /// Writes waiting for the next group commit (see `write`).
    waiting: Mutex<Vec<Waiting>>,
}

/// A write of the hot path, as the group commit that takes it runs it.
#[derive(Debug)]
enum Change {
    Enqueue {
        integration: String,
        position: Option<(String, String)>,
        /// Each event as JSON text, with its dedupe key.
        events: Vec<(String, Option<String>)>,
    },
    Checkpoint {
        id: i64,
        step: String,
        /// The step's result as JSON text.
        result: Option<String>,
    },
    Finish {
        id: i64,
        status: Finished,
        run: Option<RunRecord>,
    },
}

/// What a change did: for an enqueue, the events enqueued and dropped as duplicates.
type Counts = (usize, usize);

/// The outcome of a change, set by the group commit that ran it.
type Outcome = Arc<OnceLock<Result<Counts, Arc<StoreError>>>>;

#[derive(Debug)]
struct Waiting {
    change: Change,
    done: Outcome,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) and migrates the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let display = path.display().to_string();
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|source| StoreError::Folder {
                path: display.clone(),
                source,
            })?;
        }
        let sqlite = |source| StoreError::Sqlite {
            path: display.clone(),
            source,
        };
        let mut connection = Connection::open(path).map_err(sqlite)?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        // FULL: a commit is on disk before it returns, so a 202 survives a power cut, not
        // only a crash of the process. Group commit spreads each sync over many writes.
        connection
            .pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(sqlite)?;
        migrate(&mut connection).map_err(sqlite)?;
        Ok(Self {
            path: display,
            connection: Mutex::new(connection),
            waiting: Mutex::new(Vec::new()),
        })
    }

    /// Group commit: webhooks arrive together and workers checkpoint and finish together, and one
    /// transaction for all that wait is far cheaper than one each. A caller queues its
    /// change, then takes the connection; if the holder before it committed the queue
    /// meanwhile, it only reads its outcome, else it commits every queued change in one
    /// transaction. A failure fails them all: no webhook is answered 202, no event is
    /// marked finished, nothing is lost.
    fn write(&self, change: Change) -> Result<Counts, StoreError> {
        let done: Outcome = Arc::default();
        let waiting = Waiting {
            change,
            done: done.clone(),
        };
        self.waiting
            .lock()
            .map_err(|_| StoreError::Poisoned)?
            .push(waiting);
        let Ok(mut connection) = self.connection.lock() else {
            // Every write fails from now on: drop the queue rather than let it grow.
            if let Ok(mut waiting) = self.waiting.lock() {
                waiting.clear();
            }
            return Err(StoreError::Poisoned);
        };
        if done.get().is_none() {
            let batch =
                std::mem::take(&mut *self.waiting.lock().map_err(|_| StoreError::Poisoned)?);
            match self.commit(&mut connection, &batch) {
                Ok(counts) => {
                    for (waiting, counts) in batch.iter().zip(counts) {
                        let _ = waiting.done.set(Ok(counts));
                    }
                }
                Err(error) => {
                    let error = Arc::new(error);
                    for waiting in &batch {
                        let _ = waiting.done.set(Err(error.clone()));
                    }
                }
            }
        }
        drop(connection);
        match done.get() {
            Some(Ok(counts)) => Ok(*counts),
            Some(Err(error)) => Err(StoreError::Shared(error.clone())),
            None => Err(StoreError::Poisoned),
        }
    }

    /// Applies changes in one transaction; returns what each did.
    fn commit(
        &self,
        connection: &mut Connection,
        batch: &[Waiting],
    ) -> Result<Vec<Counts>, StoreError> {
        let transaction = connection.transaction().map_err(|e| self.error(e))?;
        let now = now();
        let counts = batch
            .iter()
            .map(|waiting| apply(&transaction, &waiting.change, now).map_err(|e| self.error(e)))
            .collect::<Result<Vec<_>, _>>()?;
        transaction.commit().map_err(|e| self.error(e))?;
        Ok(counts)
    }

    /// Runs `sql` (statements taking the cutoff `?1` and a batch size `?2`) until a batch
    /// deletes less than a full one; returns the rows its last statement deleted. Each
    /// batch is its own transaction, so webhooks and workers get the store in between.
    fn delete_in_batches(&self, sql: &str, cutoff: i64) -> Result<usize, StoreError> {
        const BATCH: usize = 2_000;
        let mut total = 0;
        loop {
            let mut connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
            let transaction = connection.transaction().map_err(|e| self.error(e))?;
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

    fn error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }
}

/// Runs a statement through the connection's statement cache: the same few statements run
/// for every event, so parsing them once matters.
fn exec<P: rusqlite::Params>(
    connection: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    connection.prepare_cached(sql)?.execute(params)
}

fn insert_dead_letter(connection: &Connection, letter: &DeadLetter) -> rusqlite::Result<()> {
    exec(
        connection,
        "INSERT INTO dead_letters (integration, step, event, requests, status, error, attempts, failed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            letter.integration,
            letter.step,
            letter.event.to_string(),
            serde_json::to_string(&letter.requests).unwrap_or_default(),
            letter.status,
            letter.error,
            letter.attempts,
            letter.failed_at,
        ],
    )?;
    Ok(())
}

fn insert_run(connection: &Connection, run: &RunRecord) -> rusqlite::Result<()> {
    exec(
        connection,
        "INSERT INTO runs (integration, outcome, started_at, duration_ms, attempts, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            run.integration,
            run.outcome,
            run.started_at,
            run.duration_ms,
            run.attempts,
            run.error
        ],
    )?;
    Ok(())
}

/// One change of a group commit, inside its transaction.
fn apply(transaction: &Connection, change: &Change, now: i64) -> rusqlite::Result<Counts> {
    match change {
        Change::Enqueue {
            integration,
            position,
            events,
        } => {
            let (mut enqueued, mut dropped) = (0, 0);
            for (event, key) in events {
                if let Some(key) = key {
                    let fresh = exec(
                        transaction,
                        "INSERT OR IGNORE INTO dedupe (integration, key, seen_at) VALUES (?1, ?2, ?3)",
                        params![integration, key, now],
                    )?;
                    if fresh == 0 {
                        dropped += 1;
                        continue;
                    }
                }
                exec(
                    transaction,
                    "INSERT INTO inbox (integration, event, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                    params![integration, event, now],
                )?;
                enqueued += 1;
            }
            if let Some((trigger, position)) = position {
                exec(
                    transaction,
                    "INSERT OR REPLACE INTO cursors (integration, trigger, position) VALUES (?1, ?2, ?3)",
                    params![integration, trigger, position],
                )?;
            }
            Ok((enqueued, dropped))
        }
        Change::Checkpoint { id, step, result } => {
            exec(
                transaction,
                "INSERT OR REPLACE INTO checkpoints (inbox_id, step, result) VALUES (?1, ?2, ?3)",
                params![id, step, result],
            )?;
            Ok((0, 0))
        }
        Change::Finish { id, status, run } => {
            exec(
                transaction,
                "UPDATE inbox SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![id, status.as_str(), now],
            )?;
            if let Finished::DeadLettered(letter) = status {
                insert_dead_letter(transaction, letter)?;
            }
            if let Some(run) = run {
                insert_run(transaction, run)?;
            }
            Ok((0, 0))
        }
    }
}

fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    let version = usize::try_from(version).unwrap_or(0);
    let transaction = connection.transaction()?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    transaction.commit()
}

impl Store for SqliteStore {
    fn dead_letter(&self, letter: &DeadLetter) -> Result<i64, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        insert_dead_letter(&connection, letter).map_err(|e| self.error(e))?;
        Ok(connection.last_insert_rowid())
    }

    fn dead_letters(&self) -> Result<Vec<(i64, DeadLetter)>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let mut statement = connection
            .prepare(
                "SELECT id, integration, step, event, requests, status, error, attempts, failed_at
                 FROM dead_letters ORDER BY id",
            )
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map([], |row| {
                let event: String = row.get(3)?;
                let requests: String = row.get(4)?;
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
                    },
                ))
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.error(e))
    }

    fn enqueue_page(
        &self,
        integration: &str,
        position: Option<(&str, &str)>,
        events: &[(serde_json::Value, Option<String>)],
    ) -> Result<(usize, usize), StoreError> {
        self.write(Change::Enqueue {
            integration: integration.to_string(),
            position: position.map(|(t, p)| (t.to_string(), p.to_string())),
            events: events
                .iter()
                .map(|(event, key)| (event.to_string(), key.clone()))
                .collect(),
        })
    }

    fn position(&self, integration: &str, trigger: &str) -> Result<Option<String>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        connection
            .query_row(
                "SELECT position FROM cursors WHERE integration = ?1 AND trigger = ?2",
                params![integration, trigger],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.error(e))
    }

    fn claim(&self, limit: usize, from: &[&str]) -> Result<Vec<InboxItem>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        // The names travel as one JSON array, so the statement stays the same (and cached)
        // whatever their number. Each integration's oldest events are found by a seek in
        // `inbox_claim`, so a long backlog of an integration left out costs nothing.
        let from = serde_json::to_string(from).unwrap_or_else(|_| "[]".into());
        // One statement, so one implicit transaction: the oldest pending events turn running.
        let mut claimed = connection
            .prepare_cached(
                "UPDATE inbox SET status = 'running', updated_at = ?1
                 WHERE id IN (
                     SELECT candidate.id FROM json_each(?3) AS names, inbox AS candidate
                     WHERE candidate.id IN (
                         SELECT id FROM inbox
                         WHERE status = 'pending' AND integration = names.value
                         ORDER BY id LIMIT ?2)
                     ORDER BY candidate.id LIMIT ?2)
                 RETURNING id, integration, event",
            )
            .and_then(|mut statement| {
                let rows = statement.query_map(params![now(), limit as i64, from], |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(|e| self.error(e))?;
        claimed.sort_by_key(|(id, _, _)| *id);
        let mut statement = connection
            .prepare_cached("SELECT step, result FROM checkpoints WHERE inbox_id = ?1")
            .map_err(|e| self.error(e))?;
        let mut items = Vec::with_capacity(claimed.len());
        for (id, integration, event) in claimed {
            let rows = statement
                .query_map(params![id], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
                })
                .map_err(|e| self.error(e))?;
            let mut done = serde_json::Map::new();
            for row in rows {
                let (step, result) = row.map_err(|e| self.error(e))?;
                done.insert(
                    step,
                    result
                        .and_then(|r| serde_json::from_str(&r).ok())
                        .unwrap_or_default(),
                );
            }
            let event = serde_json::from_str(&event).unwrap_or_default();
            items.push(InboxItem {
                id,
                integration,
                event,
                done,
            });
        }
        Ok(items)
    }

    fn checkpoint(
        &self,
        id: i64,
        step: &str,
        result: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        self.write(Change::Checkpoint {
            id,
            step: step.to_string(),
            result: result.map(|r| r.to_string()),
        })
        .map(|_| ())
    }

    fn finish(&self, id: i64, status: Finished, run: Option<&RunRecord>) -> Result<(), StoreError> {
        self.write(Change::Finish {
            id,
            status,
            run: run.cloned(),
        })
        .map(|_| ())
    }

    fn recover(&self) -> Result<usize, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        exec(
            &connection,
            "UPDATE inbox SET status = 'pending' WHERE status = 'running'",
            [],
        )
        .map_err(|e| self.error(e))
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

    fn replay(&self, ids: Option<&[i64]>) -> Result<Vec<i64>, StoreError> {
        let letters = self.dead_letters()?;
        let chosen: Vec<&(i64, DeadLetter)> = letters
            .iter()
            .filter(|(id, _)| ids.is_none_or(|ids| ids.contains(id)))
            .collect();
        let mut connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let transaction = connection.transaction().map_err(|e| self.error(e))?;
        let now = now();
        for (id, letter) in &chosen {
            exec(&transaction,
                    "INSERT INTO inbox (integration, event, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
                    params![letter.integration, letter.event.to_string(), now],
                )
                .map_err(|e| self.error(e))?;
            exec(
                &transaction,
                "DELETE FROM dead_letters WHERE id = ?1",
                params![id],
            )
            .map_err(|e| self.error(e))?;
        }
        transaction.commit().map_err(|e| self.error(e))?;
        Ok(chosen.iter().map(|(id, _)| *id).collect())
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
            dedupe_keys: self.delete_in_batches(
                "DELETE FROM dedupe WHERE seen_at < ?1
                 AND rowid IN (SELECT rowid FROM dedupe ORDER BY rowid LIMIT ?2)",
                cutoff,
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
        })
    }

    fn record_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        insert_run(&connection, run).map_err(|e| self.error(e))
    }

    fn runs(
        &self,
        integration: Option<&str>,
        failed_only: bool,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        let mut statement = connection
            .prepare(
                "SELECT integration, outcome, started_at, duration_ms, attempts, error FROM runs
                 WHERE (?1 IS NULL OR integration = ?1) AND (?2 = 0 OR outcome != 'succeeded')
                 ORDER BY id DESC",
            )
            .map_err(|e| self.error(e))?;
        let rows = statement
            .query_map(params![integration, failed_only], |row| {
                Ok(RunRecord {
                    integration: row.get(0)?,
                    outcome: row.get(1)?,
                    started_at: row.get(2)?,
                    duration_ms: row.get(3)?,
                    attempts: row.get(4)?,
                    error: row.get(5)?,
                })
            })
            .map_err(|e| self.error(e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.error(e))
    }

    fn purge(&self) -> Result<usize, StoreError> {
        let connection = self.connection.lock().map_err(|_| StoreError::Poisoned)?;
        exec(&connection, "DELETE FROM dead_letters", []).map_err(|e| self.error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty store in a folder of its own, and that folder.
    fn fresh(name: &str) -> (std::path::PathBuf, SqliteStore) {
        let dir = std::env::temp_dir().join(format!("integ-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = SqliteStore::open(&dir.join("state.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn the_inbox_dedupes_claims_in_order_and_resumes_from_checkpoints() {
        let (dir, store) = fresh("inbox");
        let events = [
            (serde_json::json!({"n": 1}), Some("a".to_string())),
            (serde_json::json!({"n": 2}), Some("a".to_string())),
            (serde_json::json!({"n": 3}), None),
        ];
        assert_eq!(store.enqueue("demo", &events).unwrap(), (2, 1));
        assert_eq!(
            store
                .prune(std::time::Duration::from_secs(3600))
                .unwrap()
                .dedupe_keys,
            0,
            "a fresh key stays"
        );
        let first = store.claim(1, &["demo"]).unwrap().remove(0);
        assert_eq!(first.event, serde_json::json!({"n": 1}));
        store
            .checkpoint(first.id, "lookup", Some(&serde_json::json!({"x": 1})))
            .unwrap();
        // The process stops here; a new one puts the event back and resumes it.
        assert_eq!(store.recover().unwrap(), 1);
        let again = store.claim(1, &["demo"]).unwrap().remove(0);
        assert_eq!(
            (again.id, again.done.get("lookup")),
            (first.id, Some(&serde_json::json!({"x": 1})))
        );
        store.finish(again.id, Finished::Done, None).unwrap();
        let third = store.claim(1, &["demo"]).unwrap().remove(0);
        assert_eq!(third.event, serde_json::json!({"n": 3}));
        assert!(store.claim(1, &["demo"]).unwrap().is_empty());
        let counts = store.inbox_counts().unwrap();
        assert_eq!(
            counts,
            [("done".to_string(), 1), ("running".to_string(), 1)]
        );
        Connection::open(dir.join("state.db"))
            .unwrap()
            .execute("UPDATE dedupe SET seen_at = 0", [])
            .unwrap();
        assert_eq!(
            store
                .prune(std::time::Duration::from_secs(3600))
                .unwrap()
                .dedupe_keys,
            1,
            "an old key goes"
        );
        assert_eq!(
            store.enqueue("demo", &events[..1]).unwrap(),
            (1, 0),
            "and may come again"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn pruning_forgets_old_finished_events_and_runs_but_never_pending_work() {
        let (dir, store) = fresh("prune");
        let events: Vec<_> = (0..4)
            .map(|n| (serde_json::json!({ "n": n }), None))
            .collect();
        store.enqueue("demo", &events).unwrap();
        let claimed = store.claim(3, &["demo"]).unwrap();
        for item in &claimed {
            store.checkpoint(item.id, "first", None).unwrap();
        }
        store.finish(claimed[0].id, Finished::Done, None).unwrap();
        store.finish(claimed[1].id, Finished::Failed, None).unwrap();
        let run = RunRecord {
            integration: "demo".into(),
            outcome: "succeeded".into(),
            started_at: now(),
            duration_ms: 5,
            attempts: 1,
            error: None,
        };
        store.record_run(&run).unwrap();
        let hour = std::time::Duration::from_secs(3600);
        assert_eq!(store.prune(hour).unwrap(), Pruned::default(), "all recent");
        // A month later, by the clock of the rows.
        let raw = Connection::open(dir.join("state.db")).unwrap();
        raw.execute_batch("UPDATE inbox SET updated_at = 0; UPDATE runs SET started_at = 0")
            .unwrap();
        let pruned = store.prune(hour).unwrap();
        assert_eq!((pruned.events, pruned.runs), (2, 1));
        let counts = store.inbox_counts().unwrap();
        assert_eq!(
            counts,
            [("pending".to_string(), 1), ("running".to_string(), 1)],
            "pending and running events stay, however old"
        );
        let checkpoints: i64 = raw
            .query_row("SELECT COUNT(*) FROM checkpoints", [], |r| r.get(0))
            .unwrap();
        assert_eq!(
            checkpoints, 1,
            "only the running event's checkpoint is left"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn concurrent_enqueues_each_get_their_own_counts_from_a_group_commit() {
        let (dir, store) = fresh("group");
        let store = Arc::new(store);
        // Eight writers at once; call n of a writer enqueues n % 4 + 1 events, and its
        // last key repeats its first, so each call has its own answer to get back.
        let writers: Vec<_> = (0..8)
            .map(|writer| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for n in 0..50 {
                        let size = n % 4 + 1;
                        let mut events: Vec<_> = (0..size)
                            .map(|e| (serde_json::json!(e), Some(format!("{writer}-{n}-{e}"))))
                            .collect();
                        events.push((serde_json::json!("again"), Some(format!("{writer}-{n}-0"))));
                        assert_eq!(store.enqueue("demo", &events).unwrap(), (size, 1));
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let total = 8 * (0..50).map(|n| n % 4 + 1).sum::<usize>();
        assert_eq!(
            store.inbox_counts().unwrap(),
            [("pending".to_string(), total)]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_dead_lettered_event_ends_with_its_dead_letter_in_one_write() {
        let (dir, store) = fresh("ending");
        store
            .enqueue("demo", &[(serde_json::json!({"id": 1}), None)])
            .unwrap();
        let item = store.claim(1, &["demo"]).unwrap().remove(0);
        let letter = DeadLetter {
            integration: "demo".into(),
            step: "post".into(),
            event: item.event.clone(),
            requests: vec!["POST http://127.0.0.1/x".into()],
            status: Some(422),
            error: "422 Unprocessable".into(),
            attempts: 1,
            failed_at: 1_700_000_000,
        };
        let ending = Finished::DeadLettered(Box::new(letter.clone()));
        store.finish(item.id, ending, None).unwrap();
        assert_eq!(store.dead_letters().unwrap(), vec![(1, letter)]);
        assert_eq!(
            store.inbox_counts().unwrap(),
            [("dead_lettered".to_string(), 1)]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_claim_takes_only_the_integrations_it_is_given() {
        let (dir, store) = fresh("skip");
        for (integration, n) in [("busy", 1), ("free", 2), ("busy", 3), ("free", 4)] {
            store
                .enqueue(integration, &[(serde_json::json!({ "n": n }), None)])
                .unwrap();
        }
        let numbers = |items: Vec<InboxItem>| -> Vec<serde_json::Value> {
            items.into_iter().map(|i| i.event["n"].clone()).collect()
        };
        assert_eq!(
            numbers(store.claim(10, &["free"]).unwrap()),
            [2, 4],
            "only that integration's events, oldest first"
        );
        assert!(store.claim(10, &[]).unwrap().is_empty());
        store
            .enqueue("free", &[(serde_json::json!({ "n": 5 }), None)])
            .unwrap();
        assert_eq!(
            numbers(store.claim(2, &["busy", "free"]).unwrap()),
            [1, 3],
            "the oldest of both, up to the limit"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn dead_letters_survive_reopening_and_migrations_run_once() {
        let dir = std::env::temp_dir().join(format!("integ-store-{}", std::process::id()));
        let path = dir.join("nested/state.db");
        let _ = std::fs::remove_dir_all(&dir);
        let letter = DeadLetter {
            integration: "demo".into(),
            step: "post".into(),
            event: serde_json::json!({"id": 1}),
            requests: vec!["POST http://127.0.0.1/x".into()],
            status: Some(400),
            error: "status 400: no".into(),
            attempts: 1,
            failed_at: 1_700_000_000,
        };
        let id = SqliteStore::open(&path)
            .unwrap()
            .dead_letter(&letter)
            .unwrap();
        let reopened = SqliteStore::open(&path).unwrap();
        assert_eq!(reopened.dead_letters().unwrap(), vec![(id, letter.clone())]);
        assert_eq!(reopened.replay(Some(&[id])).unwrap(), [id]);
        assert!(reopened.dead_letters().unwrap().is_empty());
        let replayed = reopened.claim(1, &["demo"]).unwrap().remove(0);
        assert_eq!(
            (replayed.integration.as_str(), &replayed.event),
            ("demo", &letter.event)
        );
        reopened.dead_letter(&letter).unwrap();
        assert_eq!(reopened.purge().unwrap(), 1);
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
