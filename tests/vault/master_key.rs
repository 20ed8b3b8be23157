//! Master-key rotation: a new version seals new data at once, on every replica; the job seals
//! every older tenant-level blob again and retires the older versions; every record, and every
//! lookup by a blind index, reads the same before, during and after, and after a restart.

use std::time::Duration;

use bunker::keys::JobSettings;
use bunker::state::Settings;
use bunker::store::Db;
use serde_json::{Value, json};
use sqlx::Row;

use crate::both;
use crate::common::TestVault;

/// Small batches, no pause, retirement as soon as the job is through.
fn quick(_: &std::path::Path) -> Settings {
    Settings {
        key_job: JobSettings { batch: 3, pause: Duration::ZERO, retire_grace: Duration::ZERO },
        ..Settings::default()
    }
}

/// The blobs a query selects (first column), as the administrator sees them.
pub async fn blobs(v: &TestVault, sql: &str) -> Vec<Vec<u8>> {
    match v.db() {
        Db::Sqlite(pool) => sqlx::query(sql).fetch_all(pool).await.expect("query").iter().map(|r| r.get(0)).collect(),
        Db::Postgres(pool) => sqlx::query(sql).fetch_all(pool).await.expect("query").iter().map(|r| r.get(0)).collect(),
    }
}

/// Texts a query selects (first column).
async fn texts(v: &TestVault, sql: &str) -> Vec<String> {
    match v.db() {
        Db::Sqlite(pool) => sqlx::query(sql).fetch_all(pool).await.expect("query").iter().map(|r| r.get(0)).collect(),
        Db::Postgres(pool) => sqlx::query(sql).fetch_all(pool).await.expect("query").iter().map(|r| r.get(0)).collect(),
    }
}

/// Every tenant-level blob of `tenant`, labelled by where it is.
pub async fn tenant_blobs(v: &TestVault, tenant: i64) -> Vec<(&'static str, Vec<u8>)> {
    let queries = [
        ("users", format!("SELECT wrapped_key FROM users WHERE tenant_id = {tenant}")),
        ("audit", format!("SELECT payload FROM audit_events WHERE tenant_id = {tenant} AND key_scope = 'tenant'")),
        ("tokens", format!("SELECT data FROM tokens WHERE tenant_id = {tenant}")),
        ("sessions", format!("SELECT data FROM sessions WHERE tenant_id = {tenant} AND user_rid IS NULL")),
        ("email", format!("SELECT email FROM tenants WHERE id = {tenant} AND email IS NOT NULL")),
        ("connectors", format!("SELECT secret FROM connectors WHERE tenant_id = {tenant}")),
        ("erasures", format!("SELECT identities FROM connector_erasures WHERE tenant_id = {tenant}")),
    ];
    let mut out = Vec::new();
    for (label, sql) in queries {
        out.extend(blobs(v, &sql).await.into_iter().map(|blob| (label, blob)));
    }
    out
}

/// Format byte 2 (a per-purpose subkey) and the version.
fn header(version: u32) -> Vec<u8> {
    let mut out = vec![2];
    out.extend(version.to_be_bytes());
    out
}

/// Records of every kind that seals at tenant level, and how to find them again.
pub struct Seeded {
    pub users: Vec<(String, String)>,
    pub tokens: Vec<(String, String)>,
    pub sessions: Vec<(String, i64)>,
    /// Connectors (their sealed passwords), each with an erasure queued for a deleted user.
    pub connectors: Vec<i64>,
}

pub async fn seed(v: &TestVault, prefix: &str, count: usize) -> Seeded {
    let mut seeded = Seeded { users: Vec::new(), tokens: Vec::new(), sessions: Vec::new(), connectors: Vec::new() };
    let connector = json!({"connectorname": format!("{prefix}-crm"), "connectortype": "mysql", "dbhost": "127.0.0.1",
                           "dbname": "crm", "tablename": "customers", "username": "crm", "apikey": "pw", "erasure": true});
    let connectorid = v.call("ConnectorCreate", connector).await.ok()["connectorid"].as_i64().expect("connectorid");
    seeded.connectors.push(connectorid);
    let gone = v.create_user(json!({"email": format!("{prefix}-gone@rotate.test")})).await;
    v.call("UserDelete", json!({"mode": "token", "identity": gone})).await.ok();
    for i in 0..count {
        let email = format!("{prefix}{i}@rotate.test");
        let token = v.create_user(json!({"email": email, "login": format!("{prefix}{i}")})).await;
        seeded.users.push((token, email.clone()));
        let created = v.call("TokenCreate", json!({"tokentype": "email", "record": email, "unique": true})).await.ok();
        seeded.tokens.push((created["tokenuuid"].as_str().expect("tokenuuid").to_owned(), email.clone()));
        let sessionuuid = uuid::Uuid::new_v4().to_string();
        v.call("SessionUpsert", json!({"sessionuuid": sessionuuid, "sessiondata": {"n": i}})).await.ok();
        seeded.sessions.push((sessionuuid, i64::try_from(i).expect("small")));
    }
    seeded
}

/// Reads every seeded record back, through every kind of lookup.
pub async fn read_all(v: &TestVault, seeded: &Seeded) {
    for (token, email) in &seeded.users {
        let login = email.split('@').next().expect("login");
        for (mode, identity) in [("token", token.as_str()), ("email", email.as_str()), ("login", login)] {
            let user = v.call("UserGet", json!({"mode": mode, "identity": identity})).await.ok();
            assert_eq!(user["profile"]["email"], email.as_str(), "{mode} {identity}");
        }
    }
    for (tokenuuid, record) in &seeded.tokens {
        let got = v.call("TokenGet", json!({"token": tokenuuid})).await.ok();
        assert_eq!(got["record"], record.as_str());
        // A unique token is found again by its value's blind index.
        let again = v.call("TokenCreate", json!({"tokentype": "email", "record": record, "unique": true})).await.ok();
        assert_eq!(again["tokenuuid"], tokenuuid.as_str());
    }
    for (sessionuuid, n) in &seeded.sessions {
        let got = v.call("SessionGet", json!({"sessionuuid": sessionuuid})).await.ok();
        assert_eq!(got["sessiondata"], json!({"n": n}));
    }
    for connectorid in &seeded.connectors {
        // Its password opens (the test vault's allow-list then refuses the host).
        let answer = v.call("ConnectorValidateConnectivity", json!({"connectorid": connectorid})).await.ok();
        assert_eq!(answer["reason"], "The connector's host is not allowed", "{answer}");
    }
    let events = texts(v, "SELECT uuid FROM audit_events WHERE tenant_id = 1 AND key_scope = 'tenant'").await;
    assert!(!events.is_empty());
    for uuid in events {
        let event = v.call("AuditGetEvent", json!({"auditeventuuid": uuid})).await.ok();
        assert!(event["details"].is_object(), "{event}");
    }
}

/// Runs the job until the tenant's is done (a bounded number of rounds).
pub async fn run_job(v: &TestVault, tenant: i64) -> Value {
    for _ in 0..200 {
        bunker::keys::job::run_once(&v.state, "test-replica").await.expect("job runs");
        let status = v.call("SystemGetMasterKeyStatus", json!({"tenantid": tenant})).await.ok();
        if status["job"]["stage"] == "done" {
            return status;
        }
    }
    panic!("the rotation job did not finish");
}

both!(rotation_seals_new_data_at_once_and_the_job_retires_the_old_version, settings = quick, |v| {
    let seeded = seed(v, "before", 5).await;
    let status = v.call("SystemGetMasterKeyStatus", json!({})).await.ok();
    assert_eq!(status["active"], 1, "{status}");
    assert_eq!(status["job"], Value::Null);
    let blobs_before = tenant_blobs(v, 1).await;
    assert!(blobs_before.iter().all(|(_, b)| b.starts_with(&header(1))), "new blobs use the subkey format");

    let rotated = v.call("SystemRotateMasterKey", json!({})).await.ok();
    assert_eq!((rotated["tenantid"].as_i64(), rotated["version"].as_i64()), (Some(1), Some(2)), "{rotated}");
    // New data seals under version 2 at once; the old records still read.
    let after = seed(v, "after", 2).await;
    let wrapped = blobs(v, "SELECT wrapped_key FROM users").await;
    assert_eq!(wrapped.iter().filter(|b| b.starts_with(&header(2))).count(), 2, "the users made after it");
    read_all(v, &seeded).await;
    let status = v.call("SystemGetMasterKeyStatus", json!({})).await.ok();
    assert_eq!(status["active"], 2, "{status}");
    let states: Vec<&Value> = status["versions"].as_array().expect("versions").iter().map(|v| &v["state"]).collect();
    assert_eq!(states, [&json!("retiring"), &json!("active")], "{status}");
    assert_eq!(status["job"]["stage"], "data_keys", "{status}");

    let done = run_job(v, 1).await;
    let states: Vec<&Value> = done["versions"].as_array().expect("versions").iter().map(|v| &v["state"]).collect();
    assert_eq!(states, [&json!("retired"), &json!("active")], "{done}");
    assert!(done["job"]["resealed"].as_i64().expect("resealed") >= i64::try_from(blobs_before.len()).expect("n"));
    let left: Vec<&str> =
        tenant_blobs(v, 1).await.iter().filter(|(_, b)| !b.starts_with(&header(2))).map(|(w, _)| *w).collect();
    assert!(left.is_empty(), "blobs not sealed under version 2: {left:?}");
    // The retired version opens nothing any more, and every record and lookup still works.
    read_all(v, &seeded).await;
    read_all(v, &after).await;
    let (_, metrics) = v.get_text("/metrics").await;
    assert!(
        metrics.lines().any(|l| l.starts_with("bunker_key_rotation_resealed_total{phase=\"data_keys\"}")),
        "{metrics}"
    );
    assert!(metrics.contains("bunker_key_versions_retired_total 1"), "{metrics}");

    // After a restart too; and a second rotation retires version 2 (deleted) while 1 stays the root.
    let reopened = v.reopen(&v.wrapping).await.expect("reopens");
    read_all(&reopened, &seeded).await;
    reopened.close().await;
    v.call("SystemRotateMasterKey", json!({})).await.ok();
    let done = run_job(v, 1).await;
    let versions: Vec<(i64, &str)> = done["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| (v["version"].as_i64().expect("n"), v["state"].as_str().expect("state")))
        .collect();
    assert_eq!(versions, [(1, "retired"), (3, "active")], "{done}");
    // The recovery shares still open the main tenant's root, so the wrapping key still rotates,
    // and a vault started with the new key reads everything.
    let shares = json!({"key1": v.shares[0], "key2": v.shares[1], "key3": v.shares[2]});
    let rotated = v.call("SystemGenerateWrappingKey", shares).await.ok();
    let new_key = bunker::crypto::WrappingKey::from_hex(rotated["wrappingkey"].as_str().expect("key")).expect("hex");
    let reopened = v.reopen(&new_key).await.expect("reopens with the new wrapping key");
    read_all(&reopened, &seeded).await;
    read_all(&reopened, &after).await;
    reopened.close().await;
});

both!(a_tenant_rotates_its_own_key_and_the_main_tenant_reseals_its_recovery_wrapping, settings = quick, |v| {
    let created = v.call("TenantCreate", json!({"tenantname": "rot-b", "email": "admin@rot-b.test"})).await.ok();
    let (b, xtoken) =
        (created["tenantid"].as_i64().expect("id"), created["xtoken"].as_str().expect("xtoken").to_owned());
    let user = v.call_as("UserCreate", Some(&xtoken), None, json!({"profile": {"email": "u@rot-b.test"}})).await.ok();
    let token = user["token"].as_str().expect("token").to_owned();
    // Its own admin rotates it; the main tenant's root may name it.
    let rotated = v.call_as("SystemRotateMasterKey", Some(&xtoken), None, json!({})).await.ok();
    assert_eq!((rotated["tenantid"].as_i64(), rotated["version"].as_i64()), (Some(b), Some(2)));
    let rotated = v.call("SystemRotateMasterKey", json!({"tenantname": "rot-b"})).await.ok();
    assert_eq!(rotated["version"], 3);
    // The main tenant rotates: the other tenants' recovery wrappings move to its new version.
    v.call("SystemRotateMasterKey", json!({})).await.ok();
    run_job(v, b).await;
    run_job(v, 1).await;
    let recovery =
        blobs(v, &format!("SELECT recovery_wrapped FROM tenant_keys WHERE tenant_id = {b} ORDER BY version")).await;
    assert_eq!(recovery.len(), 2, "version 1 (the root) and 3 are kept");
    assert!(recovery.iter().all(|b| b.starts_with(&header(2))), "sealed under the main tenant's version 2");
    // Each wrapping opens through the main tenant's keys.
    let main = v.state.tenant_keys(bunker::tenants::TenantId::MAIN).await.expect("main keys");
    for (version, wrapped) in [1, 3].into_iter().zip(&recovery) {
        bunker::crypto::keyring::unwrap_master_for_main(&main, bunker::tenants::TenantId::new(b), version, wrapped)
            .expect("opens");
    }
    let got =
        v.call_as("UserGet", Some(&xtoken), None, json!({"mode": "email", "identity": "u@rot-b.test"})).await.ok();
    assert_eq!(got["token"], token.as_str());
    let tenant = v.call("TenantGet", json!({"tenantid": b})).await.ok();
    assert_eq!(tenant["email"], "admin@rot-b.test");
    let reopened = v.reopen(&v.wrapping).await.expect("reopens");
    let got = reopened.call_as("UserGet", Some(&xtoken), None, json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(got["profile"]["email"], "u@rot-b.test");
    reopened.close().await;
});

both!(only_administrators_rotate_and_only_their_own_tenant, settings = quick, |v| {
    let a = v.call("TenantCreate", json!({"tenantname": "rot-a"})).await.ok();
    let b = v.call("TenantCreate", json!({"tenantname": "rot-other"})).await.ok();
    let a_token = a["xtoken"].as_str().expect("xtoken");
    for op in ["SystemRotateMasterKey", "SystemGetMasterKeyStatus"] {
        // Another tenant, existing or not, by id or name: refused alike, and nothing changes.
        for body in [
            json!({"tenantid": b["tenantid"]}),
            json!({"tenantname": "rot-other"}),
            json!({"tenantid": 1}),
            json!({"tenantid": 999}),
        ] {
            v.call_as(op, Some(a_token), None, body).await.error(403, "Access denied");
        }
        // Acting in another tenant through the header is refused too.
        v.call_as(op, Some(a_token), Some("rot-other"), json!({})).await.error(403, "Access denied");
        v.call_as(op, None, None, json!({})).await.error(403, "Access denied");
        v.call_as(op, Some("not-a-token"), None, json!({})).await.error(403, "Access denied");
        v.call(op, json!({"tenantid": 999})).await.error(404, "The tenant record was not found");
        v.call(op, json!({"tenantname": "nowhere"})).await.error(404, "The tenant record was not found");
    }
    let status = v.call("SystemGetMasterKeyStatus", json!({"tenantid": b["tenantid"]})).await.ok();
    assert_eq!(status["active"], 1, "{status}");
    let status = v.call("SystemGetMasterKeyStatus", json!({})).await.ok();
    assert_eq!(status["active"], 1, "{status}");
});

both!(a_replica_that_missed_the_rotation_reads_new_blobs_and_follows_the_feed, settings = quick, |v| {
    let replica = v.reopen(&v.wrapping).await.expect("second replica");
    let before = v.create_user(json!({"email": "warm@rotate.test"})).await;
    // The replica unlocks and caches version 1.
    replica.call("UserGet", json!({"mode": "token", "identity": before})).await.ok();
    v.call("SystemRotateMasterKey", json!({})).await.ok();
    let after = v.create_user(json!({"email": "new@rotate.test"})).await;
    // Its first read of a version-2 blob marks its keys stale; the next read unlocks them again.
    let first = replica.call("UserGet", json!({"mode": "token", "identity": after})).await;
    if first.status != 200 {
        replica.call("UserGet", json!({"mode": "token", "identity": after})).await.ok();
    }
    // And the change feed makes it seal under version 2 without reading any such blob.
    let fresh = v.reopen(&v.wrapping).await.expect("third replica");
    fresh.call("UserGet", json!({"mode": "token", "identity": before})).await.ok();
    v.call("SystemRotateMasterKey", json!({})).await.ok();
    let mut applied = std::collections::HashMap::new();
    bunker::tenants::changes::apply_new(&fresh.state, &mut applied).await.expect("feed");
    let made = fresh.create_user(json!({"email": "fresh@rotate.test"})).await;
    let wrapped = blobs(v, "SELECT wrapped_key FROM users").await;
    assert!(wrapped.iter().any(|b| b.starts_with(&header(3))), "the replica sealed under version 3");
    v.call("UserGet", json!({"mode": "token", "identity": made})).await.ok();
    replica.close().await;
    fresh.close().await;
});

both!(the_job_is_leased_and_never_overwrites_a_concurrent_change, settings = quick, |v| {
    use bunker::store::key_rotation::{self, Phase, RowKey};
    use bunker::tenants::TenantId;
    let sessionuuid = uuid::Uuid::new_v4().to_string();
    v.call("SessionUpsert", json!({"sessionuuid": sessionuuid, "sessiondata": {"step": 1}})).await.ok();
    v.call("SystemRotateMasterKey", json!({})).await.ok();
    let db = &v.state.db;
    let now = v.clock().now_ms();
    let job =
        key_rotation::claim(db, TenantId::MAIN, "a", now, now + 60_000).await.expect("claim").expect("a takes it");
    assert!(key_rotation::claim(db, TenantId::MAIN, "b", now, now + 60_000).await.expect("claim").is_none(), "b waits");
    // Replica a reads the unbound sessions and seals them again...
    let keys = v.state.tenant_keys(TenantId::MAIN).await.expect("keys");
    assert_eq!(keys.active_version(), 2);
    let start = RowKey::start(Phase::Sessions);
    let rows = key_rotation::batch(db, TenantId::MAIN, Phase::Sessions, &start, &keys.current_header(), 100)
        .await
        .expect("batch");
    assert_eq!(rows.len(), 1);
    let swaps: Vec<_> = rows
        .iter()
        .map(|r| {
            (r.key.clone(), r.blob.clone(), keys.reseal("sessions", &r.record, &r.blob).expect("opens").expect("old"))
        })
        .collect();
    // ...while the session changes.
    v.call("SessionUpsert", json!({"sessionuuid": sessionuuid, "sessiondata": {"step": 2}})).await.ok();
    let next = Some((Phase::Email, RowKey::start(Phase::Email)));
    let replaced = key_rotation::commit_batch(db, &job, "a", Phase::Sessions, &swaps, next).await.expect("commit");
    assert_eq!(replaced, Some(0), "the changed session is left as it is");
    let got = v.call("SessionGet", json!({"sessionuuid": sessionuuid})).await.ok();
    assert_eq!(got["sessiondata"], json!({"step": 2}));
    // Replica b takes the job over once a's lease lapsed, where a left it; a then writes nothing.
    let later = now + 61_000;
    let taken = key_rotation::claim(db, TenantId::MAIN, "b", later, later + 1_000).await.expect("claim").expect("b");
    assert_eq!(taken.phase, Some(Phase::Email));
    assert_eq!(key_rotation::commit_batch(db, &job, "a", Phase::Email, &[], None).await.expect("commit"), None);
    assert_eq!(v.call("SystemGetMasterKeyStatus", json!({})).await.ok()["job"]["stage"], "tenant_email");
    // The job finishes (through another replica once b's lease lapsed too).
    v.clock().advance(120);
    let done = run_job(v, 1).await;
    // a moved the job past phases it never worked: the count before retiring found their blobs
    // and made a second pass instead of retiring version 1 under them.
    assert_eq!(done["job"]["passes"], 1, "{done}");
    let left: Vec<&str> =
        tenant_blobs(v, 1).await.iter().filter(|(_, b)| !b.starts_with(&header(2))).map(|(w, _)| *w).collect();
    assert!(left.is_empty(), "blobs not sealed under version 2: {left:?}");
    let got = v.call("SessionGet", json!({"sessionuuid": sessionuuid})).await.ok();
    assert_eq!(got["sessiondata"], json!({"step": 2}));
});

both!(rotated_keys_recover_from_the_shares_and_the_audit_chain_holds, settings = quick, |v| {
    let created = v.call("TenantCreate", json!({"tenantname": "rot-recover"})).await.ok();
    let (b, xtoken) =
        (created["tenantid"].as_i64().expect("id"), created["xtoken"].as_str().expect("xtoken").to_owned());
    let user = v.call_as("UserCreate", Some(&xtoken), None, json!({"profile": {"email": "r@rot.test"}})).await.ok();
    let seeded = seed(v, "chain", 3).await;
    // Every event so far is chained before the rotation.
    let before = v.call("AuditVerify", json!({})).await.ok();
    assert_eq!(before["intact"], true, "{before}");
    for body in [json!({}), json!({"tenantid": b}), json!({})] {
        v.call("SystemRotateMasterKey", body).await.ok();
    }
    run_job(v, b).await;
    run_job(v, 1).await;
    // Sealing the events again changed no link of the chain.
    let after = v.call("AuditVerify", json!({})).await.ok();
    assert_eq!(after["intact"], true, "{after}");
    // Three shares still open every version of every tenant (offline recovery under a new key),
    // and the recovery key still rotates.
    let recovery =
        bunker::crypto::shamir::combine(&[("key1", &v.shares[0]), ("key2", &v.shares[2]), ("key3", &v.shares[4])])
            .expect("shares");
    let new_key = bunker::crypto::WrappingKey::generate();
    bunker::vault::recover(&v.state.db, &recovery, &new_key).await.expect("recovers every version");
    let reopened = v.reopen(&new_key).await.expect("opens with the new wrapping key");
    read_all(&reopened, &seeded).await;
    let got = reopened
        .call_as("UserGet", Some(&xtoken), None, json!({"mode": "token", "identity": user["token"]}))
        .await
        .ok();
    assert_eq!(got["profile"]["email"], "r@rot.test");
    let shares = json!({"key1": v.shares[1], "key2": v.shares[2], "key3": v.shares[3]});
    let fresh = reopened.call("SystemRotateRecoveryKey", shares).await.ok();
    assert!(fresh["key5"].is_string(), "{fresh}");
    reopened.close().await;
});

both!(retirement_waits_for_a_pending_wrapping_key_rotation, settings = quick, |v| {
    let seeded = seed(v, "pending", 3).await;
    v.call("SystemRotateMasterKey", json!({})).await.ok();
    let shares = json!({"key1": v.shares[0], "key2": v.shares[1], "key3": v.shares[2]});
    let rotated = v.call("SystemGenerateWrappingKey", shares).await.ok();
    let new_key = bunker::crypto::WrappingKey::from_hex(rotated["wrappingkey"].as_str().expect("key")).expect("hex");
    // No version is retired while the new wrapping key waits for its first start: the job seals
    // everything again, then waits.
    for _ in 0..50 {
        bunker::keys::job::run_once(&v.state, "test-replica").await.expect("job runs");
    }
    let status = v.call("SystemGetMasterKeyStatus", json!({})).await.ok();
    assert_eq!(status["job"]["stage"], "verify", "{status}");
    assert_eq!(status["versions"][0]["state"], "retiring", "{status}");
    // The first start with the new key completes that rotation; the job then retires version 1.
    let reopened = v.reopen(&new_key).await.expect("the new key opens the vault");
    // (Reopened with the default settings: past their grace before retiring.)
    reopened.clock().advance(120);
    let done = run_job(&reopened, 1).await;
    assert_eq!(done["versions"][0]["state"], "retired", "{done}");
    read_all(&reopened, &seeded).await;
    reopened.close().await;
});

both!(rotations_cannot_pile_up_versions_faster_than_the_job_retires_them, |v| {
    for version in 2..=8 {
        let rotated = v.call("SystemRotateMasterKey", json!({})).await.ok();
        assert_eq!(rotated["version"], version);
    }
    v.call("SystemRotateMasterKey", json!({})).await.error(
        409,
        "The tenant has 8 master-key versions in use: retry once the rotation job has retired older ones \
         (SystemGetMasterKeyStatus)",
    );
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tenant_keys WHERE tenant_id = 1").await, 8, "nothing was added");
    // Records still read and write under the newest version.
    let token = v.create_user(json!({"email": "piled@rotate.test"})).await;
    v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
});
