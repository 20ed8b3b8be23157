//! Group commit for audit events that are not part of a change's own transaction.
//!
//! Callers hand an event to one writer task and wait; the task takes every event queued while
//! the previous commit ran and commits them together, then answers each caller. Under load one
//! commit carries many requests' events; with no load the latency is one commit.

use tokio::sync::{mpsc, oneshot};

use crate::store::Db;
use crate::store::audit::{AuditRecord, insert_batch};

/// Most events in one commit: bounds the size of a single statement batch.
const MAX_BATCH: usize = 512;
/// Events waiting beyond this make callers wait for queue space (back-pressure).
const QUEUE: usize = 8192;

/// The audit write failed: the caller must not answer as if it had succeeded.
#[derive(Debug, thiserror::Error)]
#[error("the audit event could not be stored")]
pub struct AuditFailed;

struct Job {
    record: AuditRecord,
    done: oneshot::Sender<Result<(), AuditFailed>>,
}

/// Handle to the writer task.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl AuditWriter {
    /// Starts the writer task on the current runtime. It ends when every handle is dropped.
    pub fn spawn(db: Db) -> AuditWriter {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(db, jobs));
        AuditWriter { queue }
    }

    /// Stores one event durably; returns once it is committed.
    pub async fn submit(&self, record: AuditRecord) -> Result<(), AuditFailed> {
        let (done, wait) = oneshot::channel();
        self.queue.send(Job { record, done }).await.map_err(|_| AuditFailed)?;
        wait.await.map_err(|_| AuditFailed)?
    }
}

async fn run(db: Db, mut jobs: mpsc::Receiver<Job>) {
    let mut records = Vec::with_capacity(MAX_BATCH);
    let mut waiters = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = jobs.recv().await {
        records.push(first.record);
        waiters.push(first.done);
        while records.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => {
                    records.push(job.record);
                    waiters.push(job.done);
                }
                Err(_) => break,
            }
        }
        let result = insert_batch(&db, &records).await;
        if let Err(err) = &result {
            tracing::error!(error = %err, events = records.len(), "audit batch failed");
        }
        for waiter in waiters.drain(..) {
            // A caller that went away (client disconnected) needs no answer.
            let _ = waiter.send(result.as_ref().map(|_| ()).map_err(|_| AuditFailed));
        }
        records.clear();
    }
}
