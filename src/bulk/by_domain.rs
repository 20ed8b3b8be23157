//! The bulk operations over other domains' records: `BulkListTokens`, `BulkDeleteTokens` and
//! `BulkListFilesByTag`. Each needs the bulk unlock and is audited as one event with counts.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::keyset::{self, Listing};
use super::unlock;
use crate::files::record::Tag;
use crate::http::lenient::{Int, Text};
use crate::http::{ApiError, ApiResult, Body, Operation, Page, Reply, RequestContext, Rule, op, page};
use crate::state::AppState;
use crate::store::bulk::id_key;
use crate::{files, tokens};

/// The bulk operations on tokens and files.
pub fn operations() -> Vec<Operation> {
    vec![
        op("BulkListTokens", list_tokens),
        op("BulkDeleteTokens", delete_tokens),
        op("BulkListFilesByTag", list_files_by_tag),
    ]
}

#[derive(Debug, Deserialize)]
struct TokensRequest {
    unlockuuid: Option<Text>,
    tokens: Option<Vec<Text>>,
}

/// A required, non-empty `tokens` list of tokenuuids or tokenbases (numbers read as digits).
fn references(tokens: Option<Vec<Text>>) -> ApiResult<Vec<String>> {
    match tokens {
        Some(tokens) if !tokens.is_empty() => Ok(tokens.into_iter().map(|Text(t)| t).collect()),
        _ => Err(ApiError::bad_request("Missing API request parameters: tokens")),
    }
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// `BulkListTokens`: the live tokens among `tokens` (by tokenuuid or tokenbase); `rows: []`
/// when none is.
async fn list_tokens(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<TokensRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    unlock::require(&app, &ctx, req.unlockuuid).await?;
    let references = references(req.tokens)?;
    let found = tokens::service::list(&app, &ctx, &references).await?;
    let rows = found.iter().map(serde_json::to_value).collect::<Result<Vec<Value>, _>>().map_err(ApiError::internal)?;
    ctx.set_extra(json!({ "requested": references.len(), "records": rows.len() }));
    Ok(Reply(Page { total: count(rows.len()), rows }))
}

#[derive(Serialize)]
struct DeletedReply {
    deleted: u64,
}

/// `BulkDeleteTokens`: deletes the tokens among `tokens`; answers how many there were.
async fn delete_tokens(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<TokensRequest>,
) -> ApiResult<Reply<DeletedReply>> {
    ctx.require(Rule::Granted)?;
    unlock::require(&app, &ctx, req.unlockuuid).await?;
    let references = references(req.tokens)?;
    let deleted = tokens::service::delete_list(&app, &ctx, &references).await?;
    Ok(Reply(DeletedReply { deleted }))
}

#[derive(Debug, Deserialize)]
struct FilesByTagRequest {
    unlockuuid: Option<Text>,
    tag: Option<Text>,
    offset: Option<Int>,
    limit: Option<Int>,
}

/// `BulkListFilesByTag`: the tenant's live files carrying `tag`, each with its owner's token.
async fn list_files_by_tag(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<FilesByTagRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    let grant = unlock::require(&app, &ctx, req.unlockuuid).await?;
    let tag = Tag::parse(req.tag)?.ok_or_else(|| ApiError::bad_request("Missing API request parameters: tag"))?;
    let (offset, limit) = page(req.offset, req.limit);
    let listing = Listing::FilesByTag(tag.index(&ctx.keys));
    let cursor = keyset::cursor(&app, grant, listing, offset).await?;
    let (found, last) = files::service::list_tenant_files_by_tag(&app, &ctx, &tag, &cursor, limit).await?;
    if let Some(last) = last {
        keyset::remember(&app, grant, listing, offset, found.rows.len(), &id_key(last)).await;
    }
    let rows =
        found.rows.iter().map(serde_json::to_value).collect::<Result<Vec<Value>, _>>().map_err(ApiError::internal)?;
    ctx.set_extra(json!({ "total": found.total, "records": rows.len() }));
    Ok(Reply(Page { total: found.total, rows }))
}
