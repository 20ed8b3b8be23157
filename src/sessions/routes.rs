//! HTTP handlers of the session operations.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::service::{self, SessionId};
use crate::http::lenient::Text;
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, ok, op};
use crate::state::AppState;
use crate::users::{Identity, service as users};

/// The session operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("SessionUpsert", upsert),
        op("SessionGet", get),
        op("SessionDelete", delete),
        op("SessionListUserSessions", list_user_sessions),
    ]
}

#[derive(Debug, Deserialize)]
pub(crate) struct UpsertRequest {
    sessionuuid: Option<Text>,
    sessiondata: Option<Value>,
    slidingtime: Option<Value>,
    finaltime: Option<Value>,
}

#[derive(Serialize)]
struct UpsertReply {
    /// When the session expires unless read again (unix seconds), after capping.
    expirationtime: i64,
}

async fn upsert(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UpsertRequest>,
) -> ApiResult<Reply<UpsertReply>> {
    ctx.require(Rule::Granted)?;
    let data = match (&req.sessionuuid, req.sessiondata) {
        (None, None) => return Err(ApiError::bad_request("Missing API request parameters: sessionuuid, sessiondata")),
        (_, None) => return Err(ApiError::bad_request("Missing API request parameters: sessiondata")),
        (_, Some(data @ Value::Object(_))) => data,
        (_, Some(_)) => return Err(ApiError::bad_request("The sessiondata parameter has an incorrect format")),
    };
    let id = SessionId::parse(&ctx, req.sessionuuid)?;
    service::judge(&app, &ctx, &id).await?;
    let lifetime = service::lifetime(&app, ctx.now, req.slidingtime.as_ref(), req.finaltime.as_ref())?;
    let expirationtime = service::upsert(&app, &ctx, &id, data, lifetime).await?;
    Ok(Reply(UpsertReply { expirationtime }))
}

#[derive(Debug, Deserialize)]
struct SessionRequest {
    sessionuuid: Option<Text>,
}

#[derive(Serialize)]
struct GetReply {
    sessiondata: Value,
    /// The bound user's token; absent for a session that names no user.
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<SessionRequest>,
) -> ApiResult<Reply<GetReply>> {
    ctx.require(Rule::Granted)?;
    let id = SessionId::parse(&ctx, req.sessionuuid)?;
    service::judge(&app, &ctx, &id).await?;
    let session = service::load(&app, &ctx, &id).await?;
    service::touch(&app, &ctx, &id, &session).await?;
    let token = session.user.map(|user| user.token);
    Ok(Reply(GetReply { sessiondata: session.data, token }))
}

async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<SessionRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let id = SessionId::parse(&ctx, req.sessionuuid)?;
    service::judge(&app, &ctx, &id).await?;
    service::delete(&app, &ctx, &id).await?;
    Ok(ok())
}

#[derive(Debug, Deserialize)]
struct ListRequest {
    mode: Option<Text>,
    identity: Option<Text>,
}

#[derive(Serialize)]
struct ListReply {
    rows: Vec<Value>,
}

async fn list_user_sessions(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ListRequest>,
) -> ApiResult<Reply<ListReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let user = users::load(&app, &ctx, &who).await?;
    let sessions = service::list_for_user(&app, &ctx, &user).await?;
    ctx.set_extra(json!({"sessions": sessions.len()}));
    let rows = sessions
        .into_iter()
        .map(|(sessionuuid, sessiondata)| json!({"sessionuuid": sessionuuid, "sessiondata": sessiondata}))
        .collect();
    Ok(Reply(ListReply { rows }))
}
