//! Group commit for audit events that are not part of a change's own transaction.
//!
//! Callers hand an event to one writer task and wait; the task commits every event queued while
//! the previous commit ran together (see [`crate::group_commit`]), then answers each caller.
//! Events of requests answered while the database was away wait in a bounded queue and are
//! written once it is back ([`AuditWriter::submit_later`]).

use std::time::Duration;

use tokio::sync::mpsc;

use crate::group_commit::{Batch, BatchFailed, GroupCommit, commit_inserts};
use crate::http::ApiError;
use crate::store::audit::{AuditRecord, insert_batch};
use crate::store::{Db, Health};

/// Most events in one commit: bounds the size of a single statement batch.
const MAX_BATCH: usize = 512;

/// Most events kept for a database that is away; beyond it they are lost (and logged).
const LATER_QUEUE: usize = 10_000;

/// Attempts at an event kept for later that the database refuses (not: cannot be reached).
const LATER_ATTEMPTS: u32 = 20;

/// The audit write failed: the caller must not answer as if it had succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuditFailed {
    /// The database is away or did not answer in time.
    #[error("the database is unavailable")]
    Unavailable,
    /// The database refused the events.
    #[error("the audit event could not be stored")]
    Failed,
}

impl From<AuditFailed> for ApiError {
    fn from(err: AuditFailed) -> ApiError {
        match err {
            AuditFailed::Unavailable => ApiError::Unavailable,
            AuditFailed::Failed => ApiError::internal(err),
        }
    }
}

type Outcome = Result<(), AuditFailed>;

/// Handle to the writer task.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    group: GroupCommit<AuditRecord, Outcome>,
    later: mpsc::Sender<AuditRecord>,
}

impl AuditWriter {
    /// Starts the writer task on the current runtime. It ends when every handle is dropped.
    pub fn spawn(db: Db) -> AuditWriter {
        let health = db.health();
        let committing = health.clone();
        let group = GroupCommit::spawn(MAX_BATCH, move |batch| {
            let db = db.clone();
            let health = committing.clone();
            async move { commit(&db, &health, batch).await }
        });
        let (later, queue) = mpsc::channel(LATER_QUEUE);
        tokio::spawn(write_later(group.clone(), health, queue));
        AuditWriter { group, later }
    }

    /// Stores one event durably; returns once it is committed.
    pub async fn submit(&self, record: AuditRecord) -> Result<(), AuditFailed> {
        self.group.submit(record).await.unwrap_or(Err(AuditFailed::Failed))
    }

    /// Stores one event without waiting: at once if the database answers, else as soon as it
    /// is back. For the event of a request answered 503 because the database was away; kept in
    /// this process's memory meanwhile (lost if it stops first).
    pub fn submit_later(&self, record: AuditRecord) {
        if self.later.try_send(record).is_err() {
            tracing::error!(queued = LATER_QUEUE, "audit event lost: too many events wait for the database");
        }
    }
}

impl BatchFailed for Outcome {
    const UNAVAILABLE: Self = Err(AuditFailed::Unavailable);
    const FAILED: Self = Err(AuditFailed::Failed);
}

/// Commits a batch (see [`commit_inserts`]): every event of a batch committed is stored.
async fn commit(db: &Db, health: &Health, batch: Batch<AuditRecord, Outcome>) {
    commit_inserts(health, "audit events", batch, |batch| {
        let db = db.clone();
        Box::pin(async move {
            let stored = insert_batch(&db, &batch.items, || !batch.any_gone()).await?;
            Ok(stored.then(|| vec![Ok(()); batch.items.len()]))
        })
    })
    .await;
}

/// Writes the events of [`AuditWriter::submit_later`] whenever the database is up.
async fn write_later(group: GroupCommit<AuditRecord, Outcome>, health: Health, mut queue: mpsc::Receiver<AuditRecord>) {
    let mut waiting: Vec<(AuditRecord, u32)> = Vec::new();
    loop {
        if waiting.is_empty() {
            match queue.recv().await {
                Some(record) => waiting.push((record, 0)),
                None => return,
            }
        }
        while waiting.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(record) => waiting.push((record, 0)),
                Err(_) => break,
            }
        }
        health.came_up().await;
        let outcomes = futures::future::join_all(waiting.iter().map(|(record, _)| group.submit(record.clone()))).await;
        let mut retry = Vec::new();
        for ((record, attempts), outcome) in waiting.drain(..).zip(outcomes) {
            match outcome {
                Some(Ok(())) => {}
                Some(Err(AuditFailed::Unavailable)) => retry.push((record, attempts)),
                _ if attempts + 1 < LATER_ATTEMPTS => retry.push((record, attempts + 1)),
                _ => tracing::error!(operation = record.operation, "audit event lost: the database refused it"),
            }
        }
        if !retry.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        waiting = retry;
    }
}
