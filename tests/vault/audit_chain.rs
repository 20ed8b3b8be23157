//! The audit chain: `AuditVerify` names any edit of the trail, and an erased user leaves no event
//! linked to it (issue 15, items 5 and 10).

use serde_json::{Value, json};
use sqlx::Row;

use crate::both;
use crate::common::TestVault;
use bunker::store::Db;

/// One bytes column of one row.
async fn blob(v: &TestVault, sql: &str) -> Vec<u8> {
    match v.db() {
        Db::Sqlite(pool) => sqlx::query(sql).fetch_one(pool).await.and_then(|r| r.try_get(0)),
        Db::Postgres(pool) => sqlx::query(sql).fetch_one(pool).await.and_then(|r| r.try_get(0)),
    }
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

/// One text column of one row.
async fn text(v: &TestVault, sql: &str) -> String {
    match v.db() {
        Db::Sqlite(pool) => sqlx::query(sql).fetch_one(pool).await.and_then(|r| r.try_get(0)),
        Db::Postgres(pool) => sqlx::query(sql).fetch_one(pool).await.and_then(|r| r.try_get(0)),
    }
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

/// The condition that selects the event at chain position `seq` (from the links, migration 0031).
fn at(seq: i64) -> String {
    format!("id = (SELECT event_id FROM audit_links WHERE chain_seq = {seq})")
}

async fn verify(v: &TestVault, body: Value) -> Value {
    v.call("AuditVerify", body).await.ok()
}

#[track_caller]
fn assert_intact(answer: &Value) {
    assert_eq!(answer["intact"], true, "{answer}");
    assert!(answer.get("broken").is_none(), "{answer}");
    assert_eq!(answer["verified"], answer["head"]["seq"], "{answer}");
}

#[track_caller]
fn assert_broken(answer: &Value, seq: i64, reason: &str) {
    assert_eq!(answer["intact"], false, "{answer}");
    assert_eq!(answer["broken"]["seq"], seq, "{answer}");
    assert_eq!(answer["broken"]["reason"], reason, "{answer}");
    assert_eq!(answer["verified"], seq - 1, "the walk stops at the break: {answer}");
}

/// Asserts that `needle` occurs in the dump neither raw nor hex-encoded (as `pg_dump` prints it).
#[track_caller]
fn assert_bytes_absent(dump: &[u8], needle: &[u8], what: &str) {
    for form in [needle.to_vec(), hex::encode(needle).into_bytes()] {
        assert!(!dump.windows(form.len()).any(|w| w == form.as_slice()), "{what} is still stored");
    }
}

async fn some_traffic(v: &TestVault, users: usize) -> Vec<String> {
    let mut tokens = Vec::new();
    for i in 0..users {
        let token = v.create_user(json!({"email": format!("chain{i}@example.com"), "name": "Chain"})).await;
        v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
        tokens.push(token);
    }
    tokens
}

both!(an_intact_trail_verifies_and_every_kind_of_edit_is_named, |v| {
    some_traffic(v, 4).await;
    let first = verify(v, json!({})).await;
    assert_intact(&first);
    assert!(first["verified"].as_i64() >= Some(8), "{first}");
    assert_eq!(first["pending"], 0, "{first}");
    // The verification's own event is chained by the next call.
    let again = verify(v, json!({})).await;
    assert_intact(&again);
    assert_eq!(again["verified"].as_i64(), first["verified"].as_i64().map(|n| n + 1), "{again}");

    // A changed column.
    let third = text(v, &format!("SELECT uuid FROM audit_events WHERE {}", at(3))).await;
    v.exec(&format!("UPDATE audit_events SET http_status = http_status + 1 WHERE {}", at(3))).await;
    let answer = verify(v, json!({})).await;
    assert_broken(&answer, 3, "altered");
    assert_eq!(answer["broken"]["auditeventuuid"], third.as_str());
    v.exec(&format!("UPDATE audit_events SET http_status = http_status - 1 WHERE {}", at(3))).await;
    assert_intact(&verify(v, json!({})).await);

    // A changed payload (the sealed details) is named as well.
    v.exec(&format!("UPDATE audit_events SET created_ms = created_ms + 1 WHERE {}", at(5))).await;
    assert_broken(&verify(v, json!({})).await, 5, "altered");
    v.exec(&format!("UPDATE audit_events SET created_ms = created_ms - 1 WHERE {}", at(5))).await;

    // Two events swapped, with their links or without them.
    let swap_positions = [
        "UPDATE audit_links SET chain_seq = -1 WHERE chain_seq = 4",
        "UPDATE audit_links SET chain_seq = 4 WHERE chain_seq = 5",
        "UPDATE audit_links SET chain_seq = 5 WHERE chain_seq = -1",
    ];
    for sql in swap_positions {
        v.exec(sql).await;
    }
    assert_broken(&verify(v, json!({})).await, 4, "altered");
    for sql in swap_positions {
        v.exec(sql).await;
    }
    assert_intact(&verify(v, json!({})).await);
    // The links keep their places and the events change theirs.
    let fourth = v.scalar("SELECT event_id FROM audit_links WHERE chain_seq = 4").await;
    let sixth = v.scalar("SELECT event_id FROM audit_links WHERE chain_seq = 6").await;
    let swap_events = |first: i64, second: i64| {
        [
            "UPDATE audit_links SET event_id = -1 WHERE chain_seq = 4".to_owned(),
            format!("UPDATE audit_links SET event_id = {first} WHERE chain_seq = 6"),
            format!("UPDATE audit_links SET event_id = {second} WHERE chain_seq = 4"),
        ]
    };
    for sql in swap_events(fourth, sixth) {
        v.exec(&sql).await;
    }
    assert_broken(&verify(v, json!({})).await, 4, "altered");
    for sql in swap_events(sixth, fourth) {
        v.exec(&sql).await;
    }

    // A range, then an anchor recorded outside the vault.
    let whole = verify(v, json!({})).await;
    assert_intact(&whole);
    let ranged = verify(v, json!({"fromseq": 2, "limit": 3})).await;
    assert_eq!(ranged["intact"], true, "{ranged}");
    assert_eq!(ranged["verified"], 3, "{ranged}");
    assert_eq!(ranged["nextseq"], 5, "{ranged}");
    let anchor = whole["head"].clone();
    let anchored = verify(v, json!({"anchorseq": anchor["seq"], "anchorhead": anchor["digest"]})).await;
    assert_intact(&anchored);
    let wrong = verify(v, json!({"anchorseq": anchor["seq"], "anchorhead": "00".repeat(32)})).await;
    assert_eq!(wrong["broken"]["reason"], "anchor", "{wrong}");

    // A link taken away from its position, then a removed event.
    v.exec("UPDATE audit_links SET chain_seq = -3 WHERE chain_seq = 3").await;
    let answer = verify(v, json!({})).await;
    assert_broken(&answer, 3, "missing");
    assert!(answer["broken"].get("auditeventuuid").is_none(), "{answer}");
    v.exec("UPDATE audit_links SET chain_seq = 3 WHERE chain_seq = -3").await;
    assert_intact(&verify(v, json!({})).await);
    v.exec(&format!("DELETE FROM audit_events WHERE {}", at(2))).await;
    let answer = verify(v, json!({})).await;
    assert_broken(&answer, 2, "missing");
    assert!(answer["broken"].get("auditeventuuid").is_none(), "{answer}");

    // Bad parameters.
    v.call("AuditVerify", json!({"fromseq": 0})).await.error(400, "fromseq must be 1 or more");
    v.call("AuditVerify", json!({"limit": 1_000_001})).await.error(400, "limit must be between 1 and 1000000");
    v.call("AuditVerify", json!({"anchorseq": 3})).await.error(400, "anchorseq and anchorhead go together");
    v.call("AuditVerify", json!({"anchorseq": 3, "anchorhead": "zz"}))
        .await
        .error(400, "anchorhead must be hexadecimal");
});

both!(cutting_the_chain_back_is_seen_at_the_head_or_by_an_anchor, |v| {
    some_traffic(v, 2).await;
    let before = verify(v, json!({})).await;
    assert_intact(&before);
    let top = before["head"]["seq"].as_i64().expect("seq");
    // The newest chained event removed: the stored head names a position nobody holds.
    v.exec(&format!("DELETE FROM audit_events WHERE {}", at(top))).await;
    let answer = verify(v, json!({})).await;
    assert_eq!(answer["intact"], false, "{answer}");
    assert_eq!(answer["broken"]["seq"], top, "{answer}");
    assert_eq!(answer["broken"]["reason"], "missing", "{answer}");
    // Cut back cleanly, head and all: only an anchor kept outside the vault tells.
    v.exec(&format!(
        "DELETE FROM audit_events WHERE id IN (SELECT event_id FROM audit_links WHERE chain_seq >= {top}) \
         OR id IN (SELECT event_id FROM audit_unchained)"
    ))
    .await;
    v.exec(&format!("DELETE FROM audit_links WHERE chain_seq >= {top}")).await;
    v.exec("DELETE FROM audit_unchained").await;
    let link = blob(v, &format!("SELECT chain_mac FROM audit_links WHERE chain_seq = {}", top - 1)).await;
    v.exec(&format!(
        "UPDATE audit_chain SET seq = {}, head = (SELECT chain_mac FROM audit_links WHERE chain_seq = {})",
        top - 1,
        top - 1
    ))
    .await;
    assert_eq!(link.len(), 32);
    assert_intact(&verify(v, json!({})).await);
    let anchored = verify(v, json!({"anchorseq": top, "anchorhead": before["head"]["digest"]})).await;
    assert_eq!(anchored["broken"]["reason"], "anchor", "{anchored}");
    assert_eq!(anchored["intact"], false, "{anchored}");
});

both!(an_erased_user_leaves_no_linked_event_and_links_cannot_be_cut_otherwise, |v| {
    let tokens = some_traffic(v, 2).await;
    let (gone, kept) = (&tokens[0], &tokens[1]);
    v.call("UserUpdate", json!({"mode": "token", "identity": gone, "profile": {"name": "Before"}})).await.ok();
    let listed = v.call("AuditListUserEvents", json!({"mode": "token", "identity": gone})).await.ok();
    let update = listed["rows"][0]["auditeventuuid"].as_str().expect("uuid").to_owned();
    let rid = blob(v, &format!("SELECT subject_rid FROM audit_events WHERE uuid = '{update}'")).await;
    let user_ref = blob(v, &format!("SELECT user_ref FROM audit_events WHERE uuid = '{update}'")).await;
    assert_intact(&verify(v, json!({})).await);
    // An event after the chain passed, still pending when the user goes.
    v.call("UserGet", json!({"mode": "token", "identity": gone})).await.ok();

    v.call("UserDelete", json!({"mode": "token", "identity": gone})).await.ok();
    let dump = v.dump().await;
    assert_bytes_absent(&dump, &rid, "the erased user's record id");
    assert_bytes_absent(&dump, &user_ref, "the erased user's token index");
    let event = v.call("AuditGetEvent", json!({"auditeventuuid": update})).await.ok();
    assert_eq!(event["erased"], true, "{event}");
    assert_eq!(event["details"], Value::Null, "{event}");
    assert_intact(&verify(v, json!({})).await);

    // The other user's trail is whole; cutting one of its links is named.
    let listed = v.call("AuditListUserEvents", json!({"mode": "token", "identity": kept})).await.ok();
    assert_eq!(listed["total"], 2, "{listed}");
    let theirs = listed["rows"][0]["auditeventuuid"].as_str().expect("uuid").to_owned();
    let seq = v
        .scalar(&format!(
            "SELECT l.chain_seq FROM audit_links l JOIN audit_events a ON a.id = l.event_id WHERE a.uuid = '{theirs}'"
        ))
        .await;
    v.exec(&format!("UPDATE audit_events SET user_ref = NULL, subject_rid = NULL WHERE uuid = '{theirs}'")).await;
    let answer = verify(v, json!({})).await;
    assert_broken(&answer, seq, "detached");
    assert_eq!(answer["broken"]["auditeventuuid"], theirs.as_str());
    // Copying an erased event's tag does not help either.
    v.exec(&format!(
        "UPDATE audit_events SET link_mac = (SELECT link_mac FROM audit_events WHERE uuid = '{update}') \
             WHERE uuid = '{theirs}'"
    ))
    .await;
    assert_broken(&verify(v, json!({})).await, seq, "detached");
});

both!(events_committed_after_their_user_was_erased_lose_their_links_when_chained, |v| {
    let token = v.create_user(json!({"email": "late@example.com"})).await;
    v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    let rid = blob(v, "SELECT subject_rid FROM audit_events WHERE operation = 'UserGet'").await;
    let user_ref = blob(v, "SELECT user_ref FROM audit_events WHERE operation = 'UserGet'").await;
    // The user's row goes while its events wait for the chain (as when an event commits just
    // after a concurrent UserDelete).
    v.exec("DELETE FROM users").await;
    assert_intact(&verify(v, json!({})).await);
    let dump = v.dump().await;
    assert_bytes_absent(&dump, &rid, "the erased user's record id");
    assert_bytes_absent(&dump, &user_ref, "the erased user's token index");
});

both!(users_erased_by_the_retention_sweeper_leave_no_linked_event_either, |v| {
    let short =
        v.call("UserCreate", json!({"profile": {"email": "brief@example.com"}, "slidingtime": "1h"})).await.ok();
    let token = short["token"].as_str().expect("token").to_owned();
    v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert_intact(&verify(v, json!({})).await);
    let rid = blob(v, "SELECT subject_rid FROM audit_events WHERE operation = 'UserGet'").await;
    let user_ref = blob(v, "SELECT user_ref FROM audit_events WHERE operation = 'UserGet'").await;

    v.clock().advance(2 * 3600);
    let erased = bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    assert_eq!(erased.get(&bunker::tenants::TenantId::MAIN).map(|e| e.users), Some(1), "{erased:?}");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events WHERE subject_rid IS NOT NULL").await, 0);
    assert_intact(&verify(v, json!({})).await);
    let dump = v.dump().await;
    assert_bytes_absent(&dump, &rid, "the expired user's record id");
    assert_bytes_absent(&dump, &user_ref, "the expired user's token index");
});

both!(each_event_is_queued_once_chained_once_and_a_removed_one_does_not_hold_up_the_queue, |v| {
    some_traffic(v, 2).await;
    let events = v.scalar("SELECT COUNT(*) FROM audit_events WHERE tenant_id = 1").await;
    let queued = v.scalar("SELECT COUNT(*) FROM audit_unchained WHERE tenant_id = 1").await;
    assert!(events >= 4, "{events} events");
    assert_eq!(queued, events, "every event waits for the chain");
    // The oldest waiting event removed by hand: the rest are chained past it.
    v.exec("DELETE FROM audit_events WHERE id = (SELECT MIN(event_id) FROM audit_unchained)").await;
    let answer = verify(v, json!({})).await;
    assert_intact(&answer);
    assert_eq!(answer["verified"], events - 1, "{answer}");
    assert_eq!(answer["pending"], 0, "{answer}");
    // Only the verification's own event waits now; every other holds one position.
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_unchained WHERE tenant_id = 1").await, 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_links WHERE tenant_id = 1").await, events - 1);
    let unlinked = "SELECT COUNT(*) FROM audit_events a WHERE tenant_id = 1 \
         AND NOT EXISTS (SELECT 1 FROM audit_links l WHERE l.tenant_id = 1 AND l.event_id = a.id)";
    assert_eq!(v.scalar(unlinked).await, 1, "the verification's event");
    let again = verify(v, json!({})).await;
    assert_intact(&again);
    assert_eq!(again["verified"], events, "{again}");
});
