//! Load generator of Bunker's benchmark, driven by bench/run.
//!
//! ```text
//! loadgen load   --url U --token T --users N [--batch 4000] [--connections 2]
//! loadgen tokens --url U --token T --count N --out FILE
//! loadgen run    --url U --token T --op OP [--connections 32] [--seconds 15] [--warmup 3]
//!                [--users N] [--tokens FILE] [--batch 4000] [--threads 2]
//! ```
//!
//! `run` keeps `--connections` HTTP/1.1 connections, each issuing requests back to back, and
//! prints one JSON object: ops/s, latency percentiles (every latency of the measured window is
//! in an HDR histogram), errors (non-200 or `status` not `ok`), and for bulk calls records/s.

mod conn;
mod measure;
mod workload;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use conn::{Conn, Target};
use serde_json::Value;
use workload::{Op, Workload, bulk_body};

/// Attempts per loading call: a call that fails (e.g. the vault's request timeout on a busy
/// machine) is sent again, and users an earlier attempt committed count as loaded.
const LOAD_ATTEMPTS: u32 = 3;

/// `--name value` pairs.
struct Args(HashMap<String, String>);

impl Args {
    fn parse(items: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut map = HashMap::new();
        let mut items = items.peekable();
        while let Some(item) = items.next() {
            let name = item.strip_prefix("--").ok_or_else(|| format!("expected --name, got {item}"))?;
            let value = items.next().ok_or_else(|| format!("--{name} needs a value"))?;
            map.insert(name.to_owned(), value);
        }
        Ok(Args(map))
    }

    fn text(&self, name: &str) -> Result<&str, String> {
        self.0.get(name).map(String::as_str).ok_or_else(|| format!("--{name} is required"))
    }

    fn number(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name} must be a whole number, got {v}")),
        }
    }

    fn target(&self) -> Result<Target, String> {
        Target::parse(self.text("url")?, self.text("token")?)
    }
}

fn main() -> ExitCode {
    let mut argv = std::env::args().skip(1);
    let command = argv.next().unwrap_or_default();
    let result = Args::parse(argv).and_then(|args| {
        let threads = args.number("threads", 2)?.max(1) as usize;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
            .map_err(|e| format!("runtime: {e}"))?;
        runtime.block_on(async {
            match command.as_str() {
                "load" => load(&args).await,
                "tokens" => tokens(&args).await,
                "run" => run(&args).await,
                _ => Err("usage: loadgen load|tokens|run --name value ... (see the source header)".to_owned()),
            }
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadgen: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Loads users u0..u<users> through UserCreateBulk, printing progress on stderr.
async fn load(args: &Args) -> Result<(), String> {
    let target = args.target()?;
    let users = args.number("users", 10_000)?;
    let batch = args.number("batch", 4000)?.max(1);
    let connections = args.number("connections", 2)?.max(1);
    let next_batch = Arc::new(AtomicU64::new(0));
    let loaded = Arc::new(AtomicU64::new(0));
    let started = Instant::now();

    let progress = {
        let loaded = loaded.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(20));
            tick.tick().await;
            loop {
                tick.tick().await;
                let done = loaded.load(Ordering::Relaxed);
                let rate = done as f64 / started.elapsed().as_secs_f64();
                let eta = if rate > 0.0 { (users - done) as f64 / rate } else { 0.0 };
                eprintln!("bench: loaded {done} of {users} users ({rate:.0} users/s, about {eta:.0} s left)");
            }
        })
    };
    let mut workers = Vec::new();
    for _ in 0..connections {
        let (target, next_batch, loaded) = (target.clone(), next_batch.clone(), loaded.clone());
        workers.push(tokio::spawn(async move {
            let mut conn = Conn::new(target);
            loop {
                let from = next_batch.fetch_add(1, Ordering::Relaxed) * batch;
                if from >= users {
                    return Ok::<(), String>(());
                }
                let to = (from + batch).min(users);
                let mut attempt = 1;
                loop {
                    let outcome = conn.post("UserCreateBulk", bulk_body('u', 44, from, to)).await;
                    match outcome.and_then(|(status, body)| workload::judge_load(status, &body, to - from, attempt > 1))
                    {
                        Ok(present) => {
                            loaded.fetch_add(present, Ordering::Relaxed);
                            break;
                        }
                        Err(err) if attempt < LOAD_ATTEMPTS => {
                            eprintln!("bench: loading users {from}..{to}: {err}; trying again");
                            attempt += 1;
                            tokio::time::sleep(Duration::from_secs(2)).await;
                        }
                        Err(err) => return Err(format!("loading users {from}..{to}: {err} ({attempt} attempts)")),
                    }
                }
            }
        }));
    }
    let mut outcome = Ok(());
    for worker in workers {
        let result = worker.await.map_err(|e| format!("worker: {e}")).and_then(|r| r);
        if outcome.is_ok() {
            outcome = result;
        }
    }
    progress.abort();
    outcome?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!("bench: loaded {users} users in {secs:.1} s ({:.0} users/s)", users as f64 / secs);
    Ok(())
}

/// Creates `count` card tokens through TokenCreateBulk and writes their tokenuuids, one a line.
async fn tokens(args: &Args) -> Result<(), String> {
    let target = args.target()?;
    let count = args.number("count", 10_000)?;
    let out = args.text("out")?;
    let mut conn = Conn::new(target);
    let mut rng = workload::Rng::new(count ^ 0x5eed);
    let mut handles = Vec::with_capacity(count as usize);
    while (handles.len() as u64) < count {
        let n = (count - handles.len() as u64).min(1000);
        let records: Vec<String> = (0..n)
            .map(|_| format!(r#"{{"tokentype":"creditcard","record":"{}"}}"#, workload::card(&mut rng)))
            .collect();
        let body = format!(r#"{{"records":[{}]}}"#, records.join(","));
        let (status, answer) = conn.post("TokenCreateBulk", body.into()).await?;
        let parsed: Value = serde_json::from_slice(&answer).map_err(|_| format!("TokenCreateBulk: HTTP {status}"))?;
        let created = parsed.get("created").and_then(Value::as_array).filter(|_| status == 200);
        let created = created.ok_or_else(|| format!("TokenCreateBulk: HTTP {status}: {parsed}"))?;
        for token in created {
            let uuid = token.get("tokenuuid").and_then(Value::as_str).ok_or("TokenCreateBulk: no tokenuuid")?;
            handles.push(uuid.to_owned());
        }
    }
    std::fs::write(out, handles.join("\n") + "\n").map_err(|e| format!("{out}: {e}"))
}

/// Drives one operation and prints the JSON report on stdout.
async fn run(args: &Args) -> Result<(), String> {
    let target = args.target()?;
    let op = Op::parse(args.text("op")?)?;
    let tokens = match args.0.get("tokens") {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| format!("{path}: {e}"))?
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        None => Vec::new(),
    };
    let workload = Workload::new(op, args.number("users", 0)?, tokens, args.number("batch", 4000)?)?;
    let plan = measure::Plan {
        connections: args.number("connections", 32)?.max(1),
        warmup: Duration::from_secs(args.number("warmup", 3)?),
        measured: Duration::from_secs(args.number("seconds", 15)?.max(1)),
    };
    let report = measure::drive(target, Arc::new(workload), &plan).await?;
    println!("{report}");
    Ok(())
}
