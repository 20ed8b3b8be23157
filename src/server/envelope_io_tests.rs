use std::sync::Arc;

use axum::http::{Method, Version};
use tokio::io::AsyncWriteExt;

use super::*;

/// A socket that takes at most `max` bytes per write and records them.
struct Socket {
    out: Vec<u8>,
    max: usize,
    vectored: bool,
}

impl AsyncWrite for Socket {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let n = buf.len().min(self.max);
        self.out.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut left = self.max;
        let mut n = 0;
        for buf in bufs {
            let take = buf.len().min(left);
            self.out.extend_from_slice(&buf[..take]);
            left -= take;
            n += take;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.vectored
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

const HYPER_431: &[u8] =
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n";

const ENVELOPE_431: &str = "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n\
     content-length: 64\r\nconnection: close\r\ndate: Thu, 01 Jan 2026 00:00:00 GMT\r\n\r\n\
     {\"status\":\"error\",\"message\":\"The request headers are too large\"}";

fn answer(status: &str, body: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

/// Writes each write through an [`EnvelopeIo`] the way hyper does (retrying short writes),
/// with a socket taking `max` bytes per call; returns what reached the socket.
async fn written(writes: &[&[u8]], max: usize, heads: &[u64]) -> String {
    let log = Arc::new(RequestLog::default());
    for n in 0..heads.iter().max().map_or(0, |m| m + 1) {
        let method = if heads.contains(&n) { Method::HEAD } else { Method::POST };
        log.record(&method, Version::HTTP_11);
    }
    let mut io = EnvelopeIo::new(Socket { out: Vec::new(), max, vectored: false }, log);
    for write in writes {
        io.write_all(write).await.expect("write");
        io.flush().await.expect("flush");
    }
    io.shutdown().await.expect("shutdown");
    String::from_utf8(io.inner.out).expect("utf-8")
}

/// The same with vectored writes: each write is a list of slices.
async fn written_vectored(writes: &[&[&[u8]]], max: usize) -> String {
    let mut io = EnvelopeIo::new(Socket { out: Vec::new(), max, vectored: true }, Arc::new(RequestLog::default()));
    for slices in writes {
        let mut owned: Vec<Vec<u8>> = slices.iter().map(|s| s.to_vec()).collect();
        while owned.iter().any(|s| !s.is_empty()) {
            let io_slices: Vec<IoSlice<'_>> = owned.iter().map(|s| IoSlice::new(s)).collect();
            let mut n = io.write_vectored(&io_slices).await.expect("write");
            assert!(n > 0, "a vectored write of data wrote nothing");
            for s in &mut owned {
                let take = n.min(s.len());
                s.drain(..take);
                n -= take;
            }
        }
    }
    io.flush().await.expect("flush");
    String::from_utf8(io.inner.out).expect("utf-8")
}

#[tokio::test]
async fn hypers_empty_errors_become_envelopes() {
    for max in [1, 7, usize::MAX] {
        assert_eq!(written(&[HYPER_431], max, &[]).await, ENVELOPE_431, "max {max}");
    }
    let bad = written(&[b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n"], 3, &[]).await;
    assert!(bad.starts_with("HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"), "{bad}");
    assert!(bad.ends_with("\"message\":\"Malformed request: the request line or a header could not be parsed\"}"));
    let long = written(&[b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n"], 64, &[]).await;
    assert!(long.ends_with("{\"status\":\"error\",\"message\":\"The request URI is too long\"}"), "{long}");
    // Anything hyper might write after its answer is dropped: the envelope closes the connection.
    assert_eq!(written(&[HYPER_431, b"more"], usize::MAX, &[]).await, ENVELOPE_431);
}

#[tokio::test]
async fn the_vaults_own_answers_pass_untouched() {
    let own = answer("400 Bad Request", r#"{"status":"error","message":"Missing API request parameters: mode"}"#);
    let empty = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec();
    let other = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n".to_vec();
    let typed = b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: 0\r\n\r\n".to_vec();
    for max in [1, 5, usize::MAX] {
        let writes = [&own[..], &empty[..], &other[..], &typed[..], &own[..]];
        assert_eq!(written(&writes, max, &[]).await.into_bytes(), writes.concat(), "max {max}");
    }
}

#[tokio::test]
async fn bytes_inside_a_body_are_never_taken_for_a_head() {
    // A downloaded file whose content is hyper's error answer, then a real one.
    let file = String::from_utf8(HYPER_431.to_vec()).expect("text");
    let download = answer("200 OK", &file);
    for max in [1, 13, usize::MAX] {
        let out = written(&[&download[..], HYPER_431], max, &[]).await;
        assert_eq!(out, format!("{}{ENVELOPE_431}", String::from_utf8_lossy(&download)), "max {max}");
    }
    // The same content in a chunked body, with the body and the next head in one write.
    let chunked = format!(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n{:X}\r\n{file}\r\n{:x};ext=1\r\n{file}\r\n0\r\n\r\n",
        file.len(),
        file.len()
    );
    let together = [chunked.as_bytes(), HYPER_431].concat();
    for max in [1, 11, usize::MAX] {
        assert_eq!(written(&[&together], max, &[]).await, format!("{chunked}{ENVELOPE_431}"), "max {max}");
    }
    // With trailers.
    let trailed = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n";
    assert_eq!(written(&[trailed.as_bytes(), HYPER_431], 4, &[]).await, format!("{trailed}{ENVELOPE_431}"));
}

#[tokio::test]
async fn answers_without_a_body_are_followed() {
    // A HEAD answer announces a length but carries no body; the next head follows at once.
    let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n".to_vec();
    let out = written(&[&head[..], HYPER_431], usize::MAX, &[0]).await;
    assert_eq!(out, format!("{}{ENVELOPE_431}", String::from_utf8_lossy(&head)));
    // Interim 100 Continue, then the answer, then hyper's error.
    let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
    let ok = answer("200 OK", "{}");
    let out = written(&[cont, &ok, HYPER_431], 9, &[]).await;
    assert_eq!(out, format!("HTTP/1.1 100 Continue\r\n\r\n{}{ENVELOPE_431}", String::from_utf8_lossy(&ok)));
    let none = b"HTTP/1.1 204 No Content\r\n\r\n";
    assert_eq!(written(&[none, HYPER_431], 2, &[]).await, format!("HTTP/1.1 204 No Content\r\n\r\n{ENVELOPE_431}"));
}

#[tokio::test]
async fn vectored_writes_stop_at_the_end_of_an_answer() {
    let ok = answer("200 OK", r#"{"status":"ok"}"#);
    let (head, body) = ok.split_at(ok.len() - 15);
    for max in [1, 10, usize::MAX] {
        let out = written_vectored(&[&[head, body, HYPER_431]], max).await;
        assert_eq!(out, format!("{}{ENVELOPE_431}", String::from_utf8_lossy(&ok)), "max {max}");
        let out = written_vectored(&[&[&[], head], &[body], &[HYPER_431, b"x"]], max).await;
        assert_eq!(out, format!("{}{ENVELOPE_431}", String::from_utf8_lossy(&ok)), "max {max}");
    }
}

#[tokio::test]
async fn other_protocols_pass_untouched() {
    // An HTTP/2 connection: frames, never a head.
    let settings = [0u8, 0, 0, 4, 0, 0, 0, 0, 0];
    let out = written(&[&settings, HYPER_431], usize::MAX, &[]).await.into_bytes();
    assert_eq!(out, [&settings[..], HYPER_431].concat());
    // A body that ends with the connection.
    let raw = b"HTTP/1.0 200 OK\r\n\r\nanything";
    assert_eq!(written(&[raw, HYPER_431], 3, &[]).await.into_bytes(), [&raw[..], HYPER_431].concat());
}

#[test]
fn heads_that_straddle_writes_are_found() {
    let log = RequestLog::default();
    let ok = answer("200 OK", "{}");
    for split in 1..ok.len() {
        let mut framing = Framing::new();
        framing.feed(&ok[..split], &log);
        framing.feed(&ok[split..], &log);
        assert_eq!(framing.state, State::Boundary, "split at {split}");
        assert_eq!(framing.answers, 1);
    }
}
