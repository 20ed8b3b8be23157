//! The `bunker` binary itself: first start, restart with the same key, wrong key, graceful
//! stop, and logs that carry no personal data.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A running `bunker` process with its output captured in files.
struct Process {
    child: Child,
    addr: SocketAddr,
    stdout: PathBuf,
    stderr: PathBuf,
}

fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn start(dir: &Path, run: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
    let addr = free_addr();
    let stdout = dir.join(format!("{run}.out"));
    let stderr = dir.join(format!("{run}.err"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_bunker"));
    command
        .args(args)
        .args(["--listen", &addr.to_string()])
        .current_dir(dir)
        .env_remove("DATABUNKER_WRAPPINGKEY")
        .env_remove("DATABUNKER_WRAPPINGKEY_FILE")
        .env_remove("DATABUNKER_ROOTTOKEN")
        .env_remove("BUNKER_DATABASE_URL")
        .env_remove("PGSQL_HOST")
        .env("BUNKER_LOG", "debug")
        .stdout(Stdio::from(std::fs::File::create(&stdout).expect("stdout file")))
        .stderr(Stdio::from(std::fs::File::create(&stderr).expect("stderr file")));
    for (key, value) in env {
        command.env(key, value);
    }
    let child = command.spawn().expect("spawn bunker");
    Process { child, addr, stdout, stderr }
}

impl Process {
    /// Waits until `/status` answers 200, or the process exits.
    fn ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().expect("wait").is_some() {
                return false;
            }
            if http(self.addr, "GET", "/status", None, "").is_some_and(|(status, _)| status == 200) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn call(&self, op: &str, token: &str, body: Value) -> (u16, Value) {
        let (status, text) =
            http(self.addr, "POST", &format!("/v2/{op}"), Some(token), &body.to_string()).expect("answer");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends SIGTERM and waits for a clean exit.
    fn stop(mut self) -> (String, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(sent.success());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "bunker did not stop cleanly on SIGTERM: {status}");
        self.output()
    }

    fn output(&self) -> (String, String) {
        (
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }
}

/// A minimal HTTP/1.1 exchange (no client library needed for two endpoints).
fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let token = token.map(|t| format!("X-Bunker-Token: {t}\r\n")).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n{token}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_owned()))
}

fn root_token(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Root access token: "))
        .expect("root token printed on first start")
        .trim()
        .to_owned()
}

const PROFILE_VALUES: [&str; 4] = ["carol.binary@example.org", "+447700900555", "carol-login", "Carol Binaryson"];

/// First start, a user, restart with the same key: the same data; logs never hold its values.
fn restart_round_trip(dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let mut first = start(dir, "first", args, env);
    assert!(first.ready(), "vault did not start: {:?}", first.output());
    let (stdout, _) = first.output();
    let token = root_token(&stdout);
    assert_eq!(stdout.matches("  key").count(), 5, "five recovery shares are shown: {stdout}");
    let profile = json!({"email": PROFILE_VALUES[0], "phone": PROFILE_VALUES[1], "login": PROFILE_VALUES[2],
                         "name": PROFILE_VALUES[3]});
    let (status, body) = first.call("UserCreate", &token, json!({"profile": profile}));
    assert_eq!(status, 200, "{body}");
    let user = body["token"].as_str().expect("user token").to_owned();
    let (status, _) = first.call("UserGet", &token, json!({"mode": "email", "identity": PROFILE_VALUES[0]}));
    assert_eq!(status, 200);
    let (status, _) = first.call("UserGet", &token, json!({"mode": "login", "identity": "nobody"}));
    assert_eq!(status, 404);
    let (_, first_log) = first.stop();

    let mut second = start(dir, "second", args, env);
    assert!(second.ready(), "vault did not restart: {:?}", second.output());
    let (status, body) = second.call("UserGet", &token, json!({"mode": "token", "identity": user}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profile"], profile);
    let (second_out, second_log) = second.stop();
    assert!(!second_out.contains("Root access token"), "secrets are shown only once");

    for log in [&first_log, &second_log] {
        assert!(!log.is_empty(), "debug logging produced nothing");
        for value in PROFILE_VALUES.iter().chain([&token.as_str(), &user.as_str()]) {
            assert!(!log.contains(value), "the log contains {value}:\n{log}");
        }
    }
}

mod serve_restart {
    use super::*;

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        // The embedded default: no database URL and no wrapping key, so a development key is kept.
        restart_round_trip(dir.path(), &["serve"], &[]);
        let first_err = std::fs::read_to_string(dir.path().join("first.err")).expect("log");
        assert!(first_err.contains("DEVELOPMENT WRAPPING KEY"), "{first_err}");
        let db = std::fs::read(dir.path().join("bunker-data/bunker.db")).expect("database file");
        for value in PROFILE_VALUES {
            assert!(!db.windows(value.len()).any(|w| w == value.as_bytes()), "{value} is in the database file");
        }
        // A different key must stop start-up, not serve garbage.
        let wrong = bunker::crypto::WrappingKey::generate().to_hex();
        let mut bad = start(dir.path(), "wrong", &["serve"], &[("DATABUNKER_WRAPPINGKEY", &wrong)]);
        let status = bad.child.wait().expect("wait");
        assert!(!status.success());
        let (_, err) = bad.output();
        assert!(err.contains("the wrapping key does not match this vault"), "{err}");
    }

    #[test]
    fn postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let name = format!("bunker_bin_{}", uuid::Uuid::new_v4().simple());
        let admin = crate::common::pg_admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base).to_owned();
        let url = format!("{base}/{name}");
        let psql = |sql: &str| {
            let ok = Command::new("psql").args([admin.as_str(), "-qc", sql]).status().expect("psql").success();
            assert!(ok, "psql {sql}");
        };
        psql(&format!("CREATE DATABASE {name}"));
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        let outcome = std::panic::catch_unwind(|| {
            restart_round_trip(
                dir.path(),
                &["serve", "--database-url", &url],
                &[("DATABUNKER_WRAPPINGKEY", &key), ("DATABUNKER_ROOTTOKEN", "pg-root-token-for-the-binary-test")],
            );
            // PostgreSQL never gets a development key: without one, start-up stops.
            let mut keyless = start(dir.path(), "keyless", &["serve", "--database-url", &url], &[]);
            assert!(!keyless.child.wait().expect("wait").success());
            assert!(keyless.output().1.contains("DATABUNKER_WRAPPINGKEY"));
        });
        psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn demo_prints_its_banner_and_serves_with_token_demo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut demo = start(dir.path(), "demo", &["demo"], &[]);
    assert!(demo.ready());
    let (status, body) = demo.call("UserCreate", "DEMO", json!({"profile": {"email": "demo@example.org"}}));
    assert_eq!((status, &body["status"]), (200, &json!("ok")));
    let (stdout, _) = demo.stop();
    assert!(stdout.contains("DEMO ONLY: in-memory SQLite, all data is lost on exit."), "{stdout}");
    assert!(stdout.contains("publicly known"), "{stdout}");
    assert!(stdout.contains("Root access token: DEMO"));
    assert!(!dir.path().join("bunker-data").exists(), "demo mode must not write to disk");
}
