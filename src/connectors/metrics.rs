//! The erasure worker's instruments on `/metrics`. The one label is the outcome (a closed set):
//! never a connector's name, tenant or host.

use prometheus::{IntCounterVec, Opts};

use crate::http::metrics::Metrics;

/// What became of erasure attempts.
#[derive(Clone)]
pub struct ErasureMetrics {
    outcomes: IntCounterVec,
}

/// An attempt's outcome.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// The user's rows were erased; the job ended.
    Erased,
    /// The attempt failed; the job waits for another.
    Retried,
    /// The last attempt failed; the job ended, its failure recorded.
    Failed,
    /// Not attempted here (the tenant's keys were not at hand); the job waits.
    Postponed,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Erased => "erased",
            Outcome::Retried => "retried",
            Outcome::Failed => "failed",
            Outcome::Postponed => "postponed",
        }
    }
}

impl ErasureMetrics {
    /// Builds the instruments and registers them with `metrics` (left unregistered, and so
    /// unexported, if that fails: metrics never fail the vault).
    pub fn register(metrics: &Metrics) -> ErasureMetrics {
        let outcomes = IntCounterVec::new(
            Opts::new(
                "bunker_connector_erasures_total",
                "Attempts to erase a user's rows in a connected database, by outcome.",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        metrics.register(Box::new(outcomes.clone()));
        ErasureMetrics { outcomes }
    }

    /// Counts one attempt's outcome.
    pub fn count(&self, outcome: Outcome) {
        self.outcomes.with_label_values(&[outcome.label()]).inc();
    }
}
