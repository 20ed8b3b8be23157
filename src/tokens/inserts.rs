//! Group commit for `TokenCreate`: concurrent creations of a token (not unique) share one
//! statement and one commit, each token with its creation's event, atomically.
//!
//! As for users ([`crate::users::inserts`]): the batch's COMMIT is sent only once its statements
//! have answered and every caller is still waiting, so a creation answered 503 is rolled back,
//! never committed later. A token whose tokenuuid or tokenbase is taken is skipped and its
//! caller told so: it draws again on its own path. Unique tokens (looked up by value first) and
//! bulk calls keep their own transaction.

use crate::expiry::Lifetime;
use crate::group_commit::{Batch, GroupCommit, InsertFailed, Inserted, commit_inserts};
use crate::store::audit::AuditRecord;
use crate::store::tokens::{GroupedToken, NewToken, insert_groups};
use crate::store::{Db, Health};
use crate::tenants::TenantId;

/// Most tokens in one statement.
const MAX_BATCH: usize = 256;

/// A token to insert with its audit event.
pub struct PendingToken {
    /// Tenant of the request.
    pub tenant: TenantId,
    /// The sealed, indexed row (no `value_idx`).
    pub row: NewToken,
    /// When the request was made (unix seconds).
    pub now: i64,
    /// The token's lifetime.
    pub lifetime: Lifetime,
    /// The creation's audit event.
    pub event: AuditRecord,
}

/// Handle to the task that inserts tokens for `TokenCreate`.
#[derive(Clone, Debug)]
pub struct TokenInserts(GroupCommit<PendingToken, Inserted>);

impl TokenInserts {
    /// Starts the task on the current runtime.
    pub fn spawn(db: Db) -> TokenInserts {
        let health = db.health();
        TokenInserts(GroupCommit::spawn(MAX_BATCH, move |batch| {
            let db = db.clone();
            let health = health.clone();
            async move { commit(&db, &health, batch).await }
        }))
    }

    /// Inserts one token with its event, durably, in a batch with whatever else is waiting.
    pub async fn insert(&self, pending: PendingToken) -> Inserted {
        self.0.submit(pending).await.unwrap_or(Err(InsertFailed::Failed))
    }
}

/// Commits a batch (see [`commit_inserts`]).
async fn commit(db: &Db, health: &Health, batch: Batch<PendingToken, Inserted>) {
    commit_inserts(health, "tokens", batch, |batch| {
        let db = db.clone();
        Box::pin(async move {
            let tokens: Vec<GroupedToken<'_>> = batch
                .items
                .iter()
                .map(|p| GroupedToken {
                    tenant: p.tenant,
                    row: &p.row,
                    now: p.now,
                    lifetime: p.lifetime,
                    event: &p.event,
                })
                .collect();
            let stored = insert_groups(&db, &tokens, || !batch.any_gone()).await?;
            Ok(stored.map(|set| tokens.iter().map(|t| Ok(set.contains(&t.row.uuid_idx[..]))).collect()))
        })
    })
    .await;
}
