//! The retention sweeper erases expired records and audits it without naming anyone.

use bunker::tenants::TenantId;
use serde_json::json;

use crate::both;

both!(sweeper_erases_expired_users_sessions_and_shared_records, |v| {
    let short = v
        .call(
            "UserCreate",
            json!({"profile": {"email": "short-lived@x.io", "name": "Ephemeral Erna"}, "slidingtime": "1h"}),
        )
        .await
        .ok();
    let short_token = short["token"].as_str().expect("token").to_owned();
    v.create_user(json!({"email": "stays@x.io"})).await;
    v.call(
        "AppdataCreate",
        json!({"mode": "email", "identity": "short-lived@x.io", "appname": "shop", "appdata": {"size": "XL-erna"}}),
    )
    .await
    .ok();
    v.call(
        "SessionUpsert",
        json!({"sessionuuid": "5b0f6a52-8d1c-4c39-9a0e-4f5d7c2e1a11", "sessiondata": {"cart": "erna-cart"}}),
    )
    .await
    .ok();
    let before = v.scalar("SELECT COUNT(*) FROM users").await;
    assert_eq!(before, 2);

    // Nothing has expired yet: a sweep erases nothing.
    let erased = bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    assert!(erased.values().all(|e| *e == bunker::store::retention::Erased::default()), "{erased:?}");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM users").await, 2);

    v.clock().advance(2 * 3600);
    let erased = bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    let main = erased.get(&TenantId::MAIN).copied().unwrap_or_default();
    assert_eq!((main.users, main.sessions), (1, 1), "{erased:?}");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM userapps").await, 0);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM sessions").await, 0);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events WHERE operation = 'RetentionSweep'").await, 1);
    v.call("UserGet", json!({"mode": "token", "identity": short_token}))
        .await
        .error(404, "The user record was not found");
    v.call("UserGet", json!({"mode": "email", "identity": "stays@x.io"})).await.ok();
    let dump = v.dump().await;
    for value in ["short-lived@x.io", "Ephemeral Erna", "XL-erna", "erna-cart", short_token.as_str()] {
        assert!(!dump.windows(value.len()).any(|w| w == value.as_bytes()), "{value} remains at rest");
    }
});

/// On PostgreSQL one replica sweeps at a time: while another session holds the lock, a sweep
/// does nothing and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_sweep_lock_makes_other_replicas_skip_on_postgresql() {
    let v = crate::common::TestVault::new(crate::common::Backend::Postgres).await;
    let outcome = async {
        let bunker::store::Db::Postgres(pool) = v.db() else { unreachable!("postgres vault") };
        let mut other = pool.acquire().await.expect("connection");
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(0x6275_6e6b_6572_0001_i64)
            .execute(&mut *other)
            .await
            .expect("lock");
        let skipped = bunker::retention::sweep_once(&v.state).await.expect("sweep");
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(0x6275_6e6b_6572_0001_i64)
            .execute(&mut *other)
            .await
            .expect("unlock");
        drop(other);
        let swept = bunker::retention::sweep_once(&v.state).await.expect("sweep");
        (skipped.is_none(), swept.is_some())
    }
    .await;
    v.cleanup().await;
    assert_eq!(outcome, (true, true));
}
