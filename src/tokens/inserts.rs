//! Group commit for `TokenCreate`: concurrent creations of a token (not unique) share one
//! statement and one commit, each token with its creation's event, atomically.
//!
//! As for users ([`crate::users::inserts`]): the batch's COMMIT is sent only once its statements
//! have answered and every caller is still waiting, so a creation answered 503 is rolled back,
//! never committed later. A token whose tokenuuid or tokenbase is taken is skipped and its
//! caller told so: it draws again on its own path. Unique tokens (looked up by value first) and
//! bulk calls keep their own transaction.

use crate::expiry::Lifetime;
use crate::group_commit::{Batch, GroupCommit, InsertFailed};
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

/// `Ok(true)` inserted, `Ok(false)` skipped: its tokenuuid or tokenbase is taken.
pub type Inserted = Result<bool, InsertFailed>;

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

/// Commits a batch; rolls back and commits again without them when callers went away while
/// its statements ran. Cut short (rolled back) when the database is declared away.
async fn commit(db: &Db, health: &Health, mut batch: Batch<PendingToken, Inserted>) {
    loop {
        let attempt = {
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
            tokio::select! {
                stored = insert_groups(db, &tokens, || !batch.any_gone()) => {
                    Some(stored.map(|set| set.map(|set| {
                        tokens.iter().map(|t| Ok(set.contains(&t.row.uuid_idx[..]))).collect::<Vec<Inserted>>()
                    })))
                }
                () = health.went_down() => None,
            }
        };
        match attempt {
            Some(Ok(Some(outcomes))) => return batch.answer(outcomes),
            Some(Ok(None)) => {
                batch.retain_live();
                if batch.is_empty() {
                    return;
                }
            }
            Some(Err(err)) if err.is_unavailable() => return batch.answer_all(Err(InsertFailed::Unavailable)),
            Some(Err(err)) => {
                tracing::error!(error = %err, tokens = batch.items.len(), "token batch failed");
                return batch.answer_all(Err(InsertFailed::Failed));
            }
            None => return batch.answer_all(Err(InsertFailed::Unavailable)),
        }
    }
}
