//! `PolicyCreate`, `PolicyUpdate`, `PolicyGet`, `PolicyListAllPolicies`, `PolicyDelete`.
//!
//! A policy is checked when it is written (unknown actions, operators, variables or resources
//! are a 400 naming the problem) and stored as given. Updates answer how many roles use it; a
//! policy still linked to a role is not deleted unless `force` says to unlink it too.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::grants;
use super::groups::listing;
use super::refs::{self, MAX_DESCRIPTION};
use crate::http::lenient::{Int, Text, opt_bool};
use crate::http::{ApiError, ApiResult, Body, Operation, Page, Reply, RequestContext, Rule, op};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::roles::{Policy, Ref};

/// The policy operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("PolicyCreate", create),
        op("PolicyUpdate", update),
        op("PolicyGet", get),
        op("PolicyListAllPolicies", list_all),
        op("PolicyDelete", delete),
    ]
}

/// Largest policy document, as JSON text.
pub const MAX_DOCUMENT: usize = 64 * 1024;

/// 404 for a policy.
pub fn not_found() -> ApiError {
    ApiError::not_found("The policy record was not found")
}

fn duplicate() -> ApiError {
    ApiError::conflict("The policy record already exists")
}

/// The policy a request names; 404 when there is none.
pub async fn find(app: &AppState, ctx: &RequestContext, policy: &Ref) -> ApiResult<Policy> {
    app.db.tenant(ctx.tenant).roles().policy(policy).await?.ok_or_else(not_found)
}

fn view(policy: &Policy) -> Value {
    json!({
        "policyid": policy.id,
        "policyname": policy.name,
        "policydesc": policy.descr,
        "policy": serde_json::from_str::<Value>(&policy.document).unwrap_or(Value::Null),
        "creationtime": policy.created_at,
    })
}

/// A policy document checked: parsed against the routed operations, at most [`MAX_DOCUMENT`].
fn document(value: Option<Value>) -> ApiResult<String> {
    let value = value.ok_or_else(|| ApiError::bad_request("Missing API request parameters: policy"))?;
    // Clients that send the policy as a JSON string get it read as the object it holds.
    let value = match value {
        Value::String(text) => serde_json::from_str(&text)
            .map_err(|_| ApiError::bad_request("The policy parameter has an incorrect format"))?,
        other => other,
    };
    let text = value.to_string();
    if text.len() > MAX_DOCUMENT {
        return Err(ApiError::bad_request(format!("A policy is at most {MAX_DOCUMENT} bytes")));
    }
    grants::parse(&value)?;
    Ok(text)
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    policyname: Option<Text>,
    policydesc: Option<Text>,
    policy: Option<Value>,
}

#[derive(Serialize)]
struct CreateReply {
    policyid: i64,
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<CreateReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let name = refs::name("policyname", req.policyname)?;
    let descr = refs::description("policydesc", req.policydesc, MAX_DESCRIPTION)?.unwrap_or_default();
    let document = document(req.policy)?;
    let policy = Policy { id: 0, name, descr, document, created_at: ctx.now, updated_at: ctx.now };
    let event = ctx.change_event(None, None, Some(&view(&policy)), None);
    let stored = app.db.tenant(ctx.tenant).roles().insert_policy(&policy, &event).await;
    let policyid = ctx.committed(stored, not_found, duplicate)?;
    Ok(Reply(CreateReply { policyid }))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    policyid: Option<Int>,
    policyname: Option<Text>,
    policydesc: Option<Text>,
    policy: Option<Value>,
}

#[derive(Serialize)]
struct UsageReply {
    /// Roles the policy is linked to.
    roles: i64,
}

/// `PolicyUpdate`: by `policyid`, where `policyname` renames it; the clients send only
/// `policyname` for a policy they name, which then names the policy to change. Every role
/// linked to it is judged by the new text from the next call on, on every replica.
async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Reply<UsageReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let (target, rename) = match refs::optional(req.policyid, None) {
        Some(id) => (id, req.policyname),
        None => (refs::required(None, req.policyname, "policyid")?, None),
    };
    let current = find(&app, &ctx, &target).await?;
    let mut next = current.clone();
    if let Some(name) = rename {
        next.name = refs::name("policyname", Some(name))?;
    }
    if let Some(descr) = refs::description("policydesc", req.policydesc, MAX_DESCRIPTION)? {
        next.descr = descr;
    }
    if req.policy.is_some() {
        next.document = document(req.policy)?;
    }
    next.updated_at = ctx.now;
    let roles = app.db.tenant(ctx.tenant).roles();
    let linked = roles.policy_usage(current.id).await?;
    let event = ctx.change_event(None, Some(&view(&current)), Some(&view(&next)), None);
    ctx.committed(roles.update_policy(&next, ctx.now_ms, &event).await, not_found, duplicate)?;
    app.caches.forget_grants(ctx.tenant);
    Ok(Reply(UsageReply { roles: linked }))
}

#[derive(Debug, Deserialize)]
struct PolicyRequest {
    policyid: Option<Int>,
    policyname: Option<Text>,
}

async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<PolicyRequest>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    let policy = find(&app, &ctx, &refs::required(req.policyid, req.policyname, "policyid or policyname")?).await?;
    Ok(Reply(view(&policy)))
}

#[derive(Debug, Deserialize)]
struct ListRequest {
    offset: Option<Int>,
    limit: Option<Int>,
}

async fn list_all(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ListRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    let (offset, limit) = listing(req.offset, req.limit);
    let roles = app.db.tenant(ctx.tenant).roles();
    let rows: Vec<Value> = roles.policies(offset, limit).await?.iter().map(view).collect();
    Ok(Reply(Page { total: roles.count_policies().await?, rows }))
}

#[derive(Debug, Deserialize)]
struct DeleteRequest {
    policyid: Option<Int>,
    policyname: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    force: Option<bool>,
}

/// `PolicyDelete`: refused (409) while a role uses the policy, unless `force` (then its links
/// go too and answer how many there were).
async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<DeleteRequest>,
) -> ApiResult<Reply<UsageReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let policy = find(&app, &ctx, &refs::required(req.policyid, req.policyname, "policyid or policyname")?).await?;
    let force = req.force.unwrap_or(false);
    let event = ctx.change_event(None, Some(&view(&policy)), None, Some(&json!({"force": force})));
    let stored = app.db.tenant(ctx.tenant).roles().delete_policy(policy.id, force, ctx.now_ms, &event).await;
    let roles = match stored {
        Err(StoreError::Conflict) => {
            return Err(ApiError::conflict("The policy is linked to roles: unlink it first, or delete with force"));
        }
        other => ctx.committed(other, not_found, duplicate)?,
    };
    app.caches.forget_grants(ctx.tenant);
    Ok(Reply(UsageReply { roles }))
}
