//! Group commit for `UserCreate`: concurrent creations share one statement and one commit.
//!
//! Each user goes in with its audit event, atomically, as before; a batch is the same
//! multi-row insert `UserCreateBulk` uses, so a user whose login, email, phone or custom id is
//! already taken (by an earlier user or an earlier one of the same batch) is skipped and told
//! so, as if the calls had come one after the other.

use crate::group_commit::GroupCommit;
use crate::store::Db;
use crate::store::audit::AuditRecord;
use crate::store::users::{NewUser, insert_many};

/// Most users in one statement.
const MAX_BATCH: usize = 256;

/// A user to insert with its audit event.
pub struct PendingUser {
    /// Tenant of the request.
    pub tenant: i64,
    /// The sealed, indexed row.
    pub user: NewUser,
    /// The creation's audit event.
    pub event: AuditRecord,
}

/// The batch the user was part of failed; the detail is logged once for the batch.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the user could not be stored")]
pub struct InsertFailed;

/// `Ok(true)` inserted, `Ok(false)` skipped: an index value is taken.
pub type Inserted = Result<bool, InsertFailed>;

/// Handle to the task that inserts users for `UserCreate`.
#[derive(Clone, Debug)]
pub struct UserInserts(GroupCommit<PendingUser, Inserted>);

impl UserInserts {
    /// Starts the task on the current runtime.
    pub fn spawn(db: Db) -> UserInserts {
        UserInserts(GroupCommit::spawn(MAX_BATCH, move |pending: Vec<PendingUser>| {
            let db = db.clone();
            async move { commit(&db, pending).await }
        }))
    }

    /// Inserts one user with its event, durably, in a batch with whatever else is waiting.
    pub async fn insert(&self, pending: PendingUser) -> Inserted {
        self.0.submit(pending).await.unwrap_or(Err(InsertFailed))
    }
}

/// The users of one tenant in a batch, with their positions in it.
#[derive(Default)]
struct TenantGroup {
    positions: Vec<usize>,
    users: Vec<NewUser>,
    events: Vec<AuditRecord>,
}

/// One `insert_many` per tenant present in the batch (usually one); results in input order.
async fn commit(db: &Db, pending: Vec<PendingUser>) -> Vec<Inserted> {
    let mut results = vec![Err(InsertFailed); pending.len()];
    // Tenants in order of first arrival; the rows and events move in, uncopied.
    let mut groups: Vec<(i64, TenantGroup)> = Vec::new();
    for (position, PendingUser { tenant, user, event }) in pending.into_iter().enumerate() {
        let at = groups.iter().position(|(t, _)| *t == tenant).unwrap_or_else(|| {
            groups.push((tenant, TenantGroup::default()));
            groups.len() - 1
        });
        let group = &mut groups[at].1;
        group.positions.push(position);
        group.users.push(user);
        group.events.push(event);
    }
    for (tenant, group) in groups {
        let rows: Vec<&NewUser> = group.users.iter().collect();
        match insert_many(db, tenant, &rows, &group.events).await {
            Ok(inserted) => {
                for (position, user) in group.positions.into_iter().zip(&group.users) {
                    results[position] = Ok(inserted.contains(&user.rid));
                }
            }
            Err(err) => tracing::error!(error = %err, users = rows.len(), "user batch failed"),
        }
    }
    results
}
