//! `SystemGenerateWrappingKey`: prove custody of the recovery shares, get a new wrapping key.
//!
//! Rotation is two-phase, so that no lost answer, crash or stale key file can lock the vault:
//! this operation stores a wrapping of every master key under the new key *beside* the one in
//! force (and the new key's check value), under the vault row's lock so that replicas rotate one
//! at a time. The running processes keep the previous key and both keys open the vault; the
//! first start with the new key makes it the one in force and drops the previous wrappings
//! (`vault::open`). A second call while one is pending replaces it: only the key answered last
//! completes the rotation, so an answer lost on the way can simply be asked for again. While a
//! rotation is pending no new master key is stored (TenantCreate answers 409).

use axum::extract::State;
use serde::Serialize;

use super::custody::{self, SharesRequest};
use crate::crypto::WrappingKey;
use crate::crypto::keyring::{kek_check, unwrap_master, wrap_master};
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::vault::{self, Rewrapped};

#[derive(Serialize)]
pub(super) struct GenerateReply {
    wrappingkey: String,
}

/// Recovers the master key from three shares, checks it is the running one, mints a new
/// wrapping key and stores the wrapping of every tenant master key under it beside the one in
/// force. The new key is answered once and never stored or logged.
pub(super) async fn generate(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<SharesRequest>,
) -> ApiResult<Reply<GenerateReply>> {
    ctx.require(Rule::MainTenantAdmin)?;
    let custody = custody::prove(&app, &ctx, req).await?;
    let old_kek = app.keys.kek();
    let new_key = WrappingKey::generate();
    let new_kek = new_key.kek();
    let mut rewrapped = Vec::with_capacity(custody.stored.len());
    for key in &custody.stored {
        // A key this process cannot open was re-wrapped through another replica.
        let master = unwrap_master(&old_kek, key.tenant, key.version, &key.wrapped)
            .map_err(|_| ApiError::from(StoreError::WrappingKeyChanged))?;
        rewrapped.push(Rewrapped {
            tenant: key.tenant,
            version: key.version,
            previous: key.wrapped.clone(),
            wrapped: wrap_master(&new_kek, key.tenant, key.version, &master),
        });
    }
    let event = ctx.change_event(
        None,
        None,
        None,
        Some(&serde_json::json!({"rewrapped_keys": rewrapped.len(), "pending": true})),
    );
    vault::stage_wrapping_key(&app.db, &custody.opened, &rewrapped, &kek_check(&old_kek), &kek_check(&new_kek), &event)
        .await?;
    ctx.mark_committed();
    tracing::warn!(
        "a new wrapping key was issued and is pending: restart every replica with it to complete the rotation \
         (the previous key keeps opening the vault until then)"
    );
    Ok(Reply(GenerateReply { wrappingkey: new_key.to_hex() }))
}
