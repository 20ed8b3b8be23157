//! The per-statement time limit of one connection, which remembers whether it ever ran out: a
//! statement abandoned mid-way leaves the connection in an unknown state, while one the server
//! cancelled (its own statement timeout, set a little shorter) leaves it usable.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::Failure;
use super::failure::from_sqlx;

/// A connection's statement limit; clones share whether it ran out.
#[derive(Debug, Clone)]
pub(super) struct Deadline {
    limit: Duration,
    ran_out: Arc<AtomicBool>,
}

impl Deadline {
    pub(super) fn new(limit: Duration) -> Deadline {
        Deadline { limit, ran_out: Arc::new(AtomicBool::new(false)) }
    }

    /// Runs one statement within the limit; a sqlx error becomes a [`Failure`].
    pub(super) async fn run<T>(&self, work: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, Failure> {
        self.within(async { work.await.map_err(|error| from_sqlx(&error)) }).await
    }

    /// Runs `work` (one statement and what it reads) within the limit.
    pub(super) async fn within<T>(&self, work: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
        match tokio::time::timeout(self.limit, work).await {
            Ok(result) => result,
            Err(_elapsed) => {
                self.ran_out.store(true, Ordering::Relaxed);
                Err(Failure::Timeout)
            }
        }
    }

    /// Whether a statement was abandoned for taking too long.
    pub(super) fn ran_out(&self) -> bool {
        self.ran_out.load(Ordering::Relaxed)
    }
}
