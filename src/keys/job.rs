//! The rotation job: after a rotation, seals every tenant-level blob of an older master key
//! version again under the active one, then retires the older versions.
//!
//! Every replica runs it; a lease on the tenant's job row lets one work a tenant at a time, and
//! each batch commits with its cursor only while the lease is held, so a job stopped anywhere
//! (a kill, a lost lease) resumes after its last committed batch. Blobs are replaced by compare
//! and swap, so a record changed meanwhile keeps its change. Retirement waits
//! [`JobSettings::retire_grace`] after the rotation (every replica has then forgotten the older
//! keys and every request that held them has ended), counts what is still sealed under an older
//! version in the retiring transaction, and starts another pass instead if anything is.

use std::sync::Arc;
use std::time::Duration;

use crate::crypto::TenantKeys;
use crate::crypto::keyring::kek_check;
use crate::crypto::secrets::random_uuid_string;
use crate::http::ApiError;
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::key_rotation::{self, Finish, Job, Phase, RowKey, Swap};
use crate::tenants::TenantId;

/// How often each replica looks for jobs to work.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long a lease lasts without a batch renewing it.
const LEASE_MS: i64 = 30_000;
/// Passes over every phase before a job that keeps finding older blobs stops (they are blobs no
/// key opens: the older versions are then kept, and the log says so).
const MAX_PASSES: i64 = 3;

/// Tunables of the job.
#[derive(Debug, Clone)]
pub struct JobSettings {
    /// Blobs read and sealed again per transaction (`BUNKER_KEY_JOB_BATCH`).
    pub batch: i64,
    /// Pause between two batches, leaving the database to live traffic (`BUNKER_KEY_JOB_PAUSE_MS`).
    pub pause: Duration,
    /// Least time between a rotation and the retirement of older versions
    /// (`BUNKER_KEY_RETIRE_GRACE`): longer than a request may run plus the change feed's bound,
    /// so no request still holding older keys can seal under a retired version.
    pub retire_grace: Duration,
}

impl Default for JobSettings {
    fn default() -> JobSettings {
        JobSettings { batch: 500, pause: Duration::from_millis(10), retire_grace: Duration::from_secs(70) }
    }
}

/// Works every pending job every [`INTERVAL`] until the process ends.
pub fn spawn(app: AppState) {
    tokio::spawn(async move {
        // This replica's name on the leases it takes (not otherwise meaningful).
        let owner = random_uuid_string();
        let mut ticker = tokio::time::interval(INTERVAL);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if !app.health.is_up() {
                continue;
            }
            if let Err(err) = run_once(&app, &owner).await {
                tracing::warn!(error = %err, "master-key rotation job: cannot list pending jobs");
            }
        }
    });
}

/// Works each pending job as far as it can go now, as `owner`.
pub async fn run_once(app: &AppState, owner: &str) -> Result<(), StoreError> {
    let pending = key_rotation::pending(&app.db).await?;
    app.key_job_metrics.set_pending(pending.len());
    for tenant in pending {
        if let Err(err) = work(app, owner, tenant).await {
            tracing::warn!(tenant = tenant.get(), error = %err, "master-key rotation job: step failed; retrying later");
        }
    }
    Ok(())
}

/// Runs one tenant's job batch after batch while this replica holds its lease.
async fn work(app: &AppState, owner: &str, tenant: TenantId) -> Result<(), ApiError> {
    let settings = &app.settings.key_job;
    loop {
        let now_ms = app.clock.now_ms();
        let Some(job) = key_rotation::claim(&app.db, tenant, owner, now_ms, now_ms + LEASE_MS).await? else {
            return Ok(());
        };
        let keys = keys_of(app, tenant, job.version).await?;
        if keys.active_version() != job.version {
            // A rotation committed after the claim: the next round claims its job.
            return Ok(());
        }
        match job.phase {
            Some(phase) => step(app, &job, owner, &keys, phase).await?,
            None => {
                let grace = i64::try_from(settings.retire_grace.as_millis()).unwrap_or(i64::MAX);
                if now_ms < job.rotated_ms.saturating_add(grace) {
                    return Ok(());
                }
                return retire(app, &job, owner, &keys).await;
            }
        }
        tokio::time::sleep(settings.pause).await;
    }
}

/// The tenant's keys, read again when the cached ones predate version `version`.
async fn keys_of(app: &AppState, tenant: TenantId, version: u32) -> Result<Arc<TenantKeys>, ApiError> {
    let keys = app.tenant_keys(tenant).await?;
    if keys.active_version() >= version {
        return Ok(keys);
    }
    app.keys.forget(tenant);
    app.tenant_keys(tenant).await
}

/// Seals one batch of `phase` again and moves the cursor past it.
async fn step(app: &AppState, job: &Job, owner: &str, keys: &TenantKeys, phase: Phase) -> Result<(), ApiError> {
    let limit = app.settings.key_job.batch.max(1);
    let header = keys.current_header();
    let rows = key_rotation::batch(&app.db, job.tenant, phase, &job.cursor, &header, limit).await?;
    let mut swaps: Vec<Swap> = Vec::with_capacity(rows.len());
    let mut unreadable = 0;
    for row in &rows {
        match keys.reseal(phase.seal_table(), &row.record, &row.blob) {
            Ok(Some(new)) => swaps.push((row.key.clone(), row.blob.clone(), new)),
            Ok(None) => {}
            Err(_) => unreadable += 1,
        }
    }
    let full = i64::try_from(rows.len()).unwrap_or(i64::MAX) >= limit;
    let next = match rows.last() {
        Some(last) if full => Some((phase, last.key.clone())),
        _ => phase.next(job.tenant).map(|next| (next, RowKey::start(next))),
    };
    let Some(replaced) = key_rotation::commit_batch(&app.db, job, owner, phase, &swaps, next.clone()).await? else {
        return Ok(());
    };
    app.key_job_metrics.resealed(phase.name(), replaced);
    if unreadable > 0 {
        app.key_job_metrics.unreadable(phase.name(), unreadable);
        tracing::error!(
            tenant = job.tenant.get(),
            phase = phase.name(),
            count = unreadable,
            "master-key rotation job: blobs that no key version opens were left as they are"
        );
    }
    tracing::debug!(
        tenant = job.tenant.get(),
        phase = phase.name(),
        replaced,
        "master-key rotation job: batch sealed again"
    );
    if next.as_ref().is_none_or(|(next, _)| *next != phase) {
        tracing::info!(
            tenant = job.tenant.get(),
            version = job.version,
            phase = phase.name(),
            resealed = job.resealed + i64::try_from(replaced).unwrap_or(0),
            "master-key rotation job: phase done"
        );
    }
    Ok(())
}

/// Retires the older versions if nothing is sealed under them any more (not while a
/// wrapping-key rotation is pending).
async fn retire(app: &AppState, job: &Job, owner: &str, keys: &TenantKeys) -> Result<(), ApiError> {
    let now_ms = app.clock.now_ms();
    let check = kek_check(&app.keys.kek());
    let last_pass = job.passes + 1 >= MAX_PASSES;
    let tenant = job.tenant.get();
    let finished = key_rotation::finish(&app.db, job, owner, &keys.current_header(), &check, now_ms, last_pass).await;
    let finished = match finished {
        // Master keys do not change while a wrapping-key rotation is pending: retire after it.
        Err(StoreError::RotationPending) => {
            tracing::debug!(tenant, "master-key rotation job: retirement waits for the wrapping-key rotation");
            return Ok(());
        }
        other => other?,
    };
    match finished {
        Finish::Retired(count) => {
            app.keys.forget(job.tenant);
            app.key_job_metrics.retired(count);
            tracing::info!(
                tenant,
                version = job.version,
                retired = count,
                resealed = job.resealed,
                "master-key rotation job: done, older versions retired"
            );
        }
        Finish::Remaining(count) => tracing::warn!(
            tenant,
            count,
            "master-key rotation job: blobs sealed under older versions meanwhile; another pass"
        ),
        Finish::Stalled(count) => tracing::error!(
            tenant,
            count,
            "master-key rotation job: stopped with blobs that no key opens; the older versions are kept"
        ),
        Finish::Lost => {}
    }
    Ok(())
}
