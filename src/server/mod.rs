//! Binding and serving: the accept loop, connection limits and timeouts, graceful shutdown.
//!
//! The vault runs its own accept loop on hyper (rather than `axum::serve`) so that slow and
//! idle clients cannot hold it: a request head must arrive within the header timeout, an idle
//! connection is closed after it, and no more connections are accepted than the descriptor
//! limit allows (the others wait in the kernel's listen backlog until one closes).

mod connections;
mod envelope_io;
mod framing;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::state::AppState;

pub use envelope_io::{EnvelopeIo, RequestLog};

/// Limits on connections, from `BUNKER_*` settings (see `config::server_limits`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Longest wait for a complete request head, and longest a connection may sit idle
    /// between requests (HTTP/1 keep-alive and HTTP/2 alike) or before its first request.
    pub header_timeout: Duration,
    /// Most connections open at once; past it, new connections wait in the listen backlog.
    pub max_connections: usize,
    /// Most concurrent streams on one HTTP/2 connection.
    pub http2_max_streams: u32,
    /// Interval of HTTP/2 keep-alive pings; a ping unanswered for as long closes the connection.
    pub http2_keepalive: Duration,
}

/// Descriptors kept back from the connection cap: database pool, SQLite's WAL and shared-memory
/// files, file blobs, the listener, logs and the runtime's own.
pub const RESERVED_DESCRIPTORS: u64 = 128;
/// Upper bound of the derived default connection cap.
pub const MAX_DEFAULT_CONNECTIONS: u64 = 10_000;
/// Lower bound of the derived default connection cap.
pub const MIN_DEFAULT_CONNECTIONS: u64 = 16;
/// Largest request head (request line and headers) hyper buffers, in bytes: above it the
/// answer is 431. It also leaves room for hyper's own URI limit (65,534 bytes, then 414).
pub const MAX_HEAD_BYTES: usize = 96 * 1024;
/// Time given at shutdown beyond the request timeout, for answers to reach their clients.
const SHUTDOWN_SLACK: Duration = Duration::from_secs(5);
/// Most headers in one request: above it the answer is 431.
pub const MAX_HEADERS: usize = 100;
/// Largest HTTP/2 header list accepted, in bytes.
pub const MAX_HTTP2_HEADER_LIST: u32 = 64 * 1024;

impl ServerLimits {
    /// The defaults for a process whose soft descriptor limit is `nofile` (`None`: unlimited).
    pub fn for_descriptor_limit(nofile: Option<u64>) -> ServerLimits {
        let max_connections = nofile.map_or(MAX_DEFAULT_CONNECTIONS, |n| {
            n.saturating_sub(RESERVED_DESCRIPTORS).clamp(MIN_DEFAULT_CONNECTIONS, MAX_DEFAULT_CONNECTIONS)
        });
        ServerLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: usize::try_from(max_connections).unwrap_or(usize::MAX),
            http2_max_streams: 100,
            http2_keepalive: Duration::from_secs(20),
        }
    }

    /// The defaults for this process.
    pub fn for_this_process() -> ServerLimits {
        ServerLimits::for_descriptor_limit(descriptor_limit())
    }
}

/// This process's soft limit on open descriptors (`None`: unlimited).
pub fn descriptor_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Connections the kernel completes and keeps for the vault to accept (capped by the system's
/// `net.core.somaxconn`): where clients wait while the vault is at its connection cap.
pub const LISTEN_BACKLOG: u32 = 1024;

/// Binds a listener with the vault's backlog (the standard library's is 128).
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    // As the standard library does: a restarted vault can bind while old connections linger.
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    state: AppState,
    limits: ServerLimits,
}

impl Server {
    /// Binds `addr` (port 0 picks a free port), with the default limits for this process.
    pub async fn bind(addr: SocketAddr, state: AppState) -> std::io::Result<Server> {
        Ok(Server::from_listener(listen(addr)?, state, ServerLimits::for_this_process()))
    }

    /// Serves on a listener bound earlier (start-up binds before it opens the vault).
    pub fn from_listener(listener: TcpListener, state: AppState, limits: ServerLimits) -> Server {
        Server { listener, state, limits }
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The limits this server applies.
    pub fn limits(&self) -> ServerLimits {
        self.limits
    }

    /// Serves until `shutdown` resolves, then stops accepting and finishes in-flight requests
    /// (for as long as a request may run, then the connections left are dropped).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let grace = self.state.settings.request_timeout + SHUTDOWN_SLACK;
        connections::serve(self.listener, crate::app::app(self.state), self.limits, grace, shutdown).await;
        Ok(())
    }
}

/// Resolves when `signal` delivers (never, without a handler).
#[cfg(unix)]
async fn received(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled: a signal sent as soon as the vault answers is never met by the
/// default disposition (which would end the process without finishing its requests).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            tokio::select! {
                () = received(terminate.as_mut()) => {},
                () = received(interrupt.as_mut()) => {},
            }
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_cap_follows_the_descriptor_limit() {
        assert_eq!(ServerLimits::for_descriptor_limit(Some(1024)).max_connections, 896);
        assert_eq!(ServerLimits::for_descriptor_limit(Some(1_048_576)).max_connections, 10_000);
        assert_eq!(ServerLimits::for_descriptor_limit(None).max_connections, 10_000);
        assert_eq!(ServerLimits::for_descriptor_limit(Some(100)).max_connections, 16);
    }
}
