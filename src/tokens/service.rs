//! Token operations, independent of HTTP.
//!
//! A token is a row sealed under the tenant key, found by a blind index of its tokenuuid or of
//! its tokenbase; both are random (see [`super::base`]). Neither handle is stored in clear: they
//! circulate in other systems (order tables, logs), and a reader of the database should not be
//! able to tell which row one of them names. A token created with `unique` also carries a blind
//! index of its normalised value, so that tokenizing the value again finds it without
//! decrypting anything; other tokens do not, so the database cannot tell that two of them
//! stand for the same value.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::base::Generator;
use super::inserts::PendingToken;
use super::record::{Handle, Token, TokenValue};
use crate::crypto::secrets::random_uuid_string;
use crate::crypto::{IndexValue, TenantKeys};
use crate::expiry::{Expiry, Lifetime};
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::store::audit::AuditRecord;
use crate::store::tokens::{self as store, NewToken, Placed, TokenRow};

/// Draws of a tokenbase before giving up on one that differs from its value (a random draw
/// equals the value with a probability of at most 10^-11).
const DRAWS: usize = 4;

/// 404 for an unknown, deleted or expired token.
pub fn token_not_found() -> ApiError {
    ApiError::not_found("Token not found")
}

/// The lifetime of new tokens for optional `slidingtime` / `finaltime` request values, capped
/// at the maximum token retention; none requested means the token does not expire.
pub fn lifetime(app: &AppState, now: i64, sliding: Option<&Value>, finaltime: Option<&Value>) -> ApiResult<Lifetime> {
    let expiry = Expiry::from_request(sliding, finaltime, now, app.settings.max_token_retention)
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    Ok(expiry.lifetime(now))
}

/// Options of a create call, for every value in it.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Answer a value that already has a unique token with that token (its lifetime reset).
    pub unique: bool,
    /// Lifetime of new tokens, and the new lifetime of existing ones found through `unique`.
    pub lifetime: Lifetime,
}

/// A value's token after a create call.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The token.
    pub token: Token,
    /// Its lifetime now.
    pub lifetime: Lifetime,
    /// True when the value already had this token (an earlier call, or earlier in the batch).
    pub duplicate: bool,
}

/// Tokenizes `values` in one transaction with one audit event; answers, in order, each value's
/// token, or `None` for a value for which no free tokenbase could be drawn.
///
/// With `unique`, a value that already has a live unique token gets that token back, and its
/// lifetime becomes the one of this call counted from now (a repeated create restarts the
/// countdown); an expired one is replaced. A value repeated within the call gets one token.
pub async fn create_many(
    app: &AppState,
    ctx: &RequestContext,
    values: &[TokenValue],
    options: Options,
    generator: &mut Generator,
) -> ApiResult<Vec<Option<Placement>>> {
    if values.is_empty() {
        return Ok(Vec::new());
    }
    if let ([value], false) = (values, options.unique) {
        if let Some(placed) = create_one(app, ctx, value, options, generator).await? {
            return Ok(vec![Some(placed)]);
        }
        // Its identifiers were taken: the transaction below draws again.
    }
    // Within the call, a unique value is tokenized once; repeats point at its first occurrence.
    let mut first: HashMap<IndexValue, usize> = HashMap::new();
    let mut distinct: Vec<(&TokenValue, Option<IndexValue>)> = Vec::new();
    let mut slot = Vec::with_capacity(values.len());
    for value in values {
        let value_idx = options.unique.then(|| value.index(&ctx.keys));
        match value_idx.and_then(|idx| first.get(&idx).copied()) {
            Some(earlier) => slot.push((earlier, true)),
            None => {
                if let Some(idx) = value_idx {
                    first.insert(idx, distinct.len());
                }
                slot.push((distinct.len(), false));
                distinct.push((value, value_idx));
            }
        }
    }
    let mut batch = Batch { ctx, distinct, drafts: Vec::new(), generator };
    let mut rows = Vec::with_capacity(batch.distinct.len());
    for i in 0..batch.distinct.len() {
        let (token, row) = batch.draft(i).ok_or_else(|| ApiError::Internal("no tokenbase could be drawn".into()))?;
        batch.drafts.push(token);
        rows.push(row);
    }
    let placed = app.db.tenant(ctx.tenant).tokens().insert_many(ctx.now, options.lifetime, rows, &mut batch).await?;
    ctx.mark_committed();
    let mut outcomes = Vec::with_capacity(placed.len());
    for ((place, draft), (value, _)) in placed.into_iter().zip(batch.drafts).zip(&batch.distinct) {
        outcomes.push(match place {
            Placed::Inserted => Some(Placement { token: draft, lifetime: options.lifetime, duplicate: false }),
            Placed::Existing(row) => {
                let token = Token::open(&ctx.keys, &row.uuid_idx, &row.data)?;
                if !value.is_value_of(token.tokentype, &token.record) {
                    // Another value's token must never be handed out as this one's.
                    crate::integrity::index_mismatch(ctx.tenant, "token value");
                    return Err(ApiError::Internal("a unique token's value index names another value".into()));
                }
                Some(Placement { token, lifetime: row.lifetime, duplicate: true })
            }
            Placed::Unplaced => None,
        });
    }
    Ok(slot
        .into_iter()
        .map(|(i, repeat)| outcomes[i].clone().map(|p| Placement { duplicate: p.duplicate || repeat, ..p }))
        .collect())
}

/// One token that is not unique, through the group commit (with the other calls' tokens of
/// the moment); `None` when its tokenuuid or tokenbase was taken.
async fn create_one(
    app: &AppState,
    ctx: &RequestContext,
    value: &TokenValue,
    options: Options,
    generator: &mut Generator,
) -> ApiResult<Option<Placement>> {
    let mut batch = Batch { ctx, distinct: vec![(value, None)], drafts: Vec::new(), generator };
    let (token, row) = batch.draft(0).ok_or_else(|| ApiError::Internal("no tokenbase could be drawn".into()))?;
    batch.drafts.push(token);
    let event = store::Batch::event(&batch, &[Placed::Inserted], 0);
    let pending = PendingToken { tenant: ctx.tenant, row, now: ctx.now, lifetime: options.lifetime, event };
    if !app.token_inserts.insert(pending).await? {
        return Ok(None);
    }
    ctx.mark_committed();
    let token = batch.drafts.pop().ok_or_else(|| ApiError::Internal("the drafted token went missing".into()))?;
    Ok(Some(Placement { token, lifetime: options.lifetime, duplicate: false }))
}

/// The distinct values of a create call while its transaction is open.
struct Batch<'a> {
    ctx: &'a RequestContext,
    distinct: Vec<(&'a TokenValue, Option<IndexValue>)>,
    drafts: Vec<Token>,
    generator: &'a mut Generator,
}

impl Batch<'_> {
    /// A fresh token for distinct value `i`, and its row.
    fn draft(&mut self, i: usize) -> Option<(Token, NewToken)> {
        let (value, value_idx) = self.distinct[i];
        let tokenbase = (0..DRAWS).map(|_| (self.generator)(value.kind, value.digits())).find(|c| !value.is_same(c))?;
        let token =
            Token { tokenuuid: random_uuid_string(), tokenbase, record: value.record.clone(), tokentype: value.kind };
        let row = row_of(&self.ctx.keys, &token, value_idx);
        Some((token, row))
    }
}

impl store::Batch for Batch<'_> {
    fn redraw(&mut self, i: usize) -> Option<NewToken> {
        let (token, row) = self.draft(i)?;
        self.drafts[i] = token;
        Some(row)
    }

    fn event(&self, placed: &[Placed], expired_replaced: u64) -> AuditRecord {
        // Handles and types only: the values stay out of the audit trail altogether.
        let mut tokens = Vec::with_capacity(placed.len());
        let (mut created, mut duplicates) = (0, 0);
        for (place, draft) in placed.iter().zip(&self.drafts) {
            match place {
                Placed::Inserted => {
                    created += 1;
                    tokens.push(json!({"tokenuuid": draft.tokenuuid, "tokentype": draft.tokentype}));
                }
                Placed::Existing(row) => {
                    duplicates += 1;
                    if let Ok(token) = Token::open(&self.ctx.keys, &row.uuid_idx, &row.data) {
                        tokens.push(
                            json!({"tokenuuid": token.tokenuuid, "tokentype": token.tokentype, "duplicate": true}),
                        );
                    }
                }
                Placed::Unplaced => {}
            }
        }
        let mut extra = json!({"tokens": tokens, "created": created, "duplicates": duplicates});
        if expired_replaced > 0 {
            extra["expired_replaced"] = json!(expired_replaced);
        }
        self.ctx.change_event(None, None, None, Some(&extra))
    }
}

/// The row of a new token: its blind indexes and sealed content.
fn row_of(keys: &TenantKeys, token: &Token, value_idx: Option<IndexValue>) -> NewToken {
    let uuid_idx = keys.token_uuid_index(&token.tokenuuid);
    let base_idx = keys.token_base_index(&token.tokenbase.to_ascii_lowercase());
    NewToken { uuid_idx, base_idx, value_idx, data: token.seal(keys, &uuid_idx) }
}

/// The audit details naming a token (never its value).
fn token_extra(token: &Token) -> Value {
    json!({"tokenuuid": token.tokenuuid, "tokentype": token.tokentype})
}

/// The live token a handle names and its row; 404 when there is none, or when the token found
/// through the handle's blind index is not the one it names (logged as an integrity warning).
async fn find(app: &AppState, ctx: &RequestContext, handle: &Handle) -> ApiResult<(Token, TokenRow)> {
    let row = app
        .db
        .tenant(ctx.tenant)
        .tokens()
        .find(&handle.uuid_idx, &handle.base_idx, ctx.now)
        .await?
        .ok_or_else(token_not_found)?;
    let token = Token::open(&ctx.keys, &row.uuid_idx, &row.data)?;
    if !handle.names(&token) {
        crate::integrity::index_mismatch(ctx.tenant, "token");
        return Err(token_not_found());
    }
    Ok((token, row))
}

/// The uuid index of a row, as the store's index type.
fn row_key(row: &TokenRow) -> ApiResult<IndexValue> {
    row.uuid_idx.as_slice().try_into().map_err(|_| ApiError::Internal("a token row key is not an index".into()))
}

/// The live token a handle names, opened; reading it is an access, so a sliding lifetime is
/// extended (see [`Lifetime::extension`]).
pub async fn get(app: &AppState, ctx: &RequestContext, handle: &Handle) -> ApiResult<(Token, Lifetime)> {
    let (token, mut row) = find(app, ctx, handle).await?;
    ctx.set_extra(token_extra(&token));
    if let Some(expires_at) = row.lifetime.extension(ctx.now) {
        // No audit event of its own: the read's event covers it.
        app.db.tenant(ctx.tenant).tokens().extend(ctx.now, &[(row.uuid_idx.clone(), expires_at)]).await?;
        row.lifetime.expires_at = Some(expires_at);
    }
    Ok((token, row.lifetime))
}

/// Deletes the live token a handle names: both of its handles stop resolving, and a unique
/// token's value can be tokenized afresh.
pub async fn delete(app: &AppState, ctx: &RequestContext, handle: &Handle) -> ApiResult<()> {
    let (token, row) = find(app, ctx, handle).await?;
    let event = ctx.change_event(None, None, None, Some(&token_extra(&token)));
    // The row found and checked, by its own key only (no tokenbase index equals a tokenuuid
    // index): not whatever else the handle's indexes match.
    let key = row_key(&row)?;
    let pair = [(key, key)];
    // Nothing deleted (a concurrent delete won): no event for a change that did not happen.
    let deleted = app.db.tenant(ctx.tenant).tokens().delete_many(ctx.now, &pair, |n| (n > 0).then_some(event)).await?;
    if deleted == 0 {
        return Err(token_not_found());
    }
    ctx.mark_committed();
    Ok(())
}

/// The live tokens named by `references` (each a tokenuuid or a tokenbase), in the order of
/// their first reference; unknown, expired and empty references are skipped, and a token named
/// twice is listed once. One query per thousand references; sliding lifetimes are extended.
pub async fn list(app: &AppState, ctx: &RequestContext, references: &[String]) -> ApiResult<Vec<Token>> {
    let found = named(app, ctx, references).await?;
    let moves: Vec<_> = found
        .iter()
        .filter_map(|(key, named)| named.row.lifetime.extension(ctx.now).map(|expires_at| (key.to_vec(), expires_at)))
        .collect();
    app.db.tenant(ctx.tenant).tokens().extend(ctx.now, &moves).await?;
    Ok(found.into_iter().map(|(_, named)| named.token).collect())
}

/// A live token found by a reference, with its row.
struct Named {
    token: Token,
    row: TokenRow,
}

/// The live tokens named by `references` with their row keys, in the order of their first
/// reference, each once. A token found through a reference's blind index that is not the token
/// any reference names is left out (logged as an integrity warning).
async fn named(app: &AppState, ctx: &RequestContext, references: &[String]) -> ApiResult<Vec<(IndexValue, Named)>> {
    let handles: Vec<Handle> = references.iter().filter_map(|r| Handle::new(&ctx.keys, r)).collect();
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(handles.len());
    for (i, handle) in handles.iter().enumerate() {
        position.entry(handle.normalised.as_str()).or_insert(i);
    }
    let pairs: Vec<_> = handles.iter().map(|h| (h.uuid_idx, h.base_idx)).collect();
    let rows = app.db.tenant(ctx.tenant).tokens().find_many(&pairs, ctx.now).await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let token = Token::open(&ctx.keys, &row.uuid_idx, &row.data)?;
        let base = token.tokenbase.to_ascii_lowercase();
        let Some(at) = [token.tokenuuid.as_str(), &base].iter().filter_map(|name| position.get(name).copied()).min()
        else {
            crate::integrity::index_mismatch(ctx.tenant, "token");
            continue;
        };
        found.push((at, row_key(&row)?, Named { token, row }));
    }
    found.sort_by_key(|(at, _, _)| *at);
    Ok(found.into_iter().map(|(_, key, named)| (key, named)).collect())
}

/// Deletes the live tokens named by `references` (as in [`list`]: found, opened and checked
/// first) in one transaction with one audit event (how many were asked for and deleted);
/// returns how many were deleted.
pub async fn delete_list(app: &AppState, ctx: &RequestContext, references: &[String]) -> ApiResult<u64> {
    let pairs: Vec<_> = named(app, ctx, references).await?.iter().map(|(key, _)| (*key, *key)).collect();
    let event = |deleted: u64| {
        Some(ctx.change_event(None, None, None, Some(&json!({"tokens": references.len(), "deleted": deleted}))))
    };
    let deleted = app.db.tenant(ctx.tenant).tokens().delete_many(ctx.now, &pairs, event).await?;
    ctx.mark_committed();
    Ok(deleted)
}
