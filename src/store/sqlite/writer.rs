//! The one SQLite writer: a thread of its own that owns the write
//! connection and commits every write waiting for it in one transaction.
//!
//! SQLite allows one writer at a time, so writes queue here instead of
//! sleeping in SQLite's busy handler, and the commit (the WAL write) is
//! shared by the whole group. A write that fails is rolled back alone and
//! never becomes another's (`commit_group`). A
//! write is answered only after its group has committed, so nothing that
//! was answered is lost to a crash. If the commit itself fails, each write
//! of the group is retried in a transaction of its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use anyhow::Context;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use crate::store::{StoreError, StoreResult};

/// Most writes one transaction commits.
const MAX_GROUP: usize = 128;
/// Writes waiting for the writer before callers wait to hand theirs over.
const QUEUE: usize = 1024;

/// A write as the writer thread runs it: `run` may be called again when a
/// group is retried, and `finish` hands the outcome back once it is final.
trait Job: Send {
    /// Runs the write; false when it failed (and its changes must be rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    fn finish(self: Box<Self>, committed: anyhow::Result<()>);
}

struct Write<T, F> {
    work: F,
    outcome: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> StoreResult<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let outcome = catch_unwind(AssertUnwindSafe(|| (self.work)(conn)))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("a database write panicked").into()));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, committed: anyhow::Result<()>) {
        let outcome = match committed {
            Ok(()) => self
                .outcome
                .unwrap_or_else(|| Err(anyhow::anyhow!("the write did not run").into())),
            Err(e) => Err(e.into()),
        };
        let _ = self.reply.send(outcome);
    }
}

/// The handle requests write through; the thread stops when it is dropped.
pub struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    /// Starts the writer thread on `conn`, and a checkpointer on
    /// `checkpoints` that copies the WAL back into the database file, so the
    /// writer's commits never stop to do it.
    pub fn spawn(conn: Connection, checkpoints: Connection) -> anyhow::Result<Self> {
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let (jobs, queue) = mpsc::channel(QUEUE);
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let wal_frames = Arc::new(AtomicI64::new(0));
        let seen = wal_frames.clone();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                run(conn, queue, &wal_frames);
                drop(stop);
            })
            .context("starting the SQLite writer thread")?;
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpoint(checkpoints, stopped, &seen))
            .context("starting the SQLite checkpoint thread")?;
        Ok(Self { jobs })
    }

    /// Runs `work` in the writer's next transaction and answers once it
    /// has committed. `work` must be repeatable: a group whose commit
    /// fails runs it again alone.
    pub async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Write {
            work,
            outcome: None,
            reply,
        });
        self.jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Other(anyhow::anyhow!("the SQLite writer has stopped")))?;
        answer
            .await
            .map_err(|_| StoreError::Other(anyhow::anyhow!("the SQLite writer has stopped")))?
    }
}

/// The WAL length (in frames, 4 KiB pages: 256 MiB) at which the writer
/// makes it start over from its beginning. A restart stalls every write
/// for two fsyncs and the frames the checkpointer has not copied yet, so
/// it is made by size, not by the clock: under a light load the WAL starts
/// over by itself once the checkpointer has caught up, and under a flood
/// the writer tries again at each look of the checkpointer (a timed
/// restart every 250 ms let it grow to 355 MB in a 13 s flood;
/// BENCHMARKS.md, 2026-12-05). At 64 MiB a start flood restarted it about
/// three times a second, each a stall of 15–25 ms; at 256 MiB starts are
/// about 10 % faster and the WAL file ends near 320 MB after a flood
/// (BENCHMARKS.md, 2026-12-06, third sitting).
const RESTART_FRAMES: i64 = 65_536;

fn run(conn: Connection, mut queue: mpsc::Receiver<Box<dyn Job>>, wal_frames: &AtomicI64) {
    let mut group: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = queue.blocking_recv() {
        if wal_frames.load(Ordering::Relaxed) >= RESTART_FRAMES {
            // A restart waits for readers (up to the busy timeout): one
            // attempt per look of the checkpointer, never one per group.
            if !restart_wal(&conn) {
                tracing::debug!("WAL restart postponed: a reader kept the WAL");
            }
            wal_frames.store(0, Ordering::Relaxed);
        }
        group.push(first);
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if commit_group(&conn, &mut group).is_ok() {
            group.drain(..).for_each(|job| job.finish(Ok(())));
        } else {
            for mut job in group.drain(..) {
                let alone = commit(&conn, std::slice::from_mut(&mut job), Isolation::Savepoints);
                job.finish(alone.map(|_| ()));
            }
        }
    }
}

/// How the writes of one transaction are kept apart.
#[derive(Clone, Copy)]
enum Isolation {
    /// None: the first write that fails rolls the whole transaction back.
    None,
    /// Each write in a savepoint of its own, so a failed one is rolled back alone.
    Savepoints,
}

/// Commits `jobs` in one transaction. Writes rarely fail, so the group is
/// first run without savepoints: a savepoint makes SQLite copy every page a
/// write touches into a sub-journal, which cost a start flood 16 % of its
/// throughput (BENCHMARKS.md, 2026-12-05, evening). If a write fails, that
/// transaction is rolled back and the group runs again with a savepoint per
/// write, so a failed write is still rolled back alone and never becomes
/// another's; a failure costs its group one run more, never more.
fn commit_group(conn: &Connection, jobs: &mut [Box<dyn Job>]) -> anyhow::Result<()> {
    if commit(conn, jobs, Isolation::None)? {
        return Ok(());
    }
    commit(conn, jobs, Isolation::Savepoints).map(|_| ())
}

/// One transaction for `jobs`. False when, without savepoints, a write
/// failed and the transaction was rolled back instead of committed.
fn commit(conn: &Connection, jobs: &mut [Box<dyn Job>], isolation: Isolation) -> anyhow::Result<bool> {
    let outcome = (|| {
        exec(conn, "begin immediate")?;
        for job in jobs.iter_mut() {
            match isolation {
                Isolation::None => {
                    if !job.run(conn) {
                        exec(conn, "rollback")?;
                        return Ok(false);
                    }
                }
                Isolation::Savepoints => {
                    exec(conn, "savepoint job")?;
                    if !job.run(conn) {
                        // Some errors (a full disk, I/O) roll the whole transaction
                        // back; then the group has failed, not just this write.
                        anyhow::ensure!(!conn.is_autocommit(), "the transaction was rolled back");
                        exec(conn, "rollback to job")?;
                    }
                    exec(conn, "release job")?;
                }
            }
        }
        exec(conn, "commit")?;
        Ok(true)
    })();
    if outcome.is_err() && !conn.is_autocommit() {
        let _ = exec(conn, "rollback");
    }
    outcome
}

/// Under a steady stream of writes the WAL never catches up with its
/// checkpoints, so it would grow without end (and every commit would
/// extend the file). A restart checkpoint, between two groups, copies what
/// the checkpointer has not and waits for readers to leave the WAL (they
/// take microseconds), so the next commit writes from the WAL's beginning
/// over blocks the file already has.
///
/// True when it was made (no reader kept the WAL past the busy timeout).
fn restart_wal(conn: &Connection) -> bool {
    // One row: busy, frames in the WAL, frames copied.
    match conn.query_row("pragma wal_checkpoint(restart)", [], |row| row.get::<_, i64>(0)) {
        Ok(busy) => busy == 0,
        Err(e) => {
            tracing::warn!(error = %e, "WAL restart failed");
            false
        }
    }
}

/// How often the checkpointer looks at the WAL.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// A passive checkpoint every `CHECKPOINT_EVERY` until the writer stops: it
/// waits for no one, and tells the writer how long the WAL has grown
/// (`wal_frames`), so it starts the WAL over once it is long.
fn checkpoint(conn: Connection, stopped: std::sync::mpsc::Receiver<()>, wal_frames: &AtomicI64) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_EVERY) {
        // One row: busy, frames in the WAL, frames copied.
        match conn.query_row("pragma wal_checkpoint(passive)", [], |row| row.get::<_, i64>(1)) {
            Ok(frames) => wal_frames.store(frames, Ordering::Relaxed),
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

fn exec(conn: &Connection, sql: &str) -> anyhow::Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .with_context(|| format!("SQLite `{sql}`"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// A write that inserts `n` and then fails when `fail` says so.
    fn insert(n: i64, fail: bool) -> (Box<dyn Job>, oneshot::Receiver<StoreResult<()>>) {
        let (reply, answer) = oneshot::channel();
        let work = move |c: &Connection| -> StoreResult<()> {
            c.execute("insert into t (n) values (?1)", [n])
                .map_err(|e| StoreError::Other(e.into()))?;
            if fail {
                return Err(StoreError::Other(anyhow::anyhow!("write {n} fails after its insert")));
            }
            Ok(())
        };
        let job = Box::new(Write {
            work,
            outcome: None,
            reply,
        });
        (job, answer)
    }

    #[test]
    fn a_failed_write_in_a_group_is_rolled_back_alone() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let conn = super::super::conn::open(&dir.path().join("w.db"), Duration::from_secs(1), true)?;
        conn.execute_batch("create table t (n integer not null)")?;
        let mut group = Vec::new();
        let mut answers = Vec::new();
        for n in 0..10 {
            let (job, answer) = insert(n, n == 4 || n == 7);
            group.push(job);
            answers.push(answer);
        }
        commit_group(&conn, &mut group)?;
        group.drain(..).for_each(|job| job.finish(Ok(())));
        for (n, mut answer) in answers.into_iter().enumerate() {
            let outcome = answer.try_recv()?;
            assert_eq!(outcome.is_err(), n == 4 || n == 7, "write {n}");
        }
        let kept: Vec<i64> = conn
            .prepare("select n from t order by n")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        assert_eq!(kept, vec![0, 1, 2, 3, 5, 6, 8, 9]);
        Ok(())
    }
}
