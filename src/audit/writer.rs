//! Group commit for audit events that are not part of a change's own transaction.
//!
//! Callers hand an event to one writer task and wait; the task commits every event queued while
//! the previous commit ran together (see [`crate::group_commit`]), then answers each caller.

use crate::group_commit::GroupCommit;
use crate::store::Db;
use crate::store::audit::{AuditRecord, insert_batch};

/// Most events in one commit: bounds the size of a single statement batch.
const MAX_BATCH: usize = 512;

/// The audit write failed: the caller must not answer as if it had succeeded.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the audit event could not be stored")]
pub struct AuditFailed;

/// Handle to the writer task.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    group: GroupCommit<AuditRecord, Result<(), AuditFailed>>,
}

impl AuditWriter {
    /// Starts the writer task on the current runtime. It ends when every handle is dropped.
    pub fn spawn(db: Db) -> AuditWriter {
        let group = GroupCommit::spawn(MAX_BATCH, move |records: Vec<AuditRecord>| {
            let db = db.clone();
            async move {
                let result = insert_batch(&db, &records).await.map_err(|err| {
                    tracing::error!(error = %err, events = records.len(), "audit batch failed");
                    AuditFailed
                });
                vec![result; records.len()]
            }
        });
        AuditWriter { group }
    }

    /// Stores one event durably; returns once it is committed.
    pub async fn submit(&self, record: AuditRecord) -> Result<(), AuditFailed> {
        self.group.submit(record).await.unwrap_or(Err(AuditFailed))
    }
}
