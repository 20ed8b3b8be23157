//! Approval requests: filing, duplicates, listing, approval applying each kind of change in one
//! transaction with the request's closing, cancellation, closed requests, and erasure.

use serde_json::{Value, json};

use crate::both;
use crate::common::{TestVault, assert_absent};

fn who(token: &str) -> Value {
    json!({"mode": "token", "identity": token})
}

fn with(token: &str, extra: Value) -> Value {
    let mut body = who(token);
    body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    body
}

async fn file(v: &TestVault, op: &str, body: Value) -> String {
    let answer = v.call(op, body).await.ok();
    let uuid = answer["requestuuid"].as_str().expect("requestuuid").to_owned();
    assert_eq!(uuid.len(), 36, "{answer}");
    uuid
}

async fn request(v: &TestVault, uuid: &str) -> Value {
    v.call("UserRequestGet", json!({"requestuuid": uuid})).await.ok()["request"].clone()
}

async fn profile(v: &TestVault, token: &str) -> Value {
    v.call("UserGet", who(token)).await.ok()["profile"].clone()
}

both!(update_request_waits_for_approval_then_applies, |v| {
    let token = v.create_user(json!({"login": "ann", "name": "Ann"})).await;
    // The clock runs: a second may tick over during a call, so times are checked as ranges.
    let before = v.clock().now();
    let uuid =
        file(v, "UserUpdateRequest", with(&token, json!({"profile": {"name": "Ann B.", "city": "Leeds"}}))).await;
    let filed = before..=v.clock().now();
    // Nothing changes until an administrator approves.
    assert_eq!(profile(v, &token).await, json!({"login": "ann", "name": "Ann"}));
    let got = request(v, &uuid).await;
    assert_eq!(got["requestuuid"], uuid);
    assert_eq!(got["requesttype"], "change-profile");
    assert_eq!(got["status"], "open");
    assert_eq!(got["token"], token);
    assert_eq!(got["change"], json!({"name": "Ann B.", "city": "Leeds"}));
    assert!(got["creationtime"].as_i64().is_some_and(|t| filed.contains(&t)), "{got}");
    assert!(got.get("reason").is_none(), "{got}");

    v.clock().advance(30);
    let before = v.clock().now();
    v.call("UserRequestApprove", json!({"requestuuid": uuid, "reason": "confirmed by phone"})).await.ok();
    let approved = before..=v.clock().now();
    assert_eq!(profile(v, &token).await, json!({"login": "ann", "name": "Ann B.", "city": "Leeds"}));
    let got = request(v, &uuid).await;
    assert_eq!(got["status"], "approved");
    assert_eq!(got["reason"], "confirmed by phone");
    assert!(got["when"].as_i64().is_some_and(|t| approved.contains(&t) && t >= filed.start() + 30), "{got}");
    // The change is a new profile version like any update.
    assert_eq!(v.call("UserGet", who(&token)).await.ok()["version"], 2);

    // A closed request cannot be resolved again, either way.
    v.call("UserRequestApprove", json!({"requestuuid": uuid})).await.error(409, "This user request is closed");
    v.call("UserRequestCancel", json!({"requestuuid": uuid})).await.error(409, "This user request is closed");
    assert_eq!(profile(v, &token).await["name"], "Ann B.");
});

both!(identical_open_request_is_returned_not_duplicated, |v| {
    let token = v.create_user(json!({"login": "dup"})).await;
    let first = file(v, "UserUpdateRequest", with(&token, json!({"profile": {"a": 1, "b": 2}}))).await;
    // Same change (keys in another order): the open request is answered again.
    let again =
        file(v, "UserUpdateRequest", json!({"mode": "login", "identity": "dup", "profile": {"b": 2, "a": 1}})).await;
    assert_eq!(again, first);
    // A different change, or another kind of request, is a new request.
    let other = file(v, "UserUpdateRequest", with(&token, json!({"profile": {"a": 2}}))).await;
    assert_ne!(other, first);
    let forget = file(v, "UserDeleteRequest", who(&token)).await;
    assert_eq!(file(v, "UserDeleteRequest", who(&token)).await, forget);
    let listed = v.call("UserRequestListUserRequests", who(&token)).await.ok();
    assert_eq!(listed["total"], 3);
    // Once the first is closed, the same change can be asked for anew.
    v.call("UserRequestCancel", json!({"requestuuid": first})).await.ok();
    let renewed = file(v, "UserUpdateRequest", with(&token, json!({"profile": {"a": 1, "b": 2}}))).await;
    assert_ne!(renewed, first);
});

both!(cancel_keeps_the_data_and_records_the_reason, |v| {
    let token = v.create_user(json!({"login": "can", "email": "can@example.com"})).await;
    let uuid = file(v, "UserPatchRequest", with(&token, json!({"patch": [{"op": "remove", "path": "/email"}]}))).await;
    v.call("UserRequestCancel", json!({"requestuuid": uuid, "reason": "not the account holder"})).await.ok();
    assert_eq!(profile(v, &token).await["email"], "can@example.com");
    let got = request(v, &uuid).await;
    assert_eq!(got["status"], "canceled");
    assert_eq!(got["reason"], "not the account holder");
    assert_eq!(got["requesttype"], "patch-profile");
    v.call("UserRequestApprove", json!({"requestuuid": uuid})).await.error(409, "This user request is closed");
    assert_eq!(profile(v, &token).await["email"], "can@example.com");
});

// Regression (found while fuzzing): an approved patch request could nest the profile deeper than
// the vault reads back, leaving the user unreadable.
both!(approving_a_patch_that_nests_too_deep_is_refused_and_leaves_the_request_open, |v| {
    let token = v.create_user(json!({"login": "deep", "a": [[[[[[[[[[1]]]]]]]]]]})).await;
    let inner = (0..120).fold(json!(1), |inner, _| json!([inner]));
    let path = format!("/a{}", "/0".repeat(9));
    let uuid =
        file(v, "UserPatchRequest", with(&token, json!({"patch": [{"op": "replace", "path": path, "value": inner}]})))
            .await;
    v.call("UserRequestApprove", json!({"requestuuid": uuid})).await.error(400, "The profile is nested too deeply");
    assert_eq!(request(v, &uuid).await["status"], "open");
    assert_eq!(profile(v, &token).await["a"], json!([[[[[[[[[[1]]]]]]]]]]));
});

both!(patch_request_is_checked_when_filed_and_applied_when_approved, |v| {
    let token = v.create_user(json!({"login": "pat", "tags": ["a"]})).await;
    v.call("UserPatchRequest", with(&token, json!({"patch": {"op": "add"}})))
        .await
        .error(400, "The patch parameter has an incorrect format");
    v.call("UserPatchRequest", who(&token)).await.error(400, "Missing API request parameters: patch");
    let add =
        file(v, "UserPatchRequest", with(&token, json!({"patch": [{"op": "add", "path": "/tags/-", "value": "b"}]})))
            .await;
    v.call("UserRequestApprove", json!({"requestuuid": add})).await.ok();
    assert_eq!(profile(v, &token).await["tags"], json!(["a", "b"]));

    // A patch whose `test` no longer holds fails at approval: nothing changes, the request
    // stays open for a decision.
    let stale = file(
        v,
        "UserPatchRequest",
        with(
            &token,
            json!({"patch": [{"op": "test", "path": "/login", "value": "other"},
                                      {"op": "remove", "path": "/tags"}]}),
        ),
    )
    .await;
    v.call("UserRequestApprove", json!({"requestuuid": stale}))
        .await
        .error(400, "Failed to apply the patch: operation 0 failed");
    assert_eq!(profile(v, &token).await["tags"], json!(["a", "b"]));
    assert_eq!(request(v, &stale).await["status"], "open");
});

both!(approval_that_would_clash_leaves_the_request_open, |v| {
    v.create_user(json!({"login": "holder", "email": "taken@example.com"})).await;
    let token = v.create_user(json!({"login": "asker", "email": "asker@example.com"})).await;
    let uuid = file(v, "UserUpdateRequest", with(&token, json!({"profile": {"email": "taken@example.com"}}))).await;
    v.call("UserRequestApprove", json!({"requestuuid": uuid})).await.error(409, "Duplicate index: email");
    assert_eq!(request(v, &uuid).await["status"], "open");
    assert_eq!(profile(v, &token).await["email"], "asker@example.com");
    v.call("UserRequestCancel", json!({"requestuuid": uuid})).await.ok();
});

both!(appdata_update_request, |v| {
    let token = v.create_user(json!({"login": "app"})).await;
    v.call("AppdataUpdateRequest", with(&token, json!({"appname": "shop", "appdata": {"cart": 2}})))
        .await
        .error(404, "The app record was not found");
    v.call("AppdataUpdateRequest", with(&token, json!({"appname": "Bad Name!", "appdata": {}})))
        .await
        .error(400, "The appname parameter has an incorrect format");
    v.call("AppdataCreate", with(&token, json!({"appname": "shop", "appdata": {"cart": 1, "note": "x"}}))).await.ok();
    v.call("AppdataUpdateRequest", with(&token, json!({"appname": "shop"})))
        .await
        .error(400, "Missing API request parameters: appdata");
    let uuid = file(v, "AppdataUpdateRequest", with(&token, json!({"appname": "Shop", "appdata": {"cart": 2}}))).await;
    let got = request(v, &uuid).await;
    assert_eq!((got["requesttype"].clone(), got["app"].clone()), (json!("change-app-data"), json!("shop")));
    assert_eq!(got["change"], json!({"cart": 2}));
    let appdata = || v.call("AppdataGet", with(&token, json!({"appname": "shop"})));
    assert_eq!(appdata().await.ok()["appdata"], json!({"cart": 1, "note": "x"}));
    v.call("UserRequestApprove", json!({"requestuuid": uuid})).await.ok();
    let got = appdata().await.ok();
    assert_eq!(got["appdata"], json!({"cart": 2, "note": "x"}));
    assert_eq!(got["version"], 2);
});

both!(agreement_cancel_request, |v| {
    v.call("LegalBasisCreate", json!({"brief": "marketing", "basistype": "consent"})).await.ok();
    let token = v.create_user(json!({"login": "agr"})).await;
    v.call("AgreementCancelRequest", with(&token, json!({"brief": "marketing"})))
        .await
        .error(404, "The agreement record was not found");
    v.call("AgreementAccept", with(&token, json!({"brief": "marketing", "agreementmethod": "web"}))).await.ok();
    let uuid = file(v, "AgreementCancelRequest", with(&token, json!({"brief": "Marketing"}))).await;
    let got = request(v, &uuid).await;
    assert_eq!((got["requesttype"].clone(), got["brief"].clone()), (json!("agreement-withdraw"), json!("marketing")));
    assert!(got.get("change").is_none(), "{got}");
    let agreement = || v.call("AgreementGet", with(&token, json!({"brief": "marketing"})));
    assert_eq!(agreement().await.ok()["agreement"]["status"], "active");
    v.call("UserRequestApprove", json!({"requestuuid": uuid})).await.ok();
    let got = agreement().await.ok()["agreement"].clone();
    assert_eq!(got["status"], "canceled");
    assert_eq!(got["history"].as_array().map(Vec::len), Some(2));
});

both!(approved_deletion_erases_the_user_and_its_requests, |v| {
    let token = v.create_user(json!({"login": "leaver", "email": "Quokka-Leaver-51@example.com"})).await;
    let keeper = v.create_user(json!({"login": "keeper"})).await;
    let kept = file(v, "UserUpdateRequest", with(&keeper, json!({"profile": {"x": 1}}))).await;
    let change = file(v, "UserUpdateRequest", with(&token, json!({"profile": {"nickname": "Wombat-Change-77"}}))).await;
    let forget = file(v, "UserDeleteRequest", json!({"mode": "login", "identity": "leaver"})).await;
    // The change and the reason are sealed: not in the database in clear.
    v.call("UserRequestCancel", json!({"requestuuid": change, "reason": "Reason-Numbat-93"})).await.ok();
    assert_absent(&v.dump().await, &["Wombat-Change-77", "Reason-Numbat-93", "Quokka-Leaver-51"]);

    v.call("UserRequestApprove", json!({"requestuuid": forget})).await.ok();
    v.call("UserGet", who(&token)).await.error(404, "The user record was not found");
    for uuid in [&change, &forget] {
        v.call("UserRequestGet", json!({"requestuuid": uuid})).await.error(404, "The user request was not found");
        v.call("UserRequestApprove", json!({"requestuuid": uuid})).await.error(404, "The user request was not found");
    }
    v.call("UserRequestListUserRequests", who(&token)).await.error(404, "The user record was not found");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM user_requests").await, 1);
    assert_eq!(request(v, &kept).await["status"], "open");
    assert_absent(&v.dump().await, &["Wombat-Change-77", "Reason-Numbat-93", "Quokka-Leaver-51"]);
});

both!(user_delete_erases_open_requests, |v| {
    let token = v.create_user(json!({"login": "direct"})).await;
    let uuid = file(v, "UserUpdateRequest", with(&token, json!({"profile": {"x": 1}}))).await;
    v.call("UserDelete", who(&token)).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM user_requests").await, 0);
    v.call("UserRequestApprove", json!({"requestuuid": uuid})).await.error(404, "The user request was not found");
});

both!(list_pages_with_total, |v| {
    let token = v.create_user(json!({"login": "lister"})).await;
    let mut filed = Vec::new();
    for i in 0..5 {
        filed.push(file(v, "UserUpdateRequest", with(&token, json!({"profile": {"n": i}}))).await);
    }
    v.call("UserRequestApprove", json!({"requestuuid": filed[0]})).await.ok();
    let page = v.call("UserRequestListUserRequests", with(&token, json!({"offset": "1", "limit": 2}))).await.ok();
    assert_eq!(page["total"], 5);
    let rows = page["rows"].as_array().expect("rows");
    assert_eq!(
        rows.iter().map(|r| r["requestuuid"].clone()).collect::<Vec<_>>(),
        vec![json!(filed[1]), json!(filed[2])]
    );
    assert_eq!(rows[0]["requesttype"], "change-profile");
    assert_eq!(rows[0]["status"], "open");
    // Listing shows no personal data: the change is only in UserRequestGet.
    assert!(rows[0].get("change").is_none(), "{}", rows[0]);
    let first = v.call("UserRequestListUserRequests", who(&token)).await.ok();
    assert_eq!(first["rows"][0]["status"], "approved");
    let past = v.call("UserRequestListUserRequests", with(&token, json!({"offset": 50}))).await.ok();
    assert_eq!((past["total"].clone(), past["rows"].clone()), (json!(5), json!([])));
});

both!(bad_input_is_refused, |v| {
    let token = v.create_user(json!({"login": "bad"})).await;
    v.call("UserRequestGet", json!({})).await.error(400, "Missing API request parameters: requestuuid");
    v.call("UserRequestApprove", json!({"requestuuid": "nope"})).await.error(400, "Bad UUID");
    let unknown = "00000000-0000-4000-8000-000000000000";
    v.call("UserRequestGet", json!({"requestuuid": unknown})).await.error(404, "The user request was not found");
    v.call("UserRequestCancel", json!({"requestuuid": unknown})).await.error(404, "The user request was not found");
    v.call("UserUpdateRequest", who(&token)).await.error(400, "Missing API request parameters: profile");
    v.call("UserUpdateRequest", with(&token, json!({"profile": [1]})))
        .await
        .error(400, "The profile parameter has an incorrect format");
    v.call("UserDeleteRequest", json!({"mode": "login", "identity": "nobody"}))
        .await
        .error(404, "The user record was not found");
    v.call("UserDeleteRequest", json!({"mode": "login"})).await.error(400, "Missing API request parameters: identity");
    v.call("AgreementCancelRequest", who(&token)).await.error(400, "Missing API request parameters: brief");
    // Without a token nothing is filed or resolved.
    v.call_as("UserDeleteRequest", None, None, who(&token)).await.error(403, "Access denied");
    let uuid = file(v, "UserDeleteRequest", who(&token)).await;
    v.call_as("UserRequestApprove", Some("wrong-token"), None, json!({"requestuuid": uuid}))
        .await
        .error(403, "Access denied");
    v.call("UserGet", who(&token)).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM user_requests").await, 1);
});

both!(concurrent_approvals_apply_once, |v| {
    let token = v.create_user(json!({"login": "race", "n": 0})).await;
    let uuid = file(
        v,
        "UserPatchRequest",
        with(
            &token,
            json!({"patch": [{"op": "add", "path": "/tags", "value": []},
                                                                     {"op": "add", "path": "/tags/-", "value": 1}]}),
        ),
    )
    .await;
    let approve = || v.call("UserRequestApprove", json!({"requestuuid": uuid}));
    let answers = futures::future::join_all((0..4).map(|_| approve())).await;
    let ok = answers.iter().filter(|a| a.status.as_u16() == 200).count();
    let closed = answers.iter().filter(|a| a.status.as_u16() == 409).count();
    assert_eq!((ok, closed), (1, 3), "{answers:?}");
    assert_eq!(profile(v, &token).await["tags"], json!([1]));
    assert_eq!(v.call("UserGet", who(&token)).await.ok()["version"], 2);
});

both!(every_step_is_audited_on_the_user, |v| {
    let token = v.create_user(json!({"login": "aud"})).await;
    let uuid = file(v, "UserUpdateRequest", with(&token, json!({"profile": {"city": "York"}}))).await;
    v.call("UserRequestApprove", json!({"requestuuid": uuid})).await.ok();
    let events = v.call("AuditListUserEvents", with(&token, json!({"limit": 100}))).await.ok();
    let rows = events["rows"].as_array().expect("rows");
    let find = |title: &str| rows.iter().find(|r| r["title"] == title).cloned().expect(title);
    for title in ["UserUpdateRequest", "UserRequestApprove"] {
        let event = find(title);
        let details = v.call("AuditGetEvent", json!({"auditeventuuid": event["auditeventuuid"]})).await.ok();
        let text = details.to_string();
        assert!(text.contains(&uuid) && text.contains("York"), "{title}: {text}");
    }
});
