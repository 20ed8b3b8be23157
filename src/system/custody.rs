//! Proof of custody of the recovery shares: three of them recover the recovery key, which must
//! open the recovery wrapping of the main tenant's root (its first master key): the one in force
//! or, while a recovery-key rotation is pending, the previous one (the old shares). The write
//! the proof is for checks it again under the vault row's lock, and shares of the wrapping in
//! force confirm a pending rotation there (`store::vault::hold_recovery`).

use serde::Deserialize;

use crate::crypto::Key256;
use crate::crypto::shamir::{self, ShareError};
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, RequestContext};
use crate::state::AppState;
use crate::store::vault::{self, SharesOpened, StoredMasterKey};
use crate::vault::open_root_for_recovery;

/// Three recovery shares, as `key1`, `key2`, `key3`.
#[derive(Debug, Deserialize)]
pub(super) struct SharesRequest {
    key1: Option<Text>,
    key2: Option<Text>,
    key3: Option<Text>,
}

/// What three valid shares prove.
pub(super) struct Custody {
    /// The main tenant's root, which they open.
    pub root: Key256,
    /// Which recovery wrapping they opened.
    pub opened: SharesOpened,
    /// Every stored master key, read after the proof.
    pub stored: Vec<StoredMasterKey>,
}

fn mismatch() -> ApiError {
    ApiError::Forbidden("Master key mismatch".into())
}

/// Recombines the shares and checks that they open the main tenant's root.
pub(super) async fn prove(app: &AppState, ctx: &RequestContext, req: SharesRequest) -> Result<Custody, ApiError> {
    let (key1, key2, key3) = match (text(req.key1), text(req.key2), text(req.key3)) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return Err(ApiError::bad_request("Missing API request parameters: key1, key2, key3")),
    };
    let recovery = shamir::combine(&[("key1", &key1), ("key2", &key2), ("key3", &key3)]).map_err(|err| match err {
        ShareError::Hex(_) => ApiError::bad_request(err.to_string()),
        ShareError::Invalid => mismatch(),
    })?;
    let stored = vault::all_master_keys(&app.db).await?;
    // The recovery key wraps the main tenant's first master key, its root; later versions are
    // wrapped under the root (`TenantKeys::wrap_own_version_for_recovery`).
    let main = stored.iter().find(|k| k.tenant == ctx.tenant && k.version == 1).ok_or_else(mismatch)?;
    let (root, opened) = open_root_for_recovery(&recovery, main).ok_or_else(mismatch)?;
    if !ctx.keys.root_matches(&root) {
        return Err(mismatch());
    }
    Ok(Custody { root, opened, stored })
}
