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

both!(new_key_opens_the_vault_and_old_key_no_longer_does, |v| {
    v.create_user(json!({"login": "alice", "email": "alice@x.io", "name": "Alice"})).await;
    let old = v.wrapping.clone();

    let first = rotate(v, [0, 2, 4]).await;
    assert_ne!(first, old.to_hex());
    let first_key = WrappingKey::from_hex(&first).expect("valid wrapping key");
    // The running vault keeps serving, reads and writes.
    assert_eq!(profile(v, "alice").await["name"], "Alice");
    v.create_user(json!({"login": "bob"})).await;

    let err = v.reopen_err(&old).await;
    assert!(matches!(err, VaultError::WrongWrappingKey), "{err:?}");
    let reopened = v.reopen(&first_key).await.expect("the new key opens the vault");
    let (alice, bob) = (profile(&reopened, "alice").await, profile(&reopened, "bob").await);
    reopened.close().await;
    assert_eq!(alice, json!({"login": "alice", "email": "alice@x.io", "name": "Alice"}));
    assert_eq!(bob, json!({"login": "bob"}));

    // Another triple of the same shares works too, and supersedes the first new key.
    let second = rotate(v, [3, 1, 0]).await;
    assert_ne!(second, first);
    assert_ne!(second, old.to_hex());
    let second_key = WrappingKey::from_hex(&second).expect("valid wrapping key");
    assert_eq!(profile(v, "bob").await, json!({"login": "bob"}));
    for stale in [&old, &first_key] {
        let err = v.reopen_err(stale).await;
        assert!(matches!(err, VaultError::WrongWrappingKey), "{err:?}");
    }
    let reopened = v.reopen(&second_key).await.expect("the newest key opens the vault");
    let alice = profile(&reopened, "alice").await;
    // The reopened vault's own root session works, and so does rotation from it.
    let third = rotate(&reopened, [4, 3, 2]).await;
    reopened.close().await;
    assert_eq!(alice["name"], "Alice");
    let reopened = v.reopen(&WrappingKey::from_hex(&third).expect("valid")).await.expect("third key opens");
    let bob = profile(&reopened, "bob").await;
    reopened.close().await;
    assert_eq!(bob, json!({"login": "bob"}));
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
