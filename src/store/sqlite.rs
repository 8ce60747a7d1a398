//! The SQLite store: one file, WAL; the hot path on a writer thread (`sqlite_writer`,
//! `sqlite_inbox`), the records on a connection behind a mutex.

use super::private;
use super::records::LetterText;
use super::schema::{self, MIGRATIONS, migrate};
use super::sqlite_checkpoint::Checkpointer;
use super::sqlite_writer::Writer;
use super::{DeadLetter, Durability, RunRecord, StoreError};
use rusqlite::{Connection, params};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

#[derive(Debug)]
pub struct SqliteStore {
    path: String,
    /// The records' connection: dead letters, runs, positions, triggers, tokens.
    pub(super) connection: Mutex<Connection>,
    /// Every write of the hot path, on a connection of its own (see `sqlite_writer`).
    pub(super) writer: Writer,
    /// Runs while the store is open (see `sqlite_checkpoint`).
    _checkpointer: Checkpointer,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) and migrates the store at `path`, with
    /// the default durability (`Full`).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Durability::Full)
    }

    /// Opens (creating it and its folder if needed) and migrates the store at `path`.
    pub fn open_with(path: &Path, durability: Durability) -> Result<Self, StoreError> {
        let display = path.display().to_string();
        let folder_error = |source| StoreError::Folder {
            path: display.clone(),
            source,
        };
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            private::create_folder(folder).map_err(folder_error)?;
        }
        // Created 0600 before SQLite opens it; SQLite gives the -wal and -shm it creates
        // the database's permissions, and ones an older version left are tightened.
        private::open_file(path).map_err(folder_error)?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            private::tighten(Path::new(&side)).map_err(folder_error)?;
        }
        let sqlite = |source: rusqlite::Error| StoreError::Backend {
            store: display.clone(),
            source: Box::new(source),
        };
        let mut connection = connect(path, durability).map_err(sqlite)?;
        // Its commits (triggers' health, tokens, dead letters from the CLI) do not
        // checkpoint either, while holding the records' lock.
        connection
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(sqlite)?;
        // A file a newer integ migrated holds what this one does not know how to keep:
        // writing it would lose or corrupt that, so it is refused.
        let found = schema::version(&connection).map_err(sqlite)?;
        if found > MIGRATIONS.len() {
            return Err(StoreError::Newer {
                store: display,
                found,
                known: MIGRATIONS.len(),
            });
        }
        migrate(&mut connection).map_err(sqlite)?;
        let writing = connect(path, durability).map_err(sqlite)?;
        // Checkpoints are the checkpointer's, off the path of every commit; a log that grew
        // past its usual length while the writer could not restart it is cut back to it.
        writing
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(sqlite)?;
        writing
            .pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
            .map_err(sqlite)?;
        let long_log = Arc::new(AtomicBool::new(false));
        let writer =
            Writer::start(writing, display.clone(), long_log.clone()).map_err(folder_error)?;
        let checkpointer =
            Checkpointer::start(connect(path, durability).map_err(sqlite)?, long_log)
                .map_err(folder_error)?;
        Ok(Self {
            path: display,
            connection: Mutex::new(connection),
            writer,
            _checkpointer: checkpointer,
        })
    }

    pub(super) fn error(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Backend {
            store: self.path.clone(),
            source: Box::new(source),
        }
    }
}

/// A connection to the store at `path`, set up as every one of its connections is.
fn connect(path: &Path, durability: Durability) -> rusqlite::Result<Connection> {
    let connection = Connection::open(path)?;
    connection.busy_timeout(BUSY)?;
    // Deleted rows (finished events' checkpoints, purged dead letters) are overwritten
    // with zeros, not left readable in free pages of the file.
    connection.pragma_update(None, "secure_delete", "ON")?;
    write_ahead(&connection)?;
    connection.pragma_update(None, "synchronous", durability.synchronous())?;
    // The hot path runs a dozen statements, the records a few dozen: all stay prepared.
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

/// How long a connection waits for another's lock on the file. Long: a commit holds the
/// lock through its sync, which a busy disk can make last seconds, and a command that gave
/// up (`integ runs` beside a starting `integ serve`, a webhook's write) fails where it
/// could have waited. 5 s was seen running out on a loaded machine.
const BUSY: std::time::Duration = std::time::Duration::from_secs(30);

/// Puts the file in WAL mode. Two connections doing it at once to a new file each hold a
/// read lock and want the write lock: SQLite answers both "busy" at once (waiting could
/// deadlock) rather than calling its busy handler, so each tries again, within `BUSY`,
/// after a pause of its own drawing. Pauses alike kept them in step, colliding again at
/// every try: two openers of a new file on a loaded machine failed after 5 s of it.
fn write_ahead(connection: &Connection) -> rusqlite::Result<()> {
    let deadline = std::time::Instant::now() + BUSY;
    loop {
        match connection.pragma_update(None, "journal_mode", "WAL") {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if error.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                let pause = std::time::Duration::from_millis(fastrand::u64(1..=20));
                std::thread::sleep(pause);
            }
            done => return done,
        }
    }
}

/// Runs a statement through the connection's statement cache: the same few statements run
/// for every event, so parsing them once matters.
pub(super) fn exec<P: rusqlite::Params>(
    connection: &Connection,
    sql: &str,
    params: P,
) -> rusqlite::Result<usize> {
    connection.prepare_cached(sql)?.execute(params)
}

/// Adds `letter` to the dead letters, its event and requests as `text` (encoded by the
/// caller), left by run `run`; returns its id.
pub(super) fn insert_dead_letter(
    connection: &Connection,
    letter: &DeadLetter,
    text: &LetterText,
    run: Option<i64>,
) -> rusqlite::Result<i64> {
    exec(
        connection,
        "INSERT INTO dead_letters (integration, step, event, requests, status, error, attempts,
             failed_at, run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            letter.integration,
            letter.step,
            text.event,
            text.requests,
            letter.status,
            letter.error,
            letter.attempts,
            letter.failed_at,
            run,
        ],
    )?;
    Ok(connection.last_insert_rowid())
}

/// Adds `run` to the history, its steps as `steps` (encoded by the caller); returns its
/// id. The trigger and the dead letter replayed come from its inbox event when the record
/// does not name them.
pub(super) fn insert_run(
    connection: &Connection,
    run: &RunRecord,
    steps: Option<&str>,
) -> rusqlite::Result<i64> {
    exec(
        connection,
        "INSERT INTO runs (integration, outcome, started_at, duration_ms, attempts, error, event,
             reason, trigger, replay_of, steps, retries, rate_limited)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,
             coalesce(?9, (SELECT trigger FROM inbox WHERE id = ?7)),
             coalesce(?10, (SELECT replay_of FROM inbox WHERE id = ?7)), ?11, ?12, ?13)",
        params![
            run.integration,
            run.outcome,
            run.started_at,
            run.duration_ms,
            run.attempts,
            run.error,
            run.event,
            run.reason,
            run.trigger,
            run.replay_of,
            steps,
            run.retries,
            run.rate_limited,
        ],
    )?;
    Ok(connection.last_insert_rowid())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::scratch::Scratch;
    use crate::store::{
        Ending, Finished, Inbox, InboxItem, NewEvents, Owner, Pending, Pruned, Records, now,
    };
    use std::sync::Arc;

    /// The owner of the claims these tests make.
    fn owner() -> &'static Owner {
        static OWNER: std::sync::OnceLock<Owner> = std::sync::OnceLock::new();
        OWNER.get_or_init(|| Owner::new(std::time::Duration::from_secs(60)))
    }

    fn wait<T>(pending: Pending<T>) -> Result<T, StoreError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(pending)
    }

    /// Enqueued and dropped as duplicates.
    fn enqueue(
        store: &SqliteStore,
        integration: &str,
        events: &[(serde_json::Value, Option<String>)],
    ) -> (usize, usize) {
        let enqueued = wait(store.enqueue(NewEvents::of(integration, events))).unwrap();
        (enqueued.accepted(), enqueued.duplicates())
    }

    fn claim(store: &SqliteStore, limit: usize, from: &[&str]) -> Vec<InboxItem> {
        let from: Vec<String> = from.iter().map(|s| s.to_string()).collect();
        wait(store.claim(owner(), limit, &from)).unwrap()
    }

    fn checkpoint(store: &SqliteStore, id: i64, step: &str, result: Option<&serde_json::Value>) {
        wait(store.checkpoint(id, step, result)).unwrap()
    }

    fn finish(store: &SqliteStore, id: i64, status: Finished, run: Option<RunRecord>) {
        wait(store.finish(id, Ending::new(status, run))).unwrap()
    }

    fn unclaim(store: &SqliteStore, ids: &[i64]) {
        wait(store.unclaim(owner(), ids)).unwrap()
    }

    /// What the next process, another owner, puts back at its start.
    fn recover(store: &SqliteStore) -> usize {
        wait(store.recover(&Owner::new(std::time::Duration::from_secs(60)))).unwrap()
    }

    /// An empty store in a folder of its own, and that folder.
    pub(crate) fn fresh(name: &str) -> (Scratch, SqliteStore) {
        let dir = Scratch::new(name);
        let store = SqliteStore::open(&dir.join("state.db")).unwrap();
        (dir, store)
    }

    /// How many times the log at `path` started over: the checkpoint sequence number in its
    /// header (big-endian, at byte 12), which SQLite counts up at each start over.
    fn restarts(path: &Path) -> u32 {
        use std::io::Read;
        let mut header = [0; 16];
        let read = std::fs::File::open(path).and_then(|mut log| log.read_exact(&mut header));
        match read {
            Ok(()) => u32::from_be_bytes([header[12], header[13], header[14], header[15]]),
            Err(_) => 0,
        }
    }

    #[test]
    fn two_openers_of_a_fresh_file_at_once_both_open_it_migrated() {
        // `integ runs` run while `integ serve` creates the file failed with "table
        // dead_letters already exists": both read version 0, then both migrated.
        let dir = Scratch::new("racing");
        for round in 0..30 {
            let _ = std::fs::remove_dir_all(&dir);
            let path = dir.join("state.db");
            let start = Arc::new(std::sync::Barrier::new(2));
            let openers: Vec<_> = (0..2)
                .map(|_| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        SqliteStore::open(&path).map(drop)
                    })
                })
                .collect();
            for opener in openers {
                let opened = opener.join().unwrap();
                assert!(opened.is_ok(), "round {round}: {opened:?}");
            }
            let connection = Connection::open(&path).unwrap();
            assert_eq!(schema::version(&connection).unwrap(), MIGRATIONS.len());
        }
    }

    #[test]
    fn the_log_is_copied_into_the_file_off_the_writer_well_before_sqlite_would() {
        let (dir, store) = fresh("checkpoint");
        let pad = "x".repeat(1000);
        let events: Vec<_> = (0..2000)
            .map(|n| (serde_json::json!({ "n": n, "pad": pad }), None))
            .collect();
        for chunk in events.chunks(100) {
            enqueue(&store, "demo", chunk);
        }
        // 2 MB of events, half what makes SQLite checkpoint in a commit (1 000 pages), and
        // the writer does not: only the checkpointer moves them into the file.
        let file = dir.join("state.db");
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while size() < 1_000_000 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        assert!(size() >= 1_000_000, "{} bytes in the file", size());
        drop(store);
    }

    #[test]
    fn the_log_starts_again_under_a_steady_stream_of_writes_instead_of_growing() {
        let (dir, _) = fresh("long-log");
        let store = SqliteStore::open_with(&dir.join("state.db"), Durability::Process).unwrap();
        let pad = "x".repeat(1000);
        let batch: Vec<_> = (0..200)
            .map(|n| (serde_json::json!({ "n": n, "pad": pad }), None))
            .collect();
        // 80 MB of events at least, written without a pause and without a sync (the fastest
        // writer), so that the checkpointer runs beside the writer and never catches up by
        // itself, until the log has started over three times. Waited for, not timed: how
        // far the log grows before each start over is a race of two threads, which a
        // loaded machine loses by seconds (64 MiB seen against 16 on an idle one).
        let log = dir.join("state.db-wal");
        let started = std::time::Instant::now();
        let first = restarts(&log);
        let mut written = 0;
        while (written < 400 || restarts(&log) < first + 3)
            && started.elapsed() < std::time::Duration::from_secs(180)
        {
            enqueue(&store, "demo", &batch);
            written += 1;
        }
        let again = restarts(&log) - first;
        assert!(
            again >= 3,
            "the log started over {again} times in {written} writes of 200 KB"
        );
        drop(store);
    }

    #[test]
    fn a_write_that_panics_fails_alone_and_the_writer_goes_on() {
        let (_dir, store) = fresh("writer-panic");
        let panicked = wait(
            store
                .writer
                .call(|_, _| -> rusqlite::Result<()> { panic!("a bug in a write") }),
        );
        assert!(panicked.is_err());
        assert_eq!(
            enqueue(&store, "demo", &[(serde_json::json!({}), None)]),
            (1, 0)
        );
        drop(store);
    }

    #[test]
    fn durability_full_syncs_each_commit_and_process_leaves_it_to_the_system() {
        let (dir, store) = fresh("durability");
        drop(store);
        let path = dir.join("state.db");
        for (durability, synchronous) in [(Durability::Full, 2), (Durability::Process, 1)] {
            let connection = connect(&path, durability).unwrap();
            let set: i64 = connection
                .query_row("PRAGMA synchronous", [], |row| row.get(0))
                .unwrap();
            assert_eq!(set, synchronous, "{durability:?}");
        }
    }

    #[test]
    fn a_state_file_a_newer_integ_wrote_is_refused_untouched() {
        let (dir, store) = fresh("newer-schema");
        drop(store);
        let path = dir.join("state.db");
        let newer = MIGRATIONS.len() as i64 + 1;
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", newer)
            .unwrap();
        let refused = SqliteStore::open(&path).map(|_| ()).unwrap_err();
        assert!(
            matches!(refused, StoreError::Newer { found, .. } if found as i64 == newer),
            "{refused}"
        );
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, newer, "left as it was");
    }

    #[test]
    fn the_inbox_dedupes_claims_in_order_and_resumes_from_checkpoints() {
        let (dir, store) = fresh("inbox");
        let events = [
            (serde_json::json!({"n": 1}), Some("a".to_string())),
            (serde_json::json!({"n": 2}), Some("a".to_string())),
            (serde_json::json!({"n": 3}), None),
        ];
        assert_eq!(enqueue(&store, "demo", &events), (2, 1));
        assert_eq!(
            store
                .prune(std::time::Duration::from_secs(3600))
                .unwrap()
                .dedupe_keys,
            0,
            "a fresh key stays"
        );
        let first = claim(&store, 1, &["demo"]).remove(0);
        assert_eq!(first.event, serde_json::json!({"n": 1}));
        checkpoint(
            &store,
            first.id,
            "lookup",
            Some(&serde_json::json!({"x": 1})),
        );
        // The process stops here; a new one puts the event back and resumes it.
        assert_eq!(recover(&store), 1);
        let again = claim(&store, 1, &["demo"]).remove(0);
        assert_eq!(
            (again.id, again.done.get("lookup")),
            (first.id, Some(&serde_json::json!({"x": 1})))
        );
        finish(&store, again.id, Finished::Done, None);
        let third = claim(&store, 1, &["demo"]).remove(0);
        assert_eq!(third.event, serde_json::json!({"n": 3}));
        assert!(claim(&store, 1, &["demo"]).is_empty());
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
            enqueue(&store, "demo", &events[..1]),
            (1, 0),
            "and may come again"
        );
    }

    #[test]
    fn pruning_forgets_old_finished_events_and_runs_but_never_pending_work() {
        let (dir, store) = fresh("prune");
        let events: Vec<_> = (0..4)
            .map(|n| (serde_json::json!({ "n": n }), None))
            .collect();
        enqueue(&store, "demo", &events);
        let claimed = claim(&store, 3, &["demo"]);
        for item in &claimed {
            checkpoint(&store, item.id, "first", None);
        }
        finish(&store, claimed[0].id, Finished::Done, None);
        finish(&store, claimed[1].id, Finished::Failed, None);
        let run = RunRecord {
            integration: "demo".into(),
            outcome: "succeeded".into(),
            started_at: now(),
            duration_ms: 5,
            attempts: 1,
            retries: 0,
            rate_limited: 0,
            error: None,
            event: Some(claimed[0].id),
            reason: None,
            ..RunRecord::default()
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
    }

    #[test]
    fn concurrent_enqueues_each_get_their_own_counts_from_a_group_commit() {
        let (_dir, store) = fresh("group");
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
                        assert_eq!(enqueue(&store, "demo", &events), (size, 1));
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
    }

    #[test]
    fn a_dead_lettered_event_ends_with_its_dead_letter_in_one_write() {
        let (_dir, store) = fresh("ending");
        enqueue(&store, "demo", &[(serde_json::json!({"id": 1}), None)]);
        let item = claim(&store, 1, &["demo"]).remove(0);
        let letter = DeadLetter {
            integration: "demo".into(),
            step: "post".into(),
            event: item.event.clone(),
            requests: vec!["POST http://127.0.0.1/x".into()],
            status: Some(422),
            error: "422 Unprocessable".into(),
            attempts: 1,
            failed_at: 1_700_000_000,
            ..DeadLetter::default()
        };
        let ending = Finished::DeadLettered(Box::new(letter.clone()));
        finish(&store, item.id, ending, None);
        assert_eq!(store.dead_letters().unwrap(), vec![(1, letter)]);
        assert_eq!(
            store.inbox_counts().unwrap(),
            [("dead_lettered".to_string(), 1)]
        );
    }

    #[test]
    fn finishing_an_event_deletes_its_checkpoints_in_the_same_write() {
        let (dir, store) = fresh("forget");
        enqueue(&store, "demo", &[(serde_json::json!({"id": 1}), None)]);
        let item = claim(&store, 1, &["demo"]).remove(0);
        let echoed = serde_json::json!({"echo": "Bearer canary-access-token"});
        checkpoint(&store, item.id, "lookup", Some(&echoed));
        let raw = Connection::open(dir.join("state.db")).unwrap();
        let count = |raw: &Connection| -> i64 {
            raw.query_row("SELECT COUNT(*) FROM checkpoints", [], |r| r.get(0))
                .unwrap()
        };
        assert_eq!(count(&raw), 1, "kept while the event is in flight");
        finish(&store, item.id, Finished::Done, None);
        assert_eq!(count(&raw), 0, "gone with the event's end");
        drop((raw, store));
        let bytes = std::fs::read(dir.join("state.db")).unwrap();
        assert!(
            !bytes.windows(12).any(|w| w == b"canary-acces"),
            "and not left in a free page of the file"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_state_folder_and_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = Scratch::new("private");
        let path = dir.join("nested/state.db");
        let store = SqliteStore::open(&path).unwrap();
        enqueue(&store, "demo", &[(serde_json::json!({"id": 1}), None)]);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("nested")), 0o700);
        for file in ["state.db", "state.db-wal", "state.db-shm"] {
            assert_eq!(mode(&dir.join("nested").join(file)), 0o600, "{file}");
        }
        drop(store);
        // A file an older version left readable is tightened at the next open.
        let old = dir.join("old.db");
        std::fs::write(&old, b"").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        SqliteStore::open(&old).unwrap();
        assert_eq!(mode(&old), 0o600);
    }

    #[test]
    fn a_claim_takes_only_the_integrations_it_is_given() {
        let (_dir, store) = fresh("skip");
        for (integration, n) in [("busy", 1), ("free", 2), ("busy", 3), ("free", 4)] {
            enqueue(
                &store,
                integration,
                &[(serde_json::json!({ "n": n }), None)],
            );
        }
        let numbers = |items: Vec<InboxItem>| -> Vec<serde_json::Value> {
            items.into_iter().map(|i| i.event["n"].clone()).collect()
        };
        assert_eq!(
            numbers(claim(&store, 10, &["free"])),
            [2, 4],
            "only that integration's events, oldest first"
        );
        assert!(claim(&store, 10, &[]).is_empty());
        enqueue(&store, "free", &[(serde_json::json!({ "n": 5 }), None)]);
        assert_eq!(
            numbers(claim(&store, 2, &["busy", "free"])),
            [1, 3],
            "the oldest of both, up to the limit"
        );
    }

    #[test]
    fn claims_are_counted_and_an_unstarted_claim_is_given_back() {
        let (_dir, store) = fresh("attempts");
        let events = [
            (serde_json::json!({ "n": 1 }), None),
            (serde_json::json!({ "n": 2 }), None),
        ];
        enqueue(&store, "demo", &events);
        let claimed = claim(&store, 2, &["demo"]);
        assert_eq!(
            claimed.iter().map(|i| i.attempts).collect::<Vec<_>>(),
            [1, 1]
        );
        // A stop: the first was running (counted), the second only queued (given back).
        unclaim(&store, &[claimed[1].id]);
        recover(&store);
        let again = claim(&store, 2, &["demo"]);
        assert_eq!(again.iter().map(|i| i.attempts).collect::<Vec<_>>(), [2, 1]);
    }

    #[test]
    fn a_deferred_event_is_claimed_only_from_its_time_on_with_its_checkpoints() {
        let (_dir, store) = fresh("deferred");
        for n in [1, 2] {
            enqueue(&store, "demo", &[(serde_json::json!({ "n": n }), None)]);
        }
        let first = claim(&store, 1, &["demo"]).remove(0);
        checkpoint(
            &store,
            first.id,
            "lookup",
            Some(&serde_json::json!({"x": 1})),
        );
        assert_eq!(
            Finished::deferred(std::time::Duration::MAX),
            Finished::Deferred {
                not_before: i64::MAX
            },
            "no overflow"
        );
        let later = Finished::deferred(std::time::Duration::from_secs(100));
        finish(&store, first.id, later, None);
        assert_eq!(store.inbox_counts().unwrap(), [("pending".to_string(), 2)]);
        let claimed = claim(&store, 10, &["demo"]);
        assert_eq!(claimed.len(), 1, "the deferred event waits");
        assert_eq!(claimed[0].event["n"], 2);
        // Its time comes: it is claimed again, at the step it had not completed.
        let connection = store.connection.lock().unwrap();
        connection
            .execute("UPDATE inbox SET not_before = not_before - 101", [])
            .unwrap();
        drop(connection);
        let again = claim(&store, 10, &["demo"]).remove(0);
        assert_eq!(
            (again.id, again.done["lookup"].clone()),
            (first.id, serde_json::json!({"x": 1}))
        );
    }

    #[test]
    fn claims_are_index_seeks_for_due_and_deferred_events() {
        let (_dir, store) = fresh("claim-plan");
        let plan = |condition: &str| -> Vec<String> {
            let connection = store.connection.lock().unwrap();
            let mut statement = connection
                .prepare(&format!(
                    "EXPLAIN QUERY PLAN SELECT id FROM inbox
                     WHERE status = 'pending' AND integration = 'a' AND {condition}
                     ORDER BY id LIMIT 5"
                ))
                .unwrap();
            let details = statement.query_map([], |row| row.get(3)).unwrap();
            details.map(Result::unwrap).collect()
        };
        assert_eq!(
            plan("not_before IS NULL"),
            [
                "SEARCH inbox USING COVERING INDEX inbox_claim (status=? AND integration=? AND not_before=?)"
            ],
            "events due now: one seek, in id order, no sort"
        );
        let deferred = plan("not_before <= 5");
        assert!(
            deferred[0].starts_with(
                "SEARCH inbox USING COVERING INDEX inbox_claim (status=? AND integration=? AND not_before"
            ),
            "{deferred:?}"
        );
    }

    #[test]
    fn dead_letters_survive_reopening_and_migrations_run_once() {
        let dir = Scratch::new("store");
        let path = dir.join("nested/state.db");
        let letter = DeadLetter {
            integration: "demo".into(),
            step: "post".into(),
            event: serde_json::json!({"id": 1}),
            requests: vec!["POST http://127.0.0.1/x".into()],
            status: Some(400),
            error: "status 400: no".into(),
            attempts: 1,
            failed_at: 1_700_000_000,
            ..DeadLetter::default()
        };
        let id = SqliteStore::open(&path)
            .unwrap()
            .dead_letter(&letter)
            .unwrap();
        let reopened = SqliteStore::open(&path).unwrap();
        assert_eq!(reopened.dead_letters().unwrap(), vec![(id, letter.clone())]);
        assert_eq!(reopened.replay(Some(&[id])).unwrap(), [id]);
        assert!(reopened.dead_letters().unwrap().is_empty());
        let replayed = claim(&reopened, 1, &["demo"]).remove(0);
        assert_eq!(
            (replayed.integration.as_str(), &replayed.event),
            ("demo", &letter.event)
        );
        reopened.dead_letter(&letter).unwrap();
        assert_eq!(
            reopened.purge().unwrap(),
            2,
            "the open one and the record of the replayed one"
        );
        let version: i64 = Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
    }

    #[test]
    fn dead_letters_kept_with_their_query_strings_lose_them_at_the_migration() {
        let (dir, store) = fresh("letters-query");
        drop(store);
        let path = dir.join("state.db");
        let raw = Connection::open(&path).unwrap();
        let requests = serde_json::json!([
            "GET https://api.example.com/a?api_key=canary-7&x=1",
            "POST https://api.example.com/b#part?not-a-query",
            "POST https://api.example.com/c",
        ]);
        raw.execute(
            "INSERT INTO dead_letters (integration, step, event, requests, error, attempts,
                 failed_at)
             VALUES ('demo', 'post', '{}', ?1, 'status 400', 1, 0)",
            [requests.to_string()],
        )
        .unwrap();
        // As a file the migration had not run on yet.
        let before = MIGRATIONS.len() as i64 - 1;
        raw.pragma_update(None, "user_version", before).unwrap();
        drop(raw);
        let store = SqliteStore::open(&path).unwrap();
        let letter = &store.dead_letters().unwrap()[0].1;
        assert_eq!(
            letter.requests,
            [
                "GET https://api.example.com/a?…",
                "POST https://api.example.com/b",
                "POST https://api.example.com/c",
            ]
        );
    }

    #[test]
    fn the_log_stops_growing_under_a_writer_that_never_pauses() {
        // The checkpointer copies the log while the writer keeps committing; SQLite starts
        // the log over only when a write begins with every frame copied, which a writer
        // busy without a pause (an overload) never gives it, and the log would grow with
        // every event taken. Each start over is counted in the log's header (its checkpoint
        // sequence number): it must start over while the writers never pause. Waited for,
        // not timed: a loaded machine writes less in a second, and on a loaded disk one
        // start over can take a minute.
        let (dir, store) = fresh("log-saturated");
        let store = Arc::new(store);
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|_| {
                let (store, stop) = (store.clone(), stop.clone());
                std::thread::spawn(move || {
                    let pad = "x".repeat(1000);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        enqueue(&store, "demo", &[(serde_json::json!({ "pad": pad }), None)]);
                    }
                })
            })
            .collect();
        let log = dir.join("state.db-wal");
        let start = std::time::Instant::now();
        let first = restarts(&log);
        let mut now = first;
        while now == first && start.elapsed() < std::time::Duration::from_secs(180) {
            std::thread::sleep(std::time::Duration::from_millis(20));
            now = restarts(&log);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for writer in writers {
            writer.join().unwrap();
        }
        let size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        assert!(
            now > first,
            "the log started over {} times in {:?} of writes without a pause; it is {size} bytes",
            now - first,
            start.elapsed()
        );
        drop(store);
    }
}
