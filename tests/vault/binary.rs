//! The `bunker` binary itself: first start, restart with the same key, wrong key, graceful
//! stop, and logs that carry no personal data.

use std::path::Path;

use serde_json::json;

use crate::process::{PgDatabase, root_token, start};

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
