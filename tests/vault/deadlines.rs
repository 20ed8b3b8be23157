//! A request cut at its deadline: answered 503 "Request timed out", its change rolled back,
//! and its audit event says 503 (the router's own timeout used to drop the request, event and
//! all).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bunker::state::Settings;
use bunker::store::Db;
use serde_json::json;
use sqlx::Executor;

use crate::both;

/// A write lock held by the test, released on rollback.
enum Holder {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

fn two_second_requests(_: &std::path::Path) -> Settings {
    Settings { request_timeout: Duration::from_secs(2), ..Settings::default() }
}

both!(a_request_cut_at_its_deadline_is_recorded_as_503, settings = two_second_requests, |v| {
    let token = v.create_user(json!({"login": "held", "name": "Before"})).await;
    // Another writer holds the user (PostgreSQL: its row; SQLite: the write lock) past the deadline.
    let holder = match v.db() {
        Db::Postgres(pool) => {
            let mut tx = pool.begin().await.expect("begin");
            tx.execute("SELECT rid FROM users FOR UPDATE").await.expect("lock");
            Holder::Postgres(tx)
        }
        Db::Sqlite(pool) => Holder::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await.expect("lock")),
    };
    let started = Instant::now();
    let answer = v.call("UserUpdate", json!({"mode": "token", "identity": token, "profile": {"name": "After"}})).await;
    let took = started.elapsed();
    answer.error(503, "Request timed out");
    assert!(took < Duration::from_secs(2), "answered after {took:?}: the router's timeout, not the cut");
    match holder {
        Holder::Postgres(tx) => tx.rollback().await.expect("release"),
        Holder::Sqlite(tx) => tx.rollback().await.expect("release"),
    }

    let user = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(user["profile"]["name"], "Before", "the timed-out change was applied");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let page = v.call("AuditListUserEvents", json!({"mode": "token", "identity": token, "limit": 100})).await.ok();
        let rows = page["rows"].as_array().expect("rows");
        if rows.iter().any(|row| row["title"] == "UserUpdate" && row["httpstatus"] == 503 && row["result"] == "error") {
            assert!(!rows.iter().any(|row| row["title"] == "UserUpdate" && row["httpstatus"] == 200), "{page}");
            break;
        }
        assert!(Instant::now() < deadline, "no 503 event for the timed-out UserUpdate: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(v.get_text("/status").await.0, StatusCode::OK);
});
