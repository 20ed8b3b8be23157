//! Restarting on the same database: same data with the same wrapping key, refusal with another.

use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;
use bunker::crypto::WrappingKey;
use bunker::vault::VaultError;

/// Users covering every identity mode, a superseded version and a lifetime; returns the
/// (mode, identity) pairs to read them back by.
async fn populate(v: &TestVault) -> Vec<(&'static str, String)> {
    let alice = v
        .create_user(json!({"login": "alice", "email": "Alice@Example.com", "phone": "+1 (555) 010-2222",
                            "custom": "cust-a", "name": "Alice", "nested": {"k": [1, {"x": null}]}}))
        .await;
    v.call("UserUpdate", json!({"mode": "token", "identity": alice, "profile": {"name": "Alice 2"}})).await.ok();
    let body = v
        .call(
            "UserCreateBulk",
            json!({"records": [{"profile": {"email": "bulk@x.io", "login": "bulk"}}], "slidingtime": "30d",
                   "finaltime": "1y"}),
        )
        .await
        .ok();
    let bulk = body["created"][0]["token"].as_str().expect("token").to_owned();
    vec![
        ("login", "alice".to_owned()),
        ("email", "alice@example.com".to_owned()),
        ("phone", "+15550102222".to_owned()),
        ("custom", "cust-a".to_owned()),
        ("token", alice),
        ("email", "BULK@x.io".to_owned()),
        ("token", bulk),
    ]
}

/// The parts of a `UserGet` answer that must survive a restart.
fn stable(body: &Value) -> Value {
    json!({
        "token": body["token"],
        "profile": body["profile"],
        "version": body["version"],
        "slidingtime": body["slidingtime"],
        "finaltime": body["finaltime"],
    })
}

async fn snapshot(v: &TestVault, who: &[(&'static str, String)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (mode, identity) in who {
        let body = v.call("UserGet", json!({"mode": mode, "identity": identity})).await.ok();
        out.push(stable(&body));
    }
    let old = v.call("UserGet", json!({"mode": "login", "identity": "alice", "version": 1})).await.ok();
    out.push(old["profile"].clone());
    let versions = v.call("UserListVersions", json!({"mode": "login", "identity": "alice"})).await.ok();
    out.push(versions["versions"].clone());
    out
}

both!(reopened_with_the_same_key_serves_the_same_data, |v| {
    let who = populate(v).await;
    let before = snapshot(v, &who).await;
    assert_eq!(before[0]["profile"]["name"], "Alice 2");
    assert_eq!(before[5]["slidingtime"], 2_592_000);

    let reopened = v.reopen(&v.wrapping).await.expect("same key opens");
    let after = snapshot(&reopened, &who).await;
    // Writes through either instance are visible to the other (one shared database).
    let token = reopened.create_user(json!({"email": "after@x.io"})).await;
    let seen = v.call("UserGet", json!({"mode": "email", "identity": "after@x.io"})).await.ok();
    reopened.close().await;
    assert_eq!(after, before);
    assert_eq!(seen["token"], token.as_str());
});

both!(restart_after_the_first_process_stopped, |v| {
    let who = populate(v).await;
    let before = snapshot(v, &who).await;
    // Stop the first process: its pool is closed for good (cleanup closing it again is harmless).
    v.db().close().await;
    let first = v.reopen(&v.wrapping).await.expect("same key opens");
    assert_eq!(snapshot(&first, &who).await, before);
    first.call("UserDelete", json!({"mode": "login", "identity": "bulk"})).await.ok();
    first.close().await;
    // And once more: the change made by the second process is there.
    let second = v.reopen(&v.wrapping).await.expect("same key opens again");
    let answer = second.call("UserGet", json!({"mode": "login", "identity": "bulk"})).await;
    let kept = second.call("UserGet", json!({"mode": "login", "identity": "alice"})).await;
    second.close().await;
    answer.error(404, "The user record was not found");
    assert_eq!(stable(&kept.ok()), before[0]);
});

both!(reopening_with_another_key_is_refused, |v| {
    let who = populate(v).await;
    let before = snapshot(v, &who).await;
    let mut flipped = v.wrapping.to_hex();
    let last = if flipped.ends_with('0') { "1" } else { "0" };
    flipped.replace_range(flipped.len() - 1.., last);
    for wrong in [
        WrappingKey::generate(),
        WrappingKey::from_hex(&flipped).expect("48 hex"),
        WrappingKey::from_hex(&format!("{}{}", v.wrapping.to_hex(), "0".repeat(16))).expect("64 hex"),
    ] {
        let err = v.reopen_err(&wrong).await;
        assert!(matches!(err, VaultError::WrongWrappingKey), "{err:?}");
    }
    // The refused attempts changed nothing: the running vault and the right key still work.
    assert_eq!(snapshot(v, &who).await, before);
    let reopened = v.reopen(&v.wrapping).await.expect("same key opens");
    let after = snapshot(&reopened, &who).await;
    reopened.close().await;
    assert_eq!(after, before);
});

both!(root_token_keeps_working_after_reopen, |v| {
    v.create_user(json!({"login": "before"})).await;
    let reopened = v.reopen(&v.wrapping).await.expect("same key opens");
    let created = reopened.call("UserCreate", json!({"profile": {"login": "after"}})).await;
    let read = reopened.call("UserGet", json!({"mode": "login", "identity": "before"})).await;
    let wrong = reopened
        .call_as(
            "UserGet",
            Some(&bunker::crypto::secrets::random_uuid_string()),
            None,
            json!({"mode": "login", "identity": "before"}),
        )
        .await;
    let missing = reopened.call_as("UserGet", None, None, json!({"mode": "login", "identity": "before"})).await;
    reopened.close().await;
    created.ok();
    assert_eq!(read.ok()["profile"], json!({"login": "before"}));
    wrong.error(403, "Access denied");
    missing.error(403, "Access denied");
    // The first instance sees the user created after the reopen.
    v.call("UserGet", json!({"mode": "login", "identity": "after"})).await.ok();
});
