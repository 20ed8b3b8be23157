//! Following the HTTP/1 answers in the bytes written to a connection: where each response head
//! starts and ends, and where its body ends (by `content-length`, by chunk sizes, or at once for
//! HEAD requests, 1xx, 204 and 304), so that only whole heads are ever looked at.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use axum::http::{Method, Version};

/// A response head longer than this is not followed (hyper's own are about 100 bytes).
pub(super) const MAX_HEAD: usize = 64 * 1024;

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

    /// Stops recording: the IO no longer follows answers.
    pub(super) fn stop(&self) {
        self.off.store(true, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<u64>> {
        self.heads.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Where the byte stream written so far stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
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
pub(super) enum Chunk {
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
pub(super) struct Framing {
    pub(super) state: State,
    /// The bytes of the head being written.
    head: Vec<u8>,
    /// Final answers started so far.
    pub(super) answers: u64,
}

impl Framing {
    pub(super) fn new() -> Framing {
        Framing { state: State::Boundary, head: Vec::new(), answers: 0 }
    }

    /// Consumes `bytes` up to the end of the current answer (the state is then `Boundary`),
    /// or all of them. Returns how many were consumed; at least one unless `bytes` is empty.
    pub(super) fn advance(&mut self, bytes: &[u8], log: &RequestLog) -> usize {
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
    pub(super) fn feed(&mut self, mut bytes: &[u8], log: &RequestLog) {
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
pub(super) enum BodyFraming {
    Length(u64),
    Chunked,
    UntilClose,
}

/// The parts of a response head that matter here.
#[derive(Debug)]
pub(super) struct ResponseHead<'a> {
    pub(super) status: u16,
    pub(super) status_line: &'a [u8],
    pub(super) framing: BodyFraming,
    pub(super) content_type: bool,
    pub(super) date: Option<&'a [u8]>,
}

impl<'a> ResponseHead<'a> {
    /// Parses a complete head (status line, headers, blank line); `None` if it is not HTTP/1.
    pub(super) fn parse(head: &'a [u8]) -> Option<ResponseHead<'a>> {
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
