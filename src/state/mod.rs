//! The shared state of the running vault: storage, keys, writers, tunables and what is cached.
//!
//! It lives apart from the router so that the domains, which take `&AppState`, and the router,
//! which routes the domains' operations, do not import each other. Handlers and middleware that
//! need only one part take that part (`State<Db>`, `State<Health>`, `State<Metrics>`,
//! `State<RateLimits>`) through the [`FromRef`] implementations below.

pub mod caches;
mod settings;

use std::ops::Deref;
use std::sync::Arc;

use axum::extract::FromRef;

pub use caches::Caches;
pub use settings::{Settings, XTOKEN_DEFAULT_SECS};

use crate::audit::AuditWriter;
use crate::clock::Clock;
use crate::crypto::{KeyRing, TenantKeys};
use crate::http::ApiError;
use crate::http::metrics::Metrics;
use crate::http::rate::RateLimits;
use crate::store::{self, Db, Health};
use crate::tenants::TenantId;
use crate::tokens::inserts::TokenInserts;
use crate::users::inserts::UserInserts;

/// Shared state of the running vault.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The contents of [`AppState`].
pub struct Inner {
    /// Storage.
    pub db: Db,
    /// Unwrapped keys.
    pub keys: Arc<KeyRing>,
    /// Group-commit audit writer.
    pub audit: AuditWriter,
    /// Whether the database is reachable (see [`store::health`]).
    pub health: Health,
    /// Group commit for `UserCreate`.
    pub user_inserts: UserInserts,
    /// Group commit of `TokenCreate` (tokens that are not unique).
    pub token_inserts: TokenInserts,
    /// Tunables.
    pub settings: Settings,
    /// Time source.
    pub clock: Clock,
    /// Prometheus instruments.
    pub metrics: Metrics,
    /// The master-key rotation job's instruments (registered on [`Inner::metrics`]).
    pub key_job_metrics: crate::keys::metrics::JobMetrics,
    /// The connector erasure worker's instruments (registered on [`Inner::metrics`]).
    pub erasure_metrics: crate::connectors::metrics::ErasureMetrics,
    /// Rate limits per client address.
    pub rates: RateLimits,
    /// The portal login's rate limits, per client address and per identity.
    pub portal: crate::portal::PortalLimits,
    /// Verified principals and resolved tenant names.
    pub caches: Caches,
    /// Checkpoints of the SQLite write-ahead log after erasures.
    pub checkpoints: store::checkpoint::Checkpoints,
    /// The licence in force, as last read.
    pub licence: crate::licence::InForce,
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("backend", &self.db.backend()).finish()
    }
}

impl FromRef<AppState> for Db {
    fn from_ref(app: &AppState) -> Db {
        app.db.clone()
    }
}

impl FromRef<AppState> for Health {
    fn from_ref(app: &AppState) -> Health {
        app.health.clone()
    }
}

impl FromRef<AppState> for Metrics {
    fn from_ref(app: &AppState) -> Metrics {
        app.metrics.clone()
    }
}

impl FromRef<AppState> for RateLimits {
    fn from_ref(app: &AppState) -> RateLimits {
        app.rates.clone()
    }
}

impl AppState {
    /// Builds the state around an unlocked key ring; starts the group-commit writers.
    pub fn new(db: Db, keys: Arc<KeyRing>, settings: Settings, clock: Clock) -> AppState {
        let rates = RateLimits::new(settings.rate.clone());
        let portal = crate::portal::PortalLimits::new(&settings.portal);
        let metrics = Metrics::new();
        let key_job_metrics = crate::keys::metrics::JobMetrics::register(&metrics);
        let erasure_metrics = crate::connectors::metrics::ErasureMetrics::register(&metrics);
        AppState(Arc::new(Inner {
            audit: AuditWriter::spawn(db.clone()),
            user_inserts: UserInserts::spawn(db.clone()),
            token_inserts: TokenInserts::spawn(db.clone()),
            health: db.health(),
            checkpoints: store::checkpoint::Checkpoints::spawn(&db),
            db,
            keys,
            settings,
            clock,
            metrics,
            key_job_metrics,
            erasure_metrics,
            rates,
            portal,
            caches: Caches::new(),
            licence: crate::licence::InForce::default(),
        }))
    }

    /// A tenant's keys, unwrapping them on first use.
    pub async fn tenant_keys(&self, tenant: TenantId) -> Result<Arc<TenantKeys>, ApiError> {
        if let Some(keys) = self.keys.cached(tenant) {
            return Ok(keys);
        }
        let stored = self.db.tenant(tenant).vault().tenant_master_keys().await?;
        if stored.is_empty() {
            // Deleted (its keys are destroyed first) or never was.
            return Err(ApiError::not_found("The tenant record was not found"));
        }
        // Wrapped under a key this process does not hold: a rotation completed by a replica
        // started with the new key (see `system::wrapping_key`).
        self.keys.unlock(tenant, &stored).map_err(|_| ApiError::from(store::StoreError::WrappingKeyChanged))
    }

    /// The id of a tenant by name.
    pub(crate) async fn tenant_id(&self, name: &str) -> Result<Option<TenantId>, ApiError> {
        if let Some(id) = self.caches.tenant_id(name) {
            return Ok(Some(id));
        }
        let id = store::tenants::id_by_name(&self.db, name).await?;
        if let Some(id) = id {
            self.caches.insert_tenant_id(name, id);
        }
        Ok(id)
    }

    /// Drops everything this process caches about a tenant: the principals of its credentials,
    /// the names that resolved to it and its unlocked keys. The next call that needs them asks
    /// the database again (a tenant changed or deleted, here or by another replica).
    pub fn forget_tenant(&self, tenant: TenantId) {
        self.caches.forget_tenant(tenant);
        self.keys.forget(tenant);
    }
}
