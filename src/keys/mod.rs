//! Master-key rotation: a tenant's master key gets a new version that seals new data at once;
//! a background job seals every older tenant-level blob again under it and then retires the
//! older versions (`SystemRotateMasterKey`, `SystemGetMasterKeyStatus`).
//!
//! Tenant-level blobs are sealed under per-purpose subkeys of the active version
//! ([`crate::crypto::keyring::Purpose`]); each subkey seals at most 2^32 blobs with random
//! nonces before rotation is due (README, Master-key rotation).

pub mod job;
pub mod metrics;
mod rotate;
mod status;

use crate::http::{Operation, op};

pub use job::JobSettings;

/// The master-key operations.
pub fn operations() -> Vec<Operation> {
    vec![op("SystemRotateMasterKey", rotate::rotate), op("SystemGetMasterKeyStatus", status::status)]
}
