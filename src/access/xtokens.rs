//! `XTokenCreateForRole` and `XTokenCreateForUser`: access tokens that act as a role, or as one
//! user on its own record (and through the roles it holds in its groups).
//!
//! A token lasts ten minutes unless `finaltime` or `slidingtime` says otherwise, never longer
//! than `BUNKER_MAX_XTOKEN_RETENTION` (one day by default). The secret is answered once; only its
//! digest is stored. A token dies with its role, its user or its tenant, on every replica within
//! the change feed's bound.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::refs;
use super::roles;
use crate::crypto::secrets::{random_uuid_string, token_digest};
use crate::expiry::Expiry;
use crate::http::lenient::{Int, Text};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, op};
use crate::state::AppState;
use crate::state::XTOKEN_DEFAULT_SECS;
use crate::store::roles::NewXToken;
use crate::users::{self, Identity};

/// The access token operations.
pub fn operations() -> Vec<Operation> {
    vec![op("XTokenCreateForRole", for_role), op("XTokenCreateForUser", for_user)]
}

/// An administrator account's session mints no token: a token would outlive the account's
/// disabling or deletion, which end its sessions.
fn refuse_account_sessions(ctx: &RequestContext) -> ApiResult<()> {
    if ctx.principal.account.is_some() { Err(ApiError::access_denied()) } else { Ok(()) }
}

/// When a token asked for now expires.
fn expiry(app: &AppState, ctx: &RequestContext, sliding: Option<&Value>, finaltime: Option<&Value>) -> ApiResult<i64> {
    let max = app.settings.max_xtoken_retention;
    let expiry =
        Expiry::from_request(sliding, finaltime, ctx.now, max).map_err(|err| ApiError::bad_request(err.to_string()))?;
    // A sliding window is the token's lifetime here: a token is not renewed by its use.
    let at = match (expiry.final_at, expiry.sliding) {
        (Some(at), Some(window)) => at.min(ctx.now + window),
        (Some(at), None) => at,
        (None, Some(window)) => ctx.now + window,
        (None, None) => ctx.now + XTOKEN_DEFAULT_SECS.min(max),
    };
    Ok(at)
}

#[derive(Debug, Deserialize)]
struct RoleRequest {
    roleid: Option<Int>,
    rolename: Option<Text>,
    finaltime: Option<Value>,
    slidingtime: Option<Value>,
}

#[derive(Serialize)]
struct RoleReply {
    xtoken: String,
    roleid: i64,
    expiration: i64,
}

async fn for_role(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<RoleRequest>,
) -> ApiResult<Reply<RoleReply>> {
    ctx.require(Rule::TenantAdmin)?;
    refuse_account_sessions(&ctx)?;
    let role = roles::find(&app, &ctx, &refs::required(req.roleid, req.rolename, "roleid or rolename")?).await?;
    let expires_at = expiry(&app, &ctx, req.slidingtime.as_ref(), req.finaltime.as_ref())?;
    let xtoken = random_uuid_string();
    let id = random_uuid_string();
    let digest = token_digest(&xtoken);
    let token = NewXToken {
        id: &id,
        digest: &digest,
        kind: "role",
        role_id: Some(role.id),
        user_rid: None,
        created_at: ctx.now,
        expires_at,
    };
    let event =
        ctx.change_event(None, None, Some(&json!({"tokenid": id, "roleid": role.id, "expiration": expires_at})), None);
    ctx.committed(app.db.tenant(ctx.tenant).roles().insert_token(&token, &event).await, roles::not_found, || {
        ApiError::conflict("The access token could not be created")
    })?;
    Ok(Reply(RoleReply { xtoken, roleid: role.id, expiration: expires_at }))
}

#[derive(Debug, Deserialize)]
struct UserRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    finaltime: Option<Value>,
    slidingtime: Option<Value>,
}

#[derive(Serialize)]
struct UserReply {
    xtoken: String,
    token: String,
    expiration: i64,
}

async fn for_user(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UserRequest>,
) -> ApiResult<Reply<UserReply>> {
    ctx.require(Rule::TenantAdmin)?;
    refuse_account_sessions(&ctx)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let expires_at = expiry(&app, &ctx, req.slidingtime.as_ref(), req.finaltime.as_ref())?;
    let user = users::service::load(&app, &ctx, &who).await?;
    let xtoken = random_uuid_string();
    let id = random_uuid_string();
    let digest = token_digest(&xtoken);
    let token = NewXToken {
        id: &id,
        digest: &digest,
        kind: "user",
        role_id: None,
        user_rid: Some(&user.row.rid),
        created_at: ctx.now,
        expires_at,
    };
    let event =
        ctx.change_event(Some(&user.subject), None, Some(&json!({"tokenid": id, "expiration": expires_at})), None);
    ctx.committed(
        app.db.tenant(ctx.tenant).roles().insert_token(&token, &event).await,
        ApiError::user_not_found,
        || ApiError::conflict("The access token could not be created"),
    )?;
    Ok(Reply(UserReply { xtoken, token: user.subject.token.clone(), expiration: expires_at }))
}
