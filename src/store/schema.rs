//! The SQLite schema and its migrations.

use rusqlite::{Connection, TransactionBehavior};

/// The schema, one migration per version; `PRAGMA user_version` records how many ran.
/// Append only: a released migration is never edited or reordered.
pub(super) const MIGRATIONS: &[&str] = &[
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
    // Each run names the inbox event it ran, so that `integ runs` leads to it.
    "ALTER TABLE runs ADD COLUMN event INTEGER",
    // The refresh token a token endpoint rotated to, sealed by the engine (see
    // `engine::seal`): never in clear in this file.
    "CREATE TABLE refresh_tokens (
        integration TEXT NOT NULL,
        connection  TEXT NOT NULL,
        sealed      BLOB NOT NULL,
        PRIMARY KEY (integration, connection)
    )",
    // How many times each event was claimed: an event whose run kills the process is put
    // back at every start, and would kill it again forever without a count.
    "ALTER TABLE inbox ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
    // Each trigger's health, for `integ triggers`: written every second or so from memory,
    // never on the path of a webhook.
    "CREATE TABLE triggers (
        integration          TEXT NOT NULL,
        trigger              TEXT NOT NULL,
        last_success_at      INTEGER,
        last_error_at        INTEGER,
        last_error           TEXT,
        consecutive_failures INTEGER NOT NULL,
        successes            INTEGER NOT NULL,
        failures             INTEGER NOT NULL,
        PRIMARY KEY (integration, trigger)
    )",
    // A pending event may wait for a time (an API asked for a long wait): claims take it
    // from then on. `not_before` sits before `id` in the claim index, so that events due now
    // (NULL) are still one seek in id order, and deferred ones a range seek of their own.
    "ALTER TABLE inbox ADD COLUMN not_before INTEGER;
    DROP INDEX inbox_claim;
    CREATE INDEX inbox_claim ON inbox (status, integration, not_before, id)",
    // Who claimed a running event and until when the claim holds without a heartbeat, so
    // that a store shared by several processes can put back the work of one that is gone.
    // Running events are a seek in `inbox_claim`, so these need no index.
    "ALTER TABLE inbox ADD COLUMN owner TEXT;
    ALTER TABLE inbox ADD COLUMN lease_until INTEGER",
    // Each schedule's last occurrence handled, the inbox event of its last run (is it still
    // pending or running?) and the occurrences waiting for that run (a JSON array), written
    // in the write that enqueues an occurrence's run. A run may be `skipped`, with why.
    "CREATE TABLE schedules (
        integration TEXT NOT NULL,
        trigger     TEXT NOT NULL,
        schedule    TEXT NOT NULL,
        occurrence  INTEGER NOT NULL,
        event       INTEGER,
        waiting     TEXT NOT NULL,
        PRIMARY KEY (integration, trigger)
    );
    ALTER TABLE runs ADD COLUMN reason TEXT",
    // An incremental poll's position is a page, a mark and the largest mark seen in the
    // pass being read, any of them absent: `cursors` held a page only, and NOT NULL.
    "CREATE TABLE poll_positions (
        integration TEXT NOT NULL,
        trigger     TEXT NOT NULL,
        page        TEXT,
        mark        TEXT,
        high        TEXT,
        PRIMARY KEY (integration, trigger)
    );
    INSERT INTO poll_positions (integration, trigger, page)
        SELECT integration, trigger, position FROM cursors;
    DROP TABLE cursors",
    // A trigger may keep its dedupe keys for a time of its own (`dedupe KEY for 7d`): such
    // a key holds its end, and pruning finds the ended ones by this index. Keys without
    // one go by the serve retention, in rowid order as before.
    "ALTER TABLE dedupe ADD COLUMN keep_until INTEGER;
    CREATE INDEX dedupe_keep_until ON dedupe (keep_until) WHERE keep_until IS NOT NULL",
    // Alerts: each run's retries and rate-limited calls (the `retries` and `rate_limited`
    // metrics), the runs of an integration by time (an alert counts a window of them), and
    // each alert's state and the last state notified, so that a restart neither loses a
    // firing alert nor sends it again. The target is never kept, only the alert's key.
    "ALTER TABLE runs ADD COLUMN retries INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN rate_limited INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX runs_by_time ON runs (integration, started_at);
    CREATE TABLE alerts (
        integration TEXT NOT NULL,
        alert       TEXT NOT NULL,
        status      TEXT NOT NULL,
        value       INTEGER NOT NULL,
        changed_at  INTEGER NOT NULL,
        notified    TEXT NOT NULL,
        notified_at INTEGER,
        error       TEXT,
        PRIMARY KEY (integration, alert)
    )",
    // The run history as the run-history page reads it: each event's trigger and, for a
    // replay, the dead letter it replays (copied onto its run); each run's steps (a JSON
    // array, redacted); each dead letter's run, and what became of it (replayed as an inbox
    // event, or discarded with a reason: kept, as an audit row). Runs are found by
    // integration and time (`runs_by_time`, above), a run's replays by the dead letter
    // they replay.
    "ALTER TABLE inbox ADD COLUMN trigger TEXT;
    ALTER TABLE inbox ADD COLUMN replay_of INTEGER;
    ALTER TABLE runs ADD COLUMN trigger TEXT;
    ALTER TABLE runs ADD COLUMN replay_of INTEGER;
    ALTER TABLE runs ADD COLUMN steps TEXT;
    ALTER TABLE dead_letters ADD COLUMN run INTEGER;
    ALTER TABLE dead_letters ADD COLUMN settled_at INTEGER;
    ALTER TABLE dead_letters ADD COLUMN replay_event INTEGER;
    ALTER TABLE dead_letters ADD COLUMN reason TEXT;
    CREATE INDEX runs_replay_of ON runs (replay_of) WHERE replay_of IS NOT NULL",
    // An incremental poll's pass keeps the largest mark there when it began: the mark
    // moves no further when the pass ends, so that a row committed late behind a long
    // pass's cursor is asked for by the next one. Absent: the next pass's first page.
    "ALTER TABLE poll_positions ADD COLUMN known TEXT",
    // The history's reads as seeks, not scans of tables that only grow: a run's dead letter
    // (and the runs replaying it); the open dead letters, by integration (the gauges every
    // few seconds, the list); the settled ones by when, for pruning; an integration's runs
    // by outcome (its last success is the last entry of one range, `/runs?outcome=` a
    // range).
    "CREATE INDEX dead_letters_by_run ON dead_letters (run) WHERE run IS NOT NULL;
    CREATE INDEX dead_letters_open ON dead_letters (integration, id) WHERE settled_at IS NULL;
    CREATE INDEX dead_letters_settled ON dead_letters (settled_at) WHERE settled_at IS NOT NULL;
    CREATE INDEX runs_by_outcome ON runs (integration, outcome, started_at)",
    // Dead letters kept each request's URL whole, its query included, which may carry a key
    // a spec did not declare secret (the run history never kept it): cut as
    // `records::without_query` cuts, `?…` marking that there was one.
    "UPDATE dead_letters SET requests = (
        SELECT json_group_array(CASE
            WHEN q > 0 AND (h = 0 OR q < h) THEN substr(value, 1, q - 1) || '?…'
            WHEN h > 0 THEN substr(value, 1, h - 1)
            ELSE value END)
        FROM (SELECT value, instr(value, '?') AS q, instr(value, '#') AS h
              FROM json_each(dead_letters.requests)))
    WHERE json_valid(requests) AND (requests LIKE '%?%' OR requests LIKE '%#%')",
];

/// The schema version of a state file: how many migrations ran on it.
pub(super) fn version(connection: &Connection) -> rusqlite::Result<usize> {
    let version: i64 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    Ok(usize::try_from(version).unwrap_or(0))
}

/// Runs the migrations this file has not run yet, in one transaction. `IMMEDIATE` takes the
/// write lock before the version is read, so that of two processes opening a new file at
/// once (`integ runs` while `integ serve` creates it) the second waits for the first's
/// migrations, then finds them done.
pub(super) fn migrate(connection: &mut Connection) -> rusqlite::Result<()> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let version = version(&transaction)?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version) {
        transaction.execute_batch(migration)?;
        transaction.pragma_update(None, "user_version", index as i64 + 1)?;
    }
    transaction.commit()
}
