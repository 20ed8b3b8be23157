//! Erasure across systems: when the vault erases a user, connectors marked for erasure erase the
//! user's rows too. The vault never waits on an external database: the deletion's transaction
//! queues one job per such connector (with the user's identities, sealed), and this worker
//! carries the jobs out afterwards, retrying with backoff, and records each outcome in the audit
//! trail. A job is claimed under a lease, so one replica at a time works it, and a job whose
//! worker stopped is taken over when its lease runs out: nothing is lost to a restart.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use zeroize::Zeroizing;

use super::metrics::Outcome;
use super::service::{self, Identities};
use crate::audit::event::{self, EventBody, EventHeader};
use crate::crypto::keyring::TenantKeys;
use crate::crypto::random;
use crate::http::ApiError;
use crate::state::AppState;
use crate::store::audit::AuditRecord;
use crate::store::connectors::{self, ErasureJob, NewErasure};

/// Table label a queued erasure's identities are sealed under (record label: its `seal_id`).
const IDENTITIES_TABLE: &str = "connector_erasures";
/// Jobs claimed per pass.
const BATCH: i64 = 16;

/// The worker's pace.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How often it looks for due jobs.
    pub interval: Duration,
    /// How long a claim holds a job; an attempt is cut off at four fifths of it.
    pub lease: Duration,
    /// Delay before the first retry; doubled after each failure up to `max_backoff`.
    pub backoff: Duration,
    /// Longest delay between attempts.
    pub max_backoff: Duration,
    /// Attempts before the job is given up (and its failure recorded).
    pub max_attempts: i64,
}

impl Default for WorkerSettings {
    fn default() -> WorkerSettings {
        WorkerSettings {
            interval: Duration::from_secs(5),
            lease: Duration::from_secs(300),
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
            max_attempts: 12,
        }
    }
}

/// The erasure to queue with a user's deletion (`origin`: the deletion event's uuid).
pub fn queued(keys: &TenantKeys, origin: &str, token: &str, profile: &serde_json::Value, now_ms: i64) -> NewErasure {
    let identities = Identities::of(token, profile);
    let plain = Zeroizing::new(serde_json::to_vec(&identities.0).unwrap_or_default());
    let mut seal_id = [0u8; 16];
    random::fill(&mut seal_id);
    NewErasure {
        origin: origin.to_owned(),
        seal_id: seal_id.to_vec(),
        identities: keys.seal(IDENTITIES_TABLE, &seal_id, &plain),
        created_ms: now_ms,
    }
}

/// Runs the due jobs once, one claim at a time (a claim's lease covers the one attempt it is
/// for); returns how many ended (erased or given up).
pub async fn work_once(app: &AppState) -> Result<usize, crate::store::StoreError> {
    let lease = i64::try_from(app.settings.connectors.worker.lease.as_millis()).unwrap_or(i64::MAX);
    let mut ended = 0;
    // Jobs due when the pass starts: one put back for a later attempt waits for the next pass.
    let due_by = app.clock.now_ms();
    for _ in 0..BATCH {
        let claimed = connectors::claim_due(&app.db, app.clock.now_ms(), due_by, lease, 1).await?;
        let Some(job) = claimed.into_iter().next() else { break };
        if work(app, &job).await? {
            ended += 1;
        }
    }
    Ok(ended)
}

/// One attempt at a claimed job; true when the job ended.
async fn work(app: &AppState, job: &ErasureJob) -> Result<bool, crate::store::StoreError> {
    let worker = &app.settings.connectors.worker;
    let Ok(keys) = app.tenant_keys(job.tenant).await else {
        // Not this replica's to work now: back to the queue, the attempt not counted.
        tracing::warn!(tenant = job.tenant.get(), "connector erasure postponed: the tenant's keys are not at hand");
        app.erasure_metrics.count(Outcome::Postponed);
        connectors::retry(&app.db, job, app.clock.now_ms() + backoff(worker, 1), None).await?;
        return Ok(false);
    };
    let attempt = job.attempts + 1;
    // Well inside the lease, so no other replica takes the job over while this attempt runs.
    let limit = worker.lease.mul_f64(0.8);
    let outcome = if job.connector.status != super::spec::ACTIVE {
        Err("the connector is disabled".to_owned())
    } else {
        tokio::time::timeout(limit, attempt_erasure(app, &keys, job))
            .await
            .unwrap_or_else(|_| Err("the attempt took too long".to_owned()))
    };
    let connectorid = job.connector.id;
    match outcome {
        Ok(changed) => {
            let total: u64 = changed.values().sum();
            let extra = json!({"connectorid": connectorid, "origin": job.origin, "attempts": attempt,
                               "outcome": "erased", "changed": changed, "total": total});
            app.erasure_metrics.count(Outcome::Erased);
            connectors::finish(&app.db, job, &outcome_event(&keys, job, &extra, 200, app.clock.now_ms())).await
        }
        Err(reason) if attempt >= worker.max_attempts => {
            tracing::error!(connector = connectorid, attempts = attempt, reason = %reason, "connector erasure given up");
            let extra = json!({"connectorid": connectorid, "origin": job.origin, "attempts": attempt,
                               "outcome": "failed", "failure": reason});
            app.erasure_metrics.count(Outcome::Failed);
            connectors::finish(&app.db, job, &outcome_event(&keys, job, &extra, 502, app.clock.now_ms())).await
        }
        Err(reason) => {
            tracing::warn!(connector = connectorid, attempts = attempt, reason = %reason, "connector erasure will be retried");
            app.erasure_metrics.count(Outcome::Retried);
            let due = app.clock.now_ms() + backoff(worker, attempt);
            connectors::retry(&app.db, job, due, Some(&reason)).await?;
            Ok(false)
        }
    }
}

/// The delay after `attempt` failures: `backoff` doubled each time, at most `max_backoff`, and
/// at least a millisecond (a job put back is never claimed again by the same pass).
fn backoff(worker: &WorkerSettings, attempt: i64) -> i64 {
    let base = i64::try_from(worker.backoff.as_millis()).unwrap_or(i64::MAX);
    let max = i64::try_from(worker.max_backoff.as_millis()).unwrap_or(i64::MAX);
    let shift = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    base.saturating_mul(1_i64 << shift).min(max).max(1)
}

/// One attempt: the rows changed per table, or a reason naming no value.
async fn attempt_erasure(app: &AppState, keys: &TenantKeys, job: &ErasureJob) -> Result<BTreeMap<String, u64>, String> {
    let plain = Zeroizing::new(
        keys.open(IDENTITIES_TABLE, &job.seal_id, &job.identities)
            .map_err(|_| "identities cannot be opened".to_owned())?,
    );
    let identities = Identities(serde_json::from_slice(&plain).map_err(|_| "identities cannot be read".to_owned())?);
    let endpoint = service::endpoint_of(keys, &job.connector).map_err(|err| reason_of(&err))?;
    let (mut connection, table) = service::open(app, &endpoint).await.map_err(|unreached| unreached.reason())?;
    let (matches, columns) = match identities.matches(&job.connector, &table) {
        Ok(found) => found,
        Err(err) => {
            connection.close().await;
            return Err(reason_of(&err));
        }
    };
    let how = service::erase_mode(&job.connector, columns);
    let changed = connection.erase(&table, &matches, &how, false).await;
    connection.close().await;
    changed.map_err(|failure| failure.reason())
}

fn reason_of(err: &ApiError) -> String {
    match err {
        ApiError::Internal(_) => "Internal error".to_owned(),
        other => other.to_string(),
    }
}

/// The event recording a job's outcome, in the job's tenant; it names the deletion it follows,
/// never the user.
fn outcome_event(
    keys: &std::sync::Arc<TenantKeys>,
    job: &ErasureJob,
    extra: &serde_json::Value,
    status: u16,
    now_ms: i64,
) -> AuditRecord {
    let header = EventHeader {
        tenant: job.tenant,
        principal_kind: "system",
        principal_id: "connectors",
        operation: "ConnectorErasure",
        created_ms: now_ms,
    };
    event::seal(&header, &EventBody { extra: Some(extra), ..EventBody::default() }, status, keys)
}

/// Runs [`work_once`] every `interval` until the process ends.
pub fn spawn(app: AppState) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(app.settings.connectors.worker.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            if !app.health.is_up() {
                continue;
            }
            if let Err(err) = work_once(&app).await {
                tracing::warn!(error = %err, "connector erasures not worked");
            }
        }
    });
}
