//! The user API: create, read by every mode, update, patch, delete, versions, lifetimes.

use serde_json::json;

use crate::both;

both!(create_and_get_by_every_mode, |v| {
    let token = v
        .create_user(json!({"login": "alice", "email": "Alice+news@Example.com ", "phone": "+1 (555) 010-9999",
                            "custom": "c-1", "name": "Alice", "tags": [1, 2]}))
        .await;
    assert!(bunker::crypto::secrets::is_uuid_shaped(&token));
    for (mode, identity) in [
        ("login", "alice"),
        ("email", "alice+news@example.com"),
        ("email", "  ALICE+NEWS@EXAMPLE.COM"),
        ("phone", "+15550109999"),
        ("custom", "c-1"),
        ("token", token.as_str()),
    ] {
        let body = v.call("UserGet", json!({"mode": mode, "identity": identity})).await.ok();
        assert_eq!(body["token"], token.as_str(), "mode {mode}");
        // The profile comes back exactly as sent: the index is normalised, the profile is not.
        assert_eq!(body["profile"]["email"], "Alice+news@Example.com ");
        assert_eq!(body["profile"]["tags"], json!([1, 2]));
        assert_eq!(body["version"], 1);
    }
});

both!(numeric_phone_stays_a_number, |v| {
    v.create_user(json!({"phone": 4471234, "name": "Num"})).await;
    let body = v.call("UserGet", json!({"mode": "phone", "identity": "4471234"})).await.ok();
    assert_eq!(body["profile"]["phone"], json!(4471234));
    let body = v.call("UserGet", json!({"mode": "phone", "identity": 4471234})).await.ok();
    assert_eq!(body["profile"]["name"], "Num");
});

both!(duplicates_are_conflicts_per_index, |v| {
    v.create_user(json!({"login": "l1", "email": "e1@x.io", "phone": "+111", "custom": "k1"})).await;
    for (profile, kind) in [
        (json!({"login": "l1"}), "login"),
        (json!({"email": " E1@X.IO"}), "email"),
        (json!({"phone": "+1 11"}), "phone"),
        (json!({"custom": "k1"}), "custom"),
    ] {
        v.call("UserCreate", json!({"profile": profile})).await.error(409, &format!("Duplicate index: {kind}"));
    }
});

both!(unknown_users_and_bad_modes, |v| {
    v.call("UserGet", json!({"mode": "email", "identity": "nobody@x.io"}))
        .await
        .error(404, "The user record was not found");
    v.call("UserGet", json!({"mode": "token", "identity": "not-a-uuid"})).await.error(400, "Bad UUID");
    v.call("UserGet", json!({"mode": "shoe", "identity": "x"}))
        .await
        .error(400, "The mode parameter has an incorrect format");
    v.call("UserGet", json!({"identity": "x"})).await.error(400, "Missing API request parameters: mode");
    v.call("UserCreate", json!({})).await.error(400, "Missing API request parameters: profile");
    v.call("UserCreate", json!({"profile": "alice"})).await.error(400, "The profile parameter has an incorrect format");
    v.call("UserCreate", json!({"profile": {"a": 1}, "groupname": "staff"}))
        .await
        .error(404, "The group record was not found");
});

both!(update_merges_and_reindexes, |v| {
    let token = v.create_user(json!({"email": "old@x.io", "name": "A", "phone": "+1", "keep": true})).await;
    v.call(
        "UserUpdate",
        json!({"mode": "token", "identity": token, "profile": {"email": "new@x.io", "phone": null, "name": "B"}}),
    )
    .await
    .ok();
    let body = v.call("UserGet", json!({"mode": "email", "identity": "new@x.io"})).await.ok();
    assert_eq!(body["profile"], json!({"email": "new@x.io", "name": "B", "keep": true}));
    assert_eq!(body["version"], 2);
    v.call("UserGet", json!({"mode": "email", "identity": "old@x.io"}))
        .await
        .error(404, "The user record was not found");
    v.call("UserGet", json!({"mode": "phone", "identity": "+1"})).await.error(404, "The user record was not found");
    // The freed email can be taken by someone else.
    v.create_user(json!({"email": "old@x.io"})).await;
});

both!(update_into_a_taken_index_changes_nothing, |v| {
    v.create_user(json!({"email": "taken@x.io"})).await;
    let token = v.create_user(json!({"email": "mine@x.io", "name": "Me"})).await;
    v.call("UserUpdate", json!({"mode": "token", "identity": token, "profile": {"email": "taken@x.io", "name": "X"}}))
        .await
        .error(409, "Duplicate index: email");
    let body = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(body["profile"], json!({"email": "mine@x.io", "name": "Me"}));
    assert_eq!(body["version"], 1);
});

both!(patch_applies_rfc6902_and_failed_test_changes_nothing, |v| {
    let token = v.create_user(json!({"login": "p", "name": "A", "list": [1]})).await;
    v.call(
        "UserPatch",
        json!({"mode": "login", "identity": "p", "patch": [
            {"op": "replace", "path": "/name", "value": "B"},
            {"op": "add", "path": "/list/-", "value": 2},
            {"op": "add", "path": "/email", "value": "p@x.io"}
        ]}),
    )
    .await
    .ok();
    let body = v.call("UserGet", json!({"mode": "email", "identity": "p@x.io"})).await.ok();
    assert_eq!(body["profile"], json!({"login": "p", "name": "B", "list": [1, 2], "email": "p@x.io"}));
    v.call(
        "UserPatch",
        json!({"mode": "token", "identity": token, "patch": [
            {"op": "replace", "path": "/name", "value": "C"},
            {"op": "test", "path": "/name", "value": "nope"}
        ]}),
    )
    .await
    .error(400, "Failed to apply the patch: operation 1 failed");
    let body = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(body["profile"]["name"], "B");
    assert_eq!(body["version"], 2);
    v.call("UserPatch", json!({"mode": "token", "identity": token, "patch": {"op": "x"}}))
        .await
        .error(400, "The patch parameter has an incorrect format");
    v.call(
        "UserPatch",
        json!({"mode": "token", "identity": token, "patch": [{"op": "replace", "path": "", "value": 1}]}),
    )
    .await
    .error(400, "The profile must remain a JSON object");
});

/// `levels` arrays around the number 1.
fn nested(levels: usize) -> serde_json::Value {
    (0..levels).fold(json!(1), |inner, _| json!([inner]))
}

// Regression (found while fuzzing): patches nested a profile deeper than serde_json reads, so its
// sealed record no longer opened and every later call on the user, deletion included, was a 500.
both!(patch_cannot_nest_a_profile_deeper_than_it_reads_back, |v| {
    let token = v.create_user(json!({"login": "deep"})).await;
    let patch = |op: &str, path: String, value: serde_json::Value| json!({"mode": "token", "identity": token, "patch": [{"op": op, "path": path, "value": value}]});
    // The profile, 120 arrays and the number: 121 levels.
    v.call("UserPatch", patch("add", "/a".into(), nested(120))).await.ok();
    // 119 arrays down, 120 more: 240 levels.
    let deep = format!("/a{}", "/0".repeat(119));
    v.call("UserPatch", patch("replace", deep.clone(), nested(120)))
        .await
        .error(400, "The profile is nested too deeply");
    // Exactly as deep as UserCreate accepts (126 levels) is fine and reads back.
    v.call("UserPatch", patch("replace", deep, nested(6))).await.ok();
    let body = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(body["profile"]["a"], nested(125));
    assert_eq!(body["version"], 3);
    // One more level is refused, and the user stays readable and deletable.
    let innermost = format!("/a{}", "/0".repeat(125));
    v.call("UserPatch", patch("replace", innermost, json!([1]))).await.error(400, "The profile is nested too deeply");
    v.call("UserListVersions", json!({"mode": "token", "identity": token})).await.ok();
    v.call("UserDelete", json!({"mode": "token", "identity": token})).await.ok();
});

both!(delete_then_gone, |v| {
    let token = v.create_user(json!({"email": "d@x.io"})).await;
    v.call("UserDelete", json!({"mode": "email", "identity": "d@x.io"})).await.ok();
    v.call("UserGet", json!({"mode": "token", "identity": token})).await.error(404, "The user record was not found");
    v.call("UserDelete", json!({"mode": "email", "identity": "d@x.io"}))
        .await
        .error(404, "The user record was not found");
    // The email is free again.
    v.create_user(json!({"email": "d@x.io"})).await;
});

both!(versions_are_listed_and_readable, |v| {
    let token = v.create_user(json!({"name": "v1"})).await;
    for name in ["v2", "v3"] {
        v.call("UserUpdate", json!({"mode": "token", "identity": token, "profile": {"name": name}})).await.ok();
    }
    let body = v.call("UserListVersions", json!({"mode": "token", "identity": token})).await.ok();
    let versions = body["versions"].as_array().expect("versions");
    assert_eq!(versions.iter().map(|x| x["version"].as_i64().expect("int")).collect::<Vec<_>>(), vec![1, 2, 3]);
    let md5 = |name: &str| {
        use md5::Digest;
        hex::encode(md5::Md5::digest(json!({"name": name}).to_string()))
    };
    assert_eq!(versions[0]["md5"], md5("v1"));
    assert_eq!(versions[2]["md5"], md5("v3"));
    assert!(versions[0]["optime"].as_i64().expect("optime") > 1_700_000_000);
    let old = v.call("UserGet", json!({"mode": "token", "identity": token, "version": "1"})).await.ok();
    assert_eq!((old["profile"].clone(), old["version"].clone()), (json!({"name": "v1"}), json!(1)));
    v.call("UserGet", json!({"mode": "token", "identity": token, "version": 9}))
        .await
        .error(404, "The user version was not found");
});

both!(lifetimes_are_reported_capped_and_enforced, |v| {
    let now = v.clock().now();
    let body =
        v.call("UserCreate", json!({"profile": {"login": "t"}, "slidingtime": "30d", "finaltime": "1y"})).await.ok();
    let token = body["token"].as_str().expect("token").to_owned();
    let got = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(got["slidingtime"], 30 * 86_400);
    let finaltime = got["finaltime"].as_i64().expect("finaltime");
    assert!((now + 365 * 86_400..=now + 365 * 86_400 + 5).contains(&finaltime), "{finaltime}");
    let expiration = got["expirationtime"].as_i64().expect("expiration");
    assert!((now + 30 * 86_400..=now + 30 * 86_400 + 5).contains(&expiration));
    // Far beyond the configured maximum (10 years by default): capped, not rejected.
    let body = v.call("UserCreate", json!({"profile": {"login": "far"}, "finaltime": "200y"})).await.ok();
    let got = v.call("UserGet", json!({"mode": "token", "identity": body["token"]})).await.ok();
    assert!(got["finaltime"].as_i64().expect("final") <= now + 10 * 365 * 86_400 + 5);
    v.call("UserCreate", json!({"profile": {"login": "bad"}, "slidingtime": "soon"}))
        .await
        .error(400, "The slidingtime parameter has an incorrect format");
    // Once the sliding period has passed the record is gone.
    v.clock().advance(31 * 86_400);
    v.call("UserGet", json!({"mode": "login", "identity": "t"})).await.error(404, "The user record was not found");
});

both!(concurrent_updates_lose_nothing, |v| {
    let token = v.create_user(json!({"name": "c"})).await;
    let calls = (0..8).map(|i| {
        let token = token.clone();
        async move {
            v.call("UserUpdate", json!({"mode": "token", "identity": token, "profile": {format!("k{i}"): i}}))
                .await
                .ok();
        }
    });
    futures::future::join_all(calls).await;
    let body = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    for i in 0..8 {
        assert_eq!(body["profile"][format!("k{i}")], i, "update {i} was lost: {}", body["profile"]);
    }
    assert_eq!(body["version"], 9);
});

// Concurrent creations share a commit: each still gets its own answer, a taken email is refused
// to all but one of the callers racing for it, and every user created has its creation event.
both!(concurrent_creations_each_get_their_own_answer, |v| {
    let calls = (0..24).map(|i| async move {
        let email = if i % 3 == 0 { "same@x.io".to_owned() } else { format!("u{i}@x.io") };
        (i, email.clone(), v.call("UserCreate", json!({"profile": {"email": email, "n": i}})).await)
    });
    let answers = futures::future::join_all(calls).await;
    let mut same_created = 0;
    for (i, email, answer) in answers {
        if email == "same@x.io" && answer.status.as_u16() == 409 {
            answer.error(409, "Duplicate index: email");
            continue;
        }
        let token = answer.ok()["token"].as_str().expect("token").to_owned();
        same_created += usize::from(email == "same@x.io");
        let body = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
        assert_eq!(body["profile"], json!({"email": email, "n": i}));
        let events =
            v.call("AuditListUserEvents", json!({"mode": "token", "identity": token, "limit": 100})).await.ok();
        let titles: Vec<&str> =
            events["rows"].as_array().expect("rows").iter().filter_map(|r| r["title"].as_str()).collect();
        assert!(titles.contains(&"UserCreate"), "user {i} has no creation event: {titles:?}");
    }
    assert_eq!(same_created, 1, "exactly one caller gets the contested email");
});
