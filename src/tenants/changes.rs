//! Keeping this replica's caches in step with changes made through the others.
//!
//! A change that other replicas must honour (a tenant renamed or deleted, its tokens revoked) is
//! written to the `vault_changes` feed in the transaction that makes it. Every replica reads the
//! feed's last minute every [`POLL`] and forgets what it cached about each tenant named there,
//! so a change made through one replica holds on all of them within [`POLL`] plus a query:
//! the bound the README states is one second.

use std::collections::HashMap;
use std::time::Duration;

use crate::state::AppState;
use crate::store::tenants as store;

/// How often the feed is read.
pub const POLL: Duration = Duration::from_millis(250);
/// How far back each read looks, by the writers' clocks (so a clock behind by less than this,
/// or a transaction that commits late, is still seen).
const WINDOW_MS: i64 = 60_000;
/// How long the sweeper keeps feed entries.
pub const KEEP_MS: i64 = 10 * 60_000;

/// Applies the entries of the feed not applied yet; returns how many.
pub async fn apply_new(app: &AppState, applied: &mut HashMap<i64, i64>) -> Result<usize, crate::store::StoreError> {
    let now_ms = app.clock.now_ms();
    let changes = store::changes_since(&app.db, now_ms - WINDOW_MS).await?;
    let mut count = 0;
    for change in changes {
        if applied.insert(change.id, now_ms).is_none() {
            match change.kind.as_str() {
                store::Change::ACCESS => app.caches.forget_grants(change.tenant),
                // A new master key version, or older ones retired: the keys are unwrapped again.
                store::Change::KEYS => app.keys.forget(change.tenant),
                store::Change::LICENCE => app.licence.forget(),
                store::Change::TOKENS => {
                    app.caches.invalidate_tenant_principals(change.tenant);
                    app.caches.forget_grants(change.tenant);
                }
                _ => app.forget_tenant(change.tenant),
            }
            count += 1;
        }
    }
    applied.retain(|_, at| *at > now_ms - 2 * WINDOW_MS);
    Ok(count)
}

/// Reads the feed every [`POLL`] until the process ends.
pub fn spawn(app: AppState) {
    tokio::spawn(async move {
        let mut applied = HashMap::new();
        let mut ticker = tokio::time::interval(POLL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if !app.health.is_up() {
                continue;
            }
            if let Err(err) = apply_new(&app, &mut applied).await {
                tracing::warn!(error = %err, "cannot read the change feed");
            }
        }
    });
}
