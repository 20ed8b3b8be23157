//! A real `bunker` process for tests that need the binary: start it with its output captured,
//! wait for it, call it over plain HTTP/1.1, stop it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A running `bunker` process with its output captured in files.
pub struct Process {
    pub child: Child,
    pub addr: SocketAddr,
    stdout: PathBuf,
    stderr: PathBuf,
}

pub fn free_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

pub fn start(dir: &Path, run: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
    start_with(dir, run, &Launch::default(), args, env)
}

/// The binary under test: `BUNKER_BIN` when set (a release build), else the one cargo built.
pub fn bunker_bin() -> PathBuf {
    std::env::var_os("BUNKER_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_bunker")), PathBuf::from)
}

/// Starts [`bunker_bin`] with its address space capped at `cap_kib` (`ulimit -v`, what a
/// container memory limit does to an allocation that does not fit).
pub fn start_capped(dir: &Path, run: &str, cap_kib: u64, args: &[&str], env: &[(&str, &str)]) -> Process {
    let shell = format!("ulimit -v {cap_kib}");
    start_with(dir, run, &Launch { shell: Some(&shell), ..Launch::default() }, args, env)
}

/// How to launch a process beyond its arguments and environment.
#[derive(Default)]
pub struct Launch<'a> {
    /// Listen here instead of on a free port.
    pub addr: Option<SocketAddr>,
    /// Shell commands run before `exec bunker` in the same process (`ulimit -n 1024`, `umask 0002`).
    pub shell: Option<&'a str>,
}

pub fn start_with(dir: &Path, run: &str, launch: &Launch<'_>, args: &[&str], env: &[(&str, &str)]) -> Process {
    let addr = launch.addr.unwrap_or_else(free_addr);
    let stdout = dir.join(format!("{run}.out"));
    let stderr = dir.join(format!("{run}.err"));
    let bunker = bunker_bin();
    let mut command = match launch.shell {
        // `exec` keeps the process id, so the child is bunker itself once the shell has run.
        Some(shell) => {
            let mut command = Command::new("sh");
            command.args(["-c", &format!("{shell} && exec \"$0\" \"$@\"")]).arg(&bunker);
            command
        }
        None => Command::new(&bunker),
    };
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
    pub fn ready(&mut self) -> bool {
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

    pub fn call(&self, op: &str, token: &str, body: Value) -> (u16, Value) {
        let (status, text) =
            http(self.addr, "POST", &format!("/v2/{op}"), Some(token), &body.to_string()).expect("answer");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> (String, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().expect("kill");
        assert!(sent.success());
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "bunker did not stop cleanly on SIGTERM: {status}");
        self.output()
    }

    /// Waits for a process that must exit by itself (a refused start), killing it if it is
    /// still running after `wait`; returns its exit status, if it exited.
    pub fn exit_within(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Peak resident memory since start or the last [`Process::reset_peak`], in KiB (`VmHWM`).
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("process status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM")
    }

    /// Starts a new peak: the next [`Process::peak_rss_kib`] counts from the current resident size.
    pub fn reset_peak(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5").expect("clear_refs");
    }

    pub fn output(&self) -> (String, String) {
        (
            std::fs::read_to_string(&self.stdout).unwrap_or_default(),
            std::fs::read_to_string(&self.stderr).unwrap_or_default(),
        )
    }
}

/// A test that fails midway does not leave its vault running.
impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A minimal HTTP/1.1 exchange (no client library needed for two endpoints).
pub fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> Option<(u16, String)> {
    http_within(Duration::from_secs(10), addr, method, path, token, body)
}

/// [`http`], waiting up to `wait` for the answer.
pub fn http_within(
    wait: Duration,
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(wait)).ok()?;
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

pub fn root_token(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| line.trim().strip_prefix("Root access token: "))
        .expect("root token printed on first start")
        .trim()
        .to_owned()
}

/// A fresh PostgreSQL database for a process, dropped afterwards (even when the test panics).
pub struct PgDatabase {
    pub name: String,
    pub url: String,
    admin: String,
}

impl PgDatabase {
    pub fn create() -> PgDatabase {
        let name = format!("bunker_bin_{}", uuid::Uuid::new_v4().simple());
        let admin = crate::common::pg_admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base).to_owned();
        let db = PgDatabase { url: format!("{base}/{name}"), name, admin };
        db.psql(&format!("CREATE DATABASE {}", db.name));
        db
    }

    fn psql(&self, sql: &str) {
        let ok = Command::new("psql").args([self.admin.as_str(), "-qc", sql]).status().expect("psql").success();
        assert!(ok, "psql {sql}");
    }

    /// Runs `sql` in this database as the administrator.
    pub fn psql_here(&self, sql: &str) {
        let ok = Command::new("psql").args([self.url.as_str(), "-qc", sql]).status().expect("psql").success();
        assert!(ok, "psql {sql}");
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([self.admin.as_str(), "-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .status();
    }
}
