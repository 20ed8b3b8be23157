//! A private PostgreSQL cluster with password (SCRAM) authentication, for the one test that
//! needs a server to refuse a password: the shared server trusts everyone. Tests run as root, so
//! the cluster runs as the `postgres` system user; it is stopped when the value is dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running private cluster on 127.0.0.1.
pub struct Cluster {
    _dir: tempfile::TempDir,
    data: PathBuf,
    pub port: u16,
}

/// Runs a PostgreSQL program as the `postgres` user; panics with its output if it fails.
fn run_as_postgres(program: &str, args: &[&str]) {
    let output = Command::new("runuser")
        .args(["-u", "postgres", "--", &format!("{BIN}/{program}")])
        .args(args)
        .output()
        .unwrap_or_else(|error| panic!("run {program}: {error}"));
    assert!(
        output.status.success(),
        "{program} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn path(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temporary path")
}

impl Cluster {
    /// Initialises and starts a cluster whose superuser `postgres` has `password`.
    pub fn start(password: &str) -> Cluster {
        let dir = tempfile::tempdir().expect("temporary directory");
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, password).expect("write password file");
        let chown = Command::new("chown").args(["-R", "postgres:postgres", path(dir.path())]).status();
        assert!(chown.is_ok_and(|status| status.success()), "chown the cluster's directory");
        run_as_postgres(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                &format!("--pwfile={}", path(&pwfile)),
                "--no-sync",
                "--no-instructions",
            ],
        );
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let cluster = Cluster { data, port, _dir: dir };
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} -c fsync=off \
             -c shared_buffers=16MB -c max_connections=10",
            path(cluster._dir.path())
        );
        let log = cluster._dir.path().join("log");
        run_as_postgres("pg_ctl", &["-D", path(&cluster.data), "-o", &options, "-l", path(&log), "-w", "start"]);
        cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--", &format!("{BIN}/pg_ctl"), "-D", path(&self.data), "-m", "immediate", "-w"])
            .arg("stop")
            .output();
    }
}
