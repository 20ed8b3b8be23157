//! HTTP handler of `UserSearch`.

use axum::extract::State;
use serde::Deserialize;
use serde_json::json;

use super::query::Target;
use super::service;
use crate::bulk::{unlock, view};
use crate::crypto::IndexKind;
use crate::http::lenient::{Text, text};
use crate::http::paging::Page;
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, op};
use crate::state::AppState;

/// The search operation.
pub fn operations() -> Vec<Operation> {
    vec![op("UserSearch", search)]
}

#[derive(Debug, Deserialize)]
pub(crate) struct SearchRequest {
    unlockuuid: Option<Text>,
    identity: Option<Text>,
    mode: Option<Text>,
}

async fn search(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<SearchRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    unlock::require(&app, &ctx, req.unlockuuid).await?;
    let identity = text(req.identity)
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: identity"))?;
    let target = match text(req.mode).map(|m| m.trim().to_owned()).filter(|m| !m.is_empty()) {
        Some(mode) => Target::Kind(
            IndexKind::from_mode(&mode)
                .ok_or_else(|| ApiError::bad_request("The mode parameter has an incorrect format"))?,
        ),
        None => Target::detect(&identity),
    };
    let (matched, users) = service::search(&app, &ctx, target, &identity).await?;
    let rows: Vec<_> = users.iter().map(view::user).collect();
    // The kind searched and counts only: the value searched for is personal data.
    ctx.set_extra(json!({ "mode": target.name(), "matched": matched, "records": rows.len() }));
    crate::bulk::disclosed::record(&app, &ctx, &users).await?;
    Ok(Reply(Page { total: i64::try_from(matched).unwrap_or(i64::MAX), rows }))
}
