//! HTTP handlers of the single-token operations.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::record::{Handle, TokenType, TokenValue};
use super::service::{self, Options};
use super::shape::CardShape;
use super::{base, bulk};
use crate::http::lenient::{Text, opt_bool};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, ok, op};
use crate::state::AppState;

/// The token operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("TokenCreate", create),
        op("TokenCreateBulk", bulk::create_bulk),
        op("TokenGet", get),
        op("TokenDelete", delete),
    ]
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateRequest {
    tokentype: Option<Text>,
    record: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    unique: Option<bool>,
    slidingtime: Option<Value>,
    finaltime: Option<Value>,
    /// `invalid` for a card tokenbase that fails the Luhn check (default: the vault's setting).
    luhn: Option<Text>,
    /// Digits a card tokenbase starts with (default: the vault's setting).
    prefix: Option<Text>,
}

#[derive(Serialize)]
struct CreateReply {
    tokenuuid: String,
    tokenbase: String,
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<CreateReply>> {
    ctx.require(Rule::Granted)?;
    let kind = TokenType::parse(req.tokentype)?;
    let value = TokenValue::parse(kind, req.record)?;
    let lifetime = service::lifetime(&app, ctx.now, req.slidingtime.as_ref(), req.finaltime.as_ref())?;
    let shape = CardShape::for_request(&app.settings.card_tokens, req.luhn, req.prefix)?;
    let options = Options { unique: req.unique.unwrap_or(false), lifetime };
    let mut generator = base::with_shape(shape);
    let placed = service::create_many(&app, &ctx, std::slice::from_ref(&value), options, &mut generator).await?;
    let placement = placed
        .into_iter()
        .next()
        .flatten()
        .ok_or_else(|| ApiError::Internal("no free tokenbase could be drawn".into()))?;
    Ok(Reply(CreateReply { tokenuuid: placement.token.tokenuuid, tokenbase: placement.token.tokenbase }))
}

#[derive(Debug, Deserialize)]
struct TokenRequest {
    token: Option<Text>,
}

#[derive(Serialize)]
struct GetReply {
    tokenuuid: String,
    tokenbase: String,
    tokentype: TokenType,
    record: String,
    /// Fixed end (unix seconds), 0 when none.
    finaltime: i64,
    /// Sliding period in seconds, 0 when none.
    slidingtime: i64,
    /// When the token expires unless read again (unix seconds), 0 when never.
    expirationtime: i64,
}

async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<TokenRequest>,
) -> ApiResult<Reply<GetReply>> {
    ctx.require(Rule::Granted)?;
    let handle = Handle::parse(&ctx.keys, req.token)?;
    let (token, lifetime) = service::get(&app, &ctx, &handle).await?;
    Ok(Reply(GetReply {
        tokenuuid: token.tokenuuid,
        tokenbase: token.tokenbase,
        tokentype: token.tokentype,
        record: token.record,
        finaltime: lifetime.final_at.unwrap_or(0),
        slidingtime: lifetime.sliding_secs.unwrap_or(0),
        expirationtime: lifetime.expires_at.unwrap_or(0),
    }))
}

async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<TokenRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let handle = Handle::parse(&ctx.keys, req.token)?;
    service::delete(&app, &ctx, &handle).await?;
    Ok(ok())
}
