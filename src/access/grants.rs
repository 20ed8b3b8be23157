//! What a role or user token may do: the compiled policies of its roles, with the group facts
//! they need. Compiled once and cached per tenant; every Group, Role or Policy write, on any
//! replica, drops the tenant's entries (the `vault_changes` feed, `Change::ACCESS`).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use serde_json::{Map, Value};

use super::policy::{self, Compiled, Membership};
use crate::http::context::{Principal, PrincipalKind};
use crate::http::{ApiError, ApiResult};
use crate::state::AppState;
use crate::store::groups::{self as stored, Group};
use crate::store::roles::Ref;
use crate::tenants::TenantId;

/// The routed operations' names: what a policy's actions may name.
pub fn known_operations() -> &'static [&'static str] {
    static NAMES: LazyLock<Vec<&'static str>> =
        LazyLock::new(|| crate::app::operations().iter().map(|operation| operation.name).collect());
    &NAMES
}

/// Parses a policy document against the routed operations (400 naming the problem).
pub fn parse(document: &Value) -> ApiResult<policy::Document> {
    policy::parse(document, known_operations()).map_err(|err| ApiError::bad_request(err.to_string()))
}

/// Facts a role's policies read beyond the request: loaded only for roles that use them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// Group memberships (group-relative resources, group variables).
    pub memberships: bool,
    /// The target's agreements (`${agreement:…}`).
    pub agreements: bool,
}

/// One role, compiled.
pub struct RoleGrant {
    /// Role id.
    pub id: i64,
    /// Role name.
    pub name: String,
    /// Its policies as a matcher.
    pub compiled: Compiled,
    /// What its policies read.
    pub needs: Needs,
}

/// What a caller bound by policies may do.
pub enum Grants {
    /// A role token: its role's policies.
    Role(Arc<RoleGrant>),
    /// A user token: its own record, and the roles it holds in its groups.
    User(UserGrants),
}

/// A user token's grants.
pub struct UserGrants {
    /// The user's record id.
    pub rid: Vec<u8>,
    /// Each role the user holds, with the membership (group) it holds it in.
    pub holdings: Vec<(Membership, Arc<RoleGrant>)>,
    /// Every group the user is in (with the groups above them).
    pub memberships: Vec<Membership>,
}

impl Grants {
    /// What the compiled policies read, across the caller's roles.
    pub fn needs(&self) -> Needs {
        let mut needs = Needs::default();
        let mut add = |role: &RoleGrant| {
            needs.memberships |= role.needs.memberships;
            needs.agreements |= role.needs.agreements;
        };
        match self {
            Grants::Role(role) => add(role),
            Grants::User(user) => user.holdings.iter().for_each(|(_, role)| add(role)),
        }
        needs
    }
}

/// The key of a cached grant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GrantKey {
    /// A role.
    Role(i64),
    /// A user's holdings.
    User(Vec<u8>),
    /// The tenant's groups.
    Groups,
}

/// The grants of a caller bound by policies (a role or user token).
pub async fn of(app: &AppState, principal: &Principal) -> ApiResult<Arc<Grants>> {
    match (principal.kind, principal.role, &principal.user) {
        (PrincipalKind::Role, Some(role), _) => {
            let role = role_grant(app, principal.tenant, role).await?.ok_or_else(ApiError::access_denied)?;
            Ok(Arc::new(Grants::Role(role)))
        }
        (PrincipalKind::User, _, Some(rid)) => user_grants(app, principal.tenant, rid).await,
        _ => Err(ApiError::access_denied()),
    }
}

/// A role compiled, from the cache or the store; `None` when the role is gone.
pub async fn role_grant(app: &AppState, tenant: TenantId, role_id: i64) -> ApiResult<Option<Arc<RoleGrant>>> {
    if let Some(Grant::Role(role)) = app.caches.grant(tenant, &GrantKey::Role(role_id)) {
        return Ok(Some(role));
    }
    let roles = app.db.tenant(tenant).roles();
    let Some(role) = roles.role(&Ref::Id(role_id)).await? else {
        return Ok(None);
    };
    let mut needs = Needs::default();
    let mut documents = Vec::new();
    for policy in roles.linked_policies(role_id).await? {
        needs.memberships |= policy.document.contains("group");
        needs.agreements |= policy.document.contains("${agreement:");
        // Checked when written; one the routed operations no longer accept is left out (and
        // so grants nothing) rather than failing every call of the role.
        match serde_json::from_str::<Value>(&policy.document).ok().map(|value| parse(&value)) {
            Some(Ok(document)) => documents.push((policy.id, document)),
            _ => tracing::warn!(policy = policy.id, "a stored policy no longer parses: it grants nothing"),
        }
    }
    let compiled = Compiled::new(&role.name, documents);
    let grant = Arc::new(RoleGrant { id: role.id, name: role.name, compiled, needs });
    app.caches.insert_grant(tenant, GrantKey::Role(role_id), Grant::Role(grant.clone()));
    Ok(Some(grant))
}

/// A user's grants (the roles it holds in its groups), from the cache or the store.
pub async fn user_grants(app: &AppState, tenant: TenantId, rid: &[u8]) -> ApiResult<Arc<Grants>> {
    if let Some(Grant::User(grants)) = app.caches.grant(tenant, &GrantKey::User(rid.to_vec())) {
        return Ok(grants);
    }
    let rows = app.db.tenant(tenant).groups().memberships(&[rid]).await?;
    let tree = group_tree(app, tenant).await?;
    let memberships = tree.expand(&rows);
    let mut holdings = Vec::new();
    for row in &rows {
        let Some(role_id) = row.role_id else { continue };
        if let Some(role) = role_grant(app, tenant, role_id).await? {
            holdings.push((tree.membership(row.group_id, row.role_name.clone()), role));
        }
    }
    let grants = Arc::new(Grants::User(UserGrants { rid: rid.to_vec(), holdings, memberships }));
    app.caches.insert_grant(tenant, GrantKey::User(rid.to_vec()), Grant::User(grants.clone()));
    Ok(grants)
}

/// What the grant cache holds.
#[derive(Clone)]
pub enum Grant {
    /// A compiled role.
    Role(Arc<RoleGrant>),
    /// A user token's grants.
    User(Arc<Grants>),
    /// A tenant's groups.
    Groups(Arc<GroupTree>),
}

/// A tenant's groups: parents and attributes, to place a membership among the groups above it.
#[derive(Debug, Default)]
pub struct GroupTree {
    groups: HashMap<i64, Placed>,
}

/// A group's parent and attributes.
type Placed = (Option<i64>, Arc<Map<String, Value>>);

/// Most groups of a tenant the tree holds (a tenant with more is refused group facts past these:
/// the groups are read in id order).
const MAX_GROUPS: i64 = 100_000;

impl GroupTree {
    fn of(groups: Vec<Group>) -> GroupTree {
        let groups = groups
            .into_iter()
            .map(|group| {
                let attributes = match serde_json::from_str(&group.attributes) {
                    Ok(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                (group.id, (group.parent_id, Arc::new(attributes)))
            })
            .collect();
        GroupTree { groups }
    }

    /// One membership as the policies see it.
    pub fn membership(&self, group_id: i64, role: Option<String>) -> Membership {
        let attributes = self.groups.get(&group_id).map(|(_, attributes)| attributes.clone()).unwrap_or_default();
        Membership { group_id, role, attributes }
    }

    /// Memberships with, for each, the groups above it (the same role held there: a member of a
    /// child group is a member of its parent's subtree, as the delegation seed has it).
    pub fn expand(&self, rows: &[stored::Membership]) -> Vec<Membership> {
        let mut expanded = Vec::new();
        for row in rows {
            let mut group = Some(row.group_id);
            let mut depth = 0;
            while let Some(id) = group {
                if depth > stored::MAX_DEPTH
                    || expanded.iter().any(|m: &Membership| m.group_id == id && m.role == row.role_name)
                {
                    break;
                }
                expanded.push(self.membership(id, row.role_name.clone()));
                group = self.groups.get(&id).and_then(|(parent, _)| *parent);
                depth += 1;
            }
        }
        expanded
    }
}

/// A tenant's groups, from the cache or the store.
pub async fn group_tree(app: &AppState, tenant: TenantId) -> ApiResult<Arc<GroupTree>> {
    if let Some(Grant::Groups(tree)) = app.caches.grant(tenant, &GrantKey::Groups) {
        return Ok(tree);
    }
    let tree = Arc::new(GroupTree::of(app.db.tenant(tenant).groups().list(0, MAX_GROUPS).await?));
    app.caches.insert_grant(tenant, GrantKey::Groups, Grant::Groups(tree.clone()));
    Ok(tree)
}
