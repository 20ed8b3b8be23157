//! `SystemGenerateWrappingKey`: prove custody of the recovery shares, get a new wrapping key.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use crate::crypto::WrappingKey;
use crate::crypto::keyring::{kek_check, unwrap_master, unwrap_master_for_recovery, wrap_master};
use crate::crypto::shamir::{self, ShareError};
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::vault::{self, StoredMasterKey};

/// Serialises rotations within this process: two at once would return two keys, one useless.
static ROTATION: Mutex<()> = Mutex::const_new(());

#[derive(Debug, Deserialize)]
pub(super) struct GenerateRequest {
    key1: Option<Text>,
    key2: Option<Text>,
    key3: Option<Text>,
}

#[derive(Serialize)]
pub(super) struct GenerateReply {
    wrappingkey: String,
}

/// Recovers the master key from three shares, checks it is the running one, mints a new
/// wrapping key and re-wraps every tenant master key under it. The new key is answered once
/// and never stored or logged; the running process switches to it at once.
pub(super) async fn generate(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<GenerateRequest>,
) -> ApiResult<Reply<GenerateReply>> {
    ctx.require(Rule::MainTenantAdmin)?;
    let (key1, key2, key3) = match (text(req.key1), text(req.key2), text(req.key3)) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return Err(ApiError::bad_request("Missing API request parameters: key1, key2, key3")),
    };
    let recovery = shamir::combine(&[("key1", &key1), ("key2", &key2), ("key3", &key3)]).map_err(|err| match err {
        ShareError::Hex(_) => ApiError::bad_request(err.to_string()),
        ShareError::Invalid => ApiError::Forbidden("Master key mismatch".into()),
    })?;
    let _rotation = ROTATION.lock().await;
    let stored = vault::all_master_keys(&app.db).await?;
    let mismatch = || ApiError::Forbidden("Master key mismatch".into());
    // The recovery key wraps the main tenant's first master key, its root: later versions are
    // wrapped under the root (see `TenantKeys::wrap_own_version_for_recovery`).
    let main = stored.iter().find(|k| k.tenant == ctx.tenant && k.version == 1).ok_or_else(mismatch)?;
    let recovered = unwrap_master_for_recovery(&recovery, main.tenant, main.version, &main.recovery_wrapped)
        .map_err(|_| mismatch())?;
    if !ctx.keys.root_matches(&recovered) {
        return Err(mismatch());
    }

    let old_kek = app.keys.kek();
    let new_key = WrappingKey::generate();
    let new_kek = new_key.kek();
    let mut rewrapped = Vec::with_capacity(stored.len());
    for key in &stored {
        // A key this process cannot open was re-wrapped by a rotation through another replica.
        let master = unwrap_master(&old_kek, key.tenant, key.version, &key.wrapped)
            .map_err(|_| ApiError::from(StoreError::WrappingKeyChanged))?;
        let next = StoredMasterKey { wrapped: wrap_master(&new_kek, key.tenant, key.version, &master), ..key.clone() };
        rewrapped.push((next, key.wrapped.clone()));
    }
    let event = ctx.change_event(None, None, None, Some(&serde_json::json!({"rewrapped_keys": rewrapped.len()})));
    vault::rewrap_master_keys(&app.db, &rewrapped, &kek_check(&old_kek), &kek_check(&new_kek), &event).await?;
    ctx.mark_committed();
    app.keys.replace_kek(new_kek);
    Ok(Reply(GenerateReply { wrappingkey: new_key.to_hex() }))
}
