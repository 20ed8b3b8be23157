//! Signs of a tampered or corrupt database, reported without personal data.
//!
//! Records are found through blind indexes (HMACs of an identity) stored beside them. Sealing
//! binds a record to its own row, not to the index values that point at it, so an attacker who
//! can write to the database could swap two rows' index values and have a lookup for one
//! identity open the other's record. Every lookup therefore checks that the record it opened
//! carries the identity asked for, and answers "not found" when it does not; this module logs
//! that event for the operator.

use crate::tenants::TenantId;

/// Logs that a lookup through a blind index of `kind` (e.g. `user email`, `token`) opened a
/// record that does not carry the looked-up identity. Names the tenant and the kind only.
pub fn index_mismatch(tenant: TenantId, kind: &str) {
    tracing::warn!(
        tenant = %tenant,
        index = kind,
        "integrity: a record found through a blind index does not carry the identity looked up \
         (database tampered with or corrupt); answered as not found"
    );
}
