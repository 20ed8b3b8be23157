//! Two real `bunker serve` processes on one PostgreSQL database agree within a second: a tenant
//! deleted through one is refused by the other, although the other had just verified its token
//! (and would otherwise trust it for the principal cache's ten seconds).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::process::{PgDatabase, start};

#[test]
fn a_tenant_deleted_through_one_replica_is_refused_by_the_other_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = PgDatabase::create();
    let key = bunker::crypto::WrappingKey::generate().to_hex();
    let root = "replicas-root-token-for-the-two-process-test";
    let env = [("DATABUNKER_WRAPPINGKEY", key.as_str()), ("DATABUNKER_ROOTTOKEN", root)];
    let args = ["serve", "--database-url", db.url.as_str()];
    let mut first = start(dir.path(), "first", &args, &env);
    assert!(first.ready(), "first replica: {:?}", first.output());
    let mut second = start(dir.path(), "second", &args, &env);
    assert!(second.ready(), "second replica: {:?}", second.output());

    let (status, created) = first.call("TenantCreate", root, json!({"tenantname": "two-replicas"}));
    assert_eq!(status, 200, "{created}");
    let xtoken = created["xtoken"].as_str().expect("xtoken").to_owned();
    // The second replica verifies the new tenant's token, unlocks its keys and caches both.
    let (status, user) = second.call("UserCreate", &xtoken, json!({"profile": {"email": "r@example.com"}}));
    assert_eq!(status, 200, "{user}");
    let token = user["token"].as_str().expect("token").to_owned();
    let read = |p: &crate::process::Process| p.call("UserGet", &xtoken, json!({"mode": "token", "identity": token})).0;
    assert_eq!(read(&second), 200);

    let (status, deleted) = first.call("TenantDelete", root, json!({"tenantid": created["tenantid"]}));
    assert_eq!(status, 200, "{deleted}");
    let since = Instant::now();
    assert_eq!(read(&first), 403, "the replica that deleted refuses at once");
    while read(&second) != 403 {
        assert!(since.elapsed() < Duration::from_secs(1), "the other replica still serves the deleted tenant");
        std::thread::sleep(Duration::from_millis(20));
    }
    let waited = since.elapsed();
    // Both keep serving the main tenant.
    for replica in [&first, &second] {
        let (status, body) = replica.call("UserCreate", root, json!({"profile": {"email": "main@example.com"}}));
        assert!(status == 200 || body["message"] == "Duplicate index: email", "{status} {body}");
    }
    eprintln!("the second replica refused the deleted tenant after {waited:?}");
    first.stop();
    second.stop();
}
