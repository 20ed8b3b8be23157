//! Erasure that reaches the files: after records are erased from an embedded SQLite database,
//! the write-ahead log is checkpointed and truncated.
//!
//! Every SQLite connection runs with `secure_delete`, so a deleted row's bytes (a wrapped data
//! key, a sealed record) are overwritten with zeros in its page and freed pages are zeroed. The
//! write-ahead log, though, still holds the earlier versions of those pages until it is
//! checkpointed and reset; a `TRUNCATE` checkpoint copies the latest pages into the database
//! file and empties the log. It runs in the background, shortly after an erasure (several
//! erasures close together share one), so that the request that erased does not wait for it.
//! PostgreSQL keeps dead tuples until `VACUUM`, and its WAL archives and backups for as long as
//! they are retained: see the README ("Erasure on PostgreSQL").

use std::time::Duration;

use sqlx::{Row, SqlitePool};
use tokio::sync::mpsc;

use super::Db;

/// How long erasures are gathered before one checkpoint covers them.
const DEBOUNCE: Duration = Duration::from_millis(50);

/// Attempts at a checkpoint that readers keep from completing.
const ATTEMPTS: usize = 20;

/// Pause between attempts.
const RETRY: Duration = Duration::from_millis(100);

/// Asks for a checkpoint after an erasure; a no-op on PostgreSQL. The background task ends
/// when the last handle is dropped.
#[derive(Debug, Clone)]
pub struct Checkpoints(Option<mpsc::Sender<()>>);

impl Checkpoints {
    /// Starts the background checkpointer of `db` (SQLite only).
    pub fn spawn(db: &Db) -> Checkpoints {
        let Db::Sqlite(pool) = db else { return Checkpoints(None) };
        // One pending request is enough: it covers every erasure committed before it runs.
        let (sender, receiver) = mpsc::channel(1);
        tokio::spawn(run(pool.clone(), receiver));
        Checkpoints(Some(sender))
    }

    /// Records that rows were erased: a checkpoint follows shortly.
    pub fn after_erasure(&self) {
        if let Some(sender) = &self.0 {
            // Full: a checkpoint is already due and will cover this erasure too.
            let _ = sender.try_send(());
        }
    }
}

async fn run(pool: SqlitePool, mut requests: mpsc::Receiver<()>) {
    while requests.recv().await.is_some() {
        tokio::time::sleep(DEBOUNCE).await;
        if pool.is_closed() {
            return;
        }
        if let Err(err) = truncate_wal(&pool).await {
            tracing::warn!(error = %err, "cannot checkpoint the write-ahead log after an erasure; erased pages stay in it until the next checkpoint");
        }
    }
}

/// Checkpoints the whole log into the database file and truncates it; retries while readers
/// of older snapshots keep it from completing.
pub async fn truncate_wal(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    for _ in 0..ATTEMPTS {
        // (busy, log frames, frames checkpointed); busy = 1 when it could not finish.
        let row = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(pool).await?;
        if row.try_get::<i64, _>(0)? == 0 {
            return Ok(());
        }
        tokio::time::sleep(RETRY).await;
    }
    Err(sqlx::Error::Protocol("the write-ahead log stayed in use by readers".into()))
}
