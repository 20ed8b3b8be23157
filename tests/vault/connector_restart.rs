//! The erasure queue survives `kill -9` of the vault between the commit of a user's deletion and
//! the external delete; after the restart, two replicas on the same database carry every queued
//! erasure out exactly once (a claimed job is one worker's), and no log line holds the
//! connector's password or the user's values.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::external_db::{ANN_EMAIL, BOB_EMAIL, Engine, ExternalDb};
use crate::process::{PgDatabase, Process, start};

const ROOT: &str = "kill-9-root-token-for-the-connector-test";
const PASSWORD: &str = "conn-pw-never-logged-7731";
const USERS: i64 = 3;

fn started(dir: &Path, run: &str, args: &[&str], key: &str, interval_ms: &str) -> Process {
    let env = [
        ("DATABUNKER_WRAPPINGKEY", key),
        ("DATABUNKER_ROOTTOKEN", ROOT),
        ("BUNKER_CONNECTOR_HOSTS", "127.0.0.1"),
        ("BUNKER_CONNECTOR_ERASURE_INTERVAL_MS", interval_ms),
    ];
    let mut process = start(dir, run, args, &env);
    assert!(process.ready(), "vault did not start: {:?}", process.output());
    process
}

fn erasure_survives_a_kill(dir: &Path, args: &[&str]) {
    let key = bunker::crypto::WrappingKey::generate().to_hex();
    let db = ExternalDb::with_customers(Engine::MariaDb);
    let user = format!("u{}", &db.name[4..16]);
    db.exec(&format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY '{PASSWORD}'; GRANT ALL ON {}.* TO '{user}'@'127.0.0.1'",
        db.name
    ));
    // More of Ann's rows: one per vault user below, by e-mail.
    for n in 1..USERS {
        db.exec(&format!(
            "INSERT INTO {} VALUES ({id}, 'ann{n}@example.com', 'ann{n}', NULL, 'Ann {n}')",
            db.quote(crate::external_db::CUSTOMERS),
            id = 100 + n
        ));
    }

    // The first process never works the queue on its own (an hour between passes, the first at start).
    let mut first = started(dir, "first", args, &key, "3600000");
    let mut fields = db.fields(PASSWORD);
    fields["username"] = json!(user);
    fields["connectorname"] = json!("shop");
    fields["erasure"] = json!(true);
    let (status, created) = first.call("ConnectorCreate", ROOT, fields);
    assert_eq!(status, 200, "{created}");
    for n in 0..USERS {
        let email = if n == 0 { ANN_EMAIL.to_owned() } else { format!("ann{n}@example.com") };
        let (status, answer) = first.call("UserCreate", ROOT, json!({"profile": {"email": email}}));
        assert_eq!(status, 200, "{answer}");
        let (status, answer) = first.call("UserDelete", ROOT, json!({"mode": "email", "identity": email}));
        assert_eq!(status, 200, "{answer}");
    }
    let (_, listed) = first.call("ConnectorListConnectors", ROOT, json!({}));
    assert_eq!(listed["rows"][0]["pendingerasures"], USERS, "{listed}");
    let killed = std::process::Command::new("kill").args(["-KILL", &first.child.id().to_string()]).status();
    assert!(killed.expect("kill").success());
    first.child.wait().expect("wait");
    assert_eq!(db.customers_with(ANN_EMAIL), 1, "nothing was erased outside before the kill");

    // Two replicas on the same database, working the queue every 100 ms.
    let second = started(dir, "second", args, &key, "100");
    let third = started(dir, "third", args, &key, "100");
    let deadline = Instant::now() + Duration::from_secs(30);
    let remaining = || {
        db.count(&format!("SELECT COUNT(*) FROM {} WHERE email LIKE 'ann%'", db.quote(crate::external_db::CUSTOMERS)))
    };
    while remaining() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(remaining(), 0, "the queued erasures were not carried out after the restart");
    assert_eq!((db.customers_with(BOB_EMAIL), db.orders_of(2)), (1, 1), "a stranger's rows are untouched");
    assert_eq!(db.orders_of(1), 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let pending =
        |p: &Process| p.call("ConnectorListConnectors", ROOT, json!({})).1["rows"][0]["pendingerasures"].clone();
    while pending(&second) != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(pending(&third), 0, "every job ended");

    // Each job's outcome recorded once, by whichever replica claimed it.
    let logs: Vec<(String, String)> = [second, third].into_iter().map(Process::stop).collect();
    let (first_out, first_err) = first.output();
    let mut every_log = format!("{first_out}{first_err}");
    for (out, err) in &logs {
        every_log.push_str(out);
        every_log.push_str(err);
    }
    for secret in [PASSWORD, ANN_EMAIL, "ann1@example.com", user.as_str()] {
        assert!(!every_log.contains(secret), "a log line holds {secret}");
    }
    let outcomes = erasure_events(args);
    assert_eq!(outcomes, USERS, "one ConnectorErasure event per queued job");
    db.exec(&format!("DROP USER '{user}'@'127.0.0.1'"));
}

/// The `ConnectorErasure` events stored, read from the database the processes used.
fn erasure_events(args: &[&str]) -> i64 {
    let url = args[args.iter().position(|a| *a == "--database-url").expect("url") + 1];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let sql = "SELECT COUNT(*) FROM audit_events WHERE operation = 'ConnectorErasure' AND http_status = 200";
        if url.starts_with("sqlite") {
            let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
            sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.expect("count")
        } else {
            let pool = sqlx::PgPool::connect(url).await.expect("postgres");
            sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await.expect("count")
        }
    })
}

mod erasure_queue_survives_kill_and_runs_once_on_two_replicas {
    use super::*;

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("connectors.db").display());
        erasure_survives_a_kill(dir.path(), &["serve", "--database-url", &url]);
    }

    #[test]
    fn postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = PgDatabase::create();
        erasure_survives_a_kill(dir.path(), &["serve", "--database-url", &db.url]);
    }
}
