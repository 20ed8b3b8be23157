//! `UserCreateBulk` and `UserDeleteBulk`: order, partial success, lifetimes, size, counts.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{Value, json};

use crate::both;
use crate::common::{Backend, TestVault};

/// Tokens of `created`, in order; checks each is UUID-shaped.
fn tokens(created: &Value) -> Vec<String> {
    created
        .as_array()
        .expect("created is an array")
        .iter()
        .map(|c| {
            let token = c["token"].as_str().expect("token").to_owned();
            assert!(bunker::crypto::secrets::is_uuid_shaped(&token), "{token}");
            token
        })
        .collect()
}

async fn user_count(v: &TestVault) -> i64 {
    v.scalar("SELECT COUNT(*) FROM users").await
}

both!(create_bulk_answers_in_input_order_and_echoes_profiles, |v| {
    let profiles = vec![
        json!({"email": "  First@Example.COM", "name": "First", "tags": [3, 1, 2]}),
        json!({"login": "second", "nested": {"a": {"b": [null, true, 1.5]}}, "zeta": 1, "alpha": 2}),
        json!({"phone": "+1 (555) 000-1234", "custom": "third-custom"}),
        json!({}),
    ];
    let records: Vec<Value> = profiles.iter().map(|p| json!({"profile": p})).collect();
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    assert_eq!(body["errors"], json!([]), "body: {body}");
    let created = body["created"].as_array().expect("created");
    assert_eq!(created.len(), profiles.len());
    for (entry, profile) in created.iter().zip(&profiles) {
        // Echoed verbatim: same values, same key order, no normalisation.
        assert_eq!(entry["profile"].to_string(), profile.to_string());
    }
    let tokens = tokens(&body["created"]);
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), tokens.len(), "tokens are distinct");
    // Each token belongs to the user created from the record at the same position.
    for (token, profile) in tokens.iter().zip(&profiles) {
        let got = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
        assert_eq!(got["profile"].to_string(), profile.to_string());
        assert_eq!(got["version"], 1);
    }
    for (mode, identity, position) in [
        ("email", "first@example.com", 0),
        ("login", "second", 1),
        ("phone", "+15550001234", 2),
        ("custom", "third-custom", 2),
    ] {
        let got = v.call("UserGet", json!({"mode": mode, "identity": identity})).await.ok();
        assert_eq!(got["token"], tokens[position].as_str(), "mode {mode}");
    }
    assert_eq!(user_count(v).await, 4);
});

both!(create_bulk_refuses_bad_records_and_creates_the_others, |v| {
    let existing = v.create_user(json!({"email": "taken@x.io", "custom": "held"})).await;
    let records = json!([
        {"profile": {"email": "one@x.io", "name": "One"}},
        {"profile": {"email": " ONE@X.IO", "name": "Same email as record 0"}},
        {"profile": {"email": "Taken@X.io", "name": "Same email as an existing user"}},
        {"profile": "not an object"},
        {"profile": {"login": "two", "custom": "c2"}},
        {"profile": {"login": "three", "custom": "held"}},
        {"profile": {"login": "four", "custom": "c2"}},
        {"profile": [1, 2]},
        {"profile": {"login": "five", "phone": "+44 1"}},
    ]);
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    let created = body["created"].as_array().expect("created");
    assert_eq!(
        created.iter().map(|c| c["profile"].clone()).collect::<Vec<_>>(),
        vec![records[0]["profile"].clone(), records[4]["profile"].clone(), records[8]["profile"].clone()],
        "body: {body}"
    );
    assert_eq!(
        body["errors"],
        json!([
            {"profile": records[1]["profile"], "reason": "Duplicate email value"},
            {"profile": records[2]["profile"], "reason": "Duplicate email value"},
            {"profile": "not an object", "reason": "The profile parameter has an incorrect format"},
            {"profile": records[5]["profile"], "reason": "Duplicate custom value"},
            {"profile": records[6]["profile"], "reason": "Duplicate custom value"},
            {"profile": [1, 2], "reason": "The profile parameter has an incorrect format"},
        ])
    );
    let tokens = tokens(&body["created"]);
    // The accepted records exist; the refused ones changed nothing.
    let one = v.call("UserGet", json!({"mode": "email", "identity": "one@x.io"})).await.ok();
    assert_eq!((one["token"].as_str(), one["profile"]["name"].as_str()), (Some(tokens[0].as_str()), Some("One")));
    let two = v.call("UserGet", json!({"mode": "custom", "identity": "c2"})).await.ok();
    assert_eq!(two["token"], tokens[1].as_str());
    let five = v.call("UserGet", json!({"mode": "phone", "identity": "+441"})).await.ok();
    assert_eq!(five["token"], tokens[2].as_str());
    let taken = v.call("UserGet", json!({"mode": "email", "identity": "taken@x.io"})).await.ok();
    assert_eq!(taken["token"], existing.as_str());
    assert_eq!(taken["profile"], json!({"email": "taken@x.io", "custom": "held"}));
    for (mode, identity) in [("login", "three"), ("login", "four")] {
        v.call("UserGet", json!({"mode": mode, "identity": identity}))
            .await
            .error(404, "The user record was not found");
    }
    assert_eq!(user_count(v).await, 4);
});

both!(refused_in_batch_duplicate_does_not_reserve_its_other_identities, |v| {
    // Record 1 is refused (its email repeats record 0); its login was never taken, so record 2,
    // which only repeats that login, is created: as if each record were a UserCreate in turn.
    let records = json!([
        {"profile": {"email": "a@x.io"}},
        {"profile": {"email": "a@x.io", "login": "lonely"}},
        {"profile": {"login": "lonely", "name": "Takes the free login"}},
    ]);
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    assert_eq!(body["errors"], json!([{"profile": records[1]["profile"], "reason": "Duplicate email value"}]));
    assert_eq!(
        body["created"].as_array().map(|c| c.iter().map(|e| e["profile"].clone()).collect::<Vec<_>>()),
        Some(vec![records[0]["profile"].clone(), records[2]["profile"].clone()])
    );
    let got = v.call("UserGet", json!({"mode": "login", "identity": "lonely"})).await.ok();
    assert_eq!(got["profile"]["name"], "Takes the free login");
});

both!(record_refused_for_an_existing_user_does_not_reserve_its_other_identities, |v| {
    v.create_user(json!({"email": "taken@x.io"})).await;
    // Record 0 is refused (its email belongs to an existing user); its custom value is free, so
    // record 1 may have it.
    let records = json!([
        {"profile": {"email": "taken@x.io", "custom": "free-custom"}},
        {"profile": {"custom": "free-custom", "name": "Takes the free custom"}},
    ]);
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    assert_eq!(body["errors"], json!([{"profile": records[0]["profile"], "reason": "Duplicate email value"}]));
    assert_eq!(body["created"].as_array().map(Vec::len), Some(1), "body: {body}");
    let got = v.call("UserGet", json!({"mode": "custom", "identity": "free-custom"})).await.ok();
    assert_eq!(got["profile"]["name"], "Takes the free custom");
});

both!(create_bulk_puts_records_in_the_groups_they_name, |v| {
    let group = v.call("GroupCreate", json!({"groupname": "staff"})).await.ok()["groupid"].clone();
    v.call("RoleCreate", json!({"rolename": "clerk"})).await.ok();
    let records = json!([
        {"profile": {"login": "g1"}, "groupname": "staff", "rolename": "clerk"},
        {"profile": {"login": "g2"}, "groupid": group},
        {"profile": {"login": "g3"}, "groupname": "nowhere"},
        {"profile": {"login": "g4"}, "groupname": "staff", "rolename": "nobody"},
        {"profile": {"login": "g5"}, "rolename": "clerk"},
        {"profile": {"login": "g6"}},
    ]);
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    assert_eq!(
        body["errors"],
        json!([
            {"profile": {"login": "g3"}, "reason": "The group record was not found"},
            {"profile": {"login": "g4"}, "reason": "The role record was not found"},
            {"profile": {"login": "g5"}, "reason": "A role is held in a group: give groupname or groupid"},
        ])
    );
    assert_eq!(body["created"].as_array().map(Vec::len), Some(3));
    let groups = |login: &str| {
        let body = json!({"mode": "login", "identity": login});
        async move { v.call("GroupListUserGroups", body).await.ok()["rows"].clone() }
    };
    let g1 = groups("g1").await;
    assert_eq!((g1[0]["groupname"].as_str(), g1[0]["rolename"].as_str()), (Some("staff"), Some("clerk")));
    let g2 = groups("g2").await;
    assert_eq!((g2[0]["groupid"].clone(), g2[0]["rolename"].clone()), (group, Value::Null));
    assert_eq!(groups("g6").await, json!([]));
    v.call("UserGet", json!({"mode": "login", "identity": "g3"})).await.error(404, "The user record was not found");
});

both!(create_bulk_applies_batch_lifetimes, |v| {
    let now = v.clock().now();
    let records = json!([{"profile": {"login": "l1"}}, {"profile": {"login": "l2"}}]);
    let body =
        v.call("UserCreateBulk", json!({"records": records, "slidingtime": "30d", "finaltime": "1y"})).await.ok();
    assert_eq!(body["errors"], json!([]));
    for token in tokens(&body["created"]) {
        let got = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
        assert_eq!(got["slidingtime"], 2_592_000);
        let finaltime = got["finaltime"].as_i64().expect("finaltime");
        assert!((now + 365 * 86_400..=now + 365 * 86_400 + 5).contains(&finaltime), "{finaltime}");
        let expiration = got["expirationtime"].as_i64().expect("expirationtime");
        assert!((now + 30 * 86_400..=now + 30 * 86_400 + 5).contains(&expiration), "{expiration}");
    }
    // Without lifetimes the records do not expire.
    let body = v.call("UserCreateBulk", json!({"records": [{"profile": {"login": "forever"}}]})).await.ok();
    let token = &tokens(&body["created"])[0];
    let got = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert!(got["slidingtime"].as_i64().unwrap_or(0) == 0, "body: {got}");
    // The sliding period applies to the batch: past it, its records are gone, the others stay.
    v.clock().advance(31 * 86_400);
    v.call("UserGet", json!({"mode": "login", "identity": "l1"})).await.error(404, "The user record was not found");
    v.call("UserGet", json!({"mode": "login", "identity": "forever"})).await.ok();
});

both!(create_bulk_rejects_the_whole_request_when_malformed, |v| {
    for body in [json!({}), json!({"records": []}), json!({"records": null}), json!({"slidingtime": "30d"})] {
        v.call("UserCreateBulk", body).await.error(400, "Missing API request parameters: records");
    }
    v.call("UserCreateBulk", json!({"records": [{"profile": {"login": "x"}}], "slidingtime": "soon"}))
        .await
        .error(400, "The slidingtime parameter has an incorrect format");
    assert_eq!(user_count(v).await, 0);
});

both!(create_bulk_of_4000_records, |v| {
    const N: usize = 4000;
    let records: Vec<Value> = (0..N)
        .map(|i| json!({"profile": {"email": format!("bulk{i}@x.io"), "login": format!("bulk-{i}"), "n": i}}))
        .collect();
    let started = Instant::now();
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    let elapsed = started.elapsed();
    eprintln!("UserCreateBulk of {N} records on {:?}: {elapsed:?}", v.backend);
    assert_eq!(body["errors"], json!([]));
    let created = body["created"].as_array().expect("created");
    assert_eq!(created.len(), N);
    let tokens = tokens(&body["created"]);
    assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), N, "tokens are distinct");
    for (i, entry) in created.iter().enumerate() {
        assert_eq!(entry["profile"]["n"], i, "created keeps input order");
    }
    assert_eq!(user_count(v).await, i64::try_from(N).expect("small"));
    for i in [0, 1, 999, 1000, 1001, 2500, N - 1] {
        let got = v.call("UserGet", json!({"mode": "email", "identity": format!("BULK{i}@X.IO")})).await.ok();
        assert_eq!(got["token"], tokens[i].as_str(), "record {i}");
        assert_eq!(got["profile"], json!({"email": format!("bulk{i}@x.io"), "login": format!("bulk-{i}"), "n": i}));
        let got = v.call("UserGet", json!({"mode": "token", "identity": tokens[i]})).await.ok();
        assert_eq!(got["profile"]["n"], i);
    }
    // A second batch overlapping the first refuses exactly the overlap.
    let records: Vec<Value> = (N - 2..N + 2).map(|i| json!({"profile": {"email": format!("bulk{i}@x.io")}})).collect();
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    assert_eq!(body["created"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        body["errors"],
        json!([
            {"profile": {"email": format!("bulk{}@x.io", N - 2)}, "reason": "Duplicate email value"},
            {"profile": {"email": format!("bulk{}@x.io", N - 1)}, "reason": "Duplicate email value"},
        ])
    );
});

both!(delete_bulk_counts_unique_users_actually_deleted, |v| {
    let alice = v.create_user(json!({"email": "alice@x.io", "name": "A"})).await;
    let bob = v.create_user(json!({"login": "bob"})).await;
    let carol = v.create_user(json!({"phone": "+1 555 0100", "custom": "carol"})).await;
    let dave = v.create_user(json!({"email": "dave@x.io"})).await;
    let body = v
        .call(
            "UserDeleteBulk",
            json!({"users": [
                {"mode": "email", "identity": "ALICE@x.io"},
                {"mode": "login", "identity": "bob"},
                {"mode": "token", "identity": alice},
                {"mode": "email", "identity": "nobody@x.io"},
                {"mode": "phone", "identity": "+15550100"},
                {"mode": "custom", "identity": "carol"},
            ]}),
        )
        .await
        .ok();
    assert_eq!(body["total"], 6, "body: {body}");
    assert_eq!(body["deleted"], 3, "body: {body}");
    assert_eq!(body["deleted_count"], 3, "body: {body}");
    for token in [&alice, &bob, &carol] {
        v.call("UserGet", json!({"mode": "token", "identity": token}))
            .await
            .error(404, "The user record was not found");
    }
    v.call("UserGet", json!({"mode": "email", "identity": "alice@x.io"}))
        .await
        .error(404, "The user record was not found");
    let got = v.call("UserGet", json!({"mode": "token", "identity": dave})).await.ok();
    assert_eq!(got["profile"], json!({"email": "dave@x.io"}));
    assert_eq!(user_count(v).await, 1);
    // Their identities are free again.
    v.create_user(json!({"email": "alice@x.io", "login": "bob"})).await;

    // Deleting again finds nobody: submitted, but nothing deleted.
    let body = v
        .call(
            "UserDeleteBulk",
            json!({"users": [{"mode": "token", "identity": bob}, {"mode": "custom", "identity": "carol"}]}),
        )
        .await
        .ok();
    assert_eq!(
        (body["total"].clone(), body["deleted"].clone(), body["deleted_count"].clone()),
        (json!(2), json!(0), json!(0))
    );
});

both!(delete_bulk_requires_users, |v| {
    v.create_user(json!({"email": "stay@x.io"})).await;
    for body in [json!({}), json!({"users": []}), json!({"users": null})] {
        v.call("UserDeleteBulk", body).await.error(400, "Missing API request parameters: users");
    }
    assert_eq!(user_count(v).await, 1);
});

both!(delete_bulk_of_many_users, |v| {
    let records: Vec<Value> = (0..1500).map(|i| json!({"profile": {"login": format!("m{i}")}})).collect();
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    assert_eq!(body["created"].as_array().map(Vec::len), Some(1500));
    // Every other user, each named twice (once by login, once by token).
    let tokens = tokens(&body["created"]);
    let mut users = Vec::new();
    for i in (0..1500).step_by(2) {
        users.push(json!({"mode": "login", "identity": format!("m{i}")}));
        users.push(json!({"mode": "token", "identity": tokens[i]}));
    }
    let body = v.call("UserDeleteBulk", json!({"users": users})).await.ok();
    assert_eq!(
        (body["total"].clone(), body["deleted"].clone(), body["deleted_count"].clone()),
        (json!(1500), json!(750), json!(750))
    );
    assert_eq!(user_count(v).await, 750);
    v.call("UserGet", json!({"mode": "login", "identity": "m0"})).await.error(404, "The user record was not found");
    v.call("UserGet", json!({"mode": "login", "identity": "m1"})).await.ok();
    v.call("UserGet", json!({"mode": "token", "identity": tokens[1498]}))
        .await
        .error(404, "The user record was not found");
    v.call("UserGet", json!({"mode": "token", "identity": tokens[1499]})).await.ok();
});

both!(create_bulk_refuses_malformed_assignments_per_record, |v| {
    let body = v
        .call(
            "UserCreateBulk",
            json!({"records": [
                {"profile": {"email": "ok@x.io"}},
                {"profile": {"email": "bad@x.io"}, "roleid": "not-a-number"}
            ]}),
        )
        .await
        .ok();
    assert_eq!(body["created"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["errors"][0]["reason"], "The roleid parameter has an incorrect format");
    v.call("UserGet", json!({"mode": "email", "identity": "bad@x.io"}))
        .await
        .error(404, "The user record was not found");
});

both!(delete_bulk_skips_identities_that_name_nobody, |v| {
    v.create_user(json!({"email": "keep@x.io"})).await;
    v.create_user(json!({"email": "gone@x.io"})).await;
    let body = v
        .call(
            "UserDeleteBulk",
            json!({"users": [
                {"mode": "email", "identity": ""},
                {"mode": "phone", "identity": "no digits"},
                {"mode": "email", "identity": "gone@x.io"}
            ]}),
        )
        .await
        .ok();
    assert_eq!((body["total"].clone(), body["deleted"].clone()), (json!(3), json!(1)));
    v.call("UserGet", json!({"mode": "email", "identity": "keep@x.io"})).await.ok();
    v.call("UserDeleteBulk", json!({"users": [{"mode": "shoe", "identity": "x"}]}))
        .await
        .error(400, "The mode parameter has an incorrect format");
});

both!(a_bulk_call_is_one_transaction_across_its_chunks, |v| {
    // The records are sealed and written 500 at a time. The database refuses users past the
    // thousandth: the call's third chunk fails, and the two written before it must go too.
    match v.backend {
        Backend::Sqlite => {
            v.exec(
                "CREATE TRIGGER refuse_past_1000 BEFORE INSERT ON users \
                 WHEN (SELECT COUNT(*) FROM users) >= 1000 BEGIN SELECT RAISE(ABORT, 'full'); END",
            )
            .await
        }
        Backend::Postgres => {
            v.exec(
                "CREATE FUNCTION refuse_past_1000() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF (SELECT COUNT(*) FROM users) >= 1000 THEN RAISE EXCEPTION 'full'; END IF; RETURN NEW; END $$",
            )
            .await;
            v.exec("CREATE TRIGGER refuse_past_1000 BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse_past_1000()")
                .await
        }
    }
    const N: usize = 1200;
    let records: Vec<Value> = (0..N).map(|i| json!({"profile": {"login": format!("chunk-{i}")}})).collect();
    let refused = v.call("UserCreateBulk", json!({"records": records})).await;
    assert!(refused.status.is_server_error(), "{refused:?}");
    assert_eq!(refused.body["status"], "error");
    assert_eq!(user_count(v).await, 0, "no chunk of the failed call stays");
    let linked = "SELECT COUNT(*) FROM audit_events WHERE subject_rid IS NOT NULL";
    assert_eq!(v.scalar(linked).await, 0, "no creation event of the failed call stays");

    v.exec(match v.backend {
        Backend::Sqlite => "DROP TRIGGER refuse_past_1000",
        Backend::Postgres => "DROP TRIGGER refuse_past_1000 ON users",
    })
    .await;
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    assert_eq!(body["errors"], json!([]));
    let tokens = tokens(&body["created"]);
    assert_eq!(tokens.len(), N);
    assert_eq!(user_count(v).await, i64::try_from(N).expect("small"));
    // One creation event per user, and each user's own trail shows it.
    assert_eq!(v.scalar(linked).await, i64::try_from(N).expect("small"));
    for i in [0, 499, 500, 1199] {
        let trail = v.call("AuditListUserEvents", json!({"mode": "token", "identity": tokens[i]})).await.ok();
        let titles: Vec<&Value> = trail["rows"].as_array().expect("rows").iter().map(|row| &row["title"]).collect();
        assert!(titles.contains(&&json!("UserCreateBulk")), "record {i}: {trail}");
        let got = v.call("UserGet", json!({"mode": "login", "identity": format!("chunk-{i}")})).await.ok();
        assert_eq!(got["token"], tokens[i].as_str());
    }
});

both!(a_value_taken_in_a_late_chunk_refuses_only_its_record, |v| {
    // A call is first written whole, without looking its values up; a record whose email is
    // taken, in the third chunk, undoes the two chunks written before it, and the call is then
    // checked record by record: only that record is refused, and nothing is written twice.
    v.create_user(json!({"email": "late@x.io"})).await;
    const N: usize = 1200;
    const TAKEN: usize = 1100;
    let records: Vec<Value> = (0..N)
        .map(|i| {
            let email = if i == TAKEN { "late@x.io".to_owned() } else { format!("late-{i}@x.io") };
            json!({"profile": {"email": email, "login": format!("late-{i}")}})
        })
        .collect();
    let body = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    assert_eq!(body["errors"], json!([{"profile": records[TAKEN]["profile"], "reason": "Duplicate email value"}]));
    let tokens = tokens(&body["created"]);
    assert_eq!(tokens.len(), N - 1);
    assert_eq!(user_count(v).await, i64::try_from(N).expect("small"));
    let linked = "SELECT COUNT(*) FROM audit_events WHERE subject_rid IS NOT NULL";
    assert_eq!(v.scalar(linked).await, i64::try_from(N).expect("small"), "one creation event per user");
    for (position, i) in [(0, 0), (499, 499), (1099, 1099), (1100, 1101), (N - 2, N - 1)] {
        // The trail first: reading the user appends an event to it.
        let trail = v.call("AuditListUserEvents", json!({"mode": "token", "identity": tokens[position]})).await.ok();
        assert_eq!(trail["total"], 1, "record {i}: {trail}");
        assert_eq!(trail["rows"][0]["title"], "UserCreateBulk", "record {i}: {trail}");
        let got = v.call("UserGet", json!({"mode": "login", "identity": format!("late-{i}")})).await.ok();
        assert_eq!(got["token"], tokens[position].as_str(), "record {i}");
    }
    let refused = v.call("UserGet", json!({"mode": "login", "identity": format!("late-{TAKEN}")})).await;
    assert_eq!(refused.status, 404);
});
