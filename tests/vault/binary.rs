//! The `bunker` binary itself: first start, restart with the same key, wrong key, graceful
//! stop, logs that carry no personal data, and what start-up refuses.

use std::path::Path;

use serde_json::json;

use crate::process::{Launch, PgDatabase, root_token, start, start_with};

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
        // The embedded default in development mode: no database URL and no wrapping key, so a
        // development key is kept.
        restart_round_trip(dir.path(), &["serve", "--dev"], &[]);
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
        let db = PgDatabase::create();
        let url = db.url.clone();
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        restart_round_trip(
            dir.path(),
            &["serve", "--database-url", &url],
            &[("DATABUNKER_WRAPPINGKEY", &key), ("DATABUNKER_ROOTTOKEN", "pg-root-token-for-the-binary-test")],
        );
        // PostgreSQL never gets a development key: without one, start-up stops.
        let mut keyless = start(dir.path(), "keyless", &["serve", "--database-url", &url], &[]);
        assert!(!keyless.child.wait().expect("wait").success());
        assert!(keyless.output().1.contains("DATABUNKER_WRAPPINGKEY"));
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

/// Waits for a start that must fail; returns its stdout and stderr.
fn refused(mut process: crate::process::Process) -> (String, String) {
    let status = process.exit_within(std::time::Duration::from_secs(30));
    let (stdout, stderr) = process.output();
    let tail = &stderr[stderr.len().saturating_sub(2_000)..];
    assert!(status.is_some_and(|s| !s.success()), "start-up should have failed: {status:?}\n{stdout}\n…{tail}");
    (stdout, stderr)
}

/// A busy listen port stops start-up before an empty vault is initialised: no secrets are
/// printed for a vault that then exits, and the next start on a free port initialises it.
#[test]
fn a_busy_port_stops_start_up_before_the_vault_is_initialised() {
    let dir = tempfile::tempdir().expect("tempdir");
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let launch = Launch { addr: Some(busy.local_addr().expect("addr")), ..Launch::default() };
    let (stdout, stderr) = refused(start_with(dir.path(), "busy", &launch, &["serve", "--dev"], &[]));
    assert!(!stdout.contains("Root access token"), "{stdout}");
    assert!(stderr.contains("cannot listen on"), "{stderr}");
    assert!(!dir.path().join("bunker-data").exists(), "the database was created for a vault that could not listen");
    drop(busy);

    let mut first = start(dir.path(), "first", &["serve", "--dev"], &[]);
    assert!(first.ready(), "vault did not start: {:?}", first.output());
    let (stdout, _) = first.stop();
    assert_eq!(stdout.matches("Root access token").count(), 1, "{stdout}");
    let mut second = start(dir.path(), "second", &["serve", "--dev"], &[]);
    assert!(second.ready());
    assert!(!second.stop().0.contains("Root access token"));
}

/// `serve` keeps a development wrapping key only when told to (`--dev` or `BUNKER_DEV=1`),
/// both to generate one and to use one kept from before.
#[test]
fn serve_uses_a_development_key_only_when_told_to() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (stdout, stderr) = refused(start(dir.path(), "plain", &["serve"], &[]));
    assert!(stderr.contains("DATABUNKER_WRAPPINGKEY") && stderr.contains("--dev"), "{stderr}");
    assert!(!stdout.contains("Root access token"));
    assert!(!dir.path().join("bunker-data").exists(), "a refused start created the database");
    let (_, stderr) = refused(start(dir.path(), "zero", &["serve"], &[("BUNKER_DEV", "0")]));
    assert!(stderr.contains("--dev"), "{stderr}");

    let mut dev = start(dir.path(), "dev", &["serve"], &[("BUNKER_DEV", "1")]);
    assert!(dev.ready(), "vault did not start: {:?}", dev.output());
    let (stdout, stderr) = dev.stop();
    assert!(stdout.contains("Development wrapping key: "), "{stdout}");
    assert!(stderr.contains("DEVELOPMENT WRAPPING KEY"), "{stderr}");

    // The key kept beside the data is not used behind the operator's back either.
    let (_, stderr) = refused(start(dir.path(), "again", &["serve"], &[]));
    assert!(stderr.contains("a development wrapping key is kept in"), "{stderr}");
    let mut dev = start(dir.path(), "dev-again", &["serve", "--dev"], &[]);
    assert!(dev.ready(), "vault did not restart: {:?}", dev.output());
    dev.stop();
}

/// `serve` refuses the public demo wrapping key and the demo root token.
#[test]
fn serve_refuses_the_demo_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo_key = [("DATABUNKER_WRAPPINGKEY", bunker::config::DEMO_WRAPPING_KEY)];
    let (stdout, stderr) = refused(start(dir.path(), "demo-key", &["serve"], &demo_key));
    assert!(stderr.contains("DATABUNKER_WRAPPINGKEY is the public demo key"), "{stderr}");
    assert!(!stdout.contains("Root access token"));
    let key = bunker::crypto::WrappingKey::generate().to_hex();
    let demo_token = [("DATABUNKER_WRAPPINGKEY", key.as_str()), ("DATABUNKER_ROOTTOKEN", "DEMO")];
    let (_, stderr) = refused(start(dir.path(), "demo-token", &["serve"], &demo_token));
    assert!(stderr.contains("DATABUNKER_ROOTTOKEN is the public demo token"), "{stderr}");
    assert!(!dir.path().join("bunker-data").exists(), "a refused start created the database");
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// The embedded data directory is 0700 and the database files 0600 whatever the umask, and an
/// earlier, looser file is tightened at start.
#[cfg(unix)]
#[test]
fn embedded_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("bunker-data");
    let launch = Launch { shell: Some("umask 0002"), ..Launch::default() };
    let mut vault = start_with(dir.path(), "first", &launch, &["serve", "--dev"], &[]);
    assert!(vault.ready(), "vault did not start: {:?}", vault.output());
    let token = root_token(&vault.output().0);
    let (status, _) = vault.call("UserCreate", &token, json!({"profile": {"login": "modes"}}));
    assert_eq!(status, 200);
    assert_eq!(mode(&data), 0o700, "data directory");
    for file in ["bunker.db", "bunker.db-wal", "bunker.db-shm", "bunker.db.wrapping-key"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    vault.stop();

    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(data.join("bunker.db"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let mut vault = start_with(dir.path(), "second", &launch, &["serve", "--dev"], &[]);
    assert!(vault.ready(), "vault did not restart: {:?}", vault.output());
    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&data.join("bunker.db")), 0o600);
    vault.stop();
}
