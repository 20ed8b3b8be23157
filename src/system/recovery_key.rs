//! `SystemRotateRecoveryKey`: prove custody of three recovery shares, get five new ones.
//!
//! Two-phase, so that a lost answer loses nothing: a new recovery key is made and the main
//! tenant's root (version 1, the only key sealed under the recovery key; later versions are
//! sealed under the root, other tenants' under the main tenant's keys) is wrapped under it, while
//! the wrapping the old shares open is kept. Until the new shares are used once (any call that
//! takes shares, or `bunker recover`), both sets work; that use drops the old wrapping. Asking
//! again with the old shares meanwhile replaces the pending new set (the lost one opens nothing
//! then). The new shares are answered once and never stored or logged.

use axum::extract::State;
use serde::Serialize;

use super::custody::{self, SharesRequest};
use crate::crypto::keyring::wrap_master_for_recovery;
use crate::crypto::{Key256, shamir};
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;
use crate::store::vault::{self, SharesOpened};
use crate::tenants::TenantId;

#[derive(Serialize)]
pub(super) struct RotateReply {
    key1: String,
    key2: String,
    key3: String,
    key4: String,
    key5: String,
}

/// Makes a new recovery key pending and answers its five shares.
pub(super) async fn rotate(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<SharesRequest>,
) -> ApiResult<Reply<RotateReply>> {
    ctx.require(Rule::MainTenantAdmin)?;
    let custody = custody::prove(&app, &ctx, req).await?;
    let recovery = Key256::random();
    let wrapped = wrap_master_for_recovery(&recovery, TenantId::MAIN, 1, &custody.root);
    let pending_replaced = matches!(custody.opened, SharesOpened::Previous(_));
    let event = ctx.change_event(
        None,
        None,
        None,
        Some(&serde_json::json!({"pending": true, "replaced_pending": pending_replaced})),
    );
    vault::rotate_recovery_key(&app.db, &custody.opened, &wrapped, &event).await?;
    ctx.mark_committed();
    let [key1, key2, key3, key4, key5]: [String; shamir::SHARES] = shamir::split(&recovery)
        .try_into()
        .map_err(|_| ApiError::Internal("a split made another number of shares".into()))?;
    Ok(Reply(RotateReply { key1, key2, key3, key4, key5 }))
}
