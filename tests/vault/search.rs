//! `UserSearch`: fuzzy matching over keyed trigram digests, kept in step with every write.

use serde_json::{Value, json};

use crate::both;
use crate::bulk::{INVALID, MISSING, unlock};
use crate::common::TestVault;
use bunker::store::Db;

/// `rows[].profile.login` of a search for `identity` (with `mode` when given).
async fn logins(v: &TestVault, uuid: &str, identity: &str, mode: Option<&str>) -> Vec<String> {
    let mut body = json!({"unlockuuid": uuid, "identity": identity});
    if let Some(mode) = mode {
        body["mode"] = json!(mode);
    }
    let body = v.call("UserSearch", body).await.ok();
    let rows = body["rows"].as_array().expect("rows");
    assert_eq!(body["total"].as_u64(), Some(rows.len() as u64), "{body}");
    rows.iter().map(|r| r["profile"]["login"].as_str().expect("login").to_owned()).collect()
}

/// Alice, Bob and Carol with deliberately distinct identities.
async fn people(v: &TestVault) {
    for profile in [
        json!({"login": "alice", "email": "alice.smith@example.com", "phone": "+44 7700 900123", "custom": "CUST-0042"}),
        json!({"login": "bob", "email": "bob.jones@example.com", "phone": "+1 555 010 9999", "custom": "CUST-0999"}),
        json!({"login": "carolina", "email": "carol@other.org", "phone": "+33 6 12 34 56 78"}),
    ] {
        v.create_user(profile).await;
    }
}

both!(search_finds_partial_values_and_typos_and_not_unrelated_users, |v| {
    people(v).await;
    let uuid = unlock(v).await;
    for (identity, mode, expected) in [
        // Partial e-mails (mode detected from the @).
        ("alice.smith@", None, vec!["alice"]),
        ("alice.smith@exam", None, vec!["alice"]),
        ("Alice.Smith@Example.com", None, vec!["alice"]),
        ("@other.org", None, vec!["carolina"]),
        ("@example.com", None, vec!["alice", "bob"]),
        // One typo.
        ("alise.smith@example.com", None, vec!["alice"]),
        ("alixe", None, vec!["alice"]),
        ("allice", None, vec!["alice"]),
        ("karolina", None, vec!["carolina"]),
        // Accents and case do not matter.
        ("ÁLICE", None, vec!["alice"]),
        // Phone digits, partial or whole, in any formatting (mode detected from the digits).
        ("900123", None, vec!["alice"]),
        ("+44 (7700) 900-123", None, vec!["alice"]),
        ("0109999", None, vec!["bob"]),
        // Explicit modes.
        ("jones", Some("email"), vec!["bob"]),
        ("cust-0042", Some("custom"), vec!["alice"]),
        ("carol", Some("login"), vec!["carolina"]),
        // Unrelated values find no one.
        ("dave@example.net", None, vec![]),
        ("zed", None, vec![]),
        ("+49 30 1234567", None, vec![]),
        ("example", Some("login"), vec![]),
        ("cust-0042", Some("login"), vec![]),
    ] {
        let mut found = logins(v, &uuid, identity, mode).await;
        found.sort();
        assert_eq!(found, expected, "search {identity:?} (mode {mode:?})");
    }
});

both!(search_ranks_the_closest_match_first, |v| {
    for login in ["marta", "martha", "martina"] {
        v.create_user(json!({"login": login})).await;
    }
    let uuid = unlock(v).await;
    let found = logins(v, &uuid, "martha", None).await;
    assert_eq!(found.first().map(String::as_str), Some("martha"), "{found:?}");
    assert!(found.contains(&"marta".to_owned()), "one deletion away: {found:?}");
    // Each row is a full user row.
    let body = v.call("UserSearch", json!({"unlockuuid": uuid, "identity": "martina"})).await.ok();
    let row = &body["rows"][0];
    for key in ["token", "profile", "version", "finaltime", "slidingtime", "expirationtime"] {
        assert!(row.get(key).is_some(), "{key} in {row}");
    }
    // mode token is an exact lookup.
    let token = row["token"].as_str().expect("token");
    let body = v.call("UserSearch", json!({"unlockuuid": uuid, "identity": token, "mode": "token"})).await.ok();
    assert_eq!(body["rows"][0]["profile"]["login"], "martina");
});

both!(updates_patches_and_bulk_creates_keep_the_index_current, |v| {
    v.create_user(json!({"login": "oldname", "email": "first@old-domain.com"})).await;
    let uuid = unlock(v).await;
    assert_eq!(logins(v, &uuid, "first@old-dom", None).await, ["oldname"]);
    v.call(
        "UserUpdate",
        json!({"mode": "login", "identity": "oldname", "profile": {"email": "second@new-domain.com"}}),
    )
    .await
    .ok();
    assert!(logins(v, &uuid, "first@old-dom", None).await.is_empty(), "the old e-mail is no longer found");
    assert_eq!(logins(v, &uuid, "second@new-dom", None).await, ["oldname"]);
    v.call(
        "UserPatch",
        json!({"mode": "login", "identity": "oldname", "patch": [{"op": "replace", "path": "/login", "value": "renamed"}]}),
    )
    .await
    .ok();
    assert!(logins(v, &uuid, "oldname", None).await.is_empty(), "the old login is no longer found");
    assert_eq!(logins(v, &uuid, "renamed", None).await, ["renamed"]);
    // A change that fails (a clashing login) leaves the index as it was.
    v.create_user(json!({"login": "taken"})).await;
    v.call("UserUpdate", json!({"mode": "login", "identity": "renamed", "profile": {"login": "taken"}}))
        .await
        .error(409, "Duplicate index: login");
    assert_eq!(logins(v, &uuid, "renamed", None).await, ["renamed"]);
    // An approved change request re-indexes too.
    let request = v
        .call("UserUpdateRequest", json!({"mode": "login", "identity": "renamed", "profile": {"login": "approved"}}))
        .await
        .ok();
    v.call("UserRequestApprove", json!({"requestuuid": request["requestuuid"]})).await.ok();
    assert_eq!(logins(v, &uuid, "approved", None).await, ["approved"]);
    assert!(logins(v, &uuid, "renamed", None).await.is_empty());
    // Bulk-created users are searchable at once.
    let records: Vec<Value> = (0..50).map(|i| json!({"profile": {"login": format!("bulkling{i:02}")}})).collect();
    v.call("UserCreateBulk", json!({"records": records})).await.ok();
    let found = logins(v, &uuid, "bulkling17", None).await;
    assert_eq!(found[0], "bulkling17", "the exact match first");
    // Then those one edit away (bulkling1x, bulkling_7), and none further (bulkling49).
    let mut near: Vec<String> =
        (0..10).map(|i| format!("bulkling1{i}")).chain([0, 2, 3, 4].map(|i| format!("bulkling{i}7"))).collect();
    near.sort();
    let mut found = found;
    found.sort();
    assert_eq!(found, near);
});

both!(every_erasure_path_removes_the_grams, |v| {
    v.create_user(json!({"login": "deleted"})).await;
    v.create_user(json!({"login": "bulkdeleted"})).await;
    v.create_user(json!({"login": "forgotten"})).await;
    v.call("UserCreate", json!({"profile": {"login": "expired"}, "finaltime": "1d"})).await.ok();
    v.create_user(json!({"login": "kept"})).await;
    let all = gram_count(v).await;
    // "  d", " de", "del", "ele", "let", "ete", "ted", "ed ": 8 digests for "deleted".
    assert_eq!(all, 8 + 12 + 10 + 8 + 5, "one digest per distinct framed trigram");

    v.call("UserDelete", json!({"mode": "login", "identity": "deleted"})).await.ok();
    v.call("UserDeleteBulk", json!({"users": [{"mode": "login", "identity": "bulkdeleted"}]})).await.ok();
    let request = v.call("UserDeleteRequest", json!({"mode": "login", "identity": "forgotten"})).await.ok();
    v.call("UserRequestApprove", json!({"requestuuid": request["requestuuid"]})).await.ok();
    v.clock().advance(2 * 86_400);
    bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(gram_count(v).await, 5, "only the kept user's grams remain");
    let uuid = unlock(v).await;
    for gone in ["deleted", "bulkdeleted", "forgotten", "expired"] {
        assert!(logins(v, &uuid, gone, Some("login")).await.is_empty(), "{gone}");
    }
    assert_eq!(logins(v, &uuid, "kept", None).await, ["kept"]);
});

/// Stored gram digests: rows of the index and grams of the pending list on SQLite, array
/// elements on PostgreSQL.
async fn gram_count(v: &crate::common::TestVault) -> i64 {
    match v.backend {
        crate::common::Backend::Sqlite => {
            v.scalar(
                "SELECT (SELECT COUNT(*) FROM search_grams) \
                 + (SELECT COALESCE(SUM(length(grams)), 0) / 8 FROM search_pending)",
            )
            .await
        }
        crate::common::Backend::Postgres => {
            v.scalar("SELECT COALESCE(SUM(cardinality(grams)), 0)::BIGINT FROM user_grams").await
        }
    }
}

both!(only_keyed_digests_are_stored, |v| {
    v.create_user(json!({"login": "alice", "custom": "alice", "email": "ab@cd.io", "phone": "+1 234"})).await;
    // login 6 + custom 6 (the same trigrams, other digests) + e-mail 3 ("ab") + 6 ("cd.io") + phone 5.
    assert_eq!(gram_count(v).await, 6 + 6 + 3 + 6 + 5);
    // No two stored digests are equal: the login's and the custom id's identical trigrams are
    // keyed apart.
    let distinct = match v.backend {
        crate::common::Backend::Sqlite => {
            // A new user's grams wait in the pending list, packed 8 bytes each.
            assert_eq!(v.scalar("SELECT COUNT(*) FROM search_grams").await, 0);
            assert_eq!(v.scalar("SELECT COUNT(*) FROM search_pending").await, 1, "one row per user");
            let odd = v.scalar("SELECT COUNT(*) FROM search_pending WHERE length(grams) % 8 <> 0").await;
            assert_eq!(odd, 0, "every stored gram is the 8-byte head of a digest");
            // Moved into the index, they are rows of their own, as distinct as they were.
            let Db::Sqlite(pool) = v.db() else { unreachable!() };
            let mut conn = pool.acquire().await.expect("connection");
            bunker::store::search::merge_pending(&mut conn).await.expect("merge");
            assert_eq!(v.scalar("SELECT COUNT(*) FROM search_pending").await, 0);
            assert_eq!(v.scalar("SELECT COUNT(*) FROM search_grams WHERE length(gram) <> 8").await, 0);
            v.scalar("SELECT COUNT(DISTINCT gram) FROM search_grams").await
        }
        crate::common::Backend::Postgres => {
            assert_eq!(v.scalar("SELECT COUNT(*) FROM user_grams").await, 1, "one row per user");
            // Migration 0012 carried older 32-byte digests over with this expression; it must
            // agree with the vault's own cut (first 8 bytes, big-endian, signed).
            let mut digest = [0xffu8; 32];
            digest[..8].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 1]);
            let carried = v
                .scalar(&format!(
                    "SELECT ('x' || encode(substring('\\x{}'::bytea FROM 1 FOR 8), 'hex'))::bit(64)::bigint",
                    hex::encode(digest)
                ))
                .await;
            assert_eq!(carried, bunker::search::grams::short(&digest));
            assert_eq!(carried, i64::MIN + 1);
            v.scalar("SELECT COUNT(DISTINCT g) FROM user_grams, unnest(grams) AS g").await
        }
    };
    assert_eq!(distinct, 26);
    let dump = v.dump().await;
    crate::common::assert_absent(&dump, &["ab@cd.io", "cd.io", "+1 234"]);
});

both!(search_needs_a_token_an_unlock_and_an_identity, |v| {
    people(v).await;
    let uuid = unlock(v).await;
    v.call_as("UserSearch", None, None, json!({"unlockuuid": uuid, "identity": "alice"}))
        .await
        .error(403, "Access denied");
    for unlockuuid in [Value::Null, json!(" ")] {
        v.call("UserSearch", json!({"unlockuuid": unlockuuid, "identity": "alice"})).await.error(400, MISSING);
    }
    for unlockuuid in [json!("nope"), json!(bunker::crypto::secrets::random_uuid_string())] {
        v.call("UserSearch", json!({"unlockuuid": unlockuuid, "identity": "alice"})).await.error(403, INVALID);
    }
    v.clock().advance(61);
    v.call("UserSearch", json!({"unlockuuid": uuid, "identity": "alice"})).await.error(403, INVALID);
    let uuid = unlock(v).await;
    for identity in [Value::Null, json!(""), json!("   ")] {
        v.call("UserSearch", json!({"unlockuuid": uuid, "identity": identity}))
            .await
            .error(400, "Missing API request parameters: identity");
    }
    v.call("UserSearch", json!({"unlockuuid": uuid, "identity": "alice", "mode": "nick"}))
        .await
        .error(400, "The mode parameter has an incorrect format");
    v.call("UserSearch", json!({"unlockuuid": uuid, "identity": "alice", "mode": "token"}))
        .await
        .error(400, "Bad UUID");
    // Nothing searchable in the value: no rows, not an error.
    let body = v.call("UserSearch", json!({"unlockuuid": uuid, "identity": "@"})).await.ok();
    assert_eq!((body["total"].clone(), body["rows"].clone()), (json!(0), json!([])));
    // A number is accepted as the identity (clients send phones as numbers).
    let body = v.call("UserSearch", json!({"unlockuuid": uuid, "identity": 900123})).await.ok();
    assert_eq!(body["rows"][0]["profile"]["login"], "alice");
    // The search is audited with the kind searched and counts, never the value.
    let event =
        v.scalar("SELECT COUNT(*) FROM audit_events WHERE operation = 'UserSearch' AND http_status = 200").await;
    assert!(event >= 2);
    let body = v.call("BulkListAllAuditEvents", json!({"unlockuuid": uuid, "limit": 1})).await.ok();
    let details = v.call("AuditGetEvent", json!({"auditeventuuid": body["rows"][0]["auditeventuuid"]})).await.ok();
    assert_eq!(details["title"], "UserSearch");
    assert_eq!(details["details"]["extra"], json!({"mode": "phone", "matched": 1, "records": 1}));
    assert!(!details.to_string().contains("900123"), "{details}");
});

both!(search_reads_the_index_and_the_users_not_yet_merged_into_it, |v| {
    // On SQLite a new user's grams wait in a pending list until a thousand users do; this bulk
    // call moves its first thousand into the index and leaves the last hundred waiting.
    let records: Vec<Value> = (0..1100).map(|i| json!({"profile": {"login": format!("member{i:04}")}})).collect();
    v.call("UserCreateBulk", json!({"records": records})).await.ok();
    v.create_user(json!({"login": "newcomer"})).await;
    if v.backend == crate::common::Backend::Sqlite {
        assert_eq!(v.scalar("SELECT COUNT(*) FROM search_pending").await, 101);
        assert_eq!(v.scalar("SELECT COUNT(DISTINCT rid) FROM search_grams").await, 1000);
    }
    let uuid = unlock(v).await;
    for login in ["member0007", "member0999", "member1000", "member1099", "newcomer"] {
        assert_eq!(logins(v, &uuid, login, Some("login")).await.first().map(String::as_str), Some(login));
    }
    // A user in the index, changed: found by its new login only.
    v.call("UserUpdate", json!({"mode": "login", "identity": "member0007", "profile": {"login": "renamedone"}}))
        .await
        .ok();
    assert!(!logins(v, &uuid, "member0007", Some("login")).await.contains(&"member0007".to_owned()));
    assert_eq!(logins(v, &uuid, "renamedone", None).await, ["renamedone"]);
    // Users deleted from the index and from the pending list are no longer found.
    for gone in ["member0008", "member1098"] {
        v.call("UserDelete", json!({"mode": "login", "identity": gone})).await.ok();
        assert!(!logins(v, &uuid, gone, Some("login")).await.contains(&gone.to_owned()), "{gone}");
    }
    // Every remaining user's grams are in one place: the index or the pending list, not both.
    let holders = match v.backend {
        crate::common::Backend::Sqlite => {
            let both =
                "SELECT COUNT(*) FROM search_pending p WHERE EXISTS (SELECT 1 FROM search_grams g WHERE g.rid = p.rid)";
            assert_eq!(v.scalar(both).await, 0);
            v.scalar("SELECT COUNT(*) FROM (SELECT rid FROM search_grams UNION SELECT rid FROM search_pending)").await
        }
        crate::common::Backend::Postgres => v.scalar("SELECT COUNT(*) FROM user_grams").await,
    };
    assert_eq!(holders, 1100 + 1 - 2);
});
