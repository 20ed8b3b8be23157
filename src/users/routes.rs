//! HTTP handlers of the user operations.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bulk;
use super::identity::{Identity, IdentityFields};
use super::service;
use crate::http::lenient::{Int, Text, int};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, ok, op};
use crate::state::AppState;

/// The user operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("UserCreate", create),
        op("UserGet", get),
        op("UserUpdate", update),
        op("UserPatch", patch),
        op("UserDelete", delete),
        op("UserListVersions", list_versions),
        op("UserCreateBulk", bulk::create_bulk),
        op("UserDeleteBulk", bulk::delete_bulk),
    ]
}

/// `UserCreate` request.
#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    profile: Option<Value>,
    groupname: Option<Text>,
    groupid: Option<Int>,
    rolename: Option<Text>,
    roleid: Option<Int>,
    slidingtime: Option<Value>,
    finaltime: Option<Value>,
}

/// Optional group and role assignment of a new user (also one record of `UserCreateBulk`).
#[derive(Debug, Deserialize, Default)]
pub struct Assignment {
    groupname: Option<Text>,
    groupid: Option<Int>,
    rolename: Option<Text>,
    roleid: Option<Int>,
}

impl Assignment {
    /// Groups and roles do not exist yet, so any reference to one names a missing record.
    pub fn check(&self) -> ApiResult<()> {
        if self.groupname.is_some() || self.groupid.is_some() {
            return Err(ApiError::not_found("The group record was not found"));
        }
        if self.rolename.is_some() || self.roleid.is_some() {
            return Err(ApiError::not_found("The role record was not found"));
        }
        Ok(())
    }
}

/// A required JSON-object profile.
pub fn required_profile(profile: Option<Value>) -> ApiResult<Value> {
    match profile {
        Some(profile @ Value::Object(_)) => Ok(profile),
        Some(_) => Err(ApiError::bad_request("The profile parameter has an incorrect format")),
        None => Err(ApiError::bad_request("Missing API request parameters: profile")),
    }
}

#[derive(Serialize)]
struct TokenReply {
    token: String,
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<TokenReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let profile = required_profile(req.profile)?;
    service::check_profile(&profile, app.settings.max_record_size)?;
    Assignment { groupname: req.groupname, groupid: req.groupid, rolename: req.rolename, roleid: req.roleid }
        .check()?;
    let lifetime = service::lifetime(&app, ctx.now, req.slidingtime.as_ref(), req.finaltime.as_ref())?;
    let token = service::create(&app, &ctx, &profile, lifetime).await?;
    Ok(Reply(TokenReply { token }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct GetRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    version: Option<Int>,
}

#[derive(Serialize)]
struct UserReply {
    token: String,
    profile: Value,
    version: i64,
    finaltime: i64,
    slidingtime: i64,
    expirationtime: i64,
}

async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<GetRequest>,
) -> ApiResult<Reply<UserReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let user = service::load(&app, &ctx, &who).await?;
    let version = int(req.version).filter(|v| *v > 0).unwrap_or(user.row.version);
    let profile = service::version_profile(&app, &ctx, &user, version).await?;
    let lifetime = user.row.lifetime;
    Ok(Reply(UserReply {
        token: user.subject.token.clone(),
        profile,
        version,
        finaltime: lifetime.final_at.unwrap_or(0),
        slidingtime: lifetime.sliding_secs.unwrap_or(0),
        expirationtime: lifetime.expires_at.unwrap_or(0),
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UpdateRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    profile: Option<Value>,
}

async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::TenantAdmin)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let changes = required_profile(req.profile)?;
    service::change(&app, &ctx, &who, None, |current| Ok(service::merged(current, &changes))).await?;
    Ok(ok())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PatchRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    patch: Option<Value>,
}

async fn patch(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<PatchRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::TenantAdmin)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let operations = service::required_patch(req.patch.as_ref(), app.settings.max_patch_operations)?;
    let max = app.settings.max_record_size;
    service::change(&app, &ctx, &who, None, |current| service::patched(current, &operations, max)).await?;
    Ok(ok())
}

async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityFields>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::TenantAdmin)?;
    let who = Identity::parse(req.mode, req.identity)?;
    service::delete(&app, &ctx, &who, None).await?;
    Ok(ok())
}

#[derive(Serialize)]
struct VersionsReply {
    token: String,
    versions: Vec<Value>,
}

async fn list_versions(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityFields>,
) -> ApiResult<Reply<VersionsReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let user = service::load(&app, &ctx, &who).await?;
    let versions = service::versions(&app, &ctx, &user).await?;
    Ok(Reply(VersionsReply { token: user.subject.token.clone(), versions }))
}
