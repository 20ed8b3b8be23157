//! `SystemRotateRecoveryKey`: prove custody of three recovery shares, get five new ones.
//!
//! A new recovery key is made and the main tenant's master keys are wrapped for recovery under
//! it, replacing the previous wrappings; the new shares are answered once and never stored or
//! logged. The old shares then recover nothing (`Master key mismatch`). Other tenants' keys are
//! recovered through the main tenant's master key, which does not change.

use axum::extract::State;
use serde::Serialize;

use super::custody::{self, SharesRequest};
use crate::crypto::keyring::{unwrap_master_for_recovery, wrap_master_for_recovery};
use crate::crypto::{Key256, shamir};
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::vault::{self, Rewrapped};

#[derive(Serialize)]
pub(super) struct RotateReply {
    key1: String,
    key2: String,
    key3: String,
    key4: String,
    key5: String,
}

/// Replaces the recovery key and answers its five shares.
pub(super) async fn rotate(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<SharesRequest>,
) -> ApiResult<Reply<RotateReply>> {
    ctx.require(Rule::MainTenantAdmin)?;
    let custody = custody::prove(&app, &ctx, req).await?;
    let recovery = Key256::random();
    let mut rewrapped = Vec::new();
    for key in custody.stored.iter().filter(|key| key.tenant == ctx.tenant) {
        // The main tenant's keys the old recovery key opens (custody proved the one in force).
        let Ok(master) = unwrap_master_for_recovery(&custody.recovery, key.tenant, key.version, &key.recovery_wrapped)
        else {
            continue;
        };
        rewrapped.push(Rewrapped {
            tenant: key.tenant,
            version: key.version,
            previous: key.recovery_wrapped.clone(),
            wrapped: wrap_master_for_recovery(&recovery, key.tenant, key.version, &master),
        });
    }
    let event = ctx.change_event(None, None, None, Some(&serde_json::json!({"rewrapped_keys": rewrapped.len()})));
    vault::replace_recovery_wrappings(&app.db, &rewrapped, &event).await.map_err(|err| match err {
        StoreError::Conflict => {
            ApiError::conflict("The recovery key was rotated at the same time: use the shares that rotation answered")
        }
        err => err.into(),
    })?;
    ctx.mark_committed();
    let [key1, key2, key3, key4, key5]: [String; shamir::SHARES] = shamir::split(&recovery)
        .try_into()
        .map_err(|_| ApiError::Internal("a split made another number of shares".into()))?;
    Ok(Reply(RotateReply { key1, key2, key3, key4, key5 }))
}
