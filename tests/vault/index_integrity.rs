//! A record found through a blind index must carry the identity looked up: index values swapped
//! in a tampered database make the lookup answer "not found", never another record.

use bunker::store::Db;
use serde_json::json;
use sqlx::Row;

use crate::both;
use crate::common::TestVault;

/// The byte columns `select` answers, one row per entry, in order.
async fn blobs(v: &TestVault, select: &str) -> Vec<(Vec<u8>, Vec<u8>)> {
    macro_rules! run {
        ($pool:expr) => {
            sqlx::query(select)
                .fetch_all($pool)
                .await
                .expect("select")
                .iter()
                .map(|row| (row.try_get(0).expect("key"), row.try_get(1).expect("value")))
                .collect()
        };
    }
    match v.db() {
        Db::Sqlite(pool) => run!(pool),
        Db::Postgres(pool) => run!(pool),
    }
}

async fn set(v: &TestVault, sql: &str, value: &[u8], key: &[u8]) {
    let affected = match v.db() {
        Db::Sqlite(pool) => sqlx::query(sql).bind(value).bind(key).execute(pool).await.expect("update").rows_affected(),
        Db::Postgres(pool) => {
            sqlx::query(sql).bind(value).bind(key).execute(pool).await.expect("update").rows_affected()
        }
    };
    assert_eq!(affected, 1, "{sql}");
}

/// Swaps `column` between the two rows `select` lists (`key, column`), keyed by `key` in `table`.
async fn swap(v: &TestVault, table: &str, key: &str, column: &str) {
    let rows = blobs(v, &format!("SELECT {key}, {column} FROM {table} ORDER BY {key}")).await;
    assert_eq!(rows.len(), 2);
    let ((key_a, a), (key_b, b)) = (&rows[0], &rows[1]);
    let sql = format!("UPDATE {table} SET {column} = $1 WHERE {key} = $2");
    set(v, &sql, &[0; 32], key_a).await;
    set(v, &sql, a, key_b).await;
    set(v, &sql, b, key_a).await;
}

both!(swapped_user_indexes_answer_not_found, |v| {
    let alice = v.create_user(json!({"email": "alice@x.io", "login": "alice", "name": "Alice"})).await;
    v.create_user(json!({"email": "bob@x.io", "login": "bob", "name": "Bob"})).await;
    swap(v, "users", "rid", "email_idx").await;
    for identity in ["alice@x.io", " Bob@X.io"] {
        let answer = v.call("UserGet", json!({"mode": "email", "identity": identity})).await;
        let text = answer.body.to_string();
        assert!(!text.contains("Bob") && !text.contains("Alice"), "another user's record: {text}");
        answer.error(404, "The user record was not found");
    }
    // Nothing is changed or erased through a swapped index either.
    v.call("UserDelete", json!({"mode": "email", "identity": "alice@x.io"}))
        .await
        .error(404, "The user record was not found");
    v.call("UserUpdate", json!({"mode": "email", "identity": "bob@x.io", "profile": {"name": "X"}}))
        .await
        .error(404, "The user record was not found");
    let unlock = v.call("BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    let users = json!([{"mode": "email", "identity": "alice@x.io"}, {"mode": "login", "identity": "bob"}]);
    let listed = v.call("BulkListUsers", json!({"unlockuuid": unlock, "users": users})).await.ok();
    assert_eq!(listed["rows"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["rows"][0]["profile"]["name"], "Bob");
    // The other indexes still work, and the records are intact.
    let got = v.call("UserGet", json!({"mode": "login", "identity": "alice"})).await.ok();
    assert_eq!((got["token"].as_str(), got["profile"]["name"].as_str()), (Some(alice.as_str()), Some("Alice")));
    assert_eq!(v.call("UserGet", json!({"mode": "login", "identity": "bob"})).await.ok()["profile"]["name"], "Bob");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM users").await, 2);
    // The same holds for token lookups.
    swap(v, "users", "rid", "token_idx").await;
    v.call("UserGet", json!({"mode": "token", "identity": alice})).await.error(404, "The user record was not found");
    let found = v.call("UserSearch", json!({"mode": "token", "identity": alice, "unlockuuid": unlock})).await.ok();
    assert_eq!(found["rows"], json!([]), "{found}");
});

both!(swapped_token_indexes_answer_not_found, |v| {
    let mut tokens = Vec::new();
    for card in ["4111111111111111", "5500005555555559"] {
        let answer = v.call("TokenCreate", json!({"tokentype": "creditcard", "record": card})).await.ok();
        tokens.push((
            answer["tokenuuid"].as_str().expect("uuid").to_owned(),
            answer["tokenbase"].as_str().expect("base").to_owned(),
        ));
    }
    swap(v, "tokens", "uuid_idx", "base_idx").await;
    for (_, base) in &tokens {
        let answer = v.call("TokenGet", json!({"token": base})).await;
        let text = answer.body.to_string();
        assert!(!text.contains("4111") && !text.contains("5500"), "another token's value: {text}");
        answer.error(404, "Token not found");
        v.call("TokenDelete", json!({"token": base})).await.error(404, "Token not found");
    }
    let unlock = v.call("BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    // A listing by one tokenbase finds the other token's row, which it does not name.
    let listed = v.call("BulkListTokens", json!({"unlockuuid": unlock, "tokens": [tokens[0].1]})).await.ok();
    assert_eq!(listed["rows"], json!([]), "{listed}");
    let deleted = v.call("BulkDeleteTokens", json!({"unlockuuid": unlock, "tokens": [tokens[0].1]})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tokens").await, 2, "{deleted}");
    // By tokenuuid, each token is still its own.
    let got = v.call("TokenGet", json!({"token": tokens[0].0})).await.ok();
    assert_eq!(
        (got["record"].as_str(), got["tokenbase"].as_str()),
        (Some("4111111111111111"), Some(tokens[0].1.as_str()))
    );
});

/// Swaps `column` of `table` between its two rows, keyed by the integer `key`.
async fn swap_by_id(v: &TestVault, table: &str, key: &str, column: &str) {
    let select = format!("SELECT {key}, {column} FROM {table} ORDER BY {key}");
    macro_rules! rows {
        ($pool:expr) => {
            sqlx::query(&select)
                .fetch_all($pool)
                .await
                .expect("select")
                .iter()
                .map(|row| (row.get::<i64, _>(0), row.get::<Vec<u8>, _>(1)))
                .collect::<Vec<_>>()
        };
    }
    let rows = match v.db() {
        Db::Sqlite(pool) => rows!(pool),
        Db::Postgres(pool) => rows!(pool),
    };
    assert_eq!(rows.len(), 2);
    let sql = format!("UPDATE {table} SET {column} = $1 WHERE {key} = $2");
    for (value, id) in [(vec![0; 32], rows[0].0), (rows[0].1.clone(), rows[1].0), (rows[1].1.clone(), rows[0].0)] {
        let affected = match v.db() {
            Db::Sqlite(pool) => {
                sqlx::query(&sql).bind(value).bind(id).execute(pool).await.expect("update").rows_affected()
            }
            Db::Postgres(pool) => {
                sqlx::query(&sql).bind(value).bind(id).execute(pool).await.expect("update").rows_affected()
            }
        };
        assert_eq!(affected, 1, "{sql}");
    }
}

both!(swapped_file_indexes_answer_not_found, |v| {
    let token = v.create_user(json!({"login": "filer"})).await;
    for (name, data, tag) in [("a.txt", "aGVsbG8=", "alpha"), ("b.txt", "d29ybGQ=", "beta")] {
        let body = json!({"mode": "token", "identity": token, "filename": name, "filedata": data, "tags": [tag]});
        v.call("FileCreate", body).await.ok();
    }
    swap_by_id(v, "files", "id", "name_idx").await;
    for name in ["a.txt", "b.txt"] {
        v.call("FileGet", json!({"mode": "token", "identity": token, "filename": name}))
            .await
            .error(404, "The file record was not found");
    }
    swap_by_id(v, "file_tags", "file_id", "tag_idx").await;
    for tag in ["alpha", "beta"] {
        let listed = v.call("FileListUserFiles", json!({"mode": "token", "identity": token, "tag": tag})).await.ok();
        assert_eq!(listed["files"], json!([]), "{listed}");
    }
    let all = v.call("FileListUserFiles", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(all["files"].as_array().map(Vec::len), Some(2));
});
