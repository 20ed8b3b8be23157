//! Fixed connections, back-to-back requests, a warm-up, then a measured window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::conn::{Conn, Target};
use crate::workload::{Rng, Workload, judge};

/// How long and how wide to drive.
pub struct Plan {
    /// Concurrent connections.
    pub connections: u64,
    /// Unmeasured time before the window.
    pub warmup: Duration,
    /// The measured window.
    pub measured: Duration,
}

/// What one connection saw in the measured window.
struct Tally {
    /// Latencies of successful calls, in microseconds.
    latencies: Histogram<u64>,
    ok: u64,
    errors: u64,
    records: u64,
    first_error: Option<String>,
    started: Instant,
    finished: Instant,
}

fn histogram() -> Result<Histogram<u64>, String> {
    // 1 µs to 10 min at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| format!("histogram: {e}"))
}

/// One connection: unmeasured calls until the warm-up is over, then, once every connection is
/// done warming up, measured calls back to back until the window closes. As with pgbench `-T`,
/// the call in flight when the window closes finishes and counts, so every connection counts at
/// least one call even when a call outlasts the window (a large bulk call on a slow vault).
async fn connection(
    target: Target,
    workload: Arc<Workload>,
    seed: u64,
    plan: (Duration, Duration),
    warmed_up: Arc<Barrier>,
) -> Result<Tally, String> {
    let (warmup, measured) = plan;
    let mut conn = Conn::new(target);
    let mut rng = Rng::new(seed);
    let operation = workload.op.operation();
    let warm_end = Instant::now() + warmup;
    while Instant::now() < warm_end {
        let body = workload.body(&mut rng);
        let _ = conn.post(operation, body).await;
    }
    warmed_up.wait().await;
    let started = Instant::now();
    let end = started + measured;
    let mut tally =
        Tally { latencies: histogram()?, ok: 0, errors: 0, records: 0, first_error: None, started, finished: started };
    while Instant::now() < end {
        let body = workload.body(&mut rng);
        let sent = Instant::now();
        let outcome = conn.post(operation, body).await;
        let latency = sent.elapsed();
        match outcome.and_then(|(status, answer)| judge(workload.op, status, &answer)) {
            Ok(records) => {
                tally.ok += 1;
                tally.records += records;
                tally.latencies.saturating_record(latency.as_micros().max(1) as u64);
            }
            Err(err) => {
                tally.errors += 1;
                tally.first_error.get_or_insert(err);
            }
        }
    }
    tally.finished = Instant::now();
    Ok(tally)
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// Drives `workload` on `plan.connections` connections and answers the report.
pub async fn drive(target: Target, workload: Arc<Workload>, plan: &Plan) -> Result<Value, String> {
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id());
    let warmed_up = Arc::new(Barrier::new(plan.connections as usize));
    let mut tasks = Vec::new();
    for i in 0..plan.connections {
        let task = connection(
            target.clone(),
            workload.clone(),
            seed.wrapping_add(i * 7919),
            (plan.warmup, plan.measured),
            warmed_up.clone(),
        );
        tasks.push(tokio::spawn(task));
    }
    let mut latencies = histogram()?;
    let (mut ok, mut errors, mut records) = (0, 0, 0);
    let mut first_error = None;
    let mut window: Option<(Instant, Instant)> = None;
    for task in tasks {
        let tally = task.await.map_err(|e| format!("connection task: {e}"))??;
        latencies.add(&tally.latencies).map_err(|e| format!("histogram: {e}"))?;
        ok += tally.ok;
        errors += tally.errors;
        records += tally.records;
        if first_error.is_none() {
            first_error = tally.first_error;
        }
        window = Some(match window {
            None => (tally.started, tally.finished),
            Some((from, to)) => (from.min(tally.started), to.max(tally.finished)),
        });
    }
    // From the end of the warm-up to the last answer, as pgbench counts its duration.
    let seconds = window.map_or(0.0, |(from, to)| (to - from).as_secs_f64()).max(1e-9);
    Ok(json!({
        "operation": workload.op.operation(),
        "connections": plan.connections,
        "seconds": seconds,
        "ops": ok,
        "ops_per_sec": ok as f64 / seconds,
        "errors": errors,
        "first_error": first_error,
        "records": records,
        "records_per_sec": records as f64 / seconds,
        "mean_ms": latencies.mean() / 1000.0,
        "p50_ms": ms(latencies.value_at_quantile(0.50)),
        "p90_ms": ms(latencies.value_at_quantile(0.90)),
        "p99_ms": ms(latencies.value_at_quantile(0.99)),
        "max_ms": ms(latencies.max()),
    }))
}
