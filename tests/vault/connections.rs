//! Connections (issue 12): slow, idle and silent clients cannot hold the vault, the connection
//! cap keeps it below its descriptor limit, and the errors hyper answers by itself (400, 414,
//! 431) are the vault's JSON envelope. Against the real binary, over raw TCP.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{Launch, Process, http_within, root_token, start, start_with};

/// The first bytes of a request whose head never ends.
const HALF_OPEN: &[u8] = b"POST /v2/UserGet HTTP/1.1\r\nHost: x\r\n";

fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect")
}

/// Waits until `since + wait` for the vault to close `stream`; returns how long after `since`
/// it did, or `None`.
fn closed_within(stream: &mut TcpStream, since: Instant, wait: Duration) -> Option<Duration> {
    let mut buf = [0u8; 4096];
    loop {
        let left = wait.checked_sub(since.elapsed())?;
        stream.set_read_timeout(Some(left.max(Duration::from_millis(1)))).expect("timeout");
        match stream.read(&mut buf) {
            Ok(0) => return Some(since.elapsed()),
            Ok(_) => {}
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return None,
            Err(_) => return Some(since.elapsed()),
        }
    }
}

/// One answer read from a kept-alive connection: status, head (lower-cased) and body.
fn read_answer(stream: &mut TcpStream, wait: Duration) -> Option<(u16, String, Vec<u8>)> {
    stream.set_read_timeout(Some(wait)).expect("timeout");
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&bytes[..head_end]).to_lowercase();
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while bytes.len() < head_end + length {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
        }
    }
    Some((status, head, bytes[head_end..head_end + length].to_vec()))
}

fn open_descriptors(process: &Process) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", process.child.id())).map_or(0, Iterator::count)
}

fn alive(process: &mut Process) -> bool {
    process.child.try_wait().expect("wait").is_none()
}

/// The finding: under a 1,024-descriptor limit, 1,100 connections that never finish
/// their request head locked out every caller, `/status` included. With the default limits
/// they are closed after the header timeout (10 s), the ones past the connection cap wait in
/// the listen backlog meanwhile, and a normal client is answered within 15 s.
#[test]
fn half_open_connections_lock_nobody_out_for_more_than_15_s() {
    let dir = tempfile::tempdir().expect("tempdir");
    let launch = Launch { shell: Some("ulimit -n 1024"), ..Launch::default() };
    let mut vault = start_with(dir.path(), "vault", &launch, &["serve", "--dev"], &[("BUNKER_LOG", "info")]);
    assert!(vault.ready(), "vault did not start: {:?}", vault.output());
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", vault.child.id())).expect("limits");
    let open_files = limits.lines().find(|l| l.starts_with("Max open files")).expect("open files line");
    assert_eq!(open_files.split_whitespace().nth(3), Some("1024"), "{open_files}");
    let token = root_token(&vault.output().0);
    let (status, body) = vault.call("UserCreate", &token, json!({"profile": {"login": "patient"}}));
    assert_eq!(status, 200, "{body}");

    let opened = Instant::now();
    let mut half_open: Vec<TcpStream> = (0..1_100)
        .map(|_| {
            let mut stream = connect(vault.addr);
            stream.write_all(HALF_OPEN).expect("half a head");
            stream
        })
        .collect();
    println!("1,100 half-open connections opened in {:?}", opened.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    assert!(alive(&mut vault), "the vault died: {:?}", vault.output());
    let descriptors = open_descriptors(&vault);
    assert!(descriptors < 1_000, "the vault holds {descriptors} descriptors under a limit of 1,024");

    // A normal client, while they are all open.
    let addr = vault.addr;
    let sent = Instant::now();
    let status = std::thread::spawn(move || http_within(Duration::from_secs(20), addr, "GET", "/status", None, ""));
    let user_get = {
        let token = token.clone();
        std::thread::spawn(move || {
            let body = json!({"mode": "login", "identity": "patient"}).to_string();
            http_within(Duration::from_secs(20), addr, "POST", "/v2/UserGet", Some(&token), &body)
        })
    };
    let status = status.join().expect("status thread");
    let status_after = sent.elapsed();
    let user_get = user_get.join().expect("UserGet thread");
    let user_get_after = sent.elapsed();
    println!("/status answered after {status_after:?}, UserGet after {user_get_after:?}");
    assert_eq!(status.as_ref().map(|(s, _)| *s), Some(200), "/status: {status:?}");
    assert!(status_after < Duration::from_secs(15), "/status took {status_after:?}");
    let (code, body) = user_get.expect("UserGet answered");
    assert_eq!(code, 200, "{body}");
    let body: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(body["profile"]["login"], "patient");
    assert!(user_get_after < Duration::from_secs(15), "UserGet took {user_get_after:?}");

    // The vault closes every one of them: those it had accepted after the timeout, those that
    // waited in the backlog one timeout later.
    for (i, stream) in half_open.iter_mut().enumerate() {
        let closed = closed_within(stream, opened, Duration::from_secs(30));
        assert!(closed.is_some(), "half-open connection {i} still open 30 s after it was opened");
    }
    println!("all closed {:?} after they were opened", opened.elapsed());
    assert!(alive(&mut vault), "the vault died: {:?}", vault.output());
    let (_, log) = vault.stop();
    assert!(log.contains("connection limit reached"), "reaching the cap is logged:\n{log}");
    assert_eq!(log.matches("connection limit reached").count(), 1, "logged once, not per connection");
}

/// An idle keep-alive connection, one that never sends a byte, one that never finishes its
/// head and an idle HTTP/2 connection are all closed after the header timeout; a slow client
/// that finishes in time is answered.
#[test]
fn idle_and_unfinished_connections_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vault = start(dir.path(), "vault", &["demo"], &[("BUNKER_HEADER_TIMEOUT", "2s")]);
    assert!(vault.ready(), "vault did not start: {:?}", vault.output());
    let window = (Duration::from_millis(1_500), Duration::from_secs(5));
    let in_window = |after: Option<Duration>| after.is_some_and(|a| a >= window.0 && a <= window.1);

    let mut kept_alive = connect(vault.addr);
    kept_alive.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let (status, _, _) = read_answer(&mut kept_alive, Duration::from_secs(5)).expect("answer");
    assert_eq!(status, 200);
    let since = Instant::now();
    let mut silent = connect(vault.addr);
    let mut unfinished = connect(vault.addr);
    unfinished.write_all(HALF_OPEN).expect("half a head");
    let mut http2 = connect(vault.addr);
    // The HTTP/2 preface and an empty SETTINGS frame, then nothing.
    http2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").expect("preface");

    for (name, stream) in [
        ("keep-alive", &mut kept_alive),
        ("silent", &mut silent),
        ("unfinished", &mut unfinished),
        ("http2", &mut http2),
    ] {
        let after = closed_within(stream, since, Duration::from_secs(8));
        assert!(in_window(after), "the {name} connection closed after {after:?}, not about 2 s");
    }

    // A slow client that finishes its head within the timeout is served.
    let mut slow = connect(vault.addr);
    slow.write_all(b"GET /status HTTP/1.1\r\n").expect("first half");
    std::thread::sleep(Duration::from_secs(1));
    slow.write_all(b"Host: x\r\n\r\n").expect("second half");
    assert_eq!(read_answer(&mut slow, Duration::from_secs(5)).map(|a| a.0), Some(200));
    assert!(alive(&mut vault));
    vault.stop();
}

/// Past `BUNKER_MAX_CONNECTIONS`, a new connection waits (in the listen backlog) and is served
/// as soon as one closes; idle connections do not delay a graceful stop.
#[test]
fn the_connection_cap_is_respected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [("BUNKER_MAX_CONNECTIONS", "4"), ("BUNKER_HEADER_TIMEOUT", "30s"), ("BUNKER_LOG", "info")];
    let mut vault = start(dir.path(), "vault", &["demo"], &env);
    assert!(vault.ready(), "vault did not start: {:?}", vault.output());
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut stream = connect(vault.addr);
            stream.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
            assert_eq!(read_answer(&mut stream, Duration::from_secs(5)).map(|a| a.0), Some(200));
            stream
        })
        .collect();

    let mut fifth = connect(vault.addr);
    fifth.write_all(b"GET /status HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    assert!(read_answer(&mut fifth, Duration::from_millis(1_500)).is_none(), "a fifth connection was served");
    drop(held.pop());
    let served = Instant::now();
    let answer = read_answer(&mut fifth, Duration::from_secs(5));
    assert_eq!(answer.map(|a| a.0), Some(200), "the fifth connection was not served once one closed");
    assert!(served.elapsed() < Duration::from_secs(2), "served after {:?}", served.elapsed());

    let stopping = Instant::now();
    let (_, log) = vault.stop();
    assert!(stopping.elapsed() < Duration::from_secs(5), "a graceful stop took {:?}", stopping.elapsed());
    assert!(log.contains("connection limit reached"), "{log}");
}

/// Sends `request` (from a thread, so that a vault that stops reading cannot block it) and
/// reads the whole answer.
fn raw_exchange(addr: SocketAddr, request: Vec<u8>) -> (u16, String, Vec<u8>) {
    let mut stream = connect(addr);
    let mut writer = stream.try_clone().expect("clone");
    let sender = std::thread::spawn(move || {
        // The vault may close before reading it all.
        let _ = writer.write_all(&request);
    });
    let answer = read_answer(&mut stream, Duration::from_secs(10)).expect("an answer");
    drop(stream);
    sender.join().expect("sender");
    answer
}

/// Checks a JSON envelope answer and returns its message.
fn envelope(status: u16, head: &str, body: &[u8]) -> String {
    assert!(head.contains("content-type: application/json"), "{status}: {head}");
    let body: Value = serde_json::from_slice(body).unwrap_or_else(|_| panic!("{status}: {:?}", body));
    assert_eq!(body["status"], "error", "{body}");
    let message = body["message"].as_str().unwrap_or_default().to_owned();
    assert!(!message.is_empty(), "{body}");
    message
}

/// The requests hyper refuses before the vault sees them are answered with the envelope; the
/// vault's own 4xx answers are left exactly as they were.
#[test]
fn hypers_own_errors_are_the_json_envelope() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vault = start(dir.path(), "vault", &["demo"], &[]);
    assert!(vault.ready(), "vault did not start: {:?}", vault.output());
    let addr = vault.addr;

    let long_uri = format!("GET /v2/{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let many_headers = format!(
        "GET /status HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..200).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
    );
    let huge_block = format!("GET /status HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "b".repeat(1_000_000));
    let cases: [(&str, Vec<u8>, u16); 5] = [
        ("a 70,000-byte URI", long_uri.into_bytes(), 414),
        ("200 headers", many_headers.into_bytes(), 431),
        ("a 1 MB header block", huge_block.into_bytes(), 431),
        ("a garbage request line", b"\x01\x02 garbage\r\n\r\n".to_vec(), 400),
        ("a malformed header", b"GET /status HTTP/1.1\r\nHost x\r\n\r\n".to_vec(), 400),
    ];
    for (name, request, expected) in cases {
        let (status, head, body) = raw_exchange(addr, request);
        assert_eq!(status, expected, "{name}: {head}");
        envelope(status, &head, &body);
        assert!(head.contains("connection: close"), "{name}: {head}");
    }

    // On a kept-alive connection: the vault's own 400 and 405 come through unchanged, then
    // hyper's 431 for the next request is rewritten.
    let mut stream = connect(addr);
    let own_400 = "POST /v2/UserGet HTTP/1.1\r\nHost: x\r\nX-Bunker-Token: DEMO\r\nContent-Length: 0\r\n\r\n";
    stream.write_all(own_400.as_bytes()).expect("request");
    let (status, head, body) = read_answer(&mut stream, Duration::from_secs(5)).expect("answer");
    assert_eq!(status, 400);
    assert_eq!(envelope(status, &head, &body), "Missing API request parameters: mode, identity");
    stream.write_all(b"GET /v2/UserGet HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    let (status, head, body) = read_answer(&mut stream, Duration::from_secs(5)).expect("answer");
    assert_eq!(status, 405);
    assert_eq!(envelope(status, &head, &body), "Method not allowed");
    stream.write_all(b"HEAD /status HTTP/1.1\r\nHost: x\r\n\r\n").expect("request");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("HEAD answer");
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    let too_many = format!("GET /status HTTP/1.1\r\n{}\r\n", "X: y\r\n".repeat(150));
    stream.write_all(too_many.as_bytes()).expect("request");
    let (status, head, body) = read_answer(&mut stream, Duration::from_secs(5)).expect("answer");
    assert_eq!(status, 431);
    assert_eq!(envelope(status, &head, &body), "The request headers are too large");
    let closed = closed_within(&mut stream, Instant::now(), Duration::from_secs(5));
    assert!(closed.is_some(), "the connection is closed after it");

    assert!(alive(&mut vault));
    vault.stop();
}
