//! Sessions: upsert, get, delete, listing by user, binding, lifetimes and erasure.

use serde_json::{Value, json};

use crate::both;

const SID: &str = "5d3c1a2b-7e8f-4a9b-8c0d-1e2f3a4b5c6d";
const SID2: &str = "0a1b2c3d-4e5f-4a6b-9c8d-7e6f5a4b3c2d";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

both!(unbound_session_round_trips_with_a_capped_lifetime, |v| {
    // The JAVA client's test: data without identity keys, finaltime 24h against the 1h maximum.
    let data = json!({"ip": "10.0.0.1", "agent": "Mozilla/5.0", "nested": {"n": [1, 2]}});
    let now = v.clock().now();
    let body = v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": data, "finaltime": "24h"})).await.ok();
    let expires = body["expirationtime"].as_i64().expect("expirationtime");
    assert!((now + 3_600..=now + 3_605).contains(&expires), "capped at 1h: {expires} vs now {now}");
    let body = v.call("SessionGet", json!({"sessionuuid": SID})).await.ok();
    assert_eq!(body["sessiondata"], data);
    assert!(body.get("token").is_none(), "an unbound session has no token: {body}");
    // The uuid is matched whatever its case.
    let body = v.call("SessionGet", json!({"sessionuuid": SID.to_uppercase()})).await.ok();
    assert_eq!(body["sessiondata"], data);
    v.clock().advance(3_601);
    v.call("SessionGet", json!({"sessionuuid": SID})).await.error(404, "The session record was not found");
});

both!(bound_session_is_listed_under_its_user, |v| {
    let token = v.create_user(json!({"login": "bob", "email": "Bob@X.io"})).await;
    let other = v.create_user(json!({"login": "carol"})).await;
    let data = json!({"email": "  bob@x.IO", "cart": 3});
    v.call("SessionUpsert", json!({"sessionuuid": SID.to_uppercase(), "sessiondata": data})).await.ok();
    v.call("SessionUpsert", json!({"sessionuuid": SID2, "sessiondata": {"token": token, "step": 2}})).await.ok();
    let body = v.call("SessionGet", json!({"sessionuuid": SID})).await.ok();
    assert_eq!(body["token"], token.as_str());
    assert_eq!(body["sessiondata"], data);
    let body = v.call("SessionListUserSessions", json!({"mode": "login", "identity": "bob"})).await.ok();
    let rows = body["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{body}");
    assert!(rows.contains(&json!({"sessionuuid": SID, "sessiondata": data})), "{body}");
    assert!(rows.contains(&json!({"sessionuuid": SID2, "sessiondata": {"token": token, "step": 2}})), "{body}");
    let body = v.call("SessionListUserSessions", json!({"mode": "token", "identity": other})).await.ok();
    assert_eq!(body["rows"], json!([]));
    // The listing is a user read: it is audited under the user.
    let events = v.call("AuditListUserEvents", json!({"mode": "login", "identity": "bob"})).await.ok();
    let titles: Vec<&Value> = events["rows"].as_array().expect("rows").iter().map(|e| &e["title"]).collect();
    assert!(titles.contains(&&json!("SessionUpsert")) && titles.contains(&&json!("SessionListUserSessions")));
});

both!(upsert_replaces_data_lifetime_and_binding, |v| {
    let alice = v.create_user(json!({"login": "alice"})).await;
    let bob = v.create_user(json!({"phone": "44 20 7946 0000"})).await;
    v.call(
        "SessionUpsert",
        json!({"sessionuuid": SID, "sessiondata": {"login": "alice", "v": 1}, "finaltime": "10min"}),
    )
    .await
    .ok();
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {"v": 2}, "finaltime": "1h"})).await.ok();
    let body = v.call("SessionGet", json!({"sessionuuid": SID})).await.ok();
    assert_eq!(body["sessiondata"], json!({"v": 2}));
    assert!(body.get("token").is_none(), "{body}");
    let body = v.call("SessionListUserSessions", json!({"mode": "token", "identity": alice})).await.ok();
    assert_eq!(body["rows"], json!([]));
    // The new lifetime holds: the first one (10 minutes) no longer applies.
    v.clock().advance(1_200);
    v.call("SessionGet", json!({"sessionuuid": SID})).await.ok();
    // Re-bound to another user by a number-valued phone that normalises to the same index.
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {"phone": 442079460000_i64, "v": 3}})).await.ok();
    let body = v.call("SessionGet", json!({"sessionuuid": SID})).await.ok();
    assert_eq!(body["token"], bob.as_str());
    let body = v.call("SessionListUserSessions", json!({"mode": "token", "identity": bob})).await.ok();
    assert_eq!(body["rows"], json!([{"sessionuuid": SID, "sessiondata": {"phone": 442079460000_i64, "v": 3}}]));
    assert_eq!(v.scalar("SELECT COUNT(*) FROM sessions").await, 1);
});

both!(sliding_sessions_extend_on_read_and_every_session_expires, |v| {
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {"a": 1}, "slidingtime": "30min"})).await.ok();
    v.call("SessionUpsert", json!({"sessionuuid": SID2, "sessiondata": {"b": 2}})).await.ok();
    for _ in 0..3 {
        v.clock().advance(1_500);
        v.call("SessionGet", json!({"sessionuuid": SID})).await.ok();
    }
    // 75 minutes on: the sliding session lives on, the one without a lifetime got the 1h maximum.
    v.call("SessionGet", json!({"sessionuuid": SID2})).await.error(404, "The session record was not found");
    v.clock().advance(1_801);
    v.call("SessionGet", json!({"sessionuuid": SID})).await.error(404, "The session record was not found");
    // An expired session cannot be deleted either, and the next upsert purges expired rows.
    v.call("SessionDelete", json!({"sessionuuid": SID})).await.error(404, "The session record was not found");
    let third = "11111111-2222-4333-8444-555555555555";
    v.call("SessionUpsert", json!({"sessionuuid": third, "sessiondata": {}})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM sessions").await, 1);
});

both!(delete_removes_the_session, |v| {
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {"x": 1}})).await.ok();
    v.call("SessionUpsert", json!({"sessionuuid": SID2, "sessiondata": {"y": 1}})).await.ok();
    v.call("SessionDelete", json!({"sessionuuid": SID})).await.ok();
    v.call("SessionGet", json!({"sessionuuid": SID})).await.error(404, "The session record was not found");
    v.call("SessionDelete", json!({"sessionuuid": SID})).await.error(404, "The session record was not found");
    v.call("SessionGet", json!({"sessionuuid": SID2})).await.ok();
});

both!(bad_input_is_refused, |v| {
    for op in ["SessionGet", "SessionDelete"] {
        v.call(op, json!({"sessionuuid": "not-a-uuid"})).await.error(400, "Bad UUID");
        v.call(op, json!({})).await.error(400, "Missing API request parameters: sessionuuid");
    }
    v.call("SessionUpsert", json!({"sessionuuid": "123", "sessiondata": {}})).await.error(400, "Bad UUID");
    v.call("SessionUpsert", json!({})).await.error(400, "Missing API request parameters: sessionuuid, sessiondata");
    v.call("SessionUpsert", json!({"sessiondata": {}})).await.error(400, "Missing API request parameters: sessionuuid");
    v.call("SessionUpsert", json!({"sessionuuid": SID}))
        .await
        .error(400, "Missing API request parameters: sessiondata");
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": "secret-value"}))
        .await
        .error(400, "The sessiondata parameter has an incorrect format");
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {}, "slidingtime": "soon"}))
        .await
        .error(400, "The slidingtime parameter has an incorrect format");
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {}, "finaltime": [1]}))
        .await
        .error(400, "The finaltime parameter has an incorrect format");
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {}, "finaltime": "2001-01-01"}))
        .await
        .error(400, "The finaltime parameter is in the past");
    v.call("SessionGet", json!({"sessionuuid": SID})).await.error(404, "The session record was not found");
    v.call("SessionListUserSessions", json!({"mode": "email", "identity": "nobody@x.io"}))
        .await
        .error(404, "The user record was not found");
    v.call("SessionListUserSessions", json!({"mode": "shoe", "identity": "x"}))
        .await
        .error(400, "The mode parameter has an incorrect format");
});

both!(session_operations_need_a_token, |v| {
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {"a": 1}})).await.ok();
    for (op, body) in [
        ("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {"a": 2}})),
        ("SessionGet", json!({"sessionuuid": SID})),
        ("SessionDelete", json!({"sessionuuid": SID})),
        ("SessionListUserSessions", json!({"mode": "login", "identity": "x"})),
    ] {
        v.call_as(op, None, None, body.clone()).await.error(403, "Access denied");
        v.call_as(op, Some("00000000-0000-0000-0000-000000000000"), None, body).await.error(403, "Access denied");
    }
    let body = v.call("SessionGet", json!({"sessionuuid": SID})).await.ok();
    assert_eq!(body["sessiondata"], json!({"a": 1}));
});

both!(sessions_are_sealed_and_erased_with_their_user, |v| {
    let token = v.create_user(json!({"email": "erin@x.io"})).await;
    let secret = "zebra-session-7781";
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {"email": "erin@x.io", "note": secret}}))
        .await
        .ok();
    v.call("SessionUpsert", json!({"sessionuuid": SID2, "sessiondata": {"note": "standalone-okapi"}})).await.ok();
    // At rest: neither the data nor the caller's uuids are in clear.
    let dump = v.dump().await;
    assert!(contains(&dump, b"SessionUpsert"), "the dump holds the audit rows");
    for needle in [secret, "standalone-okapi", SID, SID2, &SID.replace('-', "")] {
        assert!(!contains(&dump, needle.as_bytes()), "{needle} is stored in clear");
    }
    v.call("UserDelete", json!({"mode": "token", "identity": token})).await.ok();
    v.call("SessionGet", json!({"sessionuuid": SID})).await.error(404, "The session record was not found");
    v.call("SessionGet", json!({"sessionuuid": SID2})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM sessions").await, 1);
    assert!(!contains(&v.dump().await, secret.as_bytes()));
});

const SID3: &str = "9f8e7d6c-5b4a-4c3d-8e2f-1a0b9c8d7e6f";

both!(sessions_stored_before_their_user_existed_are_erased_with_it, |v| {
    // Stored while no user has these identities: unbound.
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {"email": "Late@X.io", "cart": 1}})).await.ok();
    v.call("SessionUpsert", json!({"sessionuuid": SID2, "sessiondata": {"login": "later", "cart": 2}})).await.ok();
    v.call("SessionUpsert", json!({"sessionuuid": SID3, "sessiondata": {"email": "other@x.io"}})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM sessions WHERE user_rid IS NULL").await, 3);
    v.create_user(json!({"email": "late@x.io", "name": "Late"})).await;
    v.create_user(json!({"login": "later"})).await;
    v.call("UserDelete", json!({"mode": "email", "identity": "late@x.io"})).await.ok();
    v.call("SessionGet", json!({"sessionuuid": SID})).await.error(404, "The session record was not found");
    assert_eq!(v.call("SessionGet", json!({"sessionuuid": SID2})).await.ok()["sessiondata"]["cart"], 2);
    v.call("UserDeleteBulk", json!({"users": [{"mode": "login", "identity": "later"}]})).await.ok();
    v.call("SessionGet", json!({"sessionuuid": SID2})).await.error(404, "The session record was not found");
    // A session naming someone else stays, and no name index outlives its session.
    assert_eq!(v.call("SessionGet", json!({"sessionuuid": SID3})).await.ok()["sessiondata"]["email"], "other@x.io");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM sessions").await, 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM session_names").await, 1);
    // Rebinding a session to a user that exists drops its names (it goes with the user).
    v.create_user(json!({"email": "other@x.io"})).await;
    v.call("SessionUpsert", json!({"sessionuuid": SID3, "sessiondata": {"email": "other@x.io"}})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM session_names").await, 0);
});
