//! No plaintext personal data at rest, and ciphertexts bound to their row.

use serde_json::json;

use crate::both;
use crate::common::TestVault;
use bunker::store::Db;

/// True when `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that `needle` appears in the dump neither as is nor hex-encoded (`pg_dump` prints
/// BYTEA columns as hex, so plaintext stored in a binary column would only show up that way).
#[track_caller]
fn assert_absent(dump: &[u8], needle: &str) {
    assert!(!contains(dump, needle.as_bytes()), "{needle:?} is stored in clear");
    assert!(!contains(dump, hex::encode(needle).as_bytes()), "{needle:?} is stored in clear (as hex)");
}

/// Record ids of every user row.
async fn rids(v: &TestVault) -> Vec<Vec<u8>> {
    use sqlx::Row;
    let sql = "SELECT rid FROM users ORDER BY rid";
    match v.db() {
        Db::Sqlite(pool) => sqlx::query(sql).fetch_all(pool).await.expect("rids").iter().map(|r| r.get(0)).collect(),
        Db::Postgres(pool) => sqlx::query(sql).fetch_all(pool).await.expect("rids").iter().map(|r| r.get(0)).collect(),
    }
}

/// Creates a user and returns its token and record id.
async fn create_with_rid(v: &TestVault, profile: serde_json::Value) -> (String, Vec<u8>) {
    let before = rids(v).await;
    let token = v.create_user(profile).await;
    let mut new: Vec<Vec<u8>> = rids(v).await.into_iter().filter(|r| !before.contains(r)).collect();
    assert_eq!(new.len(), 1, "exactly one new row");
    (token, new.remove(0))
}

/// Runs one statement with byte-string binds; returns the rows affected.
async fn execute(v: &TestVault, sql: &str, binds: &[&[u8]]) -> u64 {
    match v.db() {
        Db::Sqlite(pool) => {
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = query.bind(*bind);
            }
            query.execute(pool).await.expect("statement").rows_affected()
        }
        Db::Postgres(pool) => {
            let mut query = sqlx::query(sql);
            for bind in binds {
                query = query.bind(*bind);
            }
            query.execute(pool).await.expect("statement").rows_affected()
        }
    }
}

both!(no_plaintext_personal_data_at_rest, |v| {
    let email = "Zebulon.Quixote+Vault@Example-Bunker.TEST";
    let phone = "+44 (20) 7946-0958";
    let profile = json!({
        "login": "zq-login-778121",
        "email": format!("  {email} "),
        "phone": phone,
        "custom": "zq-custom-447190",
        "name": "Zebulon Quixote",
        "address": {"street": "Xylophone Crescent 42", "geo": {"city": "Quuxborough", "zip": ["QX-99817"]}},
    });
    let body = v
        .call("UserCreate", json!({"profile": profile, "request_metadata": {"note": "meta-create-zq-993175"}}))
        .await
        .ok();
    let token = body["token"].as_str().expect("token").to_owned();
    let bulk = v
        .call(
            "UserCreateBulk",
            json!({"records": [{"profile": {"email": "Yarrow.Bulkington@Example-Bunker.TEST",
                                            "name": "Yarrow Bulkington", "custom": "yb-custom-55117"}}],
                   "request_metadata": {"note": "meta-bulk-yb-661902"}}),
        )
        .await
        .ok();
    let bulk_token = bulk["created"][0]["token"].as_str().expect("token").to_owned();
    v.call(
        "UserUpdate",
        json!({"mode": "login", "identity": "zq-login-778121",
               "profile": {"name": "Zebulon Renamed-Quixote", "address": {"street": "Wobblewick Lane 7"}},
               "request_metadata": {"note": "meta-update-zq-551204"}}),
    )
    .await
    .ok();
    v.call(
        "UserPatch",
        json!({"mode": "token", "identity": token,
               "patch": [{"op": "add", "path": "/hobby", "value": "Underwater Basket Weaving ZQ"}],
               "request_metadata": {"note": "meta-patch-zq-118830"}}),
    )
    .await
    .ok();
    v.call("UserGet", json!({"mode": "email", "identity": email, "request_metadata": {"note": "meta-read-zq-882016"}}))
        .await
        .ok();
    // A failed lookup by an identity that is itself personal data.
    v.call("UserGet", json!({"mode": "email", "identity": "Nobody.Ottoline@Example-Bunker.TEST"}))
        .await
        .error(404, "The user record was not found");
    // The data is there and versioned (so old versions are stored too).
    let versions = v.call("UserListVersions", json!({"mode": "phone", "identity": "+442079460958"})).await.ok();
    assert_eq!(versions["versions"].as_array().map(Vec::len), Some(3));
    let got = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(got["profile"]["hobby"], "Underwater Basket Weaving ZQ");

    // SQLite: the write-ahead log as it stands before the dump checkpoints (and truncates) it,
    // so that plaintext written and later overwritten would still be seen.
    let mut dump = match v.location() {
        bunker::store::Location::SqliteFile(path) => {
            let mut wal = path.into_os_string();
            wal.push("-wal");
            std::fs::read(wal).unwrap_or_default()
        }
        _ => Vec::new(),
    };
    dump.extend(v.dump().await);
    // The search works on this dump format: names of operations are stored in clear.
    assert!(contains(&dump, b"UserPatch"), "the dump holds the audit rows");
    let lowered = email.to_lowercase();
    let uuid_simple = token.replace('-', "");
    let needles = [
        email,
        lowered.as_str(),
        "zebulon.quixote",
        "Example-Bunker",
        "example-bunker",
        phone,
        "+442079460958",
        "442079460958",
        "7946-0958",
        "zq-login-778121",
        "zq-custom-447190",
        "Zebulon Quixote",
        "Zebulon Renamed-Quixote",
        "Xylophone Crescent",
        "Wobblewick Lane",
        "Quuxborough",
        "QX-99817",
        "Underwater Basket Weaving",
        "meta-create-zq-993175",
        "meta-bulk-yb-661902",
        "meta-update-zq-551204",
        "meta-patch-zq-118830",
        "meta-read-zq-882016",
        "Yarrow Bulkington",
        "yarrow.bulkington",
        "Yarrow.Bulkington",
        "yb-custom-55117",
        "Nobody.Ottoline",
        "nobody.ottoline",
        token.as_str(),
        &token.to_uppercase(),
        uuid_simple.as_str(),
        bulk_token.as_str(),
        // Credentials are not personal data, but the root token must not be at rest either.
        v.root.as_str(),
    ];
    for needle in needles {
        assert_absent(&dump, needle);
    }
    // The user token's raw bytes are not stored either.
    let raw = uuid::Uuid::parse_str(&token).expect("uuid");
    assert!(!contains(&dump, raw.as_bytes()), "the token is stored as raw bytes");
});

both!(deleted_users_leave_no_plaintext_either, |v| {
    v.create_user(json!({"email": "Ephemeral.Person@Example-Bunker.TEST", "name": "Ephemera Gone"})).await;
    v.call(
        "UserUpdate",
        json!({"mode": "email", "identity": "ephemeral.person@example-bunker.test", "profile": {"name": "Ephemera Twice"}}),
    )
    .await
    .ok();
    v.call("UserDelete", json!({"mode": "email", "identity": "Ephemeral.Person@Example-Bunker.TEST"})).await.ok();
    let dump = v.dump().await;
    for needle in ["Ephemeral.Person", "ephemeral.person", "Ephemera Gone", "Ephemera Twice"] {
        assert_absent(&dump, needle);
    }
});

both!(ciphertext_moved_to_another_row_does_not_decrypt, |v| {
    let (_, rid_a) =
        create_with_rid(v, json!({"email": "alice.secret@x.io", "name": "Alice Secretname", "login": "alice"})).await;
    let (token_b, rid_b) = create_with_rid(v, json!({"email": "bob@x.io", "name": "Bob", "login": "bob"})).await;
    // Move A's sealed record and wrapped key onto B's row.
    let moved = execute(
        v,
        "UPDATE users SET record = (SELECT record FROM users WHERE rid = $1), \
         wrapped_key = (SELECT wrapped_key FROM users WHERE rid = $1) WHERE rid = $2",
        &[rid_a.as_slice(), rid_b.as_slice()],
    )
    .await;
    assert_eq!(moved, 1);
    for (mode, identity) in [("email", "bob@x.io"), ("login", "bob"), ("token", token_b.as_str())] {
        let answer = v.call("UserGet", json!({"mode": mode, "identity": identity})).await;
        let text = answer.body.to_string();
        assert!(!text.contains("Alice") && !text.contains("alice"), "A's data leaked: {text}");
        answer.error(500, "Internal error");
    }
    for op in ["UserListVersions", "UserDelete"] {
        let answer = v.call(op, json!({"mode": "login", "identity": "bob"})).await;
        assert!(!answer.body.to_string().contains("Alice"), "A's data leaked: {}", answer.body);
        answer.error(500, "Internal error");
    }
    v.call("UserUpdate", json!({"mode": "login", "identity": "bob", "profile": {"name": "X"}}))
        .await
        .error(500, "Internal error");
    // A itself is untouched.
    let got = v.call("UserGet", json!({"mode": "login", "identity": "alice"})).await.ok();
    assert_eq!(got["profile"]["name"], "Alice Secretname");
});

both!(record_moved_under_another_users_key_does_not_decrypt, |v| {
    let (_, rid_a) = create_with_rid(v, json!({"login": "a", "name": "Alice Secretname"})).await;
    let (_, rid_c) = create_with_rid(v, json!({"login": "c", "name": "Carol"})).await;
    // Only the record: C's own wrapped key stays, so C's data key opens A's record.
    let moved = execute(
        v,
        "UPDATE users SET record = (SELECT record FROM users WHERE rid = $1) WHERE rid = $2",
        &[rid_a.as_slice(), rid_c.as_slice()],
    )
    .await;
    assert_eq!(moved, 1);
    let answer = v.call("UserGet", json!({"mode": "login", "identity": "c"})).await;
    assert!(!answer.body.to_string().contains("Alice"), "A's data leaked: {}", answer.body);
    answer.error(500, "Internal error");
});

both!(version_moved_to_another_user_does_not_decrypt, |v| {
    let (_, rid_a) = create_with_rid(v, json!({"login": "a", "name": "Alice Secretname"})).await;
    let (_, rid_b) = create_with_rid(v, json!({"login": "b", "name": "Bob One"})).await;
    for login in ["a", "b"] {
        v.call("UserUpdate", json!({"mode": "login", "identity": login, "profile": {"name": "second"}})).await.ok();
    }
    let moved = execute(
        v,
        "UPDATE user_versions SET data = (SELECT data FROM user_versions WHERE rid = $1 AND version = 1) \
         WHERE rid = $2 AND version = 1",
        &[rid_a.as_slice(), rid_b.as_slice()],
    )
    .await;
    assert_eq!(moved, 1);
    let answer = v.call("UserGet", json!({"mode": "login", "identity": "b", "version": 1})).await;
    assert!(!answer.body.to_string().contains("Alice"), "A's data leaked: {}", answer.body);
    answer.error(500, "Internal error");
    // The current version of B and A's own history are unaffected.
    let got = v.call("UserGet", json!({"mode": "login", "identity": "b"})).await.ok();
    assert_eq!(got["profile"]["name"], "second");
    let got = v.call("UserGet", json!({"mode": "login", "identity": "a", "version": 1})).await.ok();
    assert_eq!(got["profile"]["name"], "Alice Secretname");
});
