//! Recovery without the wrapping key (`bunker recover`'s work, `vault::recover`) and rotation of
//! the recovery key (`SystemRotateRecoveryKey`).

use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;
use bunker::crypto::{Key256, WrappingKey, shamir};
use bunker::vault::{self, RecoverError, VaultError};

const ROTATE: &str = "SystemRotateRecoveryKey";
const MISMATCH: &str = "Master key mismatch";

fn recovery_key(shares: &[String], picks: [usize; 3]) -> Key256 {
    shamir::combine(&[("key1", &shares[picks[0]]), ("key2", &shares[picks[1]]), ("key3", &shares[picks[2]])])
        .expect("shares combine")
}

fn shares_body(shares: &[String], picks: [usize; 3]) -> Value {
    json!({"key1": shares[picks[0]], "key2": shares[picks[1]], "key3": shares[picks[2]]})
}

/// A second tenant with a user in it, and a user of the main tenant: (tenant token, its user).
async fn populate(v: &TestVault) -> (String, String) {
    v.create_user(json!({"login": "alice"})).await;
    let created = v.call("TenantCreate", json!({"tenantname": "other"})).await.ok();
    let token = created["xtoken"].as_str().expect("tenant token").to_owned();
    let user = v.call_as("UserCreate", Some(&token), None, json!({"profile": {"email": "t@x.io"}})).await.ok();
    (token, user["token"].as_str().expect("user token").to_owned())
}

/// Both tenants' records read through `vault`.
async fn assert_readable(vault: &TestVault, tenant_token: &str, user: &str) {
    let alice = vault.call("UserGet", json!({"mode": "login", "identity": "alice"})).await.ok();
    assert_eq!(alice["profile"], json!({"login": "alice"}));
    let got = vault.call_as("UserGet", Some(tenant_token), None, json!({"mode": "token", "identity": user})).await.ok();
    assert_eq!(got["profile"], json!({"email": "t@x.io"}));
}

both!(three_shares_open_a_vault_whose_wrapping_key_was_lost, |v| {
    let (tenant_token, user) = populate(v).await;
    // A rotation whose answer was lost is pending too: recovery drops it.
    let lost = v.call("SystemGenerateWrappingKey", shares_body(&v.shares, [0, 1, 2])).await.ok();
    let lost = WrappingKey::from_hex(lost["wrappingkey"].as_str().expect("key")).expect("hex");
    let new_key = WrappingKey::generate();
    let count = vault::recover(&v.state.db, &recovery_key(&v.shares, [1, 3, 4]), &new_key).await.expect("recovers");
    assert_eq!(count, 2, "the main tenant's and the other tenant's master keys");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM vault_meta WHERE next_kek_check IS NOT NULL").await, 0);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tenant_keys WHERE next_wrapped IS NOT NULL").await, 0);
    for stale in [&v.wrapping, &lost] {
        let err = v.reopen_err(stale).await;
        assert!(matches!(err, VaultError::WrongWrappingKey), "{err:?}");
    }
    let reopened = v.reopen(&new_key).await.expect("the new key opens the recovered vault");
    assert_readable(&reopened, &tenant_token, &user).await;
    // Master keys can be stored again, and the shares still rotate the wrapping key.
    reopened.call("TenantCreate", json!({"tenantname": "after"})).await.ok();
    reopened.call("SystemGenerateWrappingKey", shares_body(&v.shares, [4, 0, 2])).await.ok();
    reopened.close().await;
});

both!(foreign_or_mixed_shares_recover_nothing, |v| {
    populate(v).await;
    let other = TestVault::new(v.backend).await;
    let foreign = other.shares.clone();
    other.cleanup().await;
    let new_key = WrappingKey::generate();
    let err = vault::recover(&v.state.db, &recovery_key(&foreign, [0, 1, 2]), &new_key).await.expect_err("foreign");
    assert!(matches!(err, RecoverError::SharesMismatch), "{err:?}");
    let mixed = [v.shares[0].clone(), v.shares[1].clone(), foreign[2].clone()];
    let err = vault::recover(&v.state.db, &recovery_key(&mixed, [0, 1, 2]), &new_key).await.expect_err("mixed");
    assert!(matches!(err, RecoverError::SharesMismatch), "{err:?}");
    // Nothing changed.
    v.reopen(&v.wrapping).await.expect("the key in force still opens").close().await;
    let err = v.reopen_err(&new_key).await;
    assert!(matches!(err, VaultError::WrongWrappingKey), "{err:?}");
});

fn answered_shares(answer: &Value) -> Vec<String> {
    (1..=5).map(|n| answer[format!("key{n}")].as_str().expect("a new share").to_owned()).collect()
}

const PENDING: &str = "SELECT COUNT(*) FROM tenant_keys WHERE previous_recovery_wrapped IS NOT NULL";

both!(the_old_shares_work_until_the_new_ones_are_used, |v| {
    let (tenant_token, user) = populate(v).await;
    let answer = v.call(ROTATE, shares_body(&v.shares, [0, 2, 4])).await.ok();
    let fresh = answered_shares(&answer);
    for share in &fresh {
        assert!(!v.shares.contains(share), "a new share repeats an old one");
        assert!(hex::decode(share).is_ok(), "{share}");
    }
    // Pending: the old shares still prove custody (the answer might not have arrived).
    v.call("SystemGenerateWrappingKey", shares_body(&v.shares, [0, 1, 2])).await.ok();
    assert_eq!(v.scalar(PENDING).await, 1, "the old shares' wrapping is kept");
    // One use of any three new ones confirms them...
    let rotated = v.call("SystemGenerateWrappingKey", shares_body(&fresh, [4, 1, 3])).await.ok();
    assert!(rotated["wrappingkey"].is_string());
    assert_eq!(v.scalar(PENDING).await, 0, "the old shares' wrapping is dropped");
    // ...and the old shares prove nothing any more, whichever three are given.
    for op in [ROTATE, "SystemGenerateWrappingKey"] {
        v.call(op, shares_body(&v.shares, [0, 1, 2])).await.error(403, MISMATCH);
        v.call(op, shares_body(&v.shares, [2, 3, 4])).await.error(403, MISMATCH);
    }
    let new_key = WrappingKey::generate();
    let err = vault::recover(&v.state.db, &recovery_key(&v.shares, [1, 2, 3]), &new_key).await.expect_err("old");
    assert!(matches!(err, RecoverError::SharesMismatch), "{err:?}");
    vault::recover(&v.state.db, &recovery_key(&fresh, [0, 2, 3]), &new_key).await.expect("new shares recover");
    let reopened = v.reopen(&new_key).await.expect("recovered with the new shares");
    assert_readable(&reopened, &tenant_token, &user).await;
    reopened.close().await;
    // One audited rotation; the new shares are not stored.
    let events =
        v.scalar(&format!("SELECT COUNT(*) FROM audit_events WHERE operation = '{ROTATE}' AND result = 'ok'")).await;
    assert_eq!(events, 1);
    let dump = v.dump().await;
    let shares: Vec<&str> = fresh.iter().map(String::as_str).collect();
    crate::common::assert_absent(&dump, &shares);
});

both!(a_lost_rotation_answer_is_asked_for_again_with_the_old_shares, |v| {
    let (tenant_token, user) = populate(v).await;
    let lost = answered_shares(&v.call(ROTATE, shares_body(&v.shares, [0, 1, 2])).await.ok());
    v.call("SystemGenerateWrappingKey", shares_body(&v.shares, [2, 3, 4])).await.ok();
    // Asked again with the old shares: a new set replaces the lost one, the old one stays.
    let second = answered_shares(&v.call(ROTATE, shares_body(&v.shares, [1, 3, 4])).await.ok());
    assert!(second.iter().all(|share| !lost.contains(share) && !v.shares.contains(share)));
    assert_eq!(v.scalar(PENDING).await, 1);
    for op in [ROTATE, "SystemGenerateWrappingKey"] {
        v.call(op, shares_body(&lost, [0, 1, 2])).await.error(403, MISMATCH);
    }
    let err = vault::recover(&v.state.db, &recovery_key(&lost, [2, 3, 4]), &WrappingKey::generate())
        .await
        .expect_err("the lost set");
    assert!(matches!(err, RecoverError::SharesMismatch), "{err:?}");
    // `bunker recover` with the old shares while the rotation is pending; it confirms nothing.
    let first_key = WrappingKey::generate();
    vault::recover(&v.state.db, &recovery_key(&v.shares, [0, 3, 4]), &first_key).await.expect("old shares recover");
    assert_eq!(v.scalar(PENDING).await, 1);
    let reopened = v.reopen(&first_key).await.expect("recovered with the old shares");
    assert_readable(&reopened, &tenant_token, &user).await;
    // The second set works, and its first use voids the old shares.
    reopened.call("SystemGenerateWrappingKey", shares_body(&second, [4, 2, 0])).await.ok();
    assert_eq!(v.scalar(PENDING).await, 0);
    for op in [ROTATE, "SystemGenerateWrappingKey"] {
        reopened.call(op, shares_body(&v.shares, [0, 1, 2])).await.error(403, MISMATCH);
    }
    reopened.close().await;
    // `bunker recover` with the new shares after; the old ones recover nothing.
    let last_key = WrappingKey::generate();
    let err = vault::recover(&v.state.db, &recovery_key(&v.shares, [1, 2, 4]), &last_key).await.expect_err("old");
    assert!(matches!(err, RecoverError::SharesMismatch), "{err:?}");
    vault::recover(&v.state.db, &recovery_key(&second, [1, 2, 3]), &last_key).await.expect("new shares recover");
    let reopened = v.reopen(&last_key).await.expect("recovered with the new shares");
    assert_readable(&reopened, &tenant_token, &user).await;
    reopened.close().await;
});

both!(recovering_with_the_new_shares_confirms_them, |v| {
    populate(v).await;
    let fresh = answered_shares(&v.call(ROTATE, shares_body(&v.shares, [0, 1, 2])).await.ok());
    let new_key = WrappingKey::generate();
    vault::recover(&v.state.db, &recovery_key(&fresh, [0, 1, 2]), &new_key).await.expect("new shares recover");
    assert_eq!(v.scalar(PENDING).await, 0);
    let err = vault::recover(&v.state.db, &recovery_key(&v.shares, [0, 1, 2]), &new_key).await.expect_err("old");
    assert!(matches!(err, RecoverError::SharesMismatch), "{err:?}");
    let reopened = v.reopen(&new_key).await.expect("recovered with the new shares");
    reopened.call(ROTATE, shares_body(&v.shares, [2, 3, 4])).await.error(403, MISMATCH);
    reopened.call(ROTATE, shares_body(&fresh, [2, 3, 4])).await.ok();
    reopened.close().await;
});

both!(rotating_with_the_new_shares_confirms_them_and_starts_another, |v| {
    let fresh = answered_shares(&v.call(ROTATE, shares_body(&v.shares, [0, 1, 2])).await.ok());
    let newer = answered_shares(&v.call(ROTATE, shares_body(&fresh, [1, 2, 3])).await.ok());
    // The first set is confirmed and then replaced: the original shares are gone, the first new
    // set is the one kept until the newest is used.
    v.call(ROTATE, shares_body(&v.shares, [2, 3, 4])).await.error(403, MISMATCH);
    assert_eq!(v.scalar(PENDING).await, 1);
    v.call("SystemGenerateWrappingKey", shares_body(&fresh, [0, 2, 4])).await.ok();
    v.call("SystemGenerateWrappingKey", shares_body(&newer, [0, 3, 4])).await.ok();
    assert_eq!(v.scalar(PENDING).await, 0);
    v.call("SystemGenerateWrappingKey", shares_body(&fresh, [0, 2, 4])).await.error(403, MISMATCH);
});

both!(recovery_key_rotation_refuses_bad_shares, |v| {
    v.call(ROTATE, json!({"key1": v.shares[0]})).await.error(400, "Missing API request parameters: key1, key2, key3");
    let mut bad = shares_body(&v.shares, [0, 1, 2]);
    bad["key3"] = json!("not-hex");
    v.call(ROTATE, bad).await.error(400, "Failed to hex decode key3");
    let mut mixed = shares_body(&v.shares, [0, 1, 2]);
    mixed["key3"] = json!(v.shares[0]);
    v.call(ROTATE, mixed).await.error(403, MISMATCH);
    // The shares in force still work after the refusals.
    v.call(ROTATE, shares_body(&v.shares, [2, 3, 4])).await.ok();
});
