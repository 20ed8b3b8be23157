//! `SystemDeleteUserProfiles` (hold for a grace period) and `SystemRestoreUserProfile`.

use std::collections::HashSet;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::across;
use crate::access::VaultWide;
use crate::bulk::unlock;
use crate::crypto::{IndexKind, IndexValue};
use crate::http::lenient::{Int, Text, int, text};
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext};
use crate::state::AppState;
use crate::tenants::TenantId;
use crate::users::Identity;

#[derive(Debug, Deserialize)]
pub(super) struct DeleteRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    unlockuuid: Option<Text>,
    tenantid: Option<Int>,
    tenantname: Option<Text>,
}

#[derive(Debug, Serialize)]
struct HeldRow {
    token: String,
    tenantid: i64,
    tenantname: String,
}

#[derive(Debug, Serialize)]
pub(super) struct DeleteReply {
    total: usize,
    rows: Vec<HeldRow>,
}

/// The tenant a request names by `tenantid` (first) or `tenantname`; `None` when it names none;
/// 404 for an unknown name (one that names no live tenant is 404 when it is looked in, see
/// [`across::tenants`]).
async fn named_tenant(app: &AppState, id: Option<Int>, name: Option<Text>) -> ApiResult<Option<TenantId>> {
    match (int(id), text(name).map(|n| n.trim().to_owned()).filter(|n| !n.is_empty())) {
        (Some(id), _) => Ok(Some(TenantId::new(id))),
        (None, Some(name)) => {
            app.tenant_id(&name).await?.map(Some).ok_or_else(|| ApiError::not_found(across::TENANT_NOT_FOUND))
        }
        (None, None) => Ok(None),
    }
}

/// `SystemDeleteUserProfiles`: holds the profiles carrying the identity in every tenant (or the
/// one named): absent at once, restorable until the grace period ends, then erased.
pub(super) async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<DeleteRequest>,
) -> ApiResult<Reply<DeleteReply>> {
    let proof = VaultWide::of(&ctx)?;
    unlock::require(&app, &ctx, req.unlockuuid).await?;
    let who = Identity::parse(req.mode, req.identity)?;
    let only = named_tenant(&app, req.tenantid, req.tenantname).await?;
    if who.kind == IndexKind::Token && only.is_none() {
        return Err(ApiError::bad_request("The token mode needs tenantid or tenantname"));
    }
    let found = across::find(&app, &ctx, &proof, &who, only).await?;
    // Sessions stored before their user existed name it without being bound to it: they go as
    // they would with UserDelete (they are not the profile's; a restore does not bring them back).
    let mut names: Vec<(TenantId, Vec<IndexValue>)> = Vec::with_capacity(found.len());
    for f in &found {
        names.push((f.tenant, crate::sessions::service::names_of_in(&f.keys, &f.user)?));
    }
    let until = ctx.now.saturating_add(app.settings.deleted_retention);
    ctx.set_extra(json!({ "mode": who.kind.name(), "helduntil": until }));
    let wanted: Vec<(TenantId, Vec<u8>)> = found.iter().map(|f| (f.tenant, f.user.row.rid.clone())).collect();
    let held = app
        .db
        .every_tenant(&proof)
        .hold(&wanted, until, ctx.now_ms, |held| {
            let held: HashSet<&(TenantId, Vec<u8>)> = held.iter().collect();
            let told: Vec<&across::Found> =
                found.iter().zip(&wanted).filter(|(_, key)| held.contains(key)).map(|(f, _)| f).collect();
            let own = ctx.change_event(None, None, None, Some(&json!({ "records": told.len() })));
            let extra = json!({ "listing": own.uuid, "helduntil": until });
            let mut records = crate::bulk::disclosed::subject_events(
                &ctx,
                &extra,
                told.iter().map(|f| (f.tenant, &f.keys, &f.user.subject)),
            );
            records.push(own);
            records
        })
        .await?;
    ctx.mark_committed();
    let held_set: HashSet<&(TenantId, Vec<u8>)> = held.iter().collect();
    let kept: Vec<bool> = wanted.iter().map(|key| held_set.contains(key)).collect();
    let rows: Vec<HeldRow> = found
        .into_iter()
        .zip(&kept)
        .filter(|(_, kept)| **kept)
        .map(|(f, _)| HeldRow { token: f.user.subject.token, tenantid: f.tenant.get(), tenantname: f.tenant_name })
        .collect();
    // Their access tokens went with the hold: this replica forgets them now (the others within
    // the change feed's bound).
    for (tenant, rid) in &held {
        app.caches.forget_users(*tenant, std::slice::from_ref(rid));
    }
    for ((tenant, names), kept) in names.iter().zip(&kept) {
        if *kept {
            crate::sessions::service::erase_naming_in(&app, *tenant, names).await;
        }
    }
    Ok(Reply(DeleteReply { total: rows.len(), rows }))
}

#[derive(Debug, Deserialize)]
pub(super) struct RestoreRequest {
    token: Option<Text>,
    unlockuuid: Option<Text>,
    tenantid: Option<Int>,
    tenantname: Option<Text>,
}

#[derive(Debug, Serialize)]
pub(super) struct RestoreReply {
    result: &'static str,
    token: String,
    profile: Value,
}

/// `SystemRestoreUserProfile`: a held profile of the tenant named is live again, as it was.
pub(super) async fn restore(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<RestoreRequest>,
) -> ApiResult<Reply<RestoreReply>> {
    let proof = VaultWide::of(&ctx)?;
    unlock::require(&app, &ctx, req.unlockuuid).await?;
    let token = text(req.token)
        .filter(|t| !t.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: token"))?;
    let who = Identity::parse(Some(Text("token".into())), Some(Text(token)))?;
    let tenant = named_tenant(&app, req.tenantid, req.tenantname)
        .await?
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: tenantid or tenantname"))?;
    let (live, keys) = across::tenants(&app, &proof, Some(tenant))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| ApiError::not_found(across::TENANT_NOT_FOUND))?;
    let idx = keys.index(IndexKind::Token, &who.normalised);
    ctx.set_extra(json!({ "tenantid": tenant.get() }));
    // A held profile is not counted as a record: bringing it back takes a place under a licence.
    if crate::licence::room(&app).await? == Some(0) {
        return Err(ApiError::Forbidden(crate::licence::LIMIT_REACHED.into()));
    }
    let mut opened = None;
    let restored = app
        .db
        .every_tenant(&proof)
        .restore(tenant, &idx, ctx.now, |row| {
            let found = across::open(&live, &keys, row.clone())?;
            if !who.is_carried_by(&found.user.subject.token, &found.user.profile) {
                crate::integrity::index_mismatch(tenant, "token");
                return Err(ApiError::user_not_found());
            }
            let own = ctx.change_event(None, None, None, None);
            let extra = json!({ "listing": own.uuid });
            let mut records = crate::bulk::disclosed::subject_events(
                &ctx,
                &extra,
                std::iter::once((found.tenant, &found.keys, &found.user.subject)),
            );
            records.push(own);
            opened = Some(found);
            Ok(records)
        })
        .await?;
    match restored {
        None => return Err(ApiError::user_not_found()),
        Some(Err(err)) => return Err(err),
        Some(Ok(_)) => {}
    }
    ctx.mark_committed();
    let found = opened.ok_or_else(|| ApiError::Internal("a restore committed without its profile".into()))?;
    Ok(Reply(RestoreReply { result: "restored", token: found.user.subject.token, profile: found.user.profile }))
}
