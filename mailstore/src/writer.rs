//! The single index writer: one thread owns the write connection and runs every write.
//!
//! Writes queue up while a commit is in progress and the next transaction takes them all
//! (group commit), so many concurrent deliveries share one WAL fsync. Each job runs in
//! its own savepoint, so a refused job does not undo its neighbours, and no caller hears
//! back before the transaction holding its change has committed.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::schema;

/// Called after the transaction ends, with whether it committed.
type Completion = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// Runs inside the transaction (or is told why there is none); returns whether to keep
/// its changes and how to answer once the transaction ends.
type Run = Box<dyn FnOnce(std::result::Result<&Connection, &str>) -> (bool, Completion) + Send>;

/// How a delivery makes its file survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FileSync {
    /// The file and its folder are fsynced before the index row commits: a copy the
    /// index lists is on disk whole. Every copy Lifeboat may hold alone needs this.
    Durable,
    /// Neither is fsynced; the kernel writes them back later. For journal copies only:
    /// Postfix still has the mail, and a copy torn by a crash is found by `store check`
    /// (its length differs from the `S=` in its name) and removed by `--repair`.
    Unsynced,
}

struct Job {
    run: Run,
    /// A directory to fsync before the commit (where the job's message file was linked).
    sync_dir: Option<PathBuf>,
}

/// Upper bound on jobs in one transaction, so one commit cannot grow without limit.
const MAX_GROUP: usize = 512;

#[derive(Clone)]
pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens (and migrates) the index and starts the writer thread.
    pub fn start(index_path: &Path) -> Result<Writer> {
        let conn = schema::open_writer(index_path)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("index-writer".into())
            .spawn(move || run(conn, queue))
            .map_err(|source| Error::Io {
                context: "starting the index writer thread".into(),
                source,
            })?;
        Ok(Writer { jobs })
    }

    /// Runs `f` in the writer's transaction and returns its result once committed.
    /// An `Err` from `f` rolls back only `f`'s own changes.
    pub fn call<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.call_after_sync(None, f)
    }

    /// Like [`Writer::call`], and `dir` is fsynced before the commit. Jobs of one group
    /// commit share the fsync of a directory, which is what makes concurrent deliveries
    /// into one folder cheap.
    pub fn call_after_sync<T, F>(&self, sync_dir: Option<PathBuf>, f: F) -> Result<T>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        self.submit(sync_dir, f)?.wait()
    }

    /// Queues `f` without waiting for it, so one thread can put several jobs into the
    /// same group commit (a batch of deliveries) and then wait for each answer.
    pub fn submit<T, F>(&self, sync_dir: Option<PathBuf>, f: F) -> Result<Answer<T>>
    where
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let run: Run = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => f(conn),
                Err(why) => Err(Error::CommitFailed(why.to_string())),
            };
            let keep = result.is_ok();
            let completion: Completion = Box::new(move |committed| {
                let outcome = match (result, committed) {
                    (Ok(value), Ok(())) => Ok(value),
                    (Ok(_), Err(why)) => Err(Error::CommitFailed(why)),
                    (Err(e), _) => Err(e),
                };
                let _ = reply.send(outcome);
            });
            (keep, completion)
        });
        self.jobs
            .send(Job { run, sync_dir })
            .map_err(|_| Error::WriterGone)?;
        Ok(Answer(answer))
    }
}

/// The outcome of a submitted job, available once its transaction has ended.
pub struct Answer<T>(mpsc::Receiver<Result<T>>);

impl<T> Answer<T> {
    pub fn wait(self) -> Result<T> {
        self.0.recv().map_err(|_| Error::WriterGone)?
    }
}

fn run(conn: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        run_group(&conn, group);
    }
}

fn run_group(conn: &Connection, group: Vec<Job>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        tracing::error!(error = %e, "index writer could not begin a transaction");
        let why = format!("could not begin a transaction: {e}");
        for job in group {
            let (_, completion) = (job.run)(Err(&why));
            completion(Err(why.clone()));
        }
        return;
    }
    let sync_dirs: BTreeSet<PathBuf> = group
        .iter()
        .filter_map(|job| job.sync_dir.clone())
        .collect();
    let mut completions = Vec::with_capacity(group.len());
    for job in group {
        // Cached: two statements per job, parsed once per connection instead.
        let savepoint = run_cached(conn, "SAVEPOINT job");
        let (keep, completion) = (job.run)(Ok(conn));
        let closed = match (savepoint, keep) {
            (Ok(()), true) => run_cached(conn, "RELEASE job"),
            (Ok(()), false) => conn.execute_batch("ROLLBACK TO job; RELEASE job"),
            (Err(e), _) => Err(e),
        };
        if let Err(e) = closed {
            tracing::error!(error = %e, "index writer savepoint failed");
        }
        completions.push(completion);
    }
    // The files' links must be durable before the rows that name them.
    let synced = sync_dirs.iter().try_for_each(|dir| {
        crate::maildir::fsync_dir(dir).map_err(|e| format!("fsync {}: {e}", dir.display()))
    });
    let committed = synced
        .and_then(|()| conn.execute_batch("COMMIT").map_err(|e| e.to_string()))
        .inspect_err(|e| {
            let _ = conn.execute_batch("ROLLBACK");
            tracing::error!(error = %e, "index commit failed");
        });
    for completion in completions {
        completion(committed.clone());
    }
}

fn run_cached(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::refused;

    #[test]
    fn refused_job_does_not_undo_its_neighbours() {
        let dir = tempfile::tempdir().unwrap();
        let writer = Writer::start(&dir.path().join("i.sqlite")).unwrap();
        let insert = |key: &'static str| {
            move |conn: &Connection| -> Result<()> {
                conn.execute("INSERT INTO meta(key, value) VALUES (?1, 'v')", [key])?;
                Ok(())
            }
        };
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let writer = writer.clone();
                thread::spawn(move || {
                    if i == 3 {
                        writer.call(|conn| {
                            conn.execute("INSERT INTO meta(key, value) VALUES ('bad', 'v')", [])?;
                            refused::<()>("no")
                        })
                    } else {
                        writer.call(insert(["a", "b", "c", "d", "e", "f", "g", "h"][i]))
                    }
                })
            })
            .collect();
        let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert!(results[3].is_err());
        assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 7);
        let count: i64 = writer
            .call(|conn| Ok(conn.query_row("SELECT count(*) FROM meta", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(
            count, 7,
            "the refused job's insert must be rolled back alone"
        );
    }
}
