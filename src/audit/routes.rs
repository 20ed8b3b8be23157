//! `AuditListUserEvents` and `AuditGetEvent`.

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::event;
use crate::crypto::secrets::is_uuid_shaped;
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Page, Reply, RequestContext, Rule, op};
use crate::state::AppState;
use crate::store::Db;
use crate::store::users::SubjectKey;
use crate::users::identity::IdentityPage;
use crate::users::service;

/// The audit operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("AuditListUserEvents", list_user_events),
        op("AuditGetEvent", get_event),
        op("AuditVerify", super::verify::verify),
    ]
}

async fn list_user_events(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityPage>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    let (who, offset, limit) = req.parse()?;
    let user = service::load(&app, &ctx, &who).await?;
    let (total, rows) = app.db.tenant(ctx.tenant).audit().list_for_user(&user.subject.user_ref, offset, limit).await?;
    Ok(Reply(Page { total, rows: rows.iter().map(event::summary).collect() }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct GetRequest {
    auditeventuuid: Option<Text>,
}

async fn get_event(
    State(db): State<Db>,
    ctx: RequestContext,
    Body(req): Body<GetRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let uuid = text(req.auditeventuuid)
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: auditeventuuid"))?;
    if !is_uuid_shaped(&uuid) {
        return Err(ApiError::bad_request("Bad UUID"));
    }
    let row = db
        .tenant(ctx.tenant)
        .audit()
        .get(&uuid.to_ascii_lowercase())
        .await?
        .ok_or_else(|| ApiError::not_found("The audit event was not found"))?;
    let mut erased = row.key_scope == "user";
    let subject_key = match &row.subject_rid {
        Some(rid) => match db.tenant(ctx.tenant).users().wrapped_key(rid).await? {
            SubjectKey::Wrapped(wrapped) => Some(ctx.keys.unwrap_data_key(rid, &wrapped)?),
            SubjectKey::Held => {
                erased = false;
                None
            }
            SubjectKey::Erased => None,
        },
        None => None,
    };
    let details = event::open(&row, ctx.tenant, &ctx.keys, subject_key.as_ref())?;
    let Value::Object(mut out) = event::summary(&row) else {
        return Err(ApiError::Internal("event summary is not an object".into()));
    };
    out.insert("principalkind".into(), Value::String(row.principal_kind.clone()));
    out.insert("principalid".into(), Value::String(row.principal_id.clone()));
    // An erased user's details were sealed under a key that no longer exists.
    // A held user's (see `crate::system::profiles`) are closed until it is restored.
    out.insert("erased".into(), Value::Bool(erased && details.is_none()));
    out.insert("details".into(), details.unwrap_or(Value::Null));
    Ok(Reply(out))
}
