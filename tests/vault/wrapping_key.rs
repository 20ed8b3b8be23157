//! `SystemGenerateWrappingKey`: three recovery shares buy a new wrapping key.

use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;
use bunker::crypto::WrappingKey;
use bunker::store::Db;
use bunker::vault::VaultError;

const OP: &str = "SystemGenerateWrappingKey";

fn shares(v: &TestVault, picks: [usize; 3]) -> Value {
    json!({"key1": v.shares[picks[0]], "key2": v.shares[picks[1]], "key3": v.shares[picks[2]]})
}

/// Calls the operation with the shares at `picks` and returns the new key, checking its form.
async fn rotate(v: &TestVault, picks: [usize; 3]) -> String {
    let body = v.call(OP, shares(v, picks)).await.ok();
    let key = body["wrappingkey"].as_str().expect("wrappingkey").to_owned();
    assert_eq!(key.len(), 48, "{key}");
    assert!(key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)), "{key}");
    key
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

async fn count_events(v: &TestVault, result: &str) -> i64 {
    v.scalar(&format!("SELECT COUNT(*) FROM audit_events WHERE operation = '{OP}' AND result = '{result}'")).await
}

/// The public id of the newest event of this operation.
async fn last_event_uuid(v: &TestVault) -> String {
    use sqlx::Row;
    let sql = format!("SELECT uuid FROM audit_events WHERE operation = '{OP}' ORDER BY id DESC LIMIT 1");
    match v.db() {
        Db::Sqlite(pool) => sqlx::query(&sql).fetch_one(pool).await.expect("event").get(0),
        Db::Postgres(pool) => sqlx::query(&sql).fetch_one(pool).await.expect("event").get(0),
    }
}

/// Reads a user through `vault` and returns its profile.
async fn profile(vault: &TestVault, login: &str) -> Value {
    vault.call("UserGet", json!({"mode": "login", "identity": login})).await.ok()["profile"].clone()
}

/// Whether a wrapping-key rotation is pending (its new key's check value is stored).
async fn pending(v: &TestVault) -> bool {
    v.scalar("SELECT COUNT(*) FROM vault_meta WHERE next_kek_check IS NOT NULL").await == 1
}

both!(both_keys_open_until_a_start_with_the_new_key_completes_the_rotation, |v| {
    v.create_user(json!({"login": "alice", "email": "alice@x.io", "name": "Alice"})).await;
    let old = v.wrapping.clone();

    let first = rotate(v, [0, 2, 4]).await;
    assert_ne!(first, old.to_hex());
    let first_key = WrappingKey::from_hex(&first).expect("valid wrapping key");
    assert!(pending(v).await);
    // The running vault keeps its key and serves reads and writes.
    assert_eq!(profile(v, "alice").await["name"], "Alice");
    v.create_user(json!({"login": "bob"})).await;

    // The response was lost, or the key file still holds the old key: the old key opens.
    let reopened = v.reopen(&old).await.expect("the old key opens while the rotation is pending");
    assert_eq!(profile(&reopened, "bob").await, json!({"login": "bob"}));
    reopened.close().await;
    assert!(pending(v).await, "a start with the old key leaves the rotation pending");

    // The first start with the new key completes it.
    let reopened = v.reopen(&first_key).await.expect("the new key opens the vault");
    assert!(!pending(v).await, "the start with the new key completed the rotation");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tenant_keys WHERE next_wrapped IS NOT NULL").await, 0);
    let (alice, bob) = (profile(&reopened, "alice").await, profile(&reopened, "bob").await);
    assert_eq!(alice, json!({"login": "alice", "email": "alice@x.io", "name": "Alice"}));
    assert_eq!(bob, json!({"login": "bob"}));
    // Tenants can be created again, by a vault holding the key in force.
    let created = reopened.call("TenantCreate", json!({"tenantname": "after"})).await.ok();
    let tenant_token = created["xtoken"].as_str().expect("tenant token");
    reopened.close().await;
    // The process still holding the old key wraps nothing under it, and cannot open the keys
    // stored since: it says so, rather than failing.
    let changed = "The wrapping key has changed: retry on a vault started with the new key";
    v.call("TenantCreate", json!({"tenantname": "stale"})).await.error(409, changed);
    v.call_as("UserCreate", Some(tenant_token), None, json!({"profile": {"login": "x"}})).await.error(409, changed);
    // A restart with the old key after the rotation completed fails clearly.
    let err = v.reopen_err(&old).await;
    assert!(matches!(err, VaultError::WrongWrappingKey), "{err:?}");
    assert!(err.to_string().contains("bunker recover"), "{err}");
    // The new key keeps opening it.
    let reopened = v.reopen(&first_key).await.expect("the new key opens the vault again");
    let alice = profile(&reopened, "alice").await;
    // The reopened vault's own root session works, and so does rotation from it.
    let second = rotate(&reopened, [4, 3, 2]).await;
    reopened.close().await;
    assert_eq!(alice["name"], "Alice");
    let reopened = v.reopen(&WrappingKey::from_hex(&second).expect("valid")).await.expect("second key opens");
    let bob = profile(&reopened, "bob").await;
    reopened.close().await;
    assert_eq!(bob, json!({"login": "bob"}));
});

both!(a_second_rotation_while_one_is_pending_replaces_it, |v| {
    v.create_user(json!({"login": "alice"})).await;
    let old = v.wrapping.clone();
    // The first answer is lost on its way: the operator asks again.
    let lost = WrappingKey::from_hex(&rotate(v, [0, 1, 2]).await).expect("valid");
    let second = WrappingKey::from_hex(&rotate(v, [3, 1, 0]).await).expect("valid");
    assert_ne!(lost.to_hex(), second.to_hex());
    assert_eq!(count_events(v, "ok").await, 2);
    // Only the key answered last completes the rotation; the old key still opens.
    let err = v.reopen_err(&lost).await;
    assert!(matches!(err, VaultError::WrongWrappingKey), "{err:?}");
    assert!(pending(v).await);
    v.reopen(&old).await.expect("the old key opens").close().await;
    let reopened = v.reopen(&second).await.expect("the newest key opens the vault");
    assert_eq!(profile(&reopened, "alice").await, json!({"login": "alice"}));
    reopened.close().await;
    assert!(!pending(v).await);
    for stale in [&old, &lost] {
        let err = v.reopen_err(stale).await;
        assert!(matches!(err, VaultError::WrongWrappingKey), "{err:?}");
    }
});

both!(two_replicas_rotating_at_once_leave_one_consistent_pending_key, |v| {
    let (tenant_token, user) = {
        let created = v.call("TenantCreate", json!({"tenantname": "other"})).await.ok();
        let token = created["xtoken"].as_str().expect("tenant token").to_owned();
        let body = json!({"profile": {"email": "t@x.io"}});
        let user =
            v.call_as("UserCreate", Some(&token), None, body).await.ok()["token"].as_str().expect("token").to_owned();
        (token, user)
    };
    v.create_user(json!({"login": "alice"})).await;
    let replica = v.reopen(&v.wrapping).await.expect("second replica");
    let (a, b) = tokio::join!(v.call(OP, shares(v, [0, 1, 2])), replica.call(OP, shares(v, [2, 3, 4])));
    replica.close().await;
    let keys: Vec<WrappingKey> = [a, b]
        .into_iter()
        .map(|answer| WrappingKey::from_hex(answer.ok()["wrappingkey"].as_str().expect("key")).expect("valid"))
        .collect();
    assert_eq!(count_events(v, "ok").await, 2);
    // Every master key has its new wrapping, under one key: the one stored last.
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tenant_keys WHERE next_wrapped IS NULL").await, 0);
    let mut opened = None;
    for key in &keys {
        match v.reopen(key).await {
            Ok(reopened) => {
                opened = Some(reopened);
                break;
            }
            Err(err) => assert!(matches!(err, VaultError::WrongWrappingKey), "{err:?}"),
        }
    }
    let reopened = opened.expect("one of the two answered keys opens the vault");
    assert_eq!(profile(&reopened, "alice").await, json!({"login": "alice"}));
    let got =
        reopened.call_as("UserGet", Some(&tenant_token), None, json!({"mode": "token", "identity": user})).await.ok();
    assert_eq!(got["profile"]["email"], "t@x.io");
    reopened.close().await;
    // Now the rotation is complete, the other answered key and the old one no longer open it.
    let mut openers = 0;
    for key in keys.iter().chain([&v.wrapping]) {
        if let Ok(reopened) = v.reopen(key).await {
            openers += 1;
            reopened.close().await;
        }
    }
    assert_eq!(openers, 1, "exactly one key opens the vault after the rotation completed");
});

both!(bad_or_missing_shares_are_refused, |v| {
    v.create_user(json!({"login": "alice"})).await;
    let mut body = shares(v, [0, 1, 2]);
    body["key2"] = json!("zz-not-hex");
    v.call(OP, body).await.error(400, "Failed to hex decode key2");
    let mut body = shares(v, [0, 1, 2]);
    body["key1"] = json!("0x12");
    v.call(OP, body).await.error(400, "Failed to hex decode key1");
    for body in [
        json!({}),
        json!({"key1": v.shares[0]}),
        json!({"key1": v.shares[0], "key2": v.shares[1]}),
        json!({"key2": v.shares[1], "key3": v.shares[2]}),
    ] {
        v.call(OP, body).await.error(400, "Missing API request parameters: key1, key2, key3");
    }
    // Nothing was rotated: the original key still opens the vault.
    let reopened = v.reopen(&v.wrapping).await.expect("the old key still opens the vault");
    let alice = profile(&reopened, "alice").await;
    reopened.close().await;
    assert_eq!(alice, json!({"login": "alice"}));
    assert_eq!(count_events(v, "ok").await, 0);
});

both!(shares_of_another_vault_are_a_master_key_mismatch, |v| {
    v.create_user(json!({"login": "alice"})).await;
    let other = TestVault::new(v.backend).await;
    let foreign = other.shares.clone();
    other.cleanup().await;
    v.call(OP, json!({"key1": foreign[0], "key2": foreign[1], "key3": foreign[2]}))
        .await
        .error(403, "Master key mismatch");
    // Mixing two of ours with one of theirs recovers nothing either.
    v.call(OP, json!({"key1": v.shares[0], "key2": v.shares[1], "key3": foreign[4]}))
        .await
        .error(403, "Master key mismatch");
    assert_eq!(count_events(v, "ok").await, 0);
    assert_eq!(count_events(v, "error").await, 2);
    // Nothing was rotated.
    let reopened = v.reopen(&v.wrapping).await.expect("the old key still opens the vault");
    reopened.close().await;
    assert_eq!(profile(v, "alice").await, json!({"login": "alice"}));
});

both!(rotation_is_audited_and_the_new_key_is_never_stored, |v| {
    v.create_user(json!({"login": "alice"})).await;
    assert_eq!(count_events(v, "ok").await, 0);
    let key = rotate(v, [1, 2, 3]).await;
    assert_eq!(count_events(v, "ok").await, 1);
    let system = v
        .scalar(&format!(
            "SELECT COUNT(*) FROM audit_events WHERE operation = '{OP}' AND event_type = 'system' \
             AND http_status = 200 AND principal_kind = 'root'"
        ))
        .await;
    assert_eq!(system, 1);
    // The event can be read back; its details do not hold the key.
    let uuid = last_event_uuid(v).await;
    let event = v.call("AuditGetEvent", json!({"auditeventuuid": uuid})).await.ok();
    assert_eq!(event["title"], OP);
    assert_eq!(event["result"], "ok");
    assert!(!event.to_string().contains(&key), "the key is in the event: {event}");

    let dump = v.dump().await;
    assert!(contains(&dump, OP.as_bytes()), "the dump holds the audit rows");
    let raw = hex::decode(&key).expect("hex");
    for needle in [key.as_bytes(), key.to_uppercase().as_bytes(), hex::encode(&key).as_bytes(), raw.as_slice()] {
        assert!(!contains(&dump, needle), "the new wrapping key is stored");
    }
    // Neither are the shares that were presented, nor the original wrapping key.
    for share in &v.shares {
        assert!(!contains(&dump, share.as_bytes()), "a share is stored in clear");
        assert!(!contains(&dump, &hex::decode(share).expect("hex")), "a share is stored raw");
    }
    assert!(!contains(&dump, v.wrapping.to_hex().as_bytes()), "the old wrapping key is stored");
});

both!(a_tenant_created_while_a_rotation_is_pending_makes_the_new_key_wait_for_another_rotation, |v| {
    let old = v.wrapping.clone();
    let first = WrappingKey::from_hex(&rotate(v, [0, 2, 4]).await).expect("valid wrapping key");
    // Clients may create tenants after a rotation (the vendor's vault allows it): the new
    // tenant's key is wrapped under the key in force only.
    let created = v.call("TenantCreate", json!({"tenantname": "during"})).await.ok();
    // So the new key cannot complete this rotation, and changes nothing; the old key still opens.
    let refused = v.reopen_err(&first).await;
    assert!(matches!(refused, bunker::vault::VaultError::IncompleteRotation), "{refused}");
    assert!(pending(v).await);
    let reopened = v.reopen(&old).await.expect("the old key still opens");
    reopened.close().await;
    // Rotating again wraps every key, the new tenant's too; its key completes the rotation.
    let second = WrappingKey::from_hex(&rotate(v, [1, 2, 3]).await).expect("valid wrapping key");
    let renewed = v.reopen(&second).await.expect("the second key opens and completes the rotation");
    assert!(!pending(v).await);
    renewed.call("TenantGet", json!({"tenantid": created["tenantid"]})).await.ok();
    let xtoken = created["xtoken"].as_str().expect("xtoken");
    renewed.call_as("UserCreate", Some(xtoken), None, json!({"profile": {"email": "t@during.test"}})).await.ok();
    renewed.close().await;
});
