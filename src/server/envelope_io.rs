//! hyper's own error answers, rewritten as the vault's JSON envelope.
//!
//! hyper answers a request it cannot parse by itself, before any service sees it: 400 for a
//! malformed request line or header, 414 for a URI over 65,534 bytes, 431 for a head over the
//! buffer or the header count. Those answers have an empty body and hyper offers no hook to
//! change them. [`EnvelopeIo`] sits between hyper and the socket, follows the HTTP/1 responses
//! written through it, and when a response starts that is one of hyper's (status 400, 414 or 431,
//! `content-length: 0`, no `content-type`: the vault's own errors always carry a JSON body),
//! writes a complete envelope response in its place. hyper closes the connection after such an
//! answer, so the envelope says `connection: close` and anything written after it is dropped.
//!
//! Only whole response heads are ever looked at: bodies are skipped by their `content-length`
//! or their chunk sizes (and not at all for HEAD requests, 1xx, 204 and 304), so bytes inside a
//! body (a downloaded file, say) are never taken for a head. Anything unexpected (HTTP/2, an
//! upgrade, a body that ends with the connection) stops the following for good, and every
//! later byte passes untouched.

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub use super::framing::RequestLog;
use super::framing::{BodyFraming, Framing, MAX_HEAD, ResponseHead, State};

/// If `bytes` starts with one of hyper's own empty error answers, the envelope answer to write
/// instead and the length of hyper's head.
fn replacement_for(bytes: &[u8]) -> Option<(Vec<u8>, usize)> {
    let end = bytes.windows(4).take(MAX_HEAD).position(|w| w == b"\r\n\r\n")? + 4;
    let head = ResponseHead::parse(&bytes[..end])?;
    let message = match head.status {
        400 => "Malformed request: the request line or a header could not be parsed",
        414 => "The request URI is too long",
        431 => "The request headers are too large",
        _ => return None,
    };
    if head.framing != BodyFraming::Length(0) || head.content_type {
        return None;
    }
    let body = serde_json::json!({"status": "error", "message": message}).to_string();
    let mut answer = Vec::with_capacity(256);
    answer.extend_from_slice(head.status_line);
    answer.extend_from_slice(b"\r\ncontent-type: application/json\r\n");
    answer.extend_from_slice(format!("content-length: {}\r\nconnection: close\r\n", body.len()).as_bytes());
    if let Some(date) = head.date {
        answer.extend_from_slice(date);
        answer.extend_from_slice(b"\r\n");
    }
    answer.extend_from_slice(b"\r\n");
    answer.extend_from_slice(body.as_bytes());
    Some((answer, end))
}

/// An envelope being written in place of hyper's answer.
#[derive(Debug)]
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
}

/// A connection's IO that rewrites hyper's own empty error answers as JSON envelopes.
#[derive(Debug)]
pub struct EnvelopeIo<T> {
    inner: T,
    framing: Framing,
    log: std::sync::Arc<RequestLog>,
    /// Set once hyper's answer was replaced; later writes are dropped.
    replacement: Option<Replacement>,
}

impl<T> EnvelopeIo<T> {
    /// Wraps `inner`; `log` is the one the connection's service records requests in.
    pub fn new(inner: T, log: std::sync::Arc<RequestLog>) -> EnvelopeIo<T> {
        EnvelopeIo { inner, framing: Framing::new(), log, replacement: None }
    }

    /// The wrapped IO.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn stop_following(&mut self) {
        self.framing.state = State::Off;
        self.log.stop();
    }
}

impl<T: AsyncWrite + Unpin> EnvelopeIo<T> {
    /// Writes out what is left of the replacement, if any.
    fn poll_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let Some(replacement) = &mut self.replacement else {
            return Poll::Ready(Ok(()));
        };
        while replacement.written < replacement.bytes.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &replacement.bytes[replacement.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            replacement.written += n;
        }
        Poll::Ready(Ok(()))
    }

    /// At an answer boundary, replaces hyper's error answer if `first` starts with one.
    /// Returns the number of bytes of hyper's answer taken, if it was replaced.
    fn try_replace(&mut self, cx: &mut Context<'_>, first: &[u8]) -> Option<Poll<io::Result<usize>>> {
        if self.framing.state != State::Boundary {
            return None;
        }
        let (bytes, taken) = replacement_for(first)?;
        self.replacement = Some(Replacement { bytes, written: 0 });
        self.stop_following();
        // The bytes are ours now; what the socket does not take yet goes out on flush.
        Some(match self.poll_replacement(cx) {
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            _ => Poll::Ready(Ok(taken)),
        })
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for EnvelopeIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for EnvelopeIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_some() {
            ready!(this.poll_replacement(cx))?;
            return Poll::Ready(Ok(buf.len()));
        }
        if buf.is_empty() || this.framing.state == State::Off {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        }
        if let Some(result) = this.try_replace(cx, buf) {
            return result;
        }
        // Write no further than the end of the current answer, so that the next one starts
        // a write of its own and its head is looked at before any of it leaves.
        let limit = this.framing.clone().advance(buf, &this.log);
        let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..limit]))?;
        this.framing.feed(&buf[..n], &this.log);
        if this.framing.state == State::Off {
            this.log.stop();
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if this.replacement.is_some() {
            ready!(this.poll_replacement(cx))?;
            return Poll::Ready(Ok(total));
        }
        if total == 0 || this.framing.state == State::Off {
            return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        }
        let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
        if let Some(result) = this.try_replace(cx, first) {
            return result;
        }
        // As in `poll_write`: slices up to the end of the current answer only.
        let mut scan = this.framing.clone();
        let mut count = 0;
        let mut cut = None;
        'slices: for (i, buf) in bufs.iter().enumerate() {
            let mut used = 0;
            while used < buf.len() {
                used += scan.advance(&buf[used..], &this.log);
                // `advance` consumed something, so a boundary here is the end of an answer.
                if scan.state == State::Boundary {
                    count += used;
                    cut = Some((i, used));
                    break 'slices;
                }
            }
            count += used;
        }
        let n = match cut {
            Some((i, used)) if count < total => {
                let mut slices: Vec<IoSlice<'_>> = bufs[..i].to_vec();
                slices.push(IoSlice::new(&bufs[i][..used]));
                ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, &slices))?
            }
            _ => ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?,
        };
        let mut left = n;
        for buf in bufs {
            let take = left.min(buf.len());
            this.framing.feed(&buf[..take], &this.log);
            left -= take;
            if left == 0 {
                break;
            }
        }
        if this.framing.state == State::Off {
            this.log.stop();
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_replacement(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
#[path = "envelope_io_tests.rs"]
mod tests;
