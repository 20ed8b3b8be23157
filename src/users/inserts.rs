//! Group commit for `UserCreate`: concurrent creations share one statement and one commit.
//!
//! Each user goes in with its audit event, atomically, as before; a batch is the same
//! multi-row insert `UserCreateBulk` uses, so a user whose login, email, phone or custom id is
//! already taken (by an earlier user or an earlier one of the same batch) is skipped and told
//! so, as if the calls had come one after the other.
//!
//! A batch is one transaction whose COMMIT is sent only once its statements have answered and
//! every caller is still waiting: a creation whose request was answered 503 (timed out, or cut
//! short because the database went away) is rolled back, never committed later with an event
//! that says 200. One round trip more per batch than a single autocommit statement: BEGIN.

pub use crate::group_commit::InsertFailed;
use crate::group_commit::{Batch, GroupCommit, commit_inserts};
use crate::store::audit::AuditRecord;
use crate::store::users::{NewUser, TenantUsers, insert_groups};
use crate::store::{Db, Health};
use crate::tenants::TenantId;

/// Most users in one statement.
const MAX_BATCH: usize = 256;

/// A user to insert with its audit event.
pub struct PendingUser {
    /// Tenant of the request.
    pub tenant: TenantId,
    /// The sealed, indexed row.
    pub user: NewUser,
    /// The creation's audit event.
    pub event: AuditRecord,
}

/// `Ok(true)` inserted, `Ok(false)` skipped: an index value is taken.
pub use crate::group_commit::Inserted;

/// Handle to the task that inserts users for `UserCreate`.
#[derive(Clone, Debug)]
pub struct UserInserts(GroupCommit<PendingUser, Inserted>);

impl UserInserts {
    /// Starts the task on the current runtime.
    pub fn spawn(db: Db) -> UserInserts {
        let health = db.health();
        UserInserts(GroupCommit::spawn(MAX_BATCH, move |batch| {
            let db = db.clone();
            let health = health.clone();
            async move { commit(&db, &health, batch).await }
        }))
    }

    /// Inserts one user with its event, durably, in a batch with whatever else is waiting.
    pub async fn insert(&self, pending: PendingUser) -> Inserted {
        self.0.submit(pending).await.unwrap_or(Err(InsertFailed::Failed))
    }
}

/// Commits a batch (see [`commit_inserts`]).
async fn commit(db: &Db, health: &Health, batch: Batch<PendingUser, Inserted>) {
    commit_inserts(health, "users", batch, |batch| {
        let db = db.clone();
        Box::pin(async move {
            let (groups, positions) = by_tenant(&batch.items);
            let stored = insert_groups(&db, &groups, || !batch.any_gone()).await?;
            Ok(stored.map(|sets| outcomes(&groups, &positions, &sets, batch.items.len())))
        })
    })
    .await;
}

/// The batch by tenant, in order of first arrival, with each user's position in the batch.
fn by_tenant(pending: &[PendingUser]) -> (Vec<TenantUsers<'_>>, Vec<Vec<usize>>) {
    let mut groups: Vec<TenantUsers<'_>> = Vec::new();
    let mut positions: Vec<Vec<usize>> = Vec::new();
    for (position, PendingUser { tenant, user, event }) in pending.iter().enumerate() {
        let at = groups.iter().position(|g| g.tenant == *tenant).unwrap_or_else(|| {
            groups.push(TenantUsers { tenant: *tenant, users: Vec::new(), events: Vec::new() });
            positions.push(Vec::new());
            groups.len() - 1
        });
        groups[at].users.push(user);
        groups[at].events.push(event);
        positions[at].push(position);
    }
    (groups, positions)
}

/// Each user's outcome, in batch order, from the rids each tenant's insert reported.
fn outcomes(
    groups: &[TenantUsers<'_>],
    positions: &[Vec<usize>],
    inserted: &[std::collections::HashSet<Vec<u8>>],
    len: usize,
) -> Vec<Inserted> {
    let mut out = vec![Err(InsertFailed::Failed); len];
    for ((group, positions), inserted) in groups.iter().zip(positions).zip(inserted) {
        for (user, position) in group.users.iter().zip(positions) {
            out[*position] = Ok(inserted.contains(&user.rid));
        }
    }
    out
}
