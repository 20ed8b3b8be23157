//! A test-only TCP proxy between a vault and PostgreSQL, to stage outages without touching the
//! server: forward traffic, refuse and cut connections (a closed port, a restarted server), or
//! hold them open and forward nothing (packets dropped), then resume.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does with traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Pass everything through.
    Forward,
    /// Refuse new connections (the port is closed: connecting is refused) and cut the open ones.
    Closed,
    /// Keep connections open but deliver nothing, in either direction: what arrives is held
    /// (in order) and delivered on resume, as TCP retransmissions would once packets flow again.
    /// New connections are accepted and held unanswered.
    BlackHole,
}

/// A running proxy; it stops with the test's runtime.
pub struct PgProxy {
    /// Where the vault connects.
    pub addr: SocketAddr,
    mode: watch::Sender<Mode>,
}

impl PgProxy {
    /// Listens on a free local port and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> PgProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (mode, watching) = watch::channel(Mode::Forward);
        tokio::spawn(accept(listener, upstream, watching));
        PgProxy { addr, mode }
    }

    /// Switches the mode; applies to open connections at once.
    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }
}

async fn accept(listener: TcpListener, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    let addr = listener.local_addr().expect("proxy address");
    let mut listener = Some(listener);
    loop {
        let Some(open) = listener.as_ref() else {
            // Closed: no listener at all, so connecting is refused, until the mode changes.
            if mode.wait_for(|m| *m != Mode::Closed).await.is_err() {
                return;
            }
            listener = Some(rebind(addr).await);
            continue;
        };
        tokio::select! {
            accepted = open.accept() => match accepted {
                Ok((client, _)) => {
                    tokio::spawn(serve(client, upstream, mode.clone()));
                }
                Err(_) => return,
            },
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
                if *mode.borrow_and_update() == Mode::Closed {
                    listener = None;
                }
            }
        }
    }
}

/// The same port again (nothing else binds it in between in practice; retried briefly if so).
async fn rebind(addr: SocketAddr) -> TcpListener {
    for _ in 0..100 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the proxy could not listen on {addr} again");
}

async fn serve(client: TcpStream, upstream: SocketAddr, mut mode: watch::Receiver<Mode>) {
    // A connection arriving in a black hole waits unanswered, like a SYN that gets no reply.
    let Ok(now) = mode.wait_for(|m| *m != Mode::BlackHole).await.map(|m| *m) else { return };
    if now == Mode::Closed {
        return;
    }
    let _ = client.set_nodelay(true);
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::join!(pump(client_read, server_write, mode.clone()), pump(server_read, client_write, mode));
}

/// Moves bytes one way, holding them while black-holed; returns (dropping both halves, which
/// closes the connection) when the proxy closes.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, mut mode: watch::Receiver<Mode>) {
    let mut held = Vec::new();
    let mut buf = vec![0_u8; 64 * 1024];
    let mut ended = false;
    loop {
        let now = *mode.borrow_and_update();
        match now {
            Mode::Closed => return,
            Mode::Forward => {
                if !held.is_empty() {
                    if to.write_all(&held).await.is_err() {
                        return;
                    }
                    held.clear();
                }
                if ended {
                    let _ = to.shutdown().await;
                    return;
                }
            }
            Mode::BlackHole => {}
        }
        tokio::select! {
            read = from.read(&mut buf), if !ended => match read {
                Ok(0) | Err(_) => ended = true,
                Ok(n) => held.extend_from_slice(&buf[..n]),
            },
            changed = mode.changed() => {
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}
