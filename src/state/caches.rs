//! What the vault remembers between requests so that a call does not ask the database again:
//! the principal behind a token digest and the id behind a tenant name.
//!
//! Each cache is bounded, its entries expire, and what it holds about a tenant can be dropped
//! at once ([`Caches::forget_tenant`]; `AppState::forget_tenant` also drops the tenant's
//! unlocked keys, which the key ring caches). Keys are token digests and tenant names, never
//! token secrets.

use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;

use crate::access::grants::{Grant, GrantKey};
use crate::http::context::Principal;
use crate::tenants::TenantId;

/// How long a verified token is trusted without asking the database again.
pub const PRINCIPAL_TTL: Duration = Duration::from_secs(10);
/// Most verified principals kept (one per token in use).
pub const PRINCIPAL_CAPACITY: u64 = 100_000;
/// How long a tenant name is resolved without asking the database again.
pub const TENANT_NAME_TTL: Duration = Duration::from_secs(60);
/// Most tenant names kept.
pub const TENANT_NAME_CAPACITY: u64 = 10_000;
/// How long compiled grants are kept without use (changes drop them at once, on every replica).
pub const GRANT_IDLE: Duration = Duration::from_secs(600);
/// Most compiled grants kept (roles, users' holdings, tenants' groups).
pub const GRANT_CAPACITY: u64 = 50_000;

/// The principal and tenant-name caches.
pub struct Caches {
    principals: Cache<[u8; 32], Arc<Principal>>,
    tenant_ids: Cache<String, TenantId>,
    grants: Cache<(TenantId, GrantKey), Grant>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("principals", &self.principals.entry_count())
            .field("tenant_ids", &self.tenant_ids.entry_count())
            .field("grants", &self.grants.entry_count())
            .finish()
    }
}

impl Default for Caches {
    fn default() -> Caches {
        Caches::new()
    }
}

impl Caches {
    /// Empty caches with the capacities and lifetimes above.
    pub fn new() -> Caches {
        // Invalidation closures let a tenant's entries be dropped without a second index.
        Caches {
            principals: Cache::builder()
                .max_capacity(PRINCIPAL_CAPACITY)
                .time_to_live(PRINCIPAL_TTL)
                .support_invalidation_closures()
                .build(),
            tenant_ids: Cache::builder()
                .max_capacity(TENANT_NAME_CAPACITY)
                .time_to_live(TENANT_NAME_TTL)
                .support_invalidation_closures()
                .build(),
            grants: Cache::builder()
                .max_capacity(GRANT_CAPACITY)
                .time_to_idle(GRANT_IDLE)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// The principal verified for a token digest within the last [`PRINCIPAL_TTL`].
    pub fn principal(&self, digest: &[u8; 32]) -> Option<Arc<Principal>> {
        self.principals.get(digest)
    }

    /// Remembers the principal just verified for a token digest.
    pub fn insert_principal(&self, digest: [u8; 32], principal: Arc<Principal>) {
        self.principals.insert(digest, principal);
    }

    /// Forgets the principal of one token digest: its next use is looked up again.
    pub fn invalidate_principal(&self, digest: &[u8; 32]) {
        self.principals.invalidate(digest);
    }

    /// Forgets every principal whose credential belongs to `tenant`.
    pub fn invalidate_tenant_principals(&self, tenant: TenantId) {
        invalidate_if(&self.principals, move |_, principal| principal.tenant == tenant);
    }

    /// The id of the tenant named `name`, if resolved within the last [`TENANT_NAME_TTL`].
    pub fn tenant_id(&self, name: &str) -> Option<TenantId> {
        self.tenant_ids.get(name)
    }

    /// Remembers the id of the tenant named `name`.
    pub fn insert_tenant_id(&self, name: &str, tenant: TenantId) {
        self.tenant_ids.insert(name.to_owned(), tenant);
    }

    /// Forgets what `name` resolved to.
    pub fn invalidate_tenant_name(&self, name: &str) {
        self.tenant_ids.invalidate(name);
    }

    /// Forgets every name that resolved to `tenant` (its current and any former name).
    pub fn invalidate_tenant_names(&self, tenant: TenantId) {
        invalidate_if(&self.tenant_ids, move |_, id| *id == tenant);
    }

    /// Forgets everything cached here about `tenant`: its principals, names and grants.
    pub fn forget_tenant(&self, tenant: TenantId) {
        self.invalidate_tenant_principals(tenant);
        self.invalidate_tenant_names(tenant);
        self.forget_grants(tenant);
    }

    /// The compiled grant kept under `key` for `tenant`.
    pub fn grant(&self, tenant: TenantId, key: &GrantKey) -> Option<Grant> {
        self.grants.get(&(tenant, key.clone()))
    }

    /// Keeps a compiled grant.
    pub fn insert_grant(&self, tenant: TenantId, key: GrantKey, grant: Grant) {
        self.grants.insert((tenant, key), grant);
    }

    /// Forgets the access tokens of these users and their compiled grants (the users are gone).
    pub fn forget_users(&self, tenant: TenantId, rids: &[Vec<u8>]) {
        let gone: std::collections::HashSet<Vec<u8>> = rids.iter().cloned().collect();
        let keys: Vec<_> = gone.iter().map(|rid| (tenant, GrantKey::User(rid.clone()))).collect();
        invalidate_if(&self.principals, move |_, principal| {
            principal.tenant == tenant && principal.user.as_ref().is_some_and(|rid| gone.contains(rid))
        });
        for key in keys {
            self.grants.invalidate(&key);
        }
    }

    /// Forgets every grant compiled for `tenant` (its groups, roles or policies changed).
    pub fn forget_grants(&self, tenant: TenantId) {
        invalidate_if(&self.grants, move |(owner, _), _| *owner == tenant);
    }
}

/// Registers an invalidation predicate: no later read returns an entry it matches.
fn invalidate_if<K, V>(cache: &Cache<K, V>, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static)
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    if cache.invalidate_entries_if(predicate).is_err() {
        // Only possible for a cache built without invalidation closures: drop everything
        // rather than keep what should be forgotten.
        tracing::error!("cache built without invalidation closures: emptied instead");
        cache.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::context::PrincipalKind;

    fn principal(id: &str, tenant: TenantId) -> Arc<Principal> {
        Arc::new(Principal::admin(id.to_owned(), PrincipalKind::Root, tenant))
    }

    #[test]
    fn an_invalidated_principal_is_gone_and_the_others_stay() {
        let caches = Caches::new();
        caches.insert_principal([1; 32], principal("a", TenantId::new(1)));
        caches.insert_principal([2; 32], principal("b", TenantId::new(1)));
        assert_eq!(caches.principal(&[1; 32]).map(|p| p.id.clone()).as_deref(), Some("a"));
        caches.invalidate_principal(&[1; 32]);
        assert!(caches.principal(&[1; 32]).is_none());
        assert!(caches.principal(&[2; 32]).is_some());
        // Verified again, it is cached again.
        caches.insert_principal([1; 32], principal("a", TenantId::new(1)));
        assert!(caches.principal(&[1; 32]).is_some());
    }

    #[test]
    fn a_forgotten_tenant_loses_its_principals_and_names_only() {
        let caches = Caches::new();
        caches.insert_principal([1; 32], principal("acme-root", TenantId::new(2)));
        caches.insert_principal([2; 32], principal("acme-other", TenantId::new(2)));
        caches.insert_principal([3; 32], principal("main-root", TenantId::new(1)));
        caches.insert_tenant_id("acme", TenantId::new(2));
        caches.insert_tenant_id("acme-old", TenantId::new(2));
        caches.insert_tenant_id("main", TenantId::new(1));
        caches.forget_tenant(TenantId::new(2));
        assert!(caches.principal(&[1; 32]).is_none());
        assert!(caches.principal(&[2; 32]).is_none());
        assert!(caches.tenant_id("acme").is_none());
        assert!(caches.tenant_id("acme-old").is_none());
        assert!(caches.principal(&[3; 32]).is_some());
        assert_eq!(caches.tenant_id("main"), Some(TenantId::new(1)));
        // What is learnt after the forgetting is kept.
        caches.insert_principal([1; 32], principal("acme-root", TenantId::new(2)));
        caches.insert_tenant_id("acme", TenantId::new(2));
        assert!(caches.principal(&[1; 32]).is_some());
        assert_eq!(caches.tenant_id("acme"), Some(TenantId::new(2)));
    }

    #[test]
    fn a_tenant_name_is_invalidated_alone() {
        let caches = Caches::new();
        caches.insert_tenant_id("acme", TenantId::new(2));
        caches.insert_tenant_id("other", TenantId::new(3));
        caches.invalidate_tenant_name("acme");
        assert!(caches.tenant_id("acme").is_none());
        assert_eq!(caches.tenant_id("other"), Some(TenantId::new(3)));
    }
}
