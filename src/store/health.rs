//! Whether this process can reach its PostgreSQL server, watched in the background.
//!
//! A monitor task keeps one connection of its own (outside the pool) and pings it every
//! [`INTERVAL`]; a failed or unanswered ping declares the database away, a new connection that
//! answers declares it back. While it is away, requests fail at once with 503 instead of
//! waiting for a pool slot or for TCP to give up, in-flight requests are cut short, and the
//! pool drops its connections: those in use are closed when released (a statement sent into
//! a dead network would otherwise hold its slot until TCP's retransmissions give up, long after
//! the server is back), those opened before the outage are discarded when next acquired.
//!
//! The view is this process's own: replicas sharing the database each watch it for
//! themselves, and nothing is written anywhere. SQLite is in-process and always "up".

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use tokio::sync::watch;

/// Time between two pings of the monitor.
pub const INTERVAL: Duration = Duration::from_millis(250);

/// The health of one pool's database, shared by the pool's hooks and the monitor.
#[derive(Debug)]
pub(crate) struct Gate {
    up: watch::Sender<bool>,
    /// Milliseconds after `origin` of the last time the database was declared away, plus one
    /// (zero: never).
    last_down: AtomicU64,
    origin: Instant,
    /// Set when the pool is closed: the monitor stops.
    closed: AtomicBool,
}

impl Gate {
    fn new() -> Gate {
        Gate {
            up: watch::Sender::new(true),
            last_down: AtomicU64::new(0),
            origin: Instant::now(),
            closed: AtomicBool::new(false),
        }
    }

    fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    fn set(&self, up: bool) {
        if !up {
            let since = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
            self.last_down.store(since + 1, Ordering::Release);
        }
        self.up.send_if_modified(|current| std::mem::replace(current, up) != up);
    }

    /// True for a pooled connection opened before the database was last declared away: it
    /// may be dead (closed port) or half-open, so it is discarded instead of tried.
    pub(crate) fn is_stale(&self, age: Duration) -> bool {
        match self.last_down.load(Ordering::Acquire) {
            0 => false,
            since => {
                let down_at = self.origin + Duration::from_millis(since - 1);
                Instant::now().checked_sub(age).is_none_or(|opened| opened <= down_at)
            }
        }
    }

    /// True while the database is declared away: a released connection is closed, not kept.
    pub(crate) fn is_down(&self) -> bool {
        !self.is_up()
    }
}

/// A handle on the database's health; cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Health(Option<Arc<Gate>>);

impl Health {
    /// A database that is never away (SQLite: in-process).
    pub fn always_up() -> Health {
        Health(None)
    }

    /// True unless the database is declared away.
    pub fn is_up(&self) -> bool {
        self.0.as_ref().is_none_or(|gate| gate.is_up())
    }

    /// Resolves once the database is declared away (at once if it is); never for SQLite.
    pub async fn went_down(&self) {
        self.wait_for(false).await;
    }

    /// Resolves once the database is back (at once if it is up).
    pub async fn came_up(&self) {
        self.wait_for(true).await;
    }

    async fn wait_for(&self, up: bool) {
        if let Some(gate) = &self.0 {
            let mut state = gate.up.subscribe();
            if state.wait_for(|now| *now == up).await.is_ok() {
                return;
            }
        }
        if !up {
            std::future::pending::<()>().await;
        }
    }

    /// Marks the monitor to stop (the pool is closing).
    pub(crate) fn stop(&self) {
        if let Some(gate) = &self.0 {
            gate.closed.store(true, Ordering::Release);
        }
    }
}

/// How the monitor pings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MonitorTimes {
    /// Longest wait for a new connection.
    pub connect: Duration,
    /// Longest wait for a ping's answer.
    pub ping: Duration,
}

/// Starts watching a PostgreSQL server for a pool whose connect options are `key`; returns
/// the gate to hand to the pool's hooks.
pub(crate) fn watch_postgres(opts: PgConnectOptions, times: MonitorTimes) -> Arc<Gate> {
    let gate = Arc::new(Gate::new());
    tokio::spawn(monitor(opts, times, Arc::downgrade(&gate)));
    gate
}

async fn monitor(opts: PgConnectOptions, times: MonitorTimes, gate: Weak<Gate>) {
    let mut conn: Option<PgConnection> = None;
    loop {
        let up = match conn.as_mut() {
            Some(conn) => matches!(tokio::time::timeout(times.ping, conn.ping()).await, Ok(Ok(()))),
            None => match tokio::time::timeout(times.connect, PgConnection::connect_with(&opts)).await {
                Ok(Ok(fresh)) => {
                    conn = Some(fresh);
                    true
                }
                _ => false,
            },
        };
        if !up {
            // Dropped, not closed: closing would wait on the network that just failed.
            conn = None;
        }
        let Some(gate) = gate.upgrade() else { return };
        if gate.closed.load(Ordering::Acquire) {
            if let Some(conn) = conn {
                let _ = tokio::time::timeout(times.ping, conn.close()).await;
            }
            return;
        }
        if gate.is_up() != up {
            if up {
                tracing::info!("database reachable again");
            } else {
                tracing::warn!("database unreachable: answering 503 until it is back");
            }
            gate.set(up);
        }
        drop(gate);
        tokio::time::sleep(INTERVAL).await;
    }
}

/// Gates by pool (keyed by the address of the pool's shared connect options): sqlx keeps no
/// user data beside a pool, and [`crate::store::Db`] is a bare pool.
static GATES: Mutex<Vec<(usize, Weak<Gate>)>> = Mutex::new(Vec::new());

/// Remembers the gate of the pool whose connect options live at `key`.
pub(crate) fn register(key: usize, gate: &Arc<Gate>) {
    let mut gates = GATES.lock().unwrap_or_else(PoisonError::into_inner);
    gates.retain(|(_, gate)| gate.strong_count() > 0);
    gates.push((key, Arc::downgrade(gate)));
}

/// The health of the pool whose connect options live at `key` (always up if none is known).
pub(crate) fn lookup(key: usize) -> Health {
    let gates = GATES.lock().unwrap_or_else(PoisonError::into_inner);
    Health(gates.iter().find(|(k, _)| *k == key).and_then(|(_, gate)| gate.upgrade()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_before_an_outage_are_stale() {
        let gate = Gate::new();
        assert!(!gate.is_stale(Duration::from_secs(3600)), "no outage yet");
        std::thread::sleep(Duration::from_millis(20));
        gate.set(false);
        assert!(gate.is_down());
        assert!(gate.is_stale(Duration::from_millis(10)), "opened before the outage");
        std::thread::sleep(Duration::from_millis(20));
        gate.set(true);
        assert!(!gate.is_stale(Duration::from_millis(5)), "opened after the outage");
        assert!(gate.is_up());
    }

    #[tokio::test]
    async fn waiters_see_transitions() {
        let gate = Arc::new(Gate::new());
        let health = Health(Some(gate.clone()));
        health.came_up().await;
        let down = tokio::spawn({
            let health = health.clone();
            async move { health.went_down().await }
        });
        gate.set(false);
        tokio::time::timeout(Duration::from_secs(1), down).await.expect("in time").expect("joined");
        assert!(!health.is_up());
        assert!(Health::always_up().is_up());
    }
}
