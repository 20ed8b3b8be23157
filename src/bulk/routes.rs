//! HTTP handlers of the bulk operations.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::keyset::{self, Listing};
use super::{disclosed, unlock, view};
use crate::audit::event;
use crate::crypto::{IndexKind, IndexValue};
use crate::http::lenient::{Int, Text};
use crate::http::paging::Page;
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, op, page};
use crate::state::AppState;
use crate::store::bulk::id_key;
use crate::users::identity::IdentityFields;
use crate::users::{self, Identity, LoadedUser};

/// The bulk operations (the token and file listings join them with their domains).
pub fn operations() -> Vec<Operation> {
    vec![
        op("BulkListUnlock", list_unlock),
        op("BulkListUsers", list_users),
        op("BulkListAllUsers", list_all_users),
        op("BulkListAllUserRequests", list_all_user_requests),
        op("BulkListAllAuditEvents", list_all_audit_events),
    ]
}

/// A request without parameters (its `request_metadata` still reaches the audit event).
#[derive(Debug, Deserialize)]
struct NoParameters {}

#[derive(Serialize)]
struct UnlockReply {
    unlockuuid: String,
}

async fn list_unlock(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(NoParameters {}): Body<NoParameters>,
) -> ApiResult<Reply<UnlockReply>> {
    ctx.require(Rule::Granted)?;
    let unlockuuid = unlock::issue(&app, &ctx).await?;
    Ok(Reply(UnlockReply { unlockuuid }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListUsersRequest {
    unlockuuid: Option<Text>,
    users: Option<Vec<IdentityFields>>,
}

/// `BulkListUsers`: the users named in `users`, in that order; unknown ones are skipped.
async fn list_users(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ListUsersRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    unlock::require(&app, &ctx, req.unlockuuid).await?;
    let asked = req
        .users
        .filter(|users| !users.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: users"))?;
    let requested = asked.len();
    let mut wanted: Vec<(Identity, IndexValue)> = Vec::with_capacity(requested);
    for fields in asked {
        // An identity that cannot name anyone (an empty value, a phone without digits) is skipped
        // like an unknown one; a malformed mode is still an error.
        match fields.parse() {
            Ok(who) => {
                let idx = ctx.keys.index(who.kind, &who.normalised);
                wanted.push((who, idx));
            }
            Err(ApiError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
    }
    let mut by_kind: HashMap<IndexKind, Vec<IndexValue>> = HashMap::new();
    for (who, idx) in &wanted {
        by_kind.entry(who.kind).or_default().push(*idx);
    }
    let mut found = HashMap::new();
    for (kind, values) in by_kind {
        for (idx, row) in app.db.tenant(ctx.tenant).bulk().users_by_index(kind, &values, ctx.now).await? {
            found.insert((kind, idx), row);
        }
    }
    let mut seen = HashSet::new();
    let mut opened = Vec::new();
    for (who, idx) in wanted {
        let Some(row) = found.get(&(who.kind, idx.to_vec())) else { continue };
        if seen.contains(&row.rid) {
            continue;
        }
        // A record that does not carry the identity is skipped like an unknown one.
        if let Some(user) = users::service::open_found(&ctx, row.clone(), &who)? {
            seen.insert(row.rid.clone());
            opened.push(user);
        }
    }
    let opened = crate::access::judge::admit_rows(&app, &ctx, opened, None).await?;
    let rows = view::users(&app, &ctx, &opened).await?;
    ctx.set_extra(json!({ "requested": requested, "records": rows.len() }));
    disclosed::record(&app, &ctx, &opened).await?;
    Ok(Reply(Page { total: count(rows.len()), rows }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct PageRequest {
    unlockuuid: Option<Text>,
    offset: Option<Int>,
    limit: Option<Int>,
}

/// `BulkListAllUsers`: the tenant's live users, newest first, with token and full profile.
async fn list_all_users(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<PageRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    let grant = unlock::require(&app, &ctx, req.unlockuuid).await?;
    let (offset, limit) = page(req.offset, req.limit);
    let cursor = keyset::cursor(&app, grant, Listing::Users, offset).await?;
    let found = app.db.tenant(ctx.tenant).bulk().users_page(ctx.now, &cursor, limit).await?;
    if let Some(last) = found.last() {
        keyset::remember(&app, grant, Listing::Users, offset, found.len(), &last.rid).await;
    }
    let total = app.db.tenant(ctx.tenant).bulk().count_users(ctx.now).await?;
    let opened = found.into_iter().map(|row| users::service::open(&ctx, row)).collect::<ApiResult<Vec<_>>>()?;
    let opened = crate::access::judge::admit_rows(&app, &ctx, opened, None).await?;
    let rows = view::users(&app, &ctx, &opened).await?;
    audit_page(&ctx, offset, limit, rows.len(), total);
    disclosed::record(&app, &ctx, &opened).await?;
    Ok(Reply(Page { total, rows }))
}

/// `BulkListAllUserRequests`: the tenant's approval requests, newest first, each with the token
/// of its user.
async fn list_all_user_requests(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<PageRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    let grant = unlock::require(&app, &ctx, req.unlockuuid).await?;
    let (offset, limit) = page(req.offset, req.limit);
    let cursor = keyset::cursor(&app, grant, Listing::Requests, offset).await?;
    let found = app.db.tenant(ctx.tenant).bulk().requests_page(ctx.now, &cursor, limit).await?;
    if let Some((last, _, _)) = found.last() {
        keyset::remember(&app, grant, Listing::Requests, offset, found.len(), &id_key(*last)).await;
    }
    let total = app.db.tenant(ctx.tenant).bulk().count_requests(ctx.now).await?;
    // A page often holds several requests of one user: open each user once.
    let mut opened: HashMap<Vec<u8>, LoadedUser> = HashMap::new();
    let mut rows = Vec::with_capacity(found.len());
    for (_, request, user_row) in found {
        let rid = user_row.rid.clone();
        let user = match opened.entry(rid) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(users::service::open(&ctx, user_row)?),
        };
        let mut row = crate::requests::service::summary(&request);
        row.insert("token".into(), json!(user.subject.token));
        rows.push(Value::Object(row));
    }
    audit_page(&ctx, offset, limit, rows.len(), total);
    Ok(Reply(Page { total, rows }))
}

/// `BulkListAllAuditEvents`: the tenant's audit events, newest first.
async fn list_all_audit_events(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<PageRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    let grant = unlock::require(&app, &ctx, req.unlockuuid).await?;
    let (offset, limit) = page(req.offset, req.limit);
    let cursor = keyset::cursor(&app, grant, Listing::AuditEvents, offset).await?;
    let found = app.db.tenant(ctx.tenant).bulk().events_page(&cursor, limit).await?;
    if let Some((last, _)) = found.last() {
        keyset::remember(&app, grant, Listing::AuditEvents, offset, found.len(), &id_key(*last)).await;
    }
    let total = app.db.tenant(ctx.tenant).bulk().count_events().await?;
    let rows: Vec<Value> = found.iter().map(|(_, row)| event::summary(row)).collect();
    audit_page(&ctx, offset, limit, rows.len(), total);
    Ok(Reply(Page { total, rows }))
}

/// Records what a page served, for the call's audit event: counts only.
fn audit_page(ctx: &RequestContext, offset: i64, limit: i64, records: usize, total: i64) {
    ctx.set_extra(json!({ "offset": offset, "limit": limit, "records": records, "total": total }));
}

fn count(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
