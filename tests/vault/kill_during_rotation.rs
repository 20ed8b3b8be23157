//! `kill -9` of the real binary while its master-key rotation job runs: after a restart with the
//! same key the job resumes from its last committed batch and finishes, the old version is
//! retired, and every record reads (users by every lookup, tokens, sessions, audit events).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::{PgDatabase, Process, http, start};

const ROOT: &str = "kill-9-root-token-for-the-rotation-test";
const USERS: usize = 30;
const TOKENS: usize = 12;
const SESSIONS: usize = 12;

struct Seeded {
    users: Vec<(String, String)>,
    tokens: Vec<(String, String)>,
    sessions: Vec<String>,
}

fn ok(process: &Process, op: &str, body: Value) -> Value {
    let (status, answer) = process.call(op, ROOT, body.clone());
    assert_eq!(status, 200, "{op} {body}: {answer}");
    answer
}

fn seed(process: &Process) -> Seeded {
    let mut seeded = Seeded { users: Vec::new(), tokens: Vec::new(), sessions: Vec::new() };
    for i in 0..USERS {
        let email = format!("k{i}@rotation.test");
        let user = ok(process, "UserCreate", json!({"profile": {"email": email, "login": format!("k{i}")}}));
        seeded.users.push((user["token"].as_str().expect("token").to_owned(), email));
    }
    for i in 0..TOKENS {
        let record = format!("t{i}@rotation.test");
        let token = ok(process, "TokenCreate", json!({"tokentype": "email", "record": record, "unique": true}));
        seeded.tokens.push((token["tokenuuid"].as_str().expect("tokenuuid").to_owned(), record));
    }
    for i in 0..SESSIONS {
        let sessionuuid = uuid::Uuid::new_v4().to_string();
        ok(process, "SessionUpsert", json!({"sessionuuid": sessionuuid, "sessiondata": {"n": i}}));
        seeded.sessions.push(sessionuuid);
    }
    seeded
}

fn read_all(process: &Process, seeded: &Seeded) {
    for (token, email) in &seeded.users {
        let login = email.split('@').next().expect("login");
        for (mode, identity) in [("token", token.as_str()), ("email", email.as_str()), ("login", login)] {
            let user = ok(process, "UserGet", json!({"mode": mode, "identity": identity}));
            assert_eq!(user["profile"]["email"], email.as_str());
        }
    }
    for (tokenuuid, record) in &seeded.tokens {
        assert_eq!(ok(process, "TokenGet", json!({"token": tokenuuid}))["record"], record.as_str());
        let again = ok(process, "TokenCreate", json!({"tokentype": "email", "record": record, "unique": true}));
        assert_eq!(again["tokenuuid"], tokenuuid.as_str(), "found again by its value's index");
    }
    for (n, sessionuuid) in seeded.sessions.iter().enumerate() {
        assert_eq!(ok(process, "SessionGet", json!({"sessionuuid": sessionuuid}))["sessiondata"], json!({"n": n}));
    }
    let (status, unlock) = http(process.addr, "POST", "/v2/BulkListUnlock", Some(ROOT), "").expect("answer");
    assert_eq!(status, 200, "{unlock}");
    let unlock: Value = serde_json::from_str(&unlock).expect("JSON");
    let listed = ok(process, "BulkListAllAuditEvents", json!({"unlockuuid": unlock["unlockuuid"], "limit": 1000}));
    let rows = listed["rows"].as_array().expect("rows");
    assert!(rows.len() > USERS + TOKENS + SESSIONS, "{listed}");
    for row in rows {
        let event = ok(process, "AuditGetEvent", json!({"auditeventuuid": row["auditeventuuid"]}));
        assert!(event["details"].is_object(), "an event's details no longer open: {event}");
    }
}

fn status(process: &Process) -> Value {
    ok(process, "SystemGetMasterKeyStatus", json!({}))
}

fn kill_during_rotation(dir: &Path, args: &[&str], key: &str) {
    let env = [
        ("DATABUNKER_WRAPPINGKEY", key),
        ("DATABUNKER_ROOTTOKEN", ROOT),
        // Small batches far apart, so that the kill lands mid-job.
        ("BUNKER_KEY_JOB_BATCH", "3"),
        ("BUNKER_KEY_JOB_PAUSE_MS", "100"),
        ("BUNKER_KEY_RETIRE_GRACE", "1"),
    ];
    let mut first = start(dir, "first", args, &env);
    assert!(first.ready(), "vault did not start: {:?}", first.output());
    let seeded = seed(&first);
    assert_eq!(ok(&first, "SystemRotateMasterKey", json!({}))["version"], 2);

    let since = Instant::now();
    let before_kill = loop {
        let now = status(&first);
        if now["job"]["resealed"].as_i64().unwrap_or(0) >= 6 {
            break now;
        }
        assert!(since.elapsed() < Duration::from_secs(30), "the job made no progress: {now}");
        std::thread::sleep(Duration::from_millis(20));
    };
    let killed =
        std::process::Command::new("kill").args(["-KILL", &first.child.id().to_string()]).status().expect("kill");
    assert!(killed.success());
    first.child.wait().expect("wait");
    assert_ne!(before_kill["job"]["stage"], "done", "killed too late: {before_kill}");

    let mut second = start(dir, "second", args, &env);
    assert!(second.ready(), "vault did not restart: {:?}", second.output());
    // Its progress was kept: the job goes on from there, not from the start.
    let resumed = status(&second);
    assert!(
        resumed["job"]["resealed"].as_i64() >= before_kill["job"]["resealed"].as_i64(),
        "{resumed} after {before_kill}"
    );
    let since = Instant::now();
    let done = loop {
        let now = status(&second);
        if now["job"]["stage"] == "done" {
            break now;
        }
        assert!(since.elapsed() < Duration::from_secs(60), "the job did not finish after the restart: {now}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(done["active"], 2, "{done}");
    assert_eq!(done["job"]["passes"], 0, "{done}");
    let states: Vec<&Value> = done["versions"].as_array().expect("versions").iter().map(|v| &v["state"]).collect();
    assert_eq!(states, [&json!("retired"), &json!("active")], "{done}");
    read_all(&second, &seeded);
    let (status, metrics) = http(second.addr, "GET", "/metrics", None, "").expect("metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains("bunker_key_versions_retired_total 1"), "{metrics}");
    let (stdout, stderr) = second.stop();
    let log = stdout + &stderr;
    assert!(log.contains("master-key rotation job: done"), "the log does not report the job: {log}");
    eprintln!("killed at {before_kill}, finished as {done}");
}

mod kill_during_the_rotation_job {
    use super::*;

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("rotation.db").display());
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        kill_during_rotation(dir.path(), &["serve", "--database-url", &url], &key);
    }

    #[test]
    fn postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = PgDatabase::create();
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        kill_during_rotation(dir.path(), &["serve", "--database-url", &db.url], &key);
    }
}
