//! The accept loop and one task per connection.
//!
//! A semaphore holds one permit per open connection: at the cap the loop stops accepting, so new
//! connections wait in the kernel's listen backlog (nothing is accepted only to be failed), and
//! resumes as soon as one closes. Each connection task watches its connection: with no request
//! in flight for the header timeout (before its first request, between keep-alive requests, or
//! on an HTTP/2 connection without streams) it is asked to close, and dropped if it has not a
//! second later. hyper's own header-read timeout bounds a request head that never ends.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use super::envelope_io::{EnvelopeIo, RequestLog};
use super::{MAX_HEAD_BYTES, MAX_HEADERS, MAX_HTTP2_HEADER_LIST, ServerLimits};
use crate::app::App;

/// How long a connection asked to close may take while no request is in flight.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Pause after an accept error that is not about one connection (out of descriptors or memory).
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// At most one log line per this long about accept errors, and about the connection cap.
const LOG_EVERY: Duration = Duration::from_secs(60);

/// Accepts and serves connections until `shutdown` resolves; then stops accepting, asks every
/// connection to close after its in-flight requests, and waits for them up to `grace`.
pub(super) async fn serve(
    listener: TcpListener,
    app: App,
    limits: ServerLimits,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let builder = Arc::new(builder(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closing_rx) = watch::channel(());
    let mut at_cap = Throttled::default();
    let mut accept_errors = Throttled::default();
    tokio::pin!(shutdown);
    loop {
        let permit = match permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                at_cap.log(|times| {
                    tracing::warn!(
                        limit = limits.max_connections,
                        times,
                        "connection limit reached: new connections wait in the listen backlog until one closes \
                         (BUNKER_MAX_CONNECTIONS)"
                    );
                });
                tokio::select! {
                    permit = permits.clone().acquire_owned() => match permit {
                        Ok(permit) => permit,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) if is_connection_error(&err) => {
                    tracing::debug!(error = %err, "a connection failed before it was accepted");
                    continue;
                }
                Err(err) => {
                    accept_errors.log(|times| {
                        tracing::warn!(error = %err, times, "cannot accept connections (out of descriptors?); retrying");
                    });
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers are written whole; waiting for more to send only delays them.
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            app.clone(),
            builder.clone(),
            limits.header_timeout,
            closing_rx.clone(),
            permit,
        ));
    }
    drop(listener);
    drop(closing);
    // Every permit back means every connection closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, permits.acquire_many(all)).await.is_err() {
        tracing::warn!(?grace, "connections still open at the end of the shutdown grace period are dropped");
    }
}

/// hyper's connection builder with the vault's limits.
fn builder(limits: &ServerLimits) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // The timer starts whenever the connection waits for a request head, so it is also
        // the idle keep-alive timeout.
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.http2_keepalive)
        .keep_alive_timeout(limits.http2_keepalive)
        .max_concurrent_streams(limits.http2_max_streams)
        .max_header_list_size(MAX_HTTP2_HEADER_LIST);
    builder
}

/// Errors that concern one connection only: accepting goes on at once.
fn is_connection_error(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection, closing it when idle or when the server shuts down.
async fn connection(
    stream: TcpStream,
    app: App,
    builder: Arc<Builder<TokioExecutor>>,
    idle: Duration,
    mut closing: watch::Receiver<()>,
    _permit: OwnedSemaphorePermit,
) {
    let log = Arc::new(RequestLog::default());
    let activity = Arc::new(Activity::new());
    // The peer address reaches the handlers (rate limits count per client address).
    let peer = stream.peer_addr().ok();
    let service = ConnectionService { app, peer, log: log.clone(), activity: activity.clone() };
    let conn = builder.serve_connection(TokioIo::new(EnvelopeIo::new(stream, log)), service);
    tokio::pin!(conn);
    let mut asked_to_close = false;
    loop {
        let quiet = if asked_to_close { CLOSE_GRACE } else { idle };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(error = %err, "connection closed on an error");
                }
                return;
            }
            _ = closing.changed(), if !asked_to_close => {
                conn.as_mut().graceful_shutdown();
                asked_to_close = true;
                activity.touch();
            }
            () = tokio::time::sleep_until(activity.quiet_until(quiet)) => {
                if activity.quiet_for(quiet) {
                    if asked_to_close {
                        tracing::debug!("closing a connection that did not close when asked");
                        return;
                    }
                    conn.as_mut().graceful_shutdown();
                    asked_to_close = true;
                    activity.touch();
                }
            }
        }
    }
}

/// Requests in flight on one connection, and when that last changed.
#[derive(Debug)]
struct Activity {
    opened: Instant,
    in_flight: AtomicUsize,
    /// Milliseconds from `opened` to the last change.
    changed: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity { opened: Instant::now(), in_flight: AtomicUsize::new(0), changed: AtomicU64::new(0) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.changed.store(ms, Ordering::Relaxed);
    }

    fn last_change(&self) -> Instant {
        self.opened + Duration::from_millis(self.changed.load(Ordering::Relaxed))
    }

    /// When the connection will have been quiet for `period`, if nothing happens meanwhile
    /// (with a request in flight: a period from now, to look again then).
    fn quiet_until(&self, period: Duration) -> Instant {
        if self.in_flight.load(Ordering::Relaxed) > 0 { Instant::now() + period } else { self.last_change() + period }
    }

    /// Whether no request has been in flight for `period`.
    fn quiet_for(&self, period: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && self.last_change().elapsed() >= period
    }
}

/// A request in flight, until its answer has been sent (or abandoned).
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> InFlight {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        activity.touch();
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The application as hyper calls it on one connection.
#[derive(Clone)]
struct ConnectionService {
    app: App,
    peer: Option<std::net::SocketAddr>,
    log: Arc<RequestLog>,
    activity: Arc<Activity>,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<AnswerBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<AnswerBody>, Infallible>> + Send>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.log.record(request.method(), request.version());
        let in_flight = InFlight::new(self.activity.clone());
        let app = self.app.clone();
        let mut request = request.map(Body::new);
        if let Some(peer) = self.peer {
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
        }
        Box::pin(async move {
            let response = match app.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok(response.map(|body| AnswerBody { body, _in_flight: in_flight }))
        })
    }
}

/// An answer's body, which keeps its request in flight until hyper has sent it all.
struct AnswerBody {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for AnswerBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// A log line at most every [`LOG_EVERY`], counting the occasions in between.
#[derive(Debug, Default)]
struct Throttled {
    last: Option<Instant>,
    times: u64,
}

impl Throttled {
    fn log(&mut self, emit: impl FnOnce(u64)) {
        self.times += 1;
        if self.last.is_none_or(|last| last.elapsed() >= LOG_EVERY) {
            emit(self.times);
            self.last = Some(Instant::now());
            self.times = 0;
        }
    }
}
