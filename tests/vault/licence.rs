//! Licences: `SystemSetLicenseKey` installs only what the configured key verifies (anything else
//! is 400 and the licence in force stays), the record limit binds the creates (the bulks keep
//! only the room), an expired licence makes the vault read-only, and a licence installed through
//! one replica binds the others.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bunker::licence::{EXPIRY_BOUND, LicenceStatus, PrivateKey, Terms};
use bunker::state::Settings;
use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;
use crate::process::{PgDatabase, bunker_bin, start};

const INVALID: &str = "License key is invalid";
const LIMIT: &str = "Record limit reached";
const EXPIRED: &str = "License expired";

/// The issuer of the tests' licences (a fixed key, so settings can name its public half).
fn issuer() -> PrivateKey {
    PrivateKey::from_hex(&"5e".repeat(32)).expect("test key")
}

/// A vault configured with the issuer's public key.
fn licensed(_: &std::path::Path) -> Settings {
    Settings { licence_key: Some(issuer().public()), ..Settings::default() }
}

fn terms(v: &TestVault, max_records: i64) -> Terms {
    let now = v.clock().now();
    Terms { v: 1, customer: "Acme Resale".into(), max_records, expires: now + 86_400, issued: now - 60 }
}

fn signed(terms: &Terms) -> String {
    issuer().sign(terms).expect("signed")
}

async fn install(v: &TestVault, licence: &str) {
    let body = v.call("SystemSetLicenseKey", json!({"licensekey": licence})).await.ok();
    assert_eq!(body, json!({"status": "ok", "result": "done"}));
}

async fn status(v: &TestVault) -> LicenceStatus {
    bunker::licence::status(&v.state).await.expect("status")
}

fn in_force(terms: &Terms) -> LicenceStatus {
    LicenceStatus {
        max_records: Some(terms.max_records),
        expires: Some(terms.expires),
        customer: Some(terms.customer.clone()),
    }
}

async fn audited(v: &TestVault, operation: &str, http_status: u16) -> i64 {
    v.scalar(&format!(
        "SELECT COUNT(*) FROM audit_events WHERE operation = '{operation}' AND http_status = {http_status}"
    ))
    .await
}

async fn create_user(v: &TestVault, n: usize) -> crate::common::Answer {
    v.call("UserCreate", json!({"profile": {"login": format!("licensed{n}")}})).await
}

async fn create_token(v: &TestVault, n: usize) -> crate::common::Answer {
    v.call("TokenCreate", json!({"tokentype": "email", "record": format!("t{n}@licence.test")})).await
}

/// Flips one byte of the decoded part `part` (0: payload, 1: signature) of a licence.
fn tampered(licence: &str, part: usize, at: usize) -> String {
    let mut parts: Vec<Vec<u8>> = licence.split('.').map(|p| URL_SAFE_NO_PAD.decode(p).expect("base64url")).collect();
    parts[part][at] ^= 0x01;
    parts.iter().map(|p| URL_SAFE_NO_PAD.encode(p)).collect::<Vec<_>>().join(".")
}

both!(a_valid_licence_is_installed_audited_and_reported, settings = licensed, |v| {
    assert_eq!(status(v).await, LicenceStatus::default(), "no licence before one is installed");
    let terms = terms(v, 1000);
    install(v, &signed(&terms)).await;
    assert_eq!(status(v).await, in_force(&terms));
    assert_eq!(audited(v, "SystemSetLicenseKey", 200).await, 1, "the installation is audited");
    // A second licence replaces the first.
    let more = Terms { max_records: 5000, ..terms.clone() };
    install(v, &signed(&more)).await;
    assert_eq!(status(v).await, in_force(&more));
    assert_eq!(v.scalar("SELECT COUNT(*) FROM licence").await, 1, "one licence in force, vault-wide");
    // Surrounding whitespace (a pasted licence) is accepted.
    install(v, &format!("  {}\n", signed(&terms))).await;
    assert_eq!(status(v).await, in_force(&terms));
    // The statistics report it, in `stats` and beside it, with the records it counts.
    v.create_user(serde_json::json!({"email": "counted@example.com"})).await;
    let stats = v.call("SystemGetSystemStats", serde_json::json!({})).await.ok();
    for at in [&stats["stats"], &stats] {
        assert_eq!(at["licensemaxrecords"], serde_json::json!(terms.max_records), "{stats}");
        assert_eq!(at["licensefinalexpiration"], serde_json::json!(terms.expires), "{stats}");
        assert_eq!(at["totalnumrecords"], serde_json::json!(1), "{stats}");
    }
});

both!(a_licence_that_does_not_verify_is_refused_and_the_one_in_force_stays, settings = licensed, |v| {
    let terms = terms(v, 1000);
    let licence = signed(&terms);
    install(v, &licence).await;
    let now = v.clock().now();
    let expired = Terms { expires: now - 10, issued: now - 100, max_records: 1, ..terms.clone() };
    let other_key = PrivateKey::generate().sign(&Terms { max_records: 1, ..terms.clone() }).expect("signed");
    let refused = [
        json!(tampered(&licence, 0, 12)),
        json!(tampered(&licence, 1, 5)),
        json!(other_key),
        json!(signed(&expired)),
        json!("test-license-key-8f14e45f"),
        json!("e30.e30"),
        json!(licence.replace('.', "")),
        json!(12345),
        json!({"licensekey": licence}),
    ];
    for body in &refused {
        v.call("SystemSetLicenseKey", json!({"licensekey": body})).await.error(400, INVALID);
        assert_eq!(status(v).await, in_force(&terms), "{body} changed the licence in force");
    }
    for body in [json!({}), json!({"licensekey": null}), json!({"licensekey": " "})] {
        v.call("SystemSetLicenseKey", body).await.error(400, "Missing API request parameters: licensekey");
    }
    assert_eq!(audited(v, "SystemSetLicenseKey", 400).await, i64::try_from(refused.len() + 3).expect("small"));
    // What the client was refused is not stored anywhere: the licence in force is the first one.
    let stored = v.scalar("SELECT COUNT(*) FROM licence WHERE max_records = 1000").await;
    assert_eq!(stored, 1);
    // The vault still works as before.
    create_user(v, 1).await.ok();
});

both!(without_a_public_key_no_licence_is_installed_and_nothing_is_limited, |v| {
    let licence = signed(&terms(v, 1));
    v.call("SystemSetLicenseKey", json!({"licensekey": licence})).await.error(400, INVALID);
    assert_eq!(status(v).await, LicenceStatus::default());
    for n in 0..3 {
        create_user(v, n).await.ok();
        create_token(v, n).await.ok();
    }
});

both!(only_the_main_tenants_administrators_install_a_licence, settings = licensed, |v| {
    let licence = signed(&terms(v, 1000));
    let created = v.call("TenantCreate", json!({"tenantname": "reseller"})).await.ok();
    let xtoken = created["xtoken"].as_str().expect("xtoken");
    let body = json!({"licensekey": licence});
    v.call_as("SystemSetLicenseKey", Some(xtoken), None, body.clone()).await.error(403, "Access denied");
    v.call_as("SystemSetLicenseKey", Some(&v.root), Some("reseller"), body.clone()).await.error(403, "Access denied");
    v.call_as("SystemSetLicenseKey", Some(&v.root), Some("nosuchtenant"), body.clone())
        .await
        .error(404, "The tenant record was not found");
    assert_eq!(status(v).await, LicenceStatus::default());
    assert_eq!(audited(v, "SystemSetLicenseKey", 403).await, 2, "refusals are audited");
    v.call_as("SystemSetLicenseKey", Some(&v.root), Some("main"), body).await.ok();
});

both!(at_the_maximum_user_and_token_creates_are_refused_and_reads_work, settings = licensed, |v| {
    install(v, &signed(&terms(v, 3))).await;
    let user = create_user(v, 0).await.ok()["token"].as_str().expect("token").to_owned();
    create_user(v, 1).await.ok();
    let token = create_token(v, 0).await.ok()["tokenuuid"].as_str().expect("tokenuuid").to_owned();
    create_user(v, 2).await.error(403, LIMIT);
    create_token(v, 1).await.error(403, LIMIT);
    assert_eq!(audited(v, "UserCreate", 403).await, 1, "the refusal is audited with what the client was told");
    // Reads and other writes go on.
    v.call("UserGet", json!({"mode": "token", "identity": user})).await.ok();
    v.call("TokenGet", json!({"token": token})).await.ok();
    v.call("UserUpdate", json!({"mode": "token", "identity": user, "profile": {"login": "renamed"}})).await.ok();
    // A deletion frees a place; a held (system-deleted) profile would not count either.
    v.call("UserDelete", json!({"mode": "token", "identity": user})).await.ok();
    create_user(v, 3).await.ok();
    create_user(v, 4).await.error(403, LIMIT);
    // Records of every tenant count.
    let created = v.call("TenantCreate", json!({"tenantname": "second"})).await.ok();
    let xtoken = created["xtoken"].as_str().expect("xtoken");
    v.call_as("UserCreate", Some(xtoken), None, json!({"profile": {"login": "elsewhere"}})).await.error(403, LIMIT);
    // A larger licence lifts the limit at once.
    install(v, &signed(&terms(v, 4))).await;
    v.call_as("UserCreate", Some(xtoken), None, json!({"profile": {"login": "elsewhere"}})).await.ok();
    create_token(v, 2).await.error(403, LIMIT);
});

both!(bulk_creates_keep_only_the_room_left, settings = licensed, |v| {
    install(v, &signed(&terms(v, 5))).await;
    create_user(v, 0).await.ok();
    let records: Vec<Value> = (0..6).map(|n| json!({"profile": {"login": format!("bulk{n}")}})).collect();
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    let created = body["created"].as_array().expect("created");
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(created.len(), 4, "{body}");
    assert_eq!(errors.len(), 2, "{body}");
    for (error, n) in errors.iter().zip(4..) {
        assert_eq!(error["reason"], LIMIT);
        assert_eq!(error["profile"]["login"], format!("bulk{n}"), "the records past the room are the last ones");
    }
    assert_eq!(v.scalar("SELECT COUNT(*) FROM users").await, 5);
    // With no room left the whole call is refused.
    v.call("UserCreateBulk", json!({"records": [{"profile": {"login": "late"}}]})).await.error(403, LIMIT);
    let tokens: Vec<Value> = (0..5).map(|n| json!({"tokentype": "email", "record": format!("b{n}@t.test")})).collect();
    v.call("TokenCreateBulk", json!({"records": tokens})).await.error(403, LIMIT);

    install(v, &signed(&terms(v, 8))).await;
    let body = v.call("TokenCreateBulk", json!({"records": tokens})).await.ok();
    assert_eq!(body["summary"], json!({"created": 3, "duplicates": 0, "errors": 2, "total": 5}), "{body}");
    assert_eq!(body["errors"], json!([{"index": 3, "reason": LIMIT}, {"index": 4, "reason": LIMIT}]));
    create_token(v, 9).await.error(403, LIMIT);
    // A refused record in the batch takes no place.
    install(v, &signed(&terms(v, 9))).await;
    let body = v
        .call("UserCreateBulk", json!({"records": [{"profile": "not an object"}, {"profile": {"login": "fits"}}]}))
        .await
        .ok();
    assert_eq!(body["created"].as_array().map(Vec::len), Some(1), "{body}");
    assert_eq!(body["errors"][0]["reason"], "The profile parameter has an incorrect format");
});

both!(an_expired_licence_leaves_the_vault_read_only, settings = licensed, |v| {
    install(v, &signed(&terms(v, 1000))).await;
    let user = create_user(v, 0).await.ok()["token"].as_str().expect("token").to_owned();
    let token = create_token(v, 0).await.ok()["tokenuuid"].as_str().expect("tokenuuid").to_owned();
    v.clock().advance(2 * 86_400);
    // Every write the contract lists is refused before its handler runs.
    for op in EXPIRY_BOUND {
        v.call(op, json!({"mode": "token", "identity": user})).await.error(403, EXPIRED);
    }
    assert_eq!(audited(v, "UserCreate", 403).await, 1, "the refusal is audited");
    // Reads, exports and deletions keep working.
    v.call("UserGet", json!({"mode": "token", "identity": user})).await.ok();
    v.call("TokenGet", json!({"token": token})).await.ok();
    v.call("SystemGetUserReport", json!({"mode": "token", "identity": user})).await.ok();
    v.call("TokenDelete", json!({"token": token})).await.ok();
    v.call("UserDelete", json!({"mode": "token", "identity": user})).await.ok();
    assert_eq!(status(v).await.max_records, Some(1000), "the expired licence is still the one in force");
    // A new licence is installed while expired, and writes work again.
    install(v, &signed(&terms(v, 1000))).await;
    create_user(v, 1).await.ok();
});

both!(a_licence_installed_through_one_replica_binds_the_other, settings = licensed, |v| {
    let other = v.reopen(&v.wrapping).await.expect("second replica");
    // The other replica reads "no licence" and caches it.
    other.call("UserCreate", json!({"profile": {"login": "first"}})).await.ok();
    install(v, &signed(&terms(v, 1))).await;
    // The change feed tells it at once (its poll runs every 250 ms in a served process).
    let applied = bunker::tenants::changes::apply_new(&other.state, &mut HashMap::new()).await.expect("feed");
    assert!(applied >= 1);
    other.call("UserCreate", json!({"profile": {"login": "second"}})).await.error(403, LIMIT);
    assert_eq!(bunker::licence::status(&other.state).await.expect("status").max_records, Some(1));
    other.close().await;
});

/// Runs `bunker` with `args` to completion; returns stdout and stderr.
fn bunker(args: &[&str]) -> (String, String) {
    let output = std::process::Command::new(bunker_bin()).args(args).output().expect("run bunker");
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert!(output.status.success(), "bunker {args:?}: {stdout} {stderr}");
    (stdout, stderr)
}

/// The operator's path with the real binary: `license keygen`, `license sign`, two replicas
/// configured with the public key, the first preloading a licence; a licence installed through
/// one replica binds the other within a second; a malformed public key stops the start.
#[test]
fn keygen_sign_preload_and_replicas_with_the_binary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_file = dir.path().join("issuer.key");
    let key_path = key_file.to_str().expect("utf-8 path");
    let (stdout, stderr) = bunker(&["license", "keygen", "--private-key", key_path]);
    let public = stdout.lines().find_map(|l| l.strip_prefix("public key: ")).expect("public key printed").to_owned();
    let private = std::fs::read_to_string(&key_file).expect("key file");
    assert!(!stdout.contains(private.trim()) && !stderr.contains(private.trim()), "the private key is not shown");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key_file).expect("metadata").permissions().mode() & 0o777, 0o600);
    }
    let sign = |max: &str| {
        let args = ["licence", "sign", "--key", key_path, "--customer", "Acme", "--max-records", max];
        let (stdout, _) = bunker(&[&args[..], &["--expires", "2099-01-01"]].concat());
        stdout.trim().to_owned()
    };
    let (small, larger) = (sign("2"), sign("3"));

    let db = PgDatabase::create();
    let wrapping = bunker::crypto::WrappingKey::generate().to_hex();
    let root = "licence-root-token-for-the-two-process-test";
    let base = [("DATABUNKER_WRAPPINGKEY", wrapping.as_str()), ("DATABUNKER_ROOTTOKEN", root)];
    let args = ["serve", "--database-url", db.url.as_str()];
    let with_key = [&base[..], &[("BUNKER_LICENSE_PUBLIC_KEY", public.as_str())]].concat();
    let preloading = [&with_key[..], &[("DATABUNKER_LICENSEKEY", small.as_str())]].concat();
    let mut first = start(dir.path(), "first", &args, &preloading);
    assert!(first.ready(), "first replica: {:?}", first.output());
    let mut second = start(dir.path(), "second", &args, &with_key);
    assert!(second.ready(), "second replica: {:?}", second.output());
    let create = |p: &crate::process::Process, n: usize| {
        p.call("UserCreate", root, json!({"profile": {"login": format!("replica{n}")}}))
    };
    assert_eq!(create(&first, 0).0, 200);
    assert_eq!(create(&second, 1).0, 200);
    let (status, body) = create(&second, 2);
    assert_eq!((status, body["message"].as_str()), (403, Some(LIMIT)), "the preloaded licence binds every replica");

    let (status, body) = second.call("SystemSetLicenseKey", root, json!({"licensekey": larger}));
    assert_eq!(status, 200, "{body}");
    let since = Instant::now();
    let mut n = 3;
    while create(&first, n).0 != 200 {
        assert!(since.elapsed() < Duration::from_secs(1), "the first replica still enforces the older licence");
        n += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("the first replica honoured the new licence after {:?}", since.elapsed());
    let (_, first_log) = first.stop();
    let (_, second_log) = second.stop();
    for log in [&first_log, &second_log] {
        assert!(!log.contains(&small) && !log.contains(&larger), "a licence text was logged");
    }
    // The variable is for the first setup: with a licence stored, a stale one left set (expired,
    // or of another key) no longer stops a restart.
    let stale = [&with_key[..], &[("DATABUNKER_LICENSEKEY", "a-stale-licence-text")]].concat();
    let mut again = start(dir.path(), "again", &args, &stale);
    assert!(again.ready(), "restart with a stale DATABUNKER_LICENSEKEY: {:?}", again.output());
    let (status, body) = create(&again, 99);
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some(LIMIT)),
        "the stored licence (3 records, all taken) binds"
    );
    again.stop();

    let bad_key = [&base[..], &[("BUNKER_LICENSE_PUBLIC_KEY", "not-a-key")]].concat();
    let mut refused = start(dir.path(), "bad-key", &args, &bad_key);
    let exit = refused.exit_within(Duration::from_secs(30)).expect("a malformed public key stops the start");
    assert!(!exit.success());
    let (_, stderr) = refused.output();
    assert!(stderr.contains("BUNKER_LICENSE_PUBLIC_KEY"), "{stderr}");
}

both!(a_held_profile_takes_a_place_again_when_restored, settings = licensed, |v| {
    install(v, &signed(&terms(v, 1))).await;
    let held = create_user(v, 1).await.ok()["token"].as_str().expect("token").to_owned();
    let uuid = crate::bulk::unlock(v).await;
    v.call("SystemDeleteUserProfiles", json!({"mode": "token", "identity": held, "tenantid": 1, "unlockuuid": uuid}))
        .await
        .ok();
    // Held, it is not counted: its place is free for another.
    create_user(v, 2).await.ok();
    let restore = json!({"token": held, "tenantid": 1, "unlockuuid": uuid});
    v.call("SystemRestoreUserProfile", restore.clone()).await.error(403, "Record limit reached");
    // Still held, and restorable once there is room.
    v.call("UserDelete", json!({"mode": "login", "identity": "licensed2"})).await.ok();
    v.call("SystemRestoreUserProfile", restore).await.ok();
});
