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

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, ready};

use axum::http::{Method, Version};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A response head longer than this is not followed (hyper's own are about 100 bytes).
const MAX_HEAD: usize = 64 * 1024;

/// The HTTP/1 requests of one connection that were `HEAD`: their answers carry no body,
/// whatever their `content-length` says. Shared between the service, which sees the requests,
/// and the IO, which sees the answers in the same order.
#[derive(Debug, Default)]
pub struct RequestLog {
    /// Sequence number of the next HTTP/1 request.
    next: AtomicU64,
    /// Sequence numbers of `HEAD` requests whose answers may not have started yet.
    heads: Mutex<VecDeque<u64>>,
    /// Set once the IO stopped following answers: nothing needs recording then.
    off: AtomicBool,
}

impl RequestLog {
    /// Records a request handed to the service.
    pub fn record(&self, method: &Method, version: Version) {
        if version >= Version::HTTP_2 || self.off.load(Ordering::Relaxed) {
            return;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if method == Method::HEAD {
            self.lock().push_back(n);
        }
    }

    /// Whether answer `n` (counting final answers from 0) is to a `HEAD` request. Answers are
    /// looked up in order, so earlier entries are finished with and dropped.
    fn is_head(&self, n: u64) -> bool {
        let mut heads = self.lock();
        while heads.front().is_some_and(|&k| k < n) {
            heads.pop_front();
        }
        heads.front() == Some(&n)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        self.heads.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where the byte stream written so far stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Between answers: the next byte starts a response head.
    Boundary,
    /// Inside a response head (its bytes so far are in [`Framing::head`]).
    Head,
    /// Inside a body of known length: bytes left.
    Body(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// Not following any more: everything passes untouched.
    Off,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk {
    /// In a chunk-size line: the size so far, and whether an extension (`;...`) started.
    Size { size: u64, digits: u8, extension: bool },
    /// In chunk data: bytes left.
    Data(u64),
    /// The CRLF after chunk data: bytes left.
    DataEnd(u8),
    /// In the trailer section: bytes on the current line (CR excluded).
    Trailer(usize),
}

/// Follows the answers written on one HTTP/1 connection.
#[derive(Debug, Clone)]
struct Framing {
    state: State,
    /// The bytes of the head being written.
    head: Vec<u8>,
    /// Final answers started so far.
    answers: u64,
}

impl Framing {
    fn new() -> Framing {
        Framing { state: State::Boundary, head: Vec::new(), answers: 0 }
    }

    /// Consumes `bytes` up to the end of the current answer (the state is then `Boundary`),
    /// or all of them. Returns how many were consumed; at least one unless `bytes` is empty.
    fn advance(&mut self, bytes: &[u8], log: &RequestLog) -> usize {
        let mut used = 0;
        while used < bytes.len() {
            let rest = &bytes[used..];
            match &mut self.state {
                State::Off => return bytes.len(),
                State::Boundary => {
                    self.head.clear();
                    self.state = State::Head;
                }
                State::Head => {
                    let (taken, complete) = take_head(&mut self.head, rest);
                    used += taken;
                    if complete {
                        let head = std::mem::take(&mut self.head);
                        self.state = self.after_head(&head, log);
                        self.head = head;
                        if self.state == State::Boundary {
                            return used;
                        }
                    } else if self.head.len() > MAX_HEAD {
                        self.state = State::Off;
                    }
                }
                State::Body(left) => {
                    let taken = (*left).min(rest.len() as u64);
                    *left -= taken;
                    used += taken as usize;
                    if *left == 0 {
                        self.state = State::Boundary;
                        return used;
                    }
                }
                State::Chunked(chunk) => {
                    let (taken, next) = chunk.advance(rest);
                    used += taken;
                    if let Some(next) = next {
                        self.state = next;
                        if self.state == State::Boundary {
                            return used;
                        }
                    }
                }
            }
        }
        used
    }

    /// Consumes all of `bytes`, answer after answer.
    fn feed(&mut self, mut bytes: &[u8], log: &RequestLog) {
        while !bytes.is_empty() {
            let used = self.advance(bytes, log);
            bytes = &bytes[used..];
        }
    }

    /// The state after a complete response head.
    fn after_head(&mut self, head: &[u8], log: &RequestLog) -> State {
        let Some(head) = ResponseHead::parse(head) else {
            return State::Off;
        };
        match head.status {
            101 => return State::Off,
            100..=199 => return State::Boundary,
            _ => {}
        }
        let answer = self.answers;
        self.answers += 1;
        if head.status == 204 || head.status == 304 || log.is_head(answer) {
            return State::Boundary;
        }
        match head.framing {
            BodyFraming::Chunked => State::Chunked(Chunk::Size { size: 0, digits: 0, extension: false }),
            BodyFraming::Length(0) => State::Boundary,
            BodyFraming::Length(n) => State::Body(n),
            BodyFraming::UntilClose => State::Off,
        }
    }
}

/// Appends to `head` the bytes of `rest` up to the blank line that ends a head (at most
/// [`MAX_HEAD`] and one more); returns how many were taken and whether the head is complete.
fn take_head(head: &mut Vec<u8>, rest: &[u8]) -> (usize, bool) {
    const END: &[u8] = b"\r\n\r\n";
    // The blank line may straddle what was written before and what comes now.
    let before = &head[head.len().saturating_sub(3)..];
    let straddling = (1..=before.len()).rev().find(|&k| {
        let (old, new) = END.split_at(k);
        before.ends_with(old) && rest.starts_with(new)
    });
    let end = straddling.map(|k| 4 - k).or_else(|| rest.windows(4).position(|w| w == END).map(|p| p + 4));
    match end {
        Some(end) => {
            head.extend_from_slice(&rest[..end]);
            (end, true)
        }
        None => {
            let taken = rest.len().min((MAX_HEAD + 1).saturating_sub(head.len()));
            head.extend_from_slice(&rest[..taken]);
            (taken, false)
        }
    }
}

impl Chunk {
    /// Consumes bytes of a chunked body; returns how many, and the next state if it changed
    /// beyond this chunk machine (`Boundary` at the end of the body, `Off` on nonsense).
    fn advance(&mut self, bytes: &[u8]) -> (usize, Option<State>) {
        let mut used = 0;
        while used < bytes.len() {
            match self {
                Chunk::Data(left) => {
                    let taken = (*left).min((bytes.len() - used) as u64);
                    *left -= taken;
                    used += taken as usize;
                    if *left == 0 {
                        *self = Chunk::DataEnd(2);
                    }
                    continue;
                }
                Chunk::DataEnd(left) => {
                    *left -= 1;
                    if *left == 0 {
                        *self = Chunk::Size { size: 0, digits: 0, extension: false };
                    }
                }
                Chunk::Size { size, digits, extension } => {
                    let byte = bytes[used];
                    match byte {
                        b'\n' => {
                            *self = if *size == 0 { Chunk::Trailer(0) } else { Chunk::Data(*size) };
                        }
                        b'\r' => {}
                        b';' => *extension = true,
                        _ if *extension => {}
                        _ => {
                            let Some(value) = (byte as char).to_digit(16) else {
                                return (used + 1, Some(State::Off));
                            };
                            *digits += 1;
                            if *digits > 15 {
                                return (used + 1, Some(State::Off));
                            }
                            *size = *size * 16 + u64::from(value);
                        }
                    }
                }
                Chunk::Trailer(line) => match bytes[used] {
                    b'\n' if *line == 0 => return (used + 1, Some(State::Boundary)),
                    b'\n' => *line = 0,
                    b'\r' => {}
                    _ => *line += 1,
                },
            }
            used += 1;
        }
        (used, None)
    }
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BodyFraming {
    Length(u64),
    Chunked,
    UntilClose,
}

/// The parts of a response head that matter here.
#[derive(Debug)]
struct ResponseHead<'a> {
    status: u16,
    status_line: &'a [u8],
    framing: BodyFraming,
    content_type: bool,
    date: Option<&'a [u8]>,
}

impl<'a> ResponseHead<'a> {
    /// Parses a complete head (status line, headers, blank line); `None` if it is not HTTP/1.
    fn parse(head: &'a [u8]) -> Option<ResponseHead<'a>> {
        let mut lines =
            head.strip_suffix(b"\r\n\r\n")?.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
        let status_line = lines.next()?;
        let rest = status_line.strip_prefix(b"HTTP/1.")?;
        let code = rest.get(2..5)?;
        if !matches!(rest.first(), Some(b'0' | b'1'))
            || rest.get(1) != Some(&b' ')
            || !code.iter().all(u8::is_ascii_digit)
        {
            return None;
        }
        let status = std::str::from_utf8(code).ok()?.parse().ok()?;
        let mut length = None;
        let mut chunked = false;
        let mut content_type = false;
        let mut date = None;
        for line in lines {
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
            if name.eq_ignore_ascii_case(b"content-length") {
                let value: u64 = std::str::from_utf8(value).ok()?.parse().ok()?;
                if length.is_some_and(|l| l != value) {
                    return None;
                }
                length = Some(value);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
                chunked = value
                    .rsplit(|&b| b == b',')
                    .next()
                    .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
                if !chunked {
                    return Some(ResponseHead {
                        status,
                        status_line,
                        framing: BodyFraming::UntilClose,
                        content_type,
                        date,
                    });
                }
            } else if name.eq_ignore_ascii_case(b"content-type") {
                content_type = true;
            } else if name.eq_ignore_ascii_case(b"date") {
                date = Some(line);
            }
        }
        let framing = match (chunked, length) {
            (true, _) => BodyFraming::Chunked,
            (false, Some(n)) => BodyFraming::Length(n),
            (false, None) => BodyFraming::UntilClose,
        };
        Some(ResponseHead { status, status_line, framing, content_type, date })
    }
}

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
        self.log.off.store(true, Ordering::Relaxed);
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
            this.log.off.store(true, Ordering::Relaxed);
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
            this.log.off.store(true, Ordering::Relaxed);
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
