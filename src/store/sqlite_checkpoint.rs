//! The SQLite store's checkpointer: copies the write-ahead log into the database file
//! once a second, on a connection and thread of its own.
//!
//! SQLite checkpoints by default inside the commit that fills the log past 1 000 pages,
//! so one webhook in a few hundred waited for the copy and its sync of the database file
//! (hundreds of milliseconds on a busy disk). The writer's connection has that turned off;
//! this thread's `PASSIVE` checkpoints never block the writer, and the log stays short.

use rusqlite::Connection;
use std::sync::mpsc;
use std::time::Duration;

/// How often the log is copied into the database file.
const EVERY: Duration = Duration::from_secs(1);

/// The handle to the checkpointer. Dropping it stops the thread and waits for it.
#[derive(Debug)]
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(connection: Connection) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("integ-store-checkpoint".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    // A failed checkpoint loses nothing (the log keeps every commit); the
                    // next one tries again.
                    if let Err(error) =
                        connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::warn!(%error, "cannot checkpoint the state store's log");
                    }
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
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
