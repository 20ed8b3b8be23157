//! The chainer: links committed events into their tenant's chain (see [`super::chain`]) about
//! a second after they commit, on whichever replica gets the tenant's head first, and logs each
//! tenant's head now and then so that an operator can anchor it outside the vault.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::chain;
use crate::crypto::TenantKeys;
use crate::crypto::index::IndexKey;
use crate::http::ApiError;
use crate::state::AppState;
use crate::store::audit_chain::{self, BATCH, ChainRow, Chained, Head};
use crate::tenants::TenantId;

/// How often pending events are chained.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// How often a moved head is logged.
pub const ANCHOR_INTERVAL: Duration = Duration::from_secs(600);

/// Chains every pending event of `tenant` (in batches) and returns how many. With `wait` false
/// a head held by another transaction (another replica chaining it) ends the work at once.
pub async fn extend(app: &AppState, tenant: TenantId, wait: bool) -> Result<u64, ApiError> {
    let mut keys = app.tenant_keys(tenant).await?;
    let chain = app.db.tenant(tenant).audit_chain();
    let mut total = 0;
    // An event sealed under a master-key version this replica has not loaded yet (rotated
    // through another one a moment ago) stops the batch before it, once: the keys are read
    // again and the batch goes on. What still does not open is covered as stored.
    let mut reloaded = false;
    loop {
        let stopped = AtomicBool::new(false);
        let key = keys.audit_chain_key();
        let chained = chain
            .extend(app.clock.now_ms(), wait, |head, rows, live| {
                let planned = plan(key, &keys, head, rows, live, !reloaded);
                stopped.store(planned.len() < rows.len(), Ordering::Relaxed);
                planned
            })
            .await?;
        let Some(n) = chained else { return Ok(total) };
        total += n as u64;
        if stopped.load(Ordering::Relaxed) {
            app.keys.forget(tenant);
            keys = app.tenant_keys(tenant).await?;
            reloaded = true;
        } else if (n as i64) < BATCH {
            return Ok(total);
        }
    }
}

/// Positions and links for `rows` after `head`. An event whose subject no longer exists (it
/// committed after its user was erased) loses its links now; an event older than the chain
/// gets the MAC of its links. With `stop_unopened`, the events from the first whose tenant
/// payload does not open with `keys` are left for later.
fn plan(
    key: &IndexKey,
    keys: &TenantKeys,
    head: &Head,
    rows: &[ChainRow],
    live: &HashSet<Vec<u8>>,
    stop_unopened: bool,
) -> Vec<Chained> {
    let mut previous = head.link.clone();
    let mut seq = head.seq;
    let mut chained = Vec::with_capacity(rows.len());
    for row in rows {
        let payload = match chain::covered_payload(keys, row) {
            Some(payload) => payload,
            None if stop_unopened => break,
            None => row.payload.clone(),
        };
        seq += 1;
        let mac = chain::link(key, &previous, seq, row, &payload).to_vec();
        previous.clone_from(&mac);
        let gone = row.subject_rid.as_ref().is_some_and(|rid| !live.contains(rid));
        let erased = gone.then(|| chain::erased_tag(key, &row.uuid).to_vec());
        let link = match (&row.link_mac, &row.user_ref, &row.subject_rid) {
            (None, Some(user_ref), Some(rid)) if !gone => Some(chain::link_tag(key, &row.uuid, user_ref, rid).to_vec()),
            _ => None,
        };
        chained.push(Chained { id: row.id, seq, mac, erased, link });
    }
    chained
}

/// Runs the chainer every [`INTERVAL`] until the process ends.
pub fn spawn(app: AppState) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut logged: HashMap<TenantId, i64> = HashMap::new();
        let mut last_anchor: Option<Instant> = None;
        loop {
            ticker.tick().await;
            if !app.db.health().is_up() {
                continue;
            }
            match audit_chain::tenants_pending(&app.db).await {
                Ok(tenants) => {
                    for tenant in tenants {
                        if let Err(err) = extend(&app, tenant, false).await {
                            tracing::warn!(tenant = tenant.get(), error = %err, "audit events not chained yet");
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot find audit events to chain"),
            }
            if last_anchor.is_none_or(|at| at.elapsed() >= ANCHOR_INTERVAL) {
                last_anchor = Some(Instant::now());
                log_heads(&app, &mut logged).await;
            }
        }
    });
}

/// Logs the head of every tenant whose chain moved since it was last logged.
async fn log_heads(app: &AppState, logged: &mut HashMap<TenantId, i64>) {
    let tenants = match crate::store::retention::tenant_ids(&app.db).await {
        Ok(tenants) => tenants,
        Err(err) => return tracing::warn!(error = %err, "cannot list tenants for the audit chain heads"),
    };
    for tenant in tenants {
        match app.db.tenant(tenant).audit_chain().head().await {
            Ok(head) if head.seq > 0 && logged.get(&tenant) != Some(&head.seq) => {
                tracing::info!(tenant = tenant.get(), seq = head.seq, head = %hex::encode(&head.link), "audit chain head");
                logged.insert(tenant, head.seq);
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(tenant = tenant.get(), error = %err, "cannot read the audit chain head"),
        }
    }
}
