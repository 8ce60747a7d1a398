//! The SQLite store's writer: one thread with its own connection runs every write of the
//! hot path, many to a transaction.
//!
//! Callers queue a write and await its answer; they hold no thread while the writer runs
//! it (no hop to a blocking pool per call). The writer takes every write waiting when it
//! starts a transaction, so that one commit (one sync of the log) serves a burst of
//! webhooks and the ends of many runs. A write that fails is undone and refused alone (a
//! savepoint each); a transaction that fails (the disk) refuses every write in it: no
//! webhook is answered 202 and no event is marked finished for what is not on disk.

use super::sqlite_checkpoint::checkpoint;
use super::{Pending, StoreError};
use rusqlite::{Connection, TransactionBehavior};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use tokio::sync::oneshot;

/// At most this many writes to a transaction: a longer one keeps the first waiting longer
/// for its answer than the sync it saves is worth.
const MAX_BATCH: usize = 512;

/// A write, as the writer runs it: applied inside a transaction, answered after it ends.
trait Job: Send {
    /// Applies the write; false when it failed (and its savepoint is to be rolled back).
    fn apply(&mut self, transaction: &Connection, now: i64) -> bool;
    /// Answers the caller: with the write's output or failure, or the transaction's
    /// failure; `store` names the store in an error.
    fn answer(self: Box<Self>, failure: Option<&Arc<StoreError>>, store: &str);
}

type Apply<T> = Box<dyn FnOnce(&Connection, i64) -> rusqlite::Result<T> + Send>;

struct Call<T> {
    apply: Option<Apply<T>>,
    output: Option<rusqlite::Result<T>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send> Job for Call<T> {
    fn apply(&mut self, transaction: &Connection, now: i64) -> bool {
        let Some(apply) = self.apply.take() else {
            return true;
        };
        let output = apply(transaction, now);
        let applied = output.is_ok();
        self.output = Some(output);
        applied
    }

    fn answer(self: Box<Self>, failure: Option<&Arc<StoreError>>, store: &str) {
        let answer = match (failure, self.output) {
            (Some(failure), _) => Err(StoreError::Shared(failure.clone())),
            (None, Some(Ok(output))) => Ok(output),
            (None, Some(Err(source))) => Err(StoreError::Backend {
                store: store.to_string(),
                source: Box::new(source),
            }),
            (None, None) => Err(StoreError::Closed),
        };
        // A caller that stopped waiting (a webhook past its timeout) gets no answer; what
        // it wrote is committed all the same, as it would be had the answer been late.
        let _ = self.reply.send(answer);
    }
}

/// The handle to the writer thread. Dropping it lets the thread finish the writes queued,
/// then waits for it.
#[derive(Debug)]
pub(super) struct Writer {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer on `connection`; `path` names the store in its errors. When
    /// `long_log` is raised, it checkpoints between two transactions (see
    /// `sqlite_checkpoint`).
    pub(super) fn start(
        connection: Connection,
        path: String,
        long_log: Arc<AtomicBool>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("integ-store-writer".into())
            .spawn(move || run(connection, &path, &queue, &long_log))?;
        Ok(Self {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Queues a write (`apply` runs inside the writer's transaction, given its time) and
    /// returns its answer, to await.
    pub(super) fn call<T: Send + 'static>(
        &self,
        apply: impl FnOnce(&Connection, i64) -> rusqlite::Result<T> + Send + 'static,
    ) -> Pending<T> {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Call {
            apply: Some(Box::new(apply)),
            output: None,
            reply,
        });
        let queued = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(job).is_ok());
        Box::pin(async move {
            if !queued {
                return Err(StoreError::Closed);
            }
            answer.await.unwrap_or(Err(StoreError::Closed))
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the state store's writer stopped on a panic");
        }
    }
}

/// The writer thread: until every handle is gone, takes the writes waiting and commits
/// them together.
fn run(
    mut connection: Connection,
    path: &str,
    queue: &mpsc::Receiver<Box<dyn Job>>,
    long_log: &AtomicBool,
) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // A write that panics (a bug of ours) fails its batch, rolled back as the
        // transaction unwinds; the writer goes on with the next, rather than leave every
        // later write of the process refused.
        let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            commit(&mut connection, &mut batch)
        }));
        let failure = match committed {
            Ok(Ok(())) => None,
            Ok(Err(source)) => Some(Box::new(source) as Box<dyn std::error::Error + Send + Sync>),
            Err(_) => Some("a write to the state store panicked; see the log".into()),
        }
        .map(|source| {
            Arc::new(StoreError::Backend {
                store: path.to_string(),
                source,
            })
        });
        if let Some(failure) = &failure {
            tracing::error!(error = %failure, writes = batch.len(), "a transaction of the state store failed; every write in it is refused");
        }
        for job in batch {
            job.answer(failure.as_ref(), path);
        }
        if long_log.load(Ordering::Relaxed) {
            match checkpoint(&connection) {
                Ok(done) if done.complete => long_log.store(false, Ordering::Relaxed),
                // Tried again after the next batch.
                Ok(_) => {}
                // Not tried again before the checkpointer asks again, a second later.
                Err(error) => {
                    long_log.store(false, Ordering::Relaxed);
                    tracing::warn!(%error, "cannot checkpoint the state store's long log")
                }
            }
        }
    }
}

/// Applies a batch in one transaction, taken for writing at once (`IMMEDIATE`): the
/// records connection of the same store may be writing, and a transaction that began
/// reading could not be made a writer without failing. Each write has a savepoint of its
/// own, so that one that fails is undone and refused alone, not with the whole batch.
fn commit(connection: &mut Connection, batch: &mut [Box<dyn Job>]) -> rusqlite::Result<()> {
    let mut transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = super::now();
    for job in batch.iter_mut() {
        let savepoint = transaction.savepoint()?;
        if job.apply(&savepoint, now) {
            savepoint.commit()?;
        }
        // Dropped otherwise: rolled back to where it began, and released.
    }
    transaction.commit()
}
