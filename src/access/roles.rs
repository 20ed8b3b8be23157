//! `RoleCreate`, `RoleUpdate`, `RoleDelete`, `RoleLinkPolicy`.
//!
//! Roles belong to a tenant, like its groups and policies: a tenant's administrator defines its
//! own (the vendor keeps them vault-wide, for the main tenant only; here no tenant's roles can
//! reach another's records, so each tenant may have its own). Updates and deletes answer how
//! many records use the role (the cbadmin seed's usage counts).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::policies;
use super::refs::{self, MAX_DESCRIPTION};
use crate::http::lenient::{Int, Text, opt_bool};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, ok, op};
use crate::state::AppState;
use crate::store::roles::{Ref, Role, RoleUsage};

/// The role operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("RoleCreate", create),
        op("RoleUpdate", update),
        op("RoleDelete", delete),
        op("RoleLinkPolicy", link_policy),
    ]
}

/// 404 for a role.
pub fn not_found() -> ApiError {
    ApiError::not_found("The role record was not found")
}

fn duplicate() -> ApiError {
    ApiError::conflict("The role record already exists")
}

fn view(role: &Role) -> Value {
    json!({"roleid": role.id, "rolename": role.name, "roledesc": role.descr, "creationtime": role.created_at})
}

/// The role a request names; 404 when there is none.
pub async fn find(app: &AppState, ctx: &RequestContext, role: &Ref) -> ApiResult<Role> {
    app.db.tenant(ctx.tenant).roles().role(role).await?.ok_or_else(not_found)
}

/// Usage counts as answered.
#[derive(Serialize)]
struct Usage {
    /// Policies linked to the role.
    policies: i64,
    /// Group memberships that hold it.
    members: i64,
    /// Live access tokens acting as it.
    tokens: i64,
}

impl From<RoleUsage> for Usage {
    fn from(usage: RoleUsage) -> Usage {
        Usage { policies: usage.policies, members: usage.members, tokens: usage.tokens }
    }
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    rolename: Option<Text>,
    roledesc: Option<Text>,
}

#[derive(Serialize)]
struct CreateReply {
    roleid: i64,
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<CreateReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let name = refs::name("rolename", req.rolename)?;
    let descr = refs::description("roledesc", req.roledesc, MAX_DESCRIPTION)?.unwrap_or_default();
    let role = Role { id: 0, name, descr, created_at: ctx.now, updated_at: ctx.now };
    let event = ctx.change_event(None, None, Some(&view(&role)), None);
    let stored = app.db.tenant(ctx.tenant).roles().insert_role(&role, &event).await;
    let roleid = ctx.committed(stored, not_found, duplicate)?;
    Ok(Reply(CreateReply { roleid }))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    roleid: Option<Int>,
    rolename: Option<Text>,
    roledesc: Option<Text>,
}

#[derive(Serialize)]
struct UpdateReply {
    usage: Usage,
}

/// `RoleUpdate`: by `roleid`, where `rolename` renames it; the clients send only `rolename` for
/// a role they name, which then names the role to change.
async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Reply<UpdateReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let (target, rename) = match refs::optional(req.roleid, None) {
        Some(id) => (id, req.rolename),
        None => (refs::required(None, req.rolename, "roleid")?, None),
    };
    let current = find(&app, &ctx, &target).await?;
    let mut next = current.clone();
    if let Some(name) = rename {
        next.name = refs::name("rolename", Some(name))?;
    }
    if let Some(descr) = refs::description("roledesc", req.roledesc, MAX_DESCRIPTION)? {
        next.descr = descr;
    }
    next.updated_at = ctx.now;
    let roles = app.db.tenant(ctx.tenant).roles();
    let usage = roles.role_usage(current.id, ctx.now).await?;
    let event = ctx.change_event(None, Some(&view(&current)), Some(&view(&next)), None);
    ctx.committed(roles.update_role(&next, ctx.now_ms, &event).await, not_found, duplicate)?;
    app.caches.forget_grants(ctx.tenant);
    Ok(Reply(UpdateReply { usage: usage.into() }))
}

#[derive(Debug, Deserialize)]
struct DeleteRequest {
    roleid: Option<Int>,
    rolename: Option<Text>,
}

/// `RoleDelete`: its policy links go, members keep their groups without it, and its access
/// tokens stop working at once on every replica. Answers what it took with it.
async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<DeleteRequest>,
) -> ApiResult<Reply<UpdateReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let role = find(&app, &ctx, &refs::required(req.roleid, req.rolename, "roleid or rolename")?).await?;
    let roles = app.db.tenant(ctx.tenant).roles();
    let usage = roles.role_usage(role.id, ctx.now).await?;
    let event = ctx.change_event(None, Some(&view(&role)), None, None);
    ctx.committed(roles.delete_role(role.id, ctx.now_ms, &event).await, not_found, duplicate)?;
    app.caches.forget_grants(ctx.tenant);
    app.caches.invalidate_tenant_principals(ctx.tenant);
    Ok(Reply(UpdateReply { usage: usage.into() }))
}

#[derive(Debug, Deserialize)]
struct LinkRequest {
    roleid: Option<Int>,
    rolename: Option<Text>,
    policyid: Option<Int>,
    policyname: Option<Text>,
    /// True takes the link away instead.
    #[serde(default, deserialize_with = "opt_bool")]
    unlink: Option<bool>,
}

/// `RoleLinkPolicy`: the role's tokens and members are judged by the policy from the next call
/// on, on every replica. Linking twice is no error; `unlink: true` takes the link away.
async fn link_policy(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<LinkRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::TenantAdmin)?;
    let role = find(&app, &ctx, &refs::required(req.roleid, req.rolename, "roleid or rolename")?).await?;
    let policy =
        policies::find(&app, &ctx, &refs::required(req.policyid, req.policyname, "policyid or policyname")?).await?;
    let linked = !req.unlink.unwrap_or(false);
    let change = json!({"roleid": role.id, "policyid": policy.id, "linked": linked});
    let event = ctx.change_event(None, None, Some(&change), None);
    let stored = app.db.tenant(ctx.tenant).roles().link(role.id, policy.id, linked, ctx.now_ms, &event).await;
    ctx.committed(stored, not_found, duplicate)?;
    app.caches.forget_grants(ctx.tenant);
    Ok(ok())
}
