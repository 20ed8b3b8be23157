//! `kill -9` of the real binary while clients create users: after a restart with the same key,
//! every create that was answered 200 is readable by its token and has its audit event.
//! `UserCreate` commits through the group commit (one transaction per batch, its COMMIT sent
//! only once every caller is still waiting), so this is what that path must never lose.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::json;

use crate::process::{PgDatabase, http, start};

const ROOT: &str = "kill-9-root-token-for-the-binary-test";
const WRITERS: usize = 8;

fn kill_during_creates(dir: &Path, args: &[&str], key: &str) {
    let env = [("DATABUNKER_WRAPPINGKEY", key), ("DATABUNKER_ROOTTOKEN", ROOT)];
    let mut first = start(dir, "first", args, &env);
    assert!(first.ready(), "vault did not start: {:?}", first.output());
    let addr = first.addr;
    let stop = AtomicBool::new(false);
    let acknowledged = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for writer in 0..WRITERS {
            let (stop, acknowledged) = (&stop, &acknowledged);
            scope.spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    let login = format!("k{writer}-{i}");
                    let body = json!({"profile": {"login": login}}).to_string();
                    if let Some((200, answer)) = http(addr, "POST", "/v2/UserCreate", Some(ROOT), &body) {
                        let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON answer");
                        let token = answer["token"].as_str().expect("token").to_owned();
                        acknowledged.lock().expect("lock").push((login, token));
                    }
                    i += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_millis(1500));
        let killed =
            std::process::Command::new("kill").args(["-KILL", &first.child.id().to_string()]).status().expect("kill");
        assert!(killed.success());
        first.child.wait().expect("wait");
        stop.store(true, Ordering::Relaxed);
    });
    let acknowledged = acknowledged.into_inner().expect("lock");
    assert!(acknowledged.len() >= WRITERS, "too few creates before the kill: {}", acknowledged.len());

    let mut second = start(dir, "second", args, &env);
    assert!(second.ready(), "vault did not restart: {:?}", second.output());
    for (login, token) in &acknowledged {
        let (status, user) = second.call("UserGet", ROOT, json!({"mode": "token", "identity": token}));
        assert_eq!(status, 200, "acknowledged create of {login} lost: {user}");
        assert_eq!(user["profile"]["login"], login.as_str());
        let (status, events) =
            second.call("AuditListUserEvents", ROOT, json!({"mode": "token", "identity": token, "limit": 100}));
        assert_eq!(status, 200, "{events}");
        let rows = events["rows"].as_array().expect("rows");
        assert!(
            rows.iter().any(|row| row["title"] == "UserCreate" && row["httpstatus"] == 200),
            "acknowledged create of {login} has no event: {events}"
        );
    }
    eprintln!("{} acknowledged creates survived kill -9", acknowledged.len());
    second.stop();
}

mod kill_during_concurrent_creates {
    use super::*;

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("kill.db").display());
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        kill_during_creates(dir.path(), &["serve", "--database-url", &url], &key);
    }

    #[test]
    fn postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = PgDatabase::create();
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        kill_during_creates(dir.path(), &["serve", "--database-url", &db.url], &key);
    }
}
