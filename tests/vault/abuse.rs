//! The real binary under a 2 GiB address-space cap against the memory abuse of issue 12: 50 MB
//! bodies to a public and a root operation, with a declared length and chunked; worst-shape
//! bodies at the ordinary limit, in parallel, that do get decoded; a patch of whole-document
//! copies. Each is answered with the JSON envelope, the process lives, and its peak RSS stays
//! under 512 MB. Set `BUNKER_BIN` to run it against a release build; `--nocapture` prints the
//! peak of each case (the figures in BENCHMARKS.md).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{PgDatabase, Process, http, start_capped};

/// `ulimit -v` for the vault: what a 2 GiB container limit does to an allocation that does
/// not fit.
const ADDRESS_SPACE_KIB: u64 = 2 * 1024 * 1024;
/// The most the vault may ever hold resident.
const PEAK_LIMIT_KIB: u64 = 512 * 1024;
const ROOT: &str = "abuse-test-root-token";
const ABUSIVE_BODY: usize = 50_000_000;
const ORDINARY_LIMIT: usize = 1024 * 1024;

/// A JSON body made as it is sent: `prefix`, then `0,0,…,0`, then `suffix`, at most `size`
/// bytes in all (the worst shape for a JSON tree: a 72-byte value per two bytes of text).
struct Zeros {
    prefix: &'static str,
    suffix: &'static str,
    pairs: usize,
}

impl Zeros {
    fn new(prefix: &'static str, suffix: &'static str, size: usize) -> Zeros {
        Zeros { prefix, suffix, pairs: (size - prefix.len() - suffix.len() - 1) / 2 }
    }

    fn len(&self) -> usize {
        self.prefix.len() + 2 * self.pairs + 1 + self.suffix.len()
    }

    /// The body in pieces of at most 64 KiB.
    fn pieces(&self) -> impl Iterator<Item = Vec<u8>> + '_ {
        const PAIRS: usize = 32 * 1024;
        let full = std::iter::repeat_n(PAIRS, self.pairs / PAIRS);
        let middle = full.chain((self.pairs % PAIRS > 0).then_some(self.pairs % PAIRS));
        std::iter::once(self.prefix.as_bytes().to_vec())
            .chain(middle.map(|pairs| b"0,".repeat(pairs)))
            .chain(std::iter::once(format!("0{}", self.suffix).into_bytes()))
    }

    fn to_vec(&self) -> Vec<u8> {
        self.pieces().flatten().collect()
    }
}

/// How a body is framed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Framing {
    /// `Content-Length` declared: the vault can refuse it before reading a byte.
    Declared,
    /// `Transfer-Encoding: chunked`: the vault must cut it off while reading.
    Chunked,
}

/// Sends `body` to `path` and reads the answer. The vault may answer and close before it has
/// read everything: writing stops at the first error or once the answer is in.
fn exchange(addr: SocketAddr, path: &str, token: Option<&str>, body: &Zeros, framing: Framing) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.set_write_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let mut reader = stream.try_clone().expect("clone");
    let answered = Arc::new(AtomicBool::new(false));
    let reading = {
        let answered = answered.clone();
        std::thread::spawn(move || {
            let mut answer = Vec::new();
            // A reset after the answer arrived leaves what was read in `answer`.
            let _ = reader.read_to_end(&mut answer);
            answered.store(true, Ordering::SeqCst);
            answer
        })
    };
    let token = token.map(|t| format!("X-Bunker-Token: {t}\r\n")).unwrap_or_default();
    let length = match framing {
        Framing::Declared => format!("Content-Length: {}", body.len()),
        Framing::Chunked => "Transfer-Encoding: chunked".to_owned(),
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{token}{length}\r\n\
         Connection: close\r\n\r\n"
    );
    let mut sent = stream.write_all(head.as_bytes());
    for piece in body.pieces() {
        if sent.is_err() || answered.load(Ordering::SeqCst) {
            break;
        }
        sent = match framing {
            Framing::Declared => stream.write_all(&piece),
            Framing::Chunked => {
                stream.write_all(&[format!("{:x}\r\n", piece.len()).as_bytes(), &piece, b"\r\n"].concat())
            }
        };
    }
    if sent.is_ok() && framing == Framing::Chunked {
        let _ = stream.write_all(b"0\r\n\r\n");
    }
    let answer = reading.join().expect("reader");
    let text = String::from_utf8_lossy(&answer);
    let Some((head, body)) = text.split_once("\r\n\r\n") else { panic!("no answer to {path} ({framing:?}): {text:?}") };
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status line");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// `count` copies of one exchange at once.
fn parallel(
    addr: SocketAddr,
    count: usize,
    path: &'static str,
    token: Option<&'static str>,
    body: Arc<Zeros>,
    framing: Framing,
) -> Vec<(u16, Value)> {
    let calls: Vec<_> = (0..count)
        .map(|_| {
            let body = body.clone();
            std::thread::spawn(move || exchange(addr, path, token, &body, framing))
        })
        .collect();
    calls.into_iter().map(|call| call.join().expect("call")).collect()
}

/// Runs one case from a fresh peak: the vault must still be alive and under the peak limit.
fn case(vault: &mut Process, name: &str, run: impl FnOnce(&Process)) {
    vault.reset_peak();
    let started = Instant::now();
    run(vault);
    assert!(vault.child.try_wait().expect("wait").is_none(), "{name}: the vault died: {:?}", vault.output());
    let peak = vault.peak_rss_kib();
    eprintln!("abuse: {name}: peak RSS {} MiB, {:.1} s", peak / 1024, started.elapsed().as_secs_f64());
    assert!(peak < PEAK_LIMIT_KIB, "{name}: peak RSS {peak} KiB");
}

fn refused_as_too_large(answers: &[(u16, Value)]) {
    for answer in answers {
        assert_eq!(answer, &(413, json!({"status": "error", "message": "Request body is too large"})));
    }
}

fn abuse(dir: &Path, database_url: &str) {
    let key = bunker::crypto::WrappingKey::generate().to_hex();
    let env = [("DATABUNKER_WRAPPINGKEY", key.as_str()), ("DATABUNKER_ROOTTOKEN", ROOT)];
    let args = ["serve", "--database-url", database_url];
    let mut vault = start_capped(dir, "abuse", ADDRESS_SPACE_KIB, &args, &env);
    assert!(vault.ready(), "vault did not start: {:?}", vault.output());
    let addr = vault.addr;
    let (status, created) =
        vault.call("UserCreate", ROOT, json!({"profile": {"login": "amp", "name": "x".repeat(200)}}));
    assert_eq!(status, 200, "{created}");

    let flood = Arc::new(Zeros::new(r#"{"a":["#, "]}", ABUSIVE_BODY));
    for framing in [Framing::Declared, Framing::Chunked] {
        case(&mut vault, &format!("4 x 50 MB to SharedRecordGet, no token, {framing:?}"), |_| {
            refused_as_too_large(&parallel(addr, 4, "/v2/SharedRecordGet", None, flood.clone(), framing));
        });
        case(&mut vault, &format!("4 x 50 MB to UserGet, root, {framing:?}"), |_| {
            refused_as_too_large(&parallel(addr, 4, "/v2/UserGet", Some(ROOT), flood.clone(), framing));
        });
    }

    // At the edge of the ordinary limit, so decoded: each may cost 72 times its text, and the
    // memory budget admits what it can cover, answering the rest 503.
    let worst = Arc::new(Zeros::new(r#"{"profile":{"a":["#, "]}}", ORDINARY_LIMIT - 16));
    case(&mut vault, "8 x 1 MiB worst-shape profiles to UserCreate, root", |vault| {
        let started = Instant::now();
        let answers = parallel(addr, 8, "/v2/UserCreate", Some(ROOT), worst.clone(), Framing::Declared);
        let created: Vec<&str> =
            answers.iter().filter(|(status, _)| *status == 200).filter_map(|(_, b)| b["token"].as_str()).collect();
        for answer in &answers {
            let busy = (503, json!({"status": "error", "message": "The vault is busy, try again shortly"}));
            assert!(answer.0 == 200 || *answer == busy, "{answer:?}");
        }
        assert!(!created.is_empty(), "{answers:?}");
        eprintln!("abuse: {} of {} created, {:.1} s", created.len(), answers.len(), started.elapsed().as_secs_f64());
        // The stored profile reads back whole.
        let (status, user) = vault.call("UserGet", ROOT, json!({"mode": "token", "identity": created[0]}));
        assert_eq!(status, 200);
        assert_eq!(user["profile"]["a"].as_array().map(Vec::len), Some(worst.pairs + 1));
    });

    case(&mut vault, "UserPatch with 25 whole-document copies, root", |vault| {
        let token = created["token"].as_str().expect("token");
        let patch: Vec<Value> = (0..25).map(|i| json!({"op": "copy", "from": "", "path": format!("/a{i}")})).collect();
        let (status, body) = vault.call("UserPatch", ROOT, json!({"mode": "token", "identity": token, "patch": patch}));
        assert_eq!(
            (status, body["message"].as_str()),
            (400, Some("The profile is larger than the limit of 1048576 bytes"))
        );
        let (status, user) = vault.call("UserGet", ROOT, json!({"mode": "token", "identity": token}));
        assert_eq!((status, &user["version"]), (200, &json!(1)));
        assert_eq!(user["profile"].as_object().map(|p| p.len()), Some(2));
    });

    // Still serving, and it stops cleanly.
    assert_eq!(http(addr, "GET", "/status", None, "").map(|(status, _)| status), Some(200));
    vault.stop();
}

/// A JSON body that is exactly what [`Zeros`] promises.
#[test]
fn zeros_are_json_of_their_length() {
    let body = Zeros::new(r#"{"a":["#, "]}", 200_000);
    let bytes = body.to_vec();
    assert_eq!(bytes.len(), body.len());
    assert!(body.len() <= 200_000 && body.len() > 199_990);
    let value: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(value["a"].as_array().map(Vec::len), Some(body.pairs + 1));
}

mod memory_under_abuse {
    use super::*;

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("abuse.db").display());
        abuse(dir.path(), &url);
    }

    #[test]
    fn postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = PgDatabase::create();
        abuse(dir.path(), &db.url);
    }
}
