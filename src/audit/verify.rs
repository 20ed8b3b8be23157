//! `AuditVerify`: walks a tenant's audit chain, or a range of it, and answers the first broken
//! link or how many events verified.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::chain::{self, Break, Walk};
use super::chainer;
use crate::http::lenient::{Int, Text, int, text};
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;

/// Events verified by one call when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 100_000;
/// Most events one call verifies (a longer chain is walked in several calls, from `nextseq`).
pub const MAX_LIMIT: i64 = 1_000_000;
/// Events read per statement.
const PAGE: i64 = 1000;

#[derive(Debug, Deserialize)]
pub(super) struct VerifyRequest {
    fromseq: Option<Int>,
    limit: Option<Int>,
    anchorseq: Option<Int>,
    anchorhead: Option<Text>,
}

#[derive(Serialize)]
pub(super) struct VerifyReply {
    intact: bool,
    verified: u64,
    fromseq: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nextseq: Option<i64>,
    head: Value,
    pending: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    broken: Option<Value>,
}

/// Chains whatever is pending, then verifies positions `fromseq` (default 1) onwards, at most
/// `limit` of them; at the end of the chain also the stored head, and, when given, that
/// position `anchorseq` still holds the link `anchorhead` recorded outside the vault.
pub(super) async fn verify(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<VerifyRequest>,
) -> ApiResult<Reply<VerifyReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let from = int(req.fromseq).unwrap_or(1);
    let limit = int(req.limit).unwrap_or(DEFAULT_LIMIT);
    if from < 1 {
        return Err(ApiError::bad_request("fromseq must be 1 or more"));
    }
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    let anchor = match (int(req.anchorseq), text(req.anchorhead)) {
        (None, None) => None,
        (Some(seq), Some(head)) if seq >= 1 => {
            let head = hex::decode(head.trim()).map_err(|_| ApiError::bad_request("anchorhead must be hexadecimal"))?;
            Some((seq, head))
        }
        _ => return Err(ApiError::bad_request("anchorseq and anchorhead go together")),
    };

    chainer::extend(&app, ctx.tenant, true).await?;
    let store = app.db.tenant(ctx.tenant).audit_chain();
    let head = store.head().await?;
    let pending = store.pending().await?;
    let key = ctx.keys.audit_chain_key();
    let head_json = json!({"seq": head.seq, "digest": hex::encode(&head.link)});
    let reply = |walk: &Walk, nextseq: Option<i64>, broken: Option<Break>| VerifyReply {
        intact: broken.is_none(),
        verified: walk.verified(),
        fromseq: from,
        nextseq,
        head: head_json.clone(),
        pending,
        broken: broken.map(describe),
    };

    let previous = if from == 1 { Some(chain::GENESIS.to_vec()) } else { store.link_at(from - 1).await? };
    let Some(previous) = previous.and_then(|p| <[u8; 32]>::try_from(p.as_slice()).ok()) else {
        let walk = Walk::after(from, chain::GENESIS);
        let broken = (from - 1 <= head.seq).then_some(Break::Missing { seq: from - 1 });
        return Ok(Reply(reply(&walk, None, broken)));
    };
    let mut walk = Walk::after(from, previous);
    let (mut keys, mut reloaded) = (ctx.keys.clone(), false);
    let end = head.seq.min(from.saturating_add(limit - 1));
    while walk.next_seq() <= end {
        let rows = store.page(walk.next_seq(), PAGE.min(end - walk.next_seq() + 1)).await?;
        if rows.is_empty() {
            let broken = Break::Missing { seq: walk.next_seq() };
            return Ok(Reply(reply(&walk, None, Some(broken))));
        }
        for row in &rows {
            let payload = match chain::covered_payload(&keys, row) {
                Some(payload) => payload,
                // Perhaps sealed under a master-key version rotated in through another replica
                // a moment ago: read the keys again, once.
                None if !reloaded => {
                    app.keys.forget(ctx.tenant);
                    keys = app.tenant_keys(ctx.tenant).await?;
                    reloaded = true;
                    chain::covered_payload(&keys, row).unwrap_or_else(|| row.payload.clone())
                }
                None => row.payload.clone(),
            };
            if let Err(broken) = walk.step(key, row, &payload) {
                return Ok(Reply(reply(&walk, None, Some(broken))));
            }
        }
    }
    if end == head.seq && head.seq >= from {
        let matches = crate::crypto::secrets::digests_match(walk.previous(), &head.link);
        if !matches {
            return Ok(Reply(reply(&walk, None, Some(Break::Missing { seq: head.seq }))));
        }
    }
    if let Some((seq, expected)) = anchor {
        let found = store.link_at(seq).await?;
        if !found.is_some_and(|link| crate::crypto::secrets::digests_match(&link, &expected)) {
            return Ok(Reply(reply(&walk, None, Some(Break::Anchor { seq }))));
        }
    }
    let nextseq = (end < head.seq).then_some(end + 1);
    Ok(Reply(reply(&walk, nextseq, None)))
}

/// The first broken place, for the answer.
fn describe(broken: Break) -> Value {
    match broken {
        Break::Missing { seq } => json!({"seq": seq, "reason": "missing"}),
        Break::Altered { seq, uuid } => json!({"seq": seq, "auditeventuuid": uuid, "reason": "altered"}),
        Break::Relinked { seq, uuid } => json!({"seq": seq, "auditeventuuid": uuid, "reason": "relinked"}),
        Break::Detached { seq, uuid } => json!({"seq": seq, "auditeventuuid": uuid, "reason": "detached"}),
        Break::Anchor { seq } => json!({"seq": seq, "reason": "anchor"}),
    }
}
