//! The audit API: listing a user's events, reading one event, erasure, and sealing at rest.

use serde_json::{Value, json};

use crate::both;
use crate::bulk::{Bind, execute, explain};
use crate::common::TestVault;
use bunker::store::Db;

/// One page of a user's events (as root).
async fn events(v: &TestVault, token: &str, page: Value) -> Value {
    let mut body = json!({"mode": "token", "identity": token});
    if let (Some(body), Some(page)) = (body.as_object_mut(), page.as_object()) {
        body.extend(page.clone());
    }
    v.call("AuditListUserEvents", body).await.ok()
}

/// The rows of a listing.
fn rows(body: &Value) -> &Vec<Value> {
    body["rows"].as_array().unwrap_or_else(|| panic!("rows: {body}"))
}

/// A field of every row.
fn column(body: &Value, key: &str) -> Vec<Value> {
    rows(body).iter().map(|row| row[key].clone()).collect()
}

/// The event listed at `index` (0 = newest) for a user, read with AuditGetEvent.
async fn event_at(v: &TestVault, token: &str, index: usize) -> Value {
    let list = events(v, token, json!({"limit": 100})).await;
    let uuid = rows(&list)[index]["auditeventuuid"].as_str().expect("uuid").to_owned();
    v.call("AuditGetEvent", json!({"auditeventuuid": uuid})).await.ok()
}

both!(user_events_are_listed_newest_first, |v| {
    let start = v.clock().now();
    let token = v.create_user(json!({"email": "ev@x.io", "name": "A"})).await;
    let other = v.create_user(json!({"email": "other@x.io"})).await;
    let steps: Vec<(&str, Value)> = vec![
        ("UserGet", json!({"mode": "email", "identity": "ev@x.io"})),
        ("UserUpdate", json!({"mode": "token", "identity": token, "profile": {"name": "B"}})),
        ("UserPatch", json!({"mode": "token", "identity": token, "patch": [{"op": "add", "path": "/n", "value": 1}]})),
        ("UserListVersions", json!({"mode": "token", "identity": token})),
    ];
    for (op, body) in steps {
        // Distinct seconds, so that the order is visible in `when` too.
        v.clock().advance(2);
        v.call(op, body).await.ok();
    }
    v.clock().advance(2);
    v.call("UserGet", json!({"mode": "token", "identity": token, "version": 9}))
        .await
        .error(404, "The user version was not found");
    // Events of another user are not listed.
    v.call("UserGet", json!({"mode": "token", "identity": other})).await.ok();
    let end = v.clock().now();

    let body = events(v, &token, json!({})).await;
    assert_eq!(body["total"], 6, "{body}");
    assert_eq!(
        column(&body, "title"),
        ["UserGet", "UserListVersions", "UserPatch", "UserUpdate", "UserGet", "UserCreate"].map(Value::from),
    );
    assert_eq!(column(&body, "eventtype"), ["read", "read", "update", "update", "read", "create"].map(Value::from));
    assert_eq!(column(&body, "result"), ["error", "ok", "ok", "ok", "ok", "ok"].map(Value::from));
    let mut uuids = std::collections::HashSet::new();
    let mut previous = i64::MAX;
    for row in rows(&body) {
        let uuid = row["auditeventuuid"].as_str().unwrap_or_else(|| panic!("uuid: {row}"));
        assert!(bunker::crypto::secrets::is_uuid_shaped(uuid), "{row}");
        assert!(uuids.insert(uuid.to_owned()), "duplicate uuid: {body}");
        let when = row["when"].as_i64().unwrap_or_else(|| panic!("integer when: {row}"));
        assert!(row["when"].is_i64(), "{row}");
        assert!((start..=end).contains(&when), "{when} not in {start}..={end}");
        assert!(when < previous, "not newest first: {body}");
        previous = when;
        let timestamp = row["timestamp"].as_str().unwrap_or_else(|| panic!("timestamp string: {row}"));
        let parsed = chrono::DateTime::parse_from_rfc3339(timestamp).unwrap_or_else(|_| panic!("RFC 3339: {row}"));
        assert_eq!(parsed.timestamp(), when, "{row}");
    }
    assert_eq!(rows(&body)[0]["httpstatus"], 404);
    // The other user has its own events only: create, get.
    let body = events(v, &other, json!({})).await;
    assert_eq!(column(&body, "title"), ["UserGet", "UserCreate"].map(Value::from));
    assert_eq!(body["total"], 2);
    // Any identity mode addresses the same events.
    let by_email = v.call("AuditListUserEvents", json!({"mode": "email", "identity": "ev@x.io"})).await.ok();
    assert_eq!(by_email["total"], 7, "{by_email}");
});

both!(listing_pages_with_offset_and_limit, |v| {
    let token = v.create_user(json!({"login": "pager"})).await;
    for _ in 0..4 {
        v.call("UserGet", json!({"mode": "login", "identity": "pager"})).await.ok();
    }
    let all = events(v, &token, json!({"limit": 100})).await;
    assert_eq!(all["total"], 5);
    assert_eq!(rows(&all).len(), 5);
    // Every listing is an event of the user too: the previous listing is now the newest row,
    // so offset 2 lands on what was row 1 of `all`.
    let page = events(v, &token, json!({"offset": 2, "limit": 2})).await;
    assert_eq!(page["total"], 6, "{page}");
    assert_eq!(rows(&page)[..], rows(&all)[1..3]);
    // Numeric strings are accepted.
    let page = events(v, &token, json!({"offset": "2", "limit": "2"})).await;
    assert_eq!(page["total"], 7, "{page}");
    assert_eq!(rows(&page)[..], rows(&all)[..2]);
    // Past the end: an empty array, the total still counted.
    let page = events(v, &token, json!({"offset": 50, "limit": 10})).await;
    assert_eq!(page["rows"], json!([]), "{page}");
    assert_eq!(page["total"], 8);
    // An unknown or unaddressed user has no listing.
    v.call("AuditListUserEvents", json!({"mode": "login", "identity": "nobody"}))
        .await
        .error(404, "The user record was not found");
    v.call("AuditListUserEvents", json!({"limit": 5}))
        .await
        .error(400, "Missing API request parameters: mode, identity");
    // The newest listing sits on top.
    let page = events(v, &token, json!({"limit": 1})).await;
    assert_eq!(column(&page, "title"), [Value::from("AuditListUserEvents")]);
    assert_eq!(page["total"], 9);
});

both!(limits_default_to_10_and_out_of_range_means_100, |v| {
    let token = v.create_user(json!({"login": "many"})).await;
    let calls = (0..110).map(|_| async {
        v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    });
    futures::future::join_all(calls).await;
    // 111 events so far; each listing adds one more.
    for (listing, (page, expected)) in [
        (json!({}), 10),
        (json!({"limit": 0}), 100),
        (json!({"limit": 500}), 100),
        (json!({"limit": -1}), 100),
        (json!({"limit": "0"}), 100),
        (json!({"limit": 100}), 100),
        (json!({"limit": 99}), 99),
        (json!({"limit": 1}), 1),
        (json!({"limit": null}), 10),
        // 120 events by now: offset 110 leaves 10.
        (json!({"offset": 110, "limit": 500}), 10),
    ]
    .into_iter()
    .enumerate()
    {
        let body = events(v, &token, page.clone()).await;
        assert_eq!(body["total"], 111 + listing, "{page}");
        assert_eq!(rows(&body).len(), expected, "{page}");
    }
});

both!(an_event_has_before_after_and_request_metadata, |v| {
    let token = v.create_user(json!({"email": "meta@x.io", "name": "Before", "keep": [1]})).await;
    let metadata = json!({"ticket": "T-42", "agent": {"id": 7, "tags": ["a", "b"]}});
    v.call(
        "UserUpdate",
        json!({"mode": "token", "identity": token, "profile": {"name": "After", "keep": null},
               "request_metadata": metadata}),
    )
    .await
    .ok();
    let event = event_at(v, &token, 0).await;
    assert_eq!(event["title"], "UserUpdate", "{event}");
    assert_eq!(event["eventtype"], "update");
    assert_eq!(event["result"], "ok");
    assert_eq!(event["erased"], false);
    assert!(event["when"].is_i64(), "{event}");
    assert!(event["timestamp"].is_string(), "{event}");
    let details = &event["details"];
    assert_eq!(details["before"], json!({"email": "meta@x.io", "name": "Before", "keep": [1]}), "{event}");
    assert_eq!(details["after"], json!({"email": "meta@x.io", "name": "After"}), "{event}");
    assert_eq!(details["request_metadata"], metadata, "{event}");
    // The create event holds the profile as created, and no metadata (none was sent).
    let event = event_at(v, &token, 2).await;
    assert_eq!(event["title"], "UserCreate", "{event}");
    assert_eq!(event["details"]["after"], json!({"email": "meta@x.io", "name": "Before", "keep": [1]}));
    assert!(event["details"].get("request_metadata").is_none(), "{event}");
    // A patch records both sides too; a read records the metadata sent with it.
    v.call("UserPatch", json!({"mode": "token", "identity": token, "patch": [{"op": "remove", "path": "/name"}]}))
        .await
        .ok();
    v.call("UserGet", json!({"mode": "token", "identity": token, "request_metadata": {"purpose": "support"}}))
        .await
        .ok();
    // Newest first: the read, then the patch.
    let event = event_at(v, &token, 0).await;
    assert_eq!(event["title"], "UserGet", "{event}");
    assert_eq!(event["details"]["request_metadata"], json!({"purpose": "support"}));
    assert!(event["details"].get("before").is_none() && event["details"].get("after").is_none(), "{event}");
    // The listing `event_at` just did is now on top, then the read, then the patch.
    let event = event_at(v, &token, 2).await;
    assert_eq!(event["title"], "UserPatch", "{event}");
    assert_eq!(event["details"]["before"], json!({"email": "meta@x.io", "name": "After"}));
    assert_eq!(event["details"]["after"], json!({"email": "meta@x.io"}));
});

both!(get_event_validates_its_uuid, |v| {
    v.call("AuditGetEvent", json!({})).await.error(400, "Missing API request parameters: auditeventuuid");
    for bad in ["x", "not-a-uuid", "12345678-1234-1234-1234-12345678901", "../../etc/passwd", ""] {
        let answer = v.call("AuditGetEvent", json!({"auditeventuuid": bad})).await;
        if bad.is_empty() {
            // An empty string carries nothing: treated like a missing parameter or a bad UUID.
            assert_eq!(answer.status.as_u16(), 400, "{}", answer.body);
        } else {
            answer.error(400, "Bad UUID");
        }
    }
    v.call("AuditGetEvent", json!({"auditeventuuid": uuid::Uuid::new_v4().to_string()}))
        .await
        .error(404, "The audit event was not found");
    // A real one is found.
    let token = v.create_user(json!({"login": "g"})).await;
    let event = event_at(v, &token, 0).await;
    assert_eq!(event["title"], "UserCreate");
});

both!(deleting_a_user_shreds_its_event_details, |v| {
    let token = v.create_user(json!({"email": "gone@x.io", "name": "G"})).await;
    v.call(
        "UserUpdate",
        json!({"mode": "token", "identity": token, "profile": {"name": "H"},
                                "request_metadata": {"why": "because"}}),
    )
    .await
    .ok();
    let list = events(v, &token, json!({})).await;
    let uuids: Vec<String> =
        rows(&list).iter().map(|row| row["auditeventuuid"].as_str().expect("uuid").to_owned()).collect();
    assert_eq!(uuids.len(), 2);
    let update = v.call("AuditGetEvent", json!({"auditeventuuid": uuids[0]})).await.ok();
    assert_eq!((update["erased"].clone(), update["details"]["after"]["name"].clone()), (json!(false), json!("H")));

    v.call("UserDelete", json!({"mode": "token", "identity": token})).await.ok();
    for uuid in &uuids {
        let event = v.call("AuditGetEvent", json!({"auditeventuuid": uuid})).await.ok();
        assert_eq!(event["erased"], true, "{event}");
        assert_eq!(event["details"], Value::Null, "{event}");
        // The clear facts remain.
        assert_eq!(event["auditeventuuid"], uuid.as_str());
        assert!(event["title"] == "UserUpdate" || event["title"] == "UserCreate", "{event}");
    }
    // The user can no longer be addressed, so neither can its event list.
    v.call("AuditListUserEvents", json!({"mode": "token", "identity": token}))
        .await
        .error(404, "The user record was not found");
    // A new user with the same email is a different subject with no history.
    let again = v.create_user(json!({"email": "gone@x.io"})).await;
    let list = events(v, &again, json!({})).await;
    assert_eq!(list["total"], 1, "{list}");
});

both!(failed_calls_are_audited_as_errors, |v| {
    v.create_user(json!({"email": "taken@x.io"})).await;
    let token = v.create_user(json!({"email": "mine@x.io"})).await;
    v.call(
        "UserUpdate",
        json!({"mode": "token", "identity": token, "profile": {"email": "taken@x.io"},
               "request_metadata": {"attempt": 1}}),
    )
    .await
    .error(409, "Duplicate index: email");
    v.call("UserPatch", json!({"mode": "token", "identity": token, "patch": [{"op": "remove", "path": "/nope"}]}))
        .await
        .error(400, "Failed to apply the patch: operation 0 failed");
    let list = events(v, &token, json!({})).await;
    assert_eq!(list["total"], 3, "{list}");
    assert_eq!(column(&list, "title"), ["UserPatch", "UserUpdate", "UserCreate"].map(Value::from));
    assert_eq!(column(&list, "result"), ["error", "error", "ok"].map(Value::from));
    assert_eq!(column(&list, "httpstatus"), [400, 409, 200].map(Value::from));
    let event = event_at(v, &token, 2).await;
    assert_eq!(event["title"], "UserUpdate", "{event}");
    assert_eq!(event["result"], "error");
    assert_eq!(event["details"]["message"], "Duplicate index: email", "{event}");
    assert_eq!(event["details"]["request_metadata"], json!({"attempt": 1}), "{event}");
    // Nothing changed, so there is no after.
    assert!(event["details"].get("after").is_none(), "{event}");
});

both!(audit_events_hold_no_plaintext_at_rest, |v| {
    let email = "zephyrine.quokkabottom@example.org";
    let metadata_value = "ticket-WALRUS-8841-confidential";
    let token = v.create_user(json!({"email": email, "name": "Zephyrine Quokkabottom"})).await;
    v.call(
        "UserUpdate",
        json!({"mode": "email", "identity": email, "profile": {"note": "Kumquat-Lighthouse"},
               "request_metadata": {"reason": metadata_value}}),
    )
    .await
    .ok();
    v.call("UserGet", json!({"mode": "email", "identity": email, "request_metadata": {"reason": metadata_value}}))
        .await
        .ok();
    // A failed lookup by a value that is in no record, and a failed update with metadata.
    v.call(
        "UserGet",
        json!({"mode": "email", "identity": "unknown.orangutan@example.org",
               "request_metadata": {"reason": metadata_value}}),
    )
    .await
    .error(404, "The user record was not found");
    let listed = events(v, &token, json!({})).await;
    assert_eq!(listed["total"], 3);
    // Events must be readable (so the secrets are really in them) ...
    let event = event_at(v, &token, 1).await;
    assert_eq!(event["details"]["request_metadata"]["reason"], metadata_value, "{event}");
    // ... and must all be committed before the dump.
    let dump = v.dump().await;
    let haystack = String::from_utf8_lossy(&dump).to_lowercase();
    // The dump does hold the audit table: its clear columns are there.
    assert!(haystack.contains("auditlistuserevents"), "the dump does not include the audit table");
    for secret in [email, metadata_value, "quokkabottom", "kumquat-lighthouse", "unknown.orangutan", "walrus"] {
        assert!(!haystack.contains(&secret.to_lowercase()), "{secret:?} is stored in clear");
    }
});

both!(a_refused_user_create_is_not_reported_as_an_erased_users_event, |v| {
    v.create_user(json!({"email": "taken@x.io"})).await;
    v.call("UserCreate", json!({"profile": {"email": "TAKEN@x.io", "name": "Second"}}))
        .await
        .error(409, "Duplicate index: email");
    let uuid = {
        use sqlx::Row;
        let sql = "SELECT uuid FROM audit_events WHERE operation = 'UserCreate' AND http_status = 409";
        match v.db() {
            bunker::store::Db::Sqlite(pool) => {
                sqlx::query(sql).fetch_one(pool).await.expect("event").get::<String, _>(0)
            }
            bunker::store::Db::Postgres(pool) => {
                sqlx::query(sql).fetch_one(pool).await.expect("event").get::<String, _>(0)
            }
        }
    };
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events WHERE http_status = 409 AND subject_rid IS NULL").await, 1);
    let event = v.call("AuditGetEvent", json!({"auditeventuuid": uuid})).await.ok();
    assert_eq!(event["erased"], false, "{event}");
    assert!(event["details"].is_object(), "the details open under the tenant key: {event}");
    assert!(event.get("token").is_none_or(Value::is_null), "no subject: {event}");
});

/// The rows of `sql`, each a bytes column and a text column, on the vault's database.
async fn bytes_and_text(v: &TestVault, sql: &str) -> Vec<(Vec<u8>, String)> {
    use sqlx::Row;
    match v.db() {
        Db::Sqlite(pool) => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .and_then(|rows| rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()),
        Db::Postgres(pool) => sqlx::query(sql)
            .fetch_all(pool)
            .await
            .and_then(|rows| rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()),
    }
    .unwrap_or_else(|err| panic!("{sql}: {err}"))
}

both!(a_trail_is_found_by_the_first_bytes_of_its_index_and_holds_only_its_own_events, |v| {
    let ann = v.create_user(json!({"login": "ann"})).await;
    let ben = v.create_user(json!({"login": "ben"})).await;
    v.call("UserGet", json!({"mode": "token", "identity": ben})).await.ok();
    let linked =
        bytes_and_text(v, "SELECT user_ref, uuid FROM audit_events WHERE user_ref IS NOT NULL ORDER BY id").await;
    let [(ann_ref, _), (ben_ref, _), (_, ben_read)] = <[_; 3]>::try_from(linked).expect("three events");
    assert_ne!(ann_ref[..8], ben_ref[..8]);
    // Ben's read now names a user whose blind index begins as Ann's does and ends otherwise.
    let mut neighbour = ann_ref[..8].to_vec();
    neighbour.extend_from_slice(&ben_ref[8..]);
    let moved = "UPDATE audit_events SET user_ref = $1 WHERE uuid = $2";
    execute(v, moved, &[Bind::Bytes(neighbour.clone()), Bind::Text(&ben_read)]).await;

    let anns = events(v, &ann, json!({})).await;
    assert_eq!((anns["total"].clone(), column(&anns, "title")), (json!(1), vec![json!("UserCreate")]), "{anns}");
    let bens = events(v, &ben, json!({})).await;
    assert_eq!((bens["total"].clone(), column(&bens, "title")), (json!(1), vec![json!("UserCreate")]), "{bens}");
    // Erasing Ann unlinks her events only: the neighbour's keeps its link.
    v.call("UserDelete", json!({"mode": "token", "identity": ann})).await.ok();
    let linked = bytes_and_text(v, "SELECT user_ref, uuid FROM audit_events WHERE user_ref IS NOT NULL").await;
    assert!(linked.iter().all(|(user_ref, _)| *user_ref != ann_ref), "an event still names Ann");
    assert!(linked.contains(&(neighbour, ben_read)), "the neighbour's event lost its link");

    // The listing's query goes through the index on the first 8 bytes, not a scan of the trail.
    for query in [
        format!("SELECT COUNT(*) FROM audit_events WHERE {}", bunker::store::audit::OF_USER),
        format!("SELECT id FROM audit_events WHERE {} ORDER BY id DESC LIMIT 10", bunker::store::audit::OF_USER),
    ] {
        let plan = explain(v, &query, &[Bind::Int(1), Bind::Bytes(vec![7; 32])]).await;
        assert!(plan.contains("audit_events_user_prefix"), "{query}:\n{plan}");
    }
});
