//! Groups and their members: tenant catalogue records in clear, members named by their record
//! id. Every change commits with its audit event and a `vault_changes` entry, so every replica
//! drops the access decisions it compiled for the tenant.

use sqlx::Row;

use super::audit::{AuditRecord, insert as insert_audit};
use super::roles::Ref;
use super::tenants::{Change, RECORD_CHANGE as CHANGED};
use super::{ScopedPool, StoreError, StoreResult, TenantScope, with_pool};

/// A group as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Group {
    /// Id, unique in the vault.
    pub id: i64,
    /// Name, unique in the tenant.
    pub name: String,
    /// Description.
    pub descr: String,
    /// Type (`users` unless told).
    pub gtype: String,
    /// Parent group, if any.
    pub parent_id: Option<i64>,
    /// Custom attributes: a JSON object, as text.
    pub attributes: String,
    /// Creation time (unix seconds).
    pub created_at: i64,
    /// Last change (unix seconds).
    pub updated_at: i64,
}

/// One membership: a user in a group, with the role it holds there.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Membership {
    /// The member's record id.
    pub rid: Vec<u8>,
    /// The group.
    pub group_id: i64,
    /// The group's name.
    pub group_name: String,
    /// The role held in the group, if any.
    pub role_id: Option<i64>,
    /// That role's name.
    pub role_name: Option<String>,
}

/// What deleting a group found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deletion {
    /// Deleted, with this many groups below it and memberships.
    Deleted { groups: i64, members: i64 },
    /// Refused: the group has children or members and no cascade was asked.
    Refused { children: i64, members: i64 },
}

const COLUMNS: &str = "id, name, descr, gtype, parent_id, attributes, created_at, updated_at";

/// The groups of one tenant.
#[derive(Debug, Clone, Copy)]
pub struct Groups<'a>(pub(super) TenantScope<'a>);

impl Groups<'_> {
    /// One group by id or name.
    pub async fn get(&self, group: &Ref) -> StoreResult<Option<Group>> {
        let (db, tenant) = self.0.parts();
        let by_id = format!("SELECT {COLUMNS} FROM access_groups WHERE tenant_id = $1 AND id = $2");
        let by_name = format!("SELECT {COLUMNS} FROM access_groups WHERE tenant_id = $1 AND name = $2");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let query = match group {
                Ref::Id(id) => sqlx::query_as::<_, Group>(&by_id).bind(tenant).bind(*id),
                Ref::Name(name) => sqlx::query_as::<_, Group>(&by_name).bind(tenant).bind(name.as_str()),
            };
            Ok(query.fetch_optional(&mut *conn).await?)
        })
    }

    /// Every group of the tenant, oldest first, at most `limit` from `offset`.
    pub async fn list(&self, offset: i64, limit: i64) -> StoreResult<Vec<Group>> {
        let (db, tenant) = self.0.parts();
        let sql = format!("SELECT {COLUMNS} FROM access_groups WHERE tenant_id = $1 ORDER BY id LIMIT $2 OFFSET $3");
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            Ok(sqlx::query_as::<_, Group>(&sql).bind(tenant).bind(limit).bind(offset).fetch_all(&mut *conn).await?)
        })
    }

    /// How many groups the tenant has.
    pub async fn count(&self) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let row = sqlx::query("SELECT COUNT(*) FROM access_groups WHERE tenant_id = $1").bind(tenant).fetch_one(&mut *conn).await?;
            Ok(row.try_get(0)?)
        })
    }

    /// Inserts a group with its event; its id. `Conflict` when the name is taken, `NotFound`
    /// when the parent is gone.
    pub async fn insert(&self, group: &Group, now_ms: i64, event: &AuditRecord) -> StoreResult<i64> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            // The parent must exist, and the chain above it be short enough to hold one more.
            let mut above = group.parent_id;
            let mut depth = 0;
            while let Some(id) = above {
                if depth >= MAX_DEPTH {
                    return Err(StoreError::Invalid(TOO_DEEP));
                }
                let row = sqlx::query("SELECT parent_id FROM access_groups WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant).bind(id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
                above = row.try_get(0)?;
                depth += 1;
            }
            let row = sqlx::query(
                "INSERT INTO access_groups (tenant_id, name, descr, gtype, parent_id, attributes, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
            )
            .bind(tenant)
            .bind(&group.name)
            .bind(&group.descr)
            .bind(&group.gtype)
            .bind(group.parent_id)
            .bind(&group.attributes)
            .bind(group.created_at)
            .fetch_one(&mut *tx)
            .await?;
            let id: i64 = row.try_get(0)?;
            sqlx::query(CHANGED).bind(Change::ACCESS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Stores a changed group with its event. `NotFound` when it is gone, `Conflict` when a
    /// rename hits a taken name; a parent that would put the group below itself is refused as
    /// `Invalid`.
    pub async fn update(&self, group: &Group, now_ms: i64, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            // Walk up from the new parent: reaching the group itself would make a cycle.
            let mut above = group.parent_id;
            let mut steps = 0;
            while let Some(id) = above {
                if id == group.id {
                    return Err(StoreError::Invalid("A group cannot be placed below itself"));
                }
                if steps >= MAX_DEPTH {
                    return Err(StoreError::Invalid(TOO_DEEP));
                }
                let row = sqlx::query("SELECT parent_id FROM access_groups WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant).bind(id).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
                above = row.try_get(0)?;
                steps += 1;
            }
            let done = sqlx::query(
                "UPDATE access_groups SET name = $3, descr = $4, gtype = $5, parent_id = $6, attributes = $7, \
                 updated_at = $8 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(tenant)
            .bind(group.id)
            .bind(&group.name)
            .bind(&group.descr)
            .bind(&group.gtype)
            .bind(group.parent_id)
            .bind(&group.attributes)
            .bind(group.updated_at)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(CHANGED).bind(Change::ACCESS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// Deletes a group. Without `cascade`, a group with children or members is refused (nothing
    /// is written and the event is not stored: the caller records the refusal); with it, the
    /// groups below it and every membership go too.
    pub async fn delete(&self, id: i64, cascade: bool, now_ms: i64, event: &AuditRecord) -> StoreResult<Deletion> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let rows = sqlx::query("SELECT id, parent_id FROM access_groups WHERE tenant_id = $1")
                .bind(tenant).fetch_all(&mut *tx).await?;
            let mut tree = Vec::with_capacity(rows.len());
            for row in &rows {
                tree.push((row.try_get::<i64, _>(0)?, row.try_get::<Option<i64>, _>(1)?));
            }
            if !tree.iter().any(|(group, _)| *group == id) {
                return Err(StoreError::NotFound);
            }
            let below = descendants(&tree, id);
            let members: i64 = sqlx::query("SELECT COUNT(*) FROM access_group_members WHERE tenant_id = $1 AND group_id = $2")
                .bind(tenant).bind(id).fetch_one(&mut *tx).await?.try_get(0)?;
            if !cascade && (!below.is_empty() || members > 0) {
                return Ok(Deletion::Refused { children: below.len() as i64, members });
            }
            let mut removed_members = 0;
            // Deepest first: a group goes only once nothing points at it.
            for group in below.iter().rev().chain(std::iter::once(&id)) {
                removed_members += sqlx::query("DELETE FROM access_group_members WHERE tenant_id = $1 AND group_id = $2")
                    .bind(tenant).bind(*group).execute(&mut *tx).await?.rows_affected() as i64;
                sqlx::query("DELETE FROM access_groups WHERE tenant_id = $1 AND id = $2")
                    .bind(tenant).bind(*group).execute(&mut *tx).await?;
            }
            sqlx::query(CHANGED).bind(Change::ACCESS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(Deletion::Deleted { groups: below.len() as i64, members: removed_members })
        })
    }

    /// Puts a user in a group (or changes the role it holds there) with the event.
    pub async fn add_member(
        &self,
        group_id: i64,
        rid: &[u8],
        role_id: Option<i64>,
        now_ms: i64,
        event: &AuditRecord,
    ) -> StoreResult<()> {
        self.add_members(&[(group_id, rid, role_id)], now_ms, std::slice::from_ref(event)).await
    }

    /// Puts users in groups (or changes the role each holds there) with one event each, in one
    /// transaction.
    pub async fn add_members(
        &self,
        joins: &[(i64, &[u8], Option<i64>)],
        now_ms: i64,
        events: &[AuditRecord],
    ) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        if joins.is_empty() {
            return Ok(());
        }
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            for (group_id, rid, role_id) in joins {
                sqlx::query(
                    "INSERT INTO access_group_members (tenant_id, group_id, rid, role_id, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant_id, group_id, rid) DO UPDATE SET role_id = excluded.role_id",
                )
                .bind(tenant)
                .bind(*group_id)
                .bind(*rid)
                .bind(*role_id)
                .bind(now_ms.div_euclid(1000))
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(CHANGED).bind(Change::ACCESS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, events);
            tx.commit().await?;
            Ok(())
        })
    }

    /// Takes a user out of a group with the event; `NotFound` when it was not a member.
    pub async fn remove_member(&self, group_id: i64, rid: &[u8], now_ms: i64, event: &AuditRecord) -> StoreResult<()> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut tx = pool.begin_for(tenant).await?;
            let done = sqlx::query("DELETE FROM access_group_members WHERE tenant_id = $1 AND group_id = $2 AND rid = $3")
                .bind(tenant).bind(group_id).bind(rid).execute(&mut *tx).await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            sqlx::query(CHANGED).bind(Change::ACCESS).bind(tenant).bind(now_ms).execute(&mut *tx).await?;
            insert_audit!(&mut *tx, std::slice::from_ref(event));
            tx.commit().await?;
            Ok(())
        })
    }

    /// The memberships of these users, with role names.
    pub async fn memberships(&self, rids: &[&[u8]]) -> StoreResult<Vec<Membership>> {
        let (db, tenant) = self.0.parts();
        if rids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT m.rid, m.group_id, g.name AS group_name, m.role_id, r.name AS role_name FROM access_group_members m \
             JOIN access_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
             LEFT JOIN access_roles r ON r.tenant_id = m.tenant_id AND r.id = m.role_id \
             WHERE m.tenant_id = $1 AND m.rid IN ({}) ORDER BY m.group_id",
            super::placeholders(2, rids.len())
        );
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let mut query = sqlx::query_as::<_, Membership>(&sql).bind(tenant);
            for rid in rids {
                query = query.bind(*rid);
            }
            Ok(query.fetch_all(&mut *conn).await?)
        })
    }

    /// The members of a group, oldest membership first, at most `limit` from `offset`, and how
    /// many there are.
    pub async fn members(&self, group_id: i64, offset: i64, limit: i64) -> StoreResult<(i64, Vec<Membership>)> {
        let (db, tenant) = self.0.parts();
        with_pool!(db, pool => {
            let mut conn = pool.conn_for(tenant).await?;
            let total: i64 = sqlx::query("SELECT COUNT(*) FROM access_group_members WHERE tenant_id = $1 AND group_id = $2")
                .bind(tenant).bind(group_id).fetch_one(&mut *conn).await?.try_get(0)?;
            let rows = sqlx::query_as::<_, Membership>(
                "SELECT m.rid, m.group_id, g.name AS group_name, m.role_id, r.name AS role_name FROM access_group_members m \
                 JOIN access_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id \
                 LEFT JOIN access_roles r ON r.tenant_id = m.tenant_id AND r.id = m.role_id \
                 WHERE m.tenant_id = $1 AND m.group_id = $2 ORDER BY m.created_at, m.rid LIMIT $3 OFFSET $4",
            )
            .bind(tenant)
            .bind(group_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(&mut *conn)
            .await?;
            Ok((total, rows))
        })
    }
}

/// Deepest a group may sit below the top.
pub const MAX_DEPTH: usize = 32;
const TOO_DEEP: &str = "Groups nest at most 32 deep";

/// The groups below `id` in `tree` (pairs of id and parent), parents before their children.
fn descendants(tree: &[(i64, Option<i64>)], id: i64) -> Vec<i64> {
    let mut found = Vec::new();
    let mut frontier = vec![id];
    while let Some(parent) = frontier.pop() {
        for (child, _) in tree.iter().filter(|(_, p)| *p == Some(parent)) {
            if *child != id && !found.contains(child) {
                found.push(*child);
                frontier.push(*child);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::descendants;

    #[test]
    fn descendants_come_parents_first_and_stop_at_a_cycle() {
        let tree = [(1, None), (2, Some(1)), (3, Some(2)), (4, Some(1)), (5, None)];
        let below = descendants(&tree, 1);
        assert_eq!(below.len(), 3);
        assert!(below.iter().position(|g| *g == 2) < below.iter().position(|g| *g == 3));
        assert!(descendants(&tree, 5).is_empty());
        assert_eq!(descendants(&[(1, Some(2)), (2, Some(1))], 1), vec![2]);
    }
}
