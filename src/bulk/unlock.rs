//! The `unlockuuid` of bulk operations: valid for a short while (60 s by default), reusable
//! within it, and only for the tenant and principal it was issued to.
//!
//! The database holds a keyed digest of it, not the value, so every replica sharing the
//! database honours it and a copy of the table cannot be replayed.

use serde_json::json;

use crate::crypto::secrets::{is_uuid_shaped, random_uuid_string};
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::tenants::TenantId;

/// The one answer for a malformed, unknown, expired or foreign `unlockuuid`.
pub const INVALID: &str = "The unlockuuid value was not found or is not valid";

/// The answer for an absent or blank `unlockuuid`.
pub const MISSING: &str = "Missing API request parameters: unlockuuid";

/// A grant the caller presented and may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unlock {
    /// Internal id of the grant (keyset bookmarks belong to it).
    pub id: i64,
    /// The tenant it was issued in (and the only one whose bookmarks it reaches).
    pub tenant: TenantId,
}

/// Issues a new `unlockuuid` to the caller, for the request's tenant.
pub async fn issue(app: &AppState, ctx: &RequestContext) -> ApiResult<String> {
    let uuid = random_uuid_string();
    let ttl = app.settings.bulk_unlock_ttl;
    let expires_ms = ctx.now_ms.saturating_add(ttl.saturating_mul(1000));
    let digest = ctx.keys.bulk_unlock_index(&uuid);
    app.db.tenant(ctx.tenant).bulk().insert_unlock(&digest, &ctx.principal.id, ctx.now_ms, expires_ms).await?;
    ctx.set_extra(json!({ "validfor": ttl }));
    Ok(uuid)
}

/// Checks the `unlockuuid` of a bulk call: 400 [`MISSING`] when absent or blank; issued to this
/// principal in this tenant and not expired, 403 [`INVALID`] otherwise (the same answer for
/// every reason).
pub async fn require(app: &AppState, ctx: &RequestContext, unlockuuid: Option<Text>) -> ApiResult<Unlock> {
    let invalid = || ApiError::Forbidden(INVALID.into());
    let given = text(unlockuuid).map(|u| u.trim().to_ascii_lowercase()).filter(|u| !u.is_empty());
    let uuid = given.ok_or_else(|| ApiError::bad_request(MISSING))?;
    if !is_uuid_shaped(&uuid) {
        return Err(invalid());
    }
    let digest = ctx.keys.bulk_unlock_index(&uuid);
    let grant = app.db.tenant(ctx.tenant).bulk().find_unlock(&digest).await?.ok_or_else(invalid)?;
    if grant.principal_id != ctx.principal.id || grant.expires_ms <= ctx.now_ms {
        return Err(invalid());
    }
    Ok(Unlock { id: grant.id, tenant: ctx.tenant })
}
