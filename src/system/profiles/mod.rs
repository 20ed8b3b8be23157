//! The vault-wide profile operations of the main tenant's administrator:
//! `SystemGetUserProfiles`, `SystemSearchUserProfiles`, `SystemDeleteUserProfiles` and
//! `SystemRestoreUserProfile`.
//!
//! Each tenant's profiles are found through that tenant's own blind indexes (or search
//! digests), computed here with its keys, in one statement over every tenant
//! ([`crate::store::every_tenant`]). Every returned profile is also told to its tenant: an
//! event of the call with the user as subject, sealed under that tenant's keys, beside the
//! call's own event in the main tenant.
//!
//! A system deletion holds the profiles rather than erasing them: they are absent to every
//! operation at once and restorable for `BUNKER_DELETED_RETENTION`, after which the retention
//! sweeper erases them as `UserDelete` would. `UserDelete` and approved forget-me requests stay
//! immediate erasure.

mod across;
mod hold;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::access::VaultWide;
use crate::bulk::unlock;
use crate::crypto::IndexKind;
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, op};
use crate::search::query::Target;
use crate::state::AppState;
use crate::users::Identity;

/// The operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("SystemGetUserProfiles", get),
        op("SystemSearchUserProfiles", search),
        op("SystemDeleteUserProfiles", hold::delete),
        op("SystemRestoreUserProfile", hold::restore),
    ]
}

/// A profile found in some tenant, as answered.
#[derive(Debug, Serialize)]
struct ProfileRow {
    token: String,
    profile: Value,
    tenantid: i64,
    tenantname: String,
}

#[derive(Debug, Serialize)]
struct ProfilesReply {
    total: usize,
    rows: Vec<ProfileRow>,
}

#[derive(Debug, Deserialize)]
struct GetRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    unlockuuid: Option<Text>,
}

/// The identity of a vault-wide lookup: any mode but `token` (a token names a user of one
/// tenant only).
fn identity_of(mode: Option<Text>, identity: Option<Text>) -> ApiResult<Identity> {
    let who = Identity::parse(mode, identity)?;
    if who.kind == IndexKind::Token {
        return Err(ApiError::bad_request("The mode parameter must be login, email, phone or custom"));
    }
    Ok(who)
}

/// `SystemGetUserProfiles`: the profiles of every tenant that carry the identity.
async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<GetRequest>,
) -> ApiResult<Reply<ProfilesReply>> {
    let proof = VaultWide::of(&ctx)?;
    unlock::require(&app, &ctx, req.unlockuuid).await?;
    let who = identity_of(req.mode, req.identity)?;
    let found = across::find(&app, &ctx, &proof, &who, None).await?;
    ctx.set_extra(json!({ "mode": who.kind.name(), "records": found.len() }));
    across::disclose(&app, &ctx, &found).await?;
    Ok(Reply(ProfilesReply { total: found.len(), rows: found.into_iter().map(across::Found::into_row).collect() }))
}

#[derive(Debug, Deserialize)]
struct SearchRequest {
    identity: Option<Text>,
    unlockuuid: Option<Text>,
}

/// `SystemSearchUserProfiles`: the closest profiles of every tenant (the mode detected from
/// the value, as `UserSearch` does without one).
async fn search(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<SearchRequest>,
) -> ApiResult<Reply<ProfilesReply>> {
    let proof = VaultWide::of(&ctx)?;
    unlock::require(&app, &ctx, req.unlockuuid).await?;
    let identity = text(req.identity)
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: identity"))?;
    let target = Target::detect(&identity);
    let (matched, found) = across::search(&app, &ctx, &proof, target, &identity).await?;
    // The kind searched and counts only: the value searched for is personal data.
    ctx.set_extra(json!({ "mode": target.name(), "matched": matched, "records": found.len() }));
    across::disclose(&app, &ctx, &found).await?;
    Ok(Reply(ProfilesReply { total: matched, rows: found.into_iter().map(across::Found::into_row).collect() }))
}
