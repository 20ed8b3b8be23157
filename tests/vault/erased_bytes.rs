//! Erasure reaches the files: after UserDelete a user's wrapped data key is in neither the
//! SQLite database file nor its write-ahead log (secure_delete and a checkpoint), nor in the
//! PostgreSQL dump.

use std::time::{Duration, Instant};

use bunker::store::Db;
use serde_json::json;
use sqlx::Row;

use crate::both;
use crate::common::{Storage, TestVault};

/// The wrapped data keys of every user, in record order.
async fn wrapped_keys(v: &TestVault) -> Vec<Vec<u8>> {
    let sql = "SELECT wrapped_key FROM users ORDER BY rid";
    match v.db() {
        Db::Sqlite(pool) => sqlx::query(sql).fetch_all(pool).await.expect("keys"),
        Db::Postgres(pool) => {
            let rows = sqlx::query(sql).fetch_all(pool).await.expect("keys");
            return rows.iter().map(|row| row.try_get(0).expect("key")).collect();
        }
    }
    .iter()
    .map(|row| row.try_get(0).expect("key"))
    .collect()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of the database file and of its write-ahead log (empty when there is none).
fn sqlite_files(path: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    (std::fs::read(path).expect("database file"), std::fs::read(wal).unwrap_or_default())
}

/// Waits (the checkpoint runs in the background) until `key` is in neither file, or fails.
async fn assert_gone_from_files(path: &std::path::Path, key: &[u8]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (db, wal) = sqlite_files(path);
        if !contains(&db, key) && !contains(&wal, key) {
            return;
        }
        assert!(Instant::now() < deadline, "the erased key is still in the database file or its log");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both!(a_deleted_users_wrapped_key_leaves_the_files, |v| {
    for n in 0..3 {
        v.create_user(json!({"login": format!("user{n}"), "name": "x".repeat(300)})).await;
    }
    let keys = wrapped_keys(v).await;
    assert_eq!(keys.len(), 3);
    // Before: the keys are stored (the check below can fail).
    match &v.storage {
        Storage::Sqlite { path, .. } => {
            let (db, wal) = sqlite_files(path);
            assert!(keys.iter().all(|key| contains(&db, key) || contains(&wal, key)));
        }
        Storage::Postgres { .. } => {
            let dump = v.dump().await;
            assert!(keys.iter().all(|key| contains(&dump, hex::encode(key).as_bytes())));
        }
    }
    v.call("UserDelete", json!({"mode": "login", "identity": "user0"})).await.ok();
    v.call("UserDeleteBulk", json!({"users": [{"mode": "login", "identity": "user2"}]})).await.ok();
    match &v.storage {
        Storage::Sqlite { path, .. } => {
            assert_gone_from_files(path, &keys[0]).await;
            assert_gone_from_files(path, &keys[2]).await;
            let (db, wal) = sqlite_files(path);
            assert!(contains(&db, &keys[1]) || contains(&wal, &keys[1]), "the live user's key is kept");
        }
        Storage::Postgres { .. } => {
            let dump = v.dump().await;
            assert!(!contains(&dump, hex::encode(&keys[0]).as_bytes()));
            assert!(!contains(&dump, hex::encode(&keys[2]).as_bytes()));
            assert!(contains(&dump, hex::encode(&keys[1]).as_bytes()));
        }
    }
    assert_eq!(
        v.call("UserGet", json!({"mode": "login", "identity": "user1"})).await.ok()["profile"]["login"],
        "user1"
    );
});

both!(a_swept_users_wrapped_key_leaves_the_files, |v| {
    v.call("UserCreate", json!({"profile": {"login": "brief", "name": "y".repeat(300)}, "finaltime": "1h"})).await.ok();
    v.create_user(json!({"login": "stays"})).await;
    let keys = wrapped_keys(v).await;
    v.clock().advance(2 * 3600);
    bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM users").await, 1);
    match &v.storage {
        Storage::Sqlite { path, .. } => assert_gone_from_files(path, &keys[0]).await,
        Storage::Postgres { .. } => assert!(!contains(&v.dump().await, hex::encode(&keys[0]).as_bytes())),
    }
});
