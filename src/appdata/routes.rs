//! HTTP handlers of the app data operations.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::record::AppName;
use super::service;
use crate::http::lenient::{Int, Text, int};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, ok, op};
use crate::state::AppState;
use crate::users::identity::IdentityFields;
use crate::users::{Identity, service as users};

/// The app data operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("AppdataCreate", create),
        op("AppdataGet", get),
        op("AppdataUpdate", update),
        op("AppdataDelete", delete),
        op("AppdataListUserAppNames", list_user_app_names),
        op("AppdataListAppNames", list_app_names),
        op("AppdataListVersions", list_versions),
    ]
}

/// A required JSON-object `appdata`.
pub fn required_appdata(appdata: Option<Value>) -> ApiResult<Value> {
    match appdata {
        Some(data @ Value::Object(_)) => Ok(data),
        Some(_) => Err(ApiError::bad_request("The appdata parameter has an incorrect format")),
        None => Err(ApiError::bad_request("Missing API request parameters: appdata")),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    appname: Option<Text>,
    appdata: Option<Value>,
    slidingtime: Option<Value>,
    finaltime: Option<Value>,
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let name = AppName::parse(req.appname)?;
    let data = required_appdata(req.appdata)?;
    let lifetime = users::lifetime(&app, ctx.now, req.slidingtime.as_ref(), req.finaltime.as_ref())?;
    let user = users::load(&app, &ctx, &who).await?;
    service::create(&app, &ctx, &user, &name, &data, lifetime).await?;
    Ok(ok())
}

#[derive(Debug, Deserialize)]
struct GetRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    appname: Option<Text>,
    version: Option<Int>,
}

#[derive(Serialize)]
struct AppdataReply {
    appname: String,
    appdata: Value,
    version: i64,
    finaltime: i64,
    slidingtime: i64,
    expirationtime: i64,
}

async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<GetRequest>,
) -> ApiResult<Reply<AppdataReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let name = AppName::parse(req.appname)?;
    let user = users::load(&app, &ctx, &who).await?;
    ctx.set_extra(service::app_extra(&name));
    let found = service::version_data(&app, &ctx, &user, &name, int(req.version)).await?;
    Ok(Reply(AppdataReply {
        appname: name.as_str().to_owned(),
        appdata: found.data,
        version: found.version,
        finaltime: found.lifetime.final_at.unwrap_or(0),
        slidingtime: found.lifetime.sliding_secs.unwrap_or(0),
        expirationtime: found.lifetime.expires_at.unwrap_or(0),
    }))
}

/// `AppdataUpdate` request: the lifetime is set by `AppdataCreate` and not changed here.
#[derive(Debug, Deserialize)]
struct UpdateRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    appname: Option<Text>,
    appdata: Option<Value>,
}

async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let name = AppName::parse(req.appname)?;
    let changes = required_appdata(req.appdata)?;
    let user = users::load(&app, &ctx, &who).await?;
    service::change(&app, &ctx, &user, &name, None, |current| Ok(users::merged(current, &changes))).await?;
    Ok(ok())
}

#[derive(Debug, Deserialize)]
struct AppRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    appname: Option<Text>,
}

async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<AppRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let name = AppName::parse(req.appname)?;
    let user = users::load(&app, &ctx, &who).await?;
    service::delete(&app, &ctx, &user, &name).await?;
    Ok(ok())
}

#[derive(Serialize)]
struct AppsReply {
    apps: Vec<String>,
}

async fn list_user_app_names(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityFields>,
) -> ApiResult<Reply<AppsReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let user = users::load(&app, &ctx, &who).await?;
    let apps = service::user_app_names(&app, &ctx, &user).await?;
    Ok(Reply(AppsReply { apps }))
}

/// `AppdataListAppNames` takes no parameters (clients send no body).
#[derive(Debug, Deserialize)]
struct NoParameters {}

async fn list_app_names(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(NoParameters {}): Body<NoParameters>,
) -> ApiResult<Reply<AppsReply>> {
    ctx.require(Rule::Granted)?;
    let apps = service::app_names(&app, &ctx).await?;
    Ok(Reply(AppsReply { apps }))
}

#[derive(Serialize)]
struct VersionsReply {
    appname: String,
    versions: Vec<Value>,
}

async fn list_versions(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<AppRequest>,
) -> ApiResult<Reply<VersionsReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let name = AppName::parse(req.appname)?;
    let user = users::load(&app, &ctx, &who).await?;
    ctx.set_extra(service::app_extra(&name));
    let versions = service::versions(&app, &ctx, &user, &name).await?;
    Ok(Reply(VersionsReply { appname: name.as_str().to_owned(), versions }))
}
