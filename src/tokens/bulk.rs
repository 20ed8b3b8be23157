//! `TokenCreateBulk`.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::base;
use super::record::{Token, TokenType, TokenValue};
use super::service::{self, Options};
use super::shape::CardShape;
use crate::http::body::{Small, elements, record_object, small};
use crate::http::lenient::{Text, opt_bool};
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub(crate) struct CreateBulkRequest {
    /// The records as their raw text, at most `max_bulk_records` of them.
    records: Option<Box<RawValue>>,
    #[serde(default, deserialize_with = "opt_bool")]
    unique: Option<bool>,
    slidingtime: Option<Small>,
    finaltime: Option<Small>,
    /// Shape of the batch's card tokenbases, as in `TokenCreate`.
    luhn: Option<Text>,
    prefix: Option<Text>,
}

/// One submitted record.
#[derive(Debug, Deserialize)]
struct RecordFields {
    tokentype: Option<Text>,
    record: Option<Text>,
}

#[derive(Serialize)]
pub(super) struct CreateBulkReply {
    /// A token for every accepted record, in input order: new, or (with `unique`) the existing one.
    created: Vec<Token>,
    /// Entries in `created`.
    num: usize,
    summary: Summary,
    /// `{index, reason}` for every refused record (its position in `records`; never its value).
    errors: Vec<Value>,
}

#[derive(Serialize)]
struct Summary {
    /// Tokens newly created.
    created: usize,
    /// Records answered with an existing token (`unique` only).
    duplicates: usize,
    /// Records refused.
    errors: usize,
    /// Records submitted: `created + duplicates + errors`.
    total: usize,
}

pub(super) async fn create_bulk(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateBulkRequest>,
) -> ApiResult<Reply<CreateBulkReply>> {
    ctx.require(Rule::Granted)?;
    let records = req
        .records
        .map(|records| elements(&records, app.settings.max_bulk_records, "records"))
        .transpose()?
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: records"))?;
    let lifetime = service::lifetime(&app, ctx.now, small(req.slidingtime.as_ref()), small(req.finaltime.as_ref()))?;
    let shape = CardShape::for_request(&app.settings.card_tokens, req.luhn, req.prefix)?;
    let options = Options { unique: req.unique.unwrap_or(false), lifetime };
    let total = records.len();
    let mut errors = Vec::new();
    let mut accepted = Vec::with_capacity(total);
    let mut values = Vec::with_capacity(total);
    for (index, record) in records.into_iter().enumerate() {
        match parse_one(&record) {
            Ok(value) => {
                accepted.push(index);
                values.push(value);
            }
            Err(err) => errors.push(json!({"index": index, "reason": err.to_string()})),
        }
    }
    // Read once before the write: records past the licence's room are refused.
    if let Some(room) = crate::licence::room(&app).await?.filter(|room| *room < accepted.len()) {
        for index in accepted.drain(room..) {
            errors.push(json!({"index": index, "reason": crate::licence::LIMIT_REACHED}));
        }
        values.truncate(room);
    }
    ctx.set_extra(json!({"records": total, "errors": errors.len()}));
    let placed = service::create_many(&app, &ctx, &values, options, &mut base::with_shape(shape)).await?;
    let mut created = Vec::with_capacity(placed.len());
    let mut duplicates = 0;
    for (index, placement) in accepted.into_iter().zip(placed) {
        match placement {
            Some(placement) => {
                duplicates += usize::from(placement.duplicate);
                created.push(placement.token);
            }
            None => errors.push(json!({"index": index, "reason": "No free tokenbase could be drawn"})),
        }
    }
    errors.sort_by_key(|e| e["index"].as_u64());
    let summary = Summary { created: created.len() - duplicates, duplicates, errors: errors.len(), total };
    Ok(Reply(CreateBulkReply { num: created.len(), created, summary, errors }))
}

/// Validates one submitted record.
fn parse_one(record: &RawValue) -> ApiResult<TokenValue> {
    let fields = record_object(record)
        .ok_or_else(|| ApiError::bad_request("The record must be an object with tokentype and record"))?;
    let fields: RecordFields = fields.decode()?;
    TokenValue::parse(TokenType::parse(fields.tokentype)?, fields.record)
}
