//! The rotation job's instruments on `/metrics`. Labels are phase names only (a closed set):
//! never a tenant's name, and no tenant id, which would make the series unbounded.

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts};

use crate::http::metrics::Metrics;

/// Counters and gauges of the master-key rotation job.
#[derive(Clone)]
pub struct JobMetrics {
    pending: IntGauge,
    resealed: IntCounterVec,
    unreadable: IntCounterVec,
    retired: IntCounter,
}

impl JobMetrics {
    /// Builds the instruments and registers them with `metrics` (left unregistered, and so
    /// unexported, if that fails: metrics never fail the vault).
    pub fn register(metrics: &Metrics) -> JobMetrics {
        let job = JobMetrics {
            pending: IntGauge::new(
                "bunker_key_rotation_jobs_pending",
                "Tenants whose master-key rotation job has not finished.",
            )
            .expect("valid metric"),
            resealed: IntCounterVec::new(
                Opts::new("bunker_key_rotation_resealed_total", "Blobs sealed again under the active master key."),
                &["phase"],
            )
            .expect("valid metric"),
            unreadable: IntCounterVec::new(
                Opts::new(
                    "bunker_key_rotation_unreadable_total",
                    "Blobs the rotation job found that no master key version opens.",
                ),
                &["phase"],
            )
            .expect("valid metric"),
            retired: IntCounter::new("bunker_key_versions_retired_total", "Master key versions retired.")
                .expect("valid metric"),
        };
        metrics.register(Box::new(job.pending.clone()));
        metrics.register(Box::new(job.resealed.clone()));
        metrics.register(Box::new(job.unreadable.clone()));
        metrics.register(Box::new(job.retired.clone()));
        job
    }

    pub(super) fn set_pending(&self, count: usize) {
        self.pending.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    pub(super) fn resealed(&self, phase: &str, count: u64) {
        self.resealed.with_label_values(&[phase]).inc_by(count);
    }

    pub(super) fn unreadable(&self, phase: &str, count: u64) {
        self.unreadable.with_label_values(&[phase]).inc_by(count);
    }

    pub(super) fn retired(&self, count: u64) {
        self.retired.inc_by(count);
    }
}
