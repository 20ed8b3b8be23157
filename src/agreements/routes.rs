//! HTTP handlers of the agreement operations.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::service::{self, ACTIVE, Acceptance};
use crate::expiry::{self, Expiry, TimeSpec};
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, ok, op};
use crate::legal::name;
use crate::state::AppState;
use crate::users::identity::IdentityFields;
use crate::users::{Identity, service as users};

/// The agreement operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("AgreementAccept", accept),
        op("AgreementGet", get),
        op("AgreementListUserAgreements", list_user_agreements),
        op("AgreementCancel", cancel),
        op("AgreementRevokeAll", revoke_all),
    ]
}

/// Reads the optional `status`: `pending`, `active` (the default) or `expired`, in any case.
fn status(value: Option<Text>) -> ApiResult<String> {
    match text(value).map(|s| s.trim().to_ascii_lowercase()) {
        None => Ok(ACTIVE.to_owned()),
        Some(s) if s.is_empty() => Ok(ACTIVE.to_owned()),
        Some(s) if ["pending", "active", "expired"].contains(&s.as_str()) => Ok(s),
        Some(_) => Err(ApiError::bad_request("The status parameter has an incorrect format")),
    }
}

/// Reads the optional `starttime`: relative to now or absolute (a past start is allowed).
fn starttime(value: Option<&Value>, now: i64) -> ApiResult<Option<i64>> {
    let Some(value) = value else { return Ok(None) };
    let parsed = expiry::parse("starttime", value, now).map_err(|err| ApiError::bad_request(err.to_string()))?;
    Ok(parsed.map(|spec| match spec {
        TimeSpec::Relative(secs) => now.saturating_add(secs),
        TimeSpec::Absolute(at) => at,
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AcceptRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    brief: Option<Text>,
    agreementmethod: Option<Text>,
    referencecode: Option<Text>,
    starttime: Option<Value>,
    finaltime: Option<Value>,
    status: Option<Text>,
    lastmodifiedby: Option<Text>,
}

async fn accept(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<AcceptRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let brief = name::required("brief", req.brief)?;
    let finaltime = Expiry::from_request(None, req.finaltime.as_ref(), ctx.now, app.settings.max_user_retention)
        .map_err(|err| ApiError::bad_request(err.to_string()))?
        .final_at;
    let asked = Acceptance {
        status: status(req.status)?,
        agreementmethod: text(req.agreementmethod),
        referencecode: text(req.referencecode),
        starttime: starttime(req.starttime.as_ref(), ctx.now)?,
        finaltime,
        lastmodifiedby: text(req.lastmodifiedby).filter(|s| !s.trim().is_empty()),
    };
    let texts = [&asked.agreementmethod, &asked.referencecode, &asked.lastmodifiedby];
    if texts.iter().map(|t| t.as_ref().map_or(0, String::len)).sum::<usize>() > app.settings.max_record_size {
        let max = app.settings.max_record_size;
        return Err(ApiError::bad_request(format!("The agreement is larger than the limit of {max} bytes")));
    }
    let user = users::load(&app, &ctx, &who).await?;
    service::accept(&app, &ctx, &user, &brief, asked).await?;
    Ok(ok())
}

#[derive(Debug, Deserialize)]
struct AgreementRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    brief: Option<Text>,
}

#[derive(Serialize)]
struct AgreementReply {
    agreement: Value,
}

async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<AgreementRequest>,
) -> ApiResult<Reply<AgreementReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let brief = name::required("brief", req.brief)?;
    let user = users::load(&app, &ctx, &who).await?;
    ctx.set_extra(serde_json::json!({ "brief": brief }));
    let agreement = service::get(&app, &ctx, &user, &brief).await?;
    Ok(Reply(AgreementReply { agreement }))
}

async fn cancel(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<AgreementRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let brief = name::required("brief", req.brief)?;
    let user = users::load(&app, &ctx, &who).await?;
    service::cancel(&app, &ctx, &user, &brief, None).await?;
    Ok(ok())
}

#[derive(Serialize)]
struct RowsReply {
    rows: Vec<Value>,
}

async fn list_user_agreements(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityFields>,
) -> ApiResult<Reply<RowsReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let user = users::load(&app, &ctx, &who).await?;
    let rows = service::list(&app, &ctx, &user).await?;
    Ok(Reply(RowsReply { rows }))
}

#[derive(Debug, Deserialize)]
struct BriefRequest {
    brief: Option<Text>,
}

#[derive(Serialize)]
struct RevokedReply {
    revoked: i64,
}

async fn revoke_all(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<BriefRequest>,
) -> ApiResult<Reply<RevokedReply>> {
    ctx.require(Rule::Granted)?;
    let brief = name::required("brief", req.brief)?;
    let revoked = service::revoke_all(&app, &ctx, &brief).await?;
    Ok(Reply(RevokedReply { revoked }))
}
