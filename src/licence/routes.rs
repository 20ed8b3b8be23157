//! `SystemSetLicenseKey`: install a licence, verified first.

use axum::extract::State;
use serde::Deserialize;
use serde_json::Value;

use super::INVALID;
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;
use crate::store::licence::Install;

/// `SystemSetLicenseKey` request. Deliberately not `Debug`: the licence is never logged.
#[derive(Deserialize)]
pub(super) struct SetRequest {
    licensekey: Option<Value>,
}

#[derive(serde::Serialize)]
pub(super) struct SetReply {
    result: &'static str,
}

/// Replaces the licence in force with a valid one: malformed, signed by another key (or no key
/// configured) or already expired is 400 "License key is invalid", and the licence in force
/// stays. Accepted, it is stored with its audit event and honoured by every replica within
/// the change feed's poll.
pub(super) async fn set_license_key(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<SetRequest>,
) -> ApiResult<Reply<SetReply>> {
    ctx.require(Rule::MainTenantAdmin)?;
    let text = match req.licensekey {
        None | Some(Value::Null) => return Err(ApiError::bad_request("Missing API request parameters: licensekey")),
        Some(Value::String(text)) if text.trim().is_empty() => {
            return Err(ApiError::bad_request("Missing API request parameters: licensekey"));
        }
        Some(Value::String(text)) => text,
        Some(_) => return Err(ApiError::bad_request(INVALID)),
    };
    let terms = super::verify(&app, &text)?;
    let event = ctx.change_event(None, None, None, Some(&super::audit_details(&terms, "request")));
    crate::store::licence::install(&app.db, text.trim(), &terms, Install::Replace, ctx.now_ms, &event).await?;
    ctx.mark_committed();
    tracing::info!(customer = %terms.customer, max_records = terms.max_records, expires = terms.expires,
        "a licence is installed");
    app.licence.set(terms);
    Ok(Reply(SetReply { result: "done" }))
}
