//! HTTP handlers of the approval request operations.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::record::Ask;
use super::service;
use crate::appdata::AppName;
use crate::appdata::routes::required_appdata;
use crate::crypto::secrets::is_uuid_shaped;
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Page, Reply, RequestContext, Rule, ok, op};
use crate::legal::name;
use crate::state::AppState;
use crate::users::identity::{IdentityFields, IdentityPage};
use crate::users::routes::required_profile;
use crate::users::{self, Identity};
use crate::{agreements, appdata};

/// The approval request operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("UserUpdateRequest", update_request),
        op("UserPatchRequest", patch_request),
        op("UserDeleteRequest", delete_request),
        op("AppdataUpdateRequest", appdata_update_request),
        op("AgreementCancelRequest", agreement_cancel_request),
        op("UserRequestGet", get),
        op("UserRequestListUserRequests", list_user_requests),
        op("UserRequestApprove", approve),
        op("UserRequestCancel", cancel),
    ]
}

#[derive(Serialize)]
struct CreatedReply {
    requestuuid: String,
}

/// Files `ask` for the user `who` names.
async fn submit(app: &AppState, ctx: &RequestContext, who: &Identity, ask: Ask) -> ApiResult<Reply<CreatedReply>> {
    let user = users::service::load(app, ctx, who).await?;
    let requestuuid = service::submit(app, ctx, &user, &ask).await?;
    Ok(Reply(CreatedReply { requestuuid }))
}

#[derive(Debug, Deserialize)]
struct ProfileRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    profile: Option<Value>,
}

async fn update_request(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ProfileRequest>,
) -> ApiResult<Reply<CreatedReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let profile = required_profile(req.profile)?;
    submit(&app, &ctx, &who, Ask::ChangeProfile(profile)).await
}

#[derive(Debug, Deserialize)]
struct PatchRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    patch: Option<Value>,
}

async fn patch_request(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<PatchRequest>,
) -> ApiResult<Reply<CreatedReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    // Checked now so a malformed patch is refused at once, not at approval.
    users::service::required_patch(req.patch.as_ref(), app.settings.max_patch_operations)?;
    let patch = req.patch.unwrap_or_default();
    submit(&app, &ctx, &who, Ask::PatchProfile(patch)).await
}

async fn delete_request(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityFields>,
) -> ApiResult<Reply<CreatedReply>> {
    ctx.require(Rule::Granted)?;
    let who = req.parse()?;
    submit(&app, &ctx, &who, Ask::ForgetMe).await
}

#[derive(Debug, Deserialize)]
struct AppdataRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    appname: Option<Text>,
    appdata: Option<Value>,
}

async fn appdata_update_request(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<AppdataRequest>,
) -> ApiResult<Reply<CreatedReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let name = AppName::parse(req.appname)?;
    let changes = required_appdata(req.appdata)?;
    let user = users::service::load(&app, &ctx, &who).await?;
    // Only a record that exists can be updated: refuse now rather than at approval.
    appdata::service::current(&app, &ctx, &user, &name).await?;
    let requestuuid = service::submit(&app, &ctx, &user, &Ask::ChangeAppData(name, changes)).await?;
    Ok(Reply(CreatedReply { requestuuid }))
}

#[derive(Debug, Deserialize)]
struct AgreementRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    brief: Option<Text>,
}

async fn agreement_cancel_request(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<AgreementRequest>,
) -> ApiResult<Reply<CreatedReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let brief = name::required("brief", req.brief)?;
    let user = users::service::load(&app, &ctx, &who).await?;
    // Only an agreement the user has can be withdrawn: refuse now rather than at approval.
    agreements::service::get(&app, &ctx, &user, &brief).await?;
    let requestuuid = service::submit(&app, &ctx, &user, &Ask::AgreementWithdraw(brief)).await?;
    Ok(Reply(CreatedReply { requestuuid }))
}

/// A required `requestuuid`.
fn request_uuid(value: Option<Text>) -> ApiResult<String> {
    let uuid = text(value).ok_or_else(|| ApiError::bad_request("Missing API request parameters: requestuuid"))?;
    let uuid = uuid.trim().to_ascii_lowercase();
    if !is_uuid_shaped(&uuid) {
        return Err(ApiError::bad_request("Bad UUID"));
    }
    Ok(uuid)
}

#[derive(Debug, Deserialize)]
struct GetRequest {
    requestuuid: Option<Text>,
}

#[derive(Serialize)]
struct GetReply {
    request: Value,
}

async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<GetRequest>,
) -> ApiResult<Reply<GetReply>> {
    ctx.require(Rule::Granted)?;
    let uuid = request_uuid(req.requestuuid)?;
    let loaded = service::load(&app, &ctx, &uuid).await?;
    Ok(Reply(GetReply { request: service::view(&ctx, &loaded.row, &loaded.user)? }))
}

async fn list_user_requests(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityPage>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    let (who, offset, limit) = req.parse()?;
    let user = users::service::load(&app, &ctx, &who).await?;
    let (rows, total) = service::list(&app, &ctx, &user, offset, limit).await?;
    Ok(Reply(Page { total, rows }))
}

#[derive(Debug, Deserialize)]
struct ResolveRequest {
    requestuuid: Option<Text>,
    reason: Option<Text>,
}

async fn approve(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ResolveRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let uuid = request_uuid(req.requestuuid)?;
    service::approve(&app, &ctx, &uuid, text(req.reason).as_deref()).await?;
    Ok(ok())
}

async fn cancel(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ResolveRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let uuid = request_uuid(req.requestuuid)?;
    service::cancel(&app, &ctx, &uuid, text(req.reason).as_deref()).await?;
    Ok(ok())
}
