//! The retention sweeper: erases records whose lifetime ended and audits each erasure.
//!
//! Reads already hide expired records; the sweeper makes the erasure real. On PostgreSQL a
//! transaction-scoped advisory lock lets one replica sweep at a time.

use crate::tenants::TenantId;
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::audit::event::{self, EventBody, EventHeader};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::retention::{self, Erased};
use crate::store::tenants;

/// How often the background sweeper runs.
pub const INTERVAL: Duration = Duration::from_secs(60);

/// Erases everything expired now; returns per-tenant counts (`None`: another replica swept).
pub async fn sweep_once(app: &AppState) -> Result<Option<BTreeMap<TenantId, Erased>>, StoreError> {
    let mut keys = BTreeMap::new();
    for tenant in retention::tenant_ids(&app.db).await? {
        if let Ok(tenant_keys) = app.tenant_keys(tenant).await {
            keys.insert(tenant, tenant_keys);
        }
    }
    let now_ms = app.clock.now_ms();
    let erased_tags = |tenant: TenantId| {
        let keys = keys.get(&tenant)?.clone();
        let tag: crate::store::audit_chain::ErasedTag =
            Box::new(move |uuid: &str| crate::audit::chain::erased_tag(keys.audit_chain_key(), uuid));
        Some(tag)
    };
    let swept = retention::sweep(&app.db, now_ms.div_euclid(1000), erased_tags, |erased| {
        erased
            .iter()
            .filter(|(_, counts)| **counts != Erased::default())
            .filter_map(|(tenant, counts)| {
                let keys = keys.get(tenant)?;
                let header = EventHeader {
                    tenant: *tenant,
                    principal_kind: "system",
                    principal_id: "retention",
                    operation: "RetentionSweep",
                    created_ms: now_ms,
                };
                // Non-identifying facts only: the erased users' tokens are not recorded.
                let extra = json!({
                    "erased_users": counts.users,
                    "erased_held_users": counts.held_users,
                    "erased_app_records": counts.app_records,
                    "erased_sessions": counts.sessions,
                    "erased_shared_records": counts.shared_records,
                    "erased_tokens": counts.tokens,
                    "erased_files": counts.files,
                });
                Some(event::seal(&header, &EventBody { extra: Some(&extra), ..EventBody::default() }, 200, keys))
            })
            .collect()
    })
    .await;
    let erased_any = |erased: &BTreeMap<TenantId, Erased>| erased.values().any(|counts| *counts != Erased::default());
    if swept.as_ref().is_ok_and(|swept| swept.as_ref().is_some_and(erased_any)) {
        app.checkpoints.after_erasure();
    }
    finish_tenant_deletions(app).await;
    // Access tokens past their expiry are refused already; this only keeps the table small.
    if let Err(err) = crate::store::roles::sweep_expired_tokens(&app.db, now_ms.div_euclid(1000)).await {
        tracing::warn!(error = %err, "cannot remove expired access tokens");
    }
    // Portal captchas and codes past their expiry are refused already; the same.
    if let Err(err) = crate::store::portal::sweep_expired(&app.db, now_ms.div_euclid(1000)).await {
        tracing::warn!(error = %err, "cannot remove expired portal captchas and codes");
    }
    // Blobs of erased files (and any a failed removal left queued) go after the commit.
    crate::files::blobs::purge(app).await;
    swept
}

/// Removes the rows of deleted tenants that a stopped process left (their keys are already
/// gone), and the change feed's old entries.
async fn finish_tenant_deletions(app: &AppState) {
    let now_ms = app.clock.now_ms();
    match tenants::unpurged(&app.db).await {
        Ok(ids) => {
            for id in ids {
                if let Err(err) = tenants::purge(&app.db, id, now_ms.div_euclid(1000)).await {
                    tracing::error!(error = %err, tenant = id.get(), "deleted tenant's rows not purged");
                }
            }
        }
        Err(err) => tracing::error!(error = %err, "cannot list deleted tenants"),
    }
    if let Err(err) = tenants::prune_changes(&app.db, now_ms - crate::tenants::changes::KEEP_MS).await {
        tracing::warn!(error = %err, "change feed not pruned");
    }
}

/// Runs [`sweep_once`] every [`INTERVAL`] until the process ends.
pub fn spawn(app: AppState) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match sweep_once(&app).await {
                Ok(Some(erased)) if !erased.is_empty() => {
                    tracing::info!(tenants = erased.len(), "expired records erased")
                }
                Ok(_) => {}
                Err(err) => tracing::error!(error = %err, "retention sweep failed"),
            }
        }
    });
}
