//! The tenant identifier.

use std::fmt;

/// A tenant's id. Every store handle on tenant data is built from one (see
/// [`crate::store::Db::tenant`]); it is never confused with another integer, because no other
/// integer is one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::Type, serde::Serialize)]
#[sqlx(transparent)]
#[serde(transparent)]
pub struct TenantId(i64);

impl TenantId {
    /// The main tenant, which administers the vault.
    pub const MAIN: TenantId = TenantId(1);

    /// A tenant id read from outside (a request's `tenantid`, a stored row); whether such a
    /// tenant exists is for the store to say.
    pub const fn new(id: i64) -> TenantId {
        TenantId(id)
    }

    /// The number, for answers, logs and key derivation labels.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// True for the main tenant.
    pub fn is_main(self) -> bool {
        self == TenantId::MAIN
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
