//! Fixed connections, back-to-back requests, a warm-up, then a measured window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};

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
    finished: Instant,
}

fn histogram() -> Result<Histogram<u64>, String> {
    // 1 µs to 10 min at 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).map_err(|e| format!("histogram: {e}"))
}

async fn connection(
    target: Target,
    workload: Arc<Workload>,
    seed: u64,
    measure_from: Instant,
    end: Instant,
) -> Result<Tally, String> {
    let mut conn = Conn::new(target);
    let mut rng = Rng::new(seed);
    let mut tally =
        Tally { latencies: histogram()?, ok: 0, errors: 0, records: 0, first_error: None, finished: Instant::now() };
    let operation = workload.op.operation();
    while Instant::now() < end {
        let body = workload.body(&mut rng);
        let sent = Instant::now();
        let outcome = conn.post(operation, body).await;
        let latency = sent.elapsed();
        let verdict = outcome.and_then(|(status, answer)| judge(workload.op, status, &answer));
        if sent < measure_from {
            continue;
        }
        match verdict {
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
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let end = measure_from + plan.measured;
    let seed = start.elapsed().as_nanos() as u64 ^ u64::from(std::process::id());
    let mut tasks = Vec::new();
    for i in 0..plan.connections {
        let task = connection(target.clone(), workload.clone(), seed.wrapping_add(i * 7919), measure_from, end);
        tasks.push(tokio::spawn(task));
    }
    let mut latencies = histogram()?;
    let (mut ok, mut errors, mut records) = (0, 0, 0);
    let mut first_error = None;
    let mut finished = measure_from;
    for task in tasks {
        let tally = task.await.map_err(|e| format!("connection task: {e}"))??;
        latencies.add(&tally.latencies).map_err(|e| format!("histogram: {e}"))?;
        ok += tally.ok;
        errors += tally.errors;
        records += tally.records;
        if first_error.is_none() {
            first_error = tally.first_error;
        }
        finished = finished.max(tally.finished);
    }
    // Calls in flight when the window closes finish and count: the window ends with the last.
    let seconds = (finished - measure_from).as_secs_f64();
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
