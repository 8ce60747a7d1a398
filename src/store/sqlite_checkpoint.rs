//! The SQLite store's checkpointer: copies the write-ahead log into the database file
//! once a second, on a connection and thread of its own.
//!
//! SQLite checkpoints by default inside the commit that fills the log past 1 000 pages,
//! so one webhook in a few hundred waited for the copy and its sync of the database file
//! (hundreds of milliseconds on a busy disk). The writer's connection has that turned off;
//! this thread's `PASSIVE` checkpoints never block the writer.
//!
//! A log is started again from its beginning only once a checkpoint copied all of it, and
//! under a steady stream of commits a checkpoint beside the writer never catches up: the
//! log would grow without end (12 GB in five minutes of overload). So once the log is
//! past `LONG_LOG`, this thread raises a flag, and the writer, between two transactions,
//! checkpoints what is left itself (little: this thread copied the rest), after each batch
//! until one copies it all (one may find this thread's checkpoint running), so that its
//! next transaction starts the log again.

use rusqlite::Connection;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

/// How often the log is copied into the database file.
const EVERY: Duration = Duration::from_secs(1);

/// Pages in the log (4 KiB each: 16 MiB) past which the writer is asked to let it restart.
const LONG_LOG: i64 = 4096;

/// The handle to the checkpointer. Dropping it stops the thread and waits for it.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts the checkpointer on `connection`; it raises `long_log` for the writer.
    pub(super) fn start(
        connection: Connection,
        long_log: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("integ-store-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    match checkpoint(&connection) {
                        Ok(done) if done.pages > LONG_LOG => {
                            long_log.store(true, Ordering::Relaxed)
                        }
                        Ok(_) => {}
                        // A failed checkpoint loses nothing (the log keeps every commit);
                        // the next one tries again.
                        Err(error) => {
                            tracing::warn!(%error, "cannot checkpoint the state store's log")
                        }
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// What a checkpoint did.
#[derive(Debug, Clone, Copy)]
pub(super) struct Checkpointed {
    /// Pages in the log.
    pub(super) pages: i64,
    /// Whether every page of it is in the database file now: the next transaction starts
    /// the log again. (Not when another checkpoint was running, or a reader held an old
    /// snapshot.)
    pub(super) complete: bool,
}

/// Copies what it can of the log into the database file without waiting for anyone.
pub(super) fn checkpoint(connection: &Connection) -> rusqlite::Result<Checkpointed> {
    connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        let (busy, pages, copied): (i64, i64, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        Ok(Checkpointed {
            pages,
            complete: busy == 0 && copied >= pages,
        })
    })
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the state store's checkpointer stopped on a panic");
        }
    }
}
