//! Masking: a role whose policies show some profile fields reads every other string field as
//! "***" and nothing of the others, in every operation that answers a profile; the stored record
//! is untouched; a write needs the whole record in view; the audit trail names what was masked
//! and why, never the hidden values.

use md5::Digest;
use serde_json::{Value, json};

use crate::access_support::{allow, assert_denied, by_token, call_with, deny, role_token, role_with, role_xtoken};
use crate::both;
use crate::common::TestVault;

/// Vera's profile as stored: strings, a number, a boolean, an array and an object.
fn vera() -> Value {
    json!({"login": "vera-login", "email": "vera@mask.test", "name": "Vera Stone", "phone": "+447700900123",
           "age": 41, "address": {"city": "Leeds", "zip": "LS1 4AP"}, "vip": true, "tags": ["gold", "early"],
           "note": "prefers post"})
}

/// Vera's profile as a role that may see `name` only reads it: other strings masked, the rest
/// left out, in the stored order.
fn vera_names_only() -> Value {
    json!({"login": "***", "email": "***", "name": "Vera Stone", "phone": "***", "note": "***"})
}

/// Values of Vera's that a role seeing names only must never be shown.
const HIDDEN: [&str; 8] =
    ["vera-login", "vera@mask.test", "447700900123", "Leeds", "LS1 4AP", "prefers post", "gold", "moved house"];

/// Every operation that answers a profile, and the listing and sharing they need.
const READS: [&str; 10] = [
    "UserGet",
    "UserListVersions",
    "BulkListUnlock",
    "BulkListUsers",
    "BulkListAllUsers",
    "BulkListGroupUsers",
    "UserSearch",
    "SystemGetUserReport",
    "SharedRecordCreate",
    "UserUpdate",
];

/// Asserts that no hidden value of Vera's occurs in `answer`.
#[track_caller]
fn assert_hides(answer: &Value) {
    let text = answer.to_string();
    for value in HIDDEN {
        assert!(!text.contains(value), "{value} is shown: {text}");
    }
}

/// The md5 the vault gives a profile (of its JSON text, keys in stored order).
fn md5_of(profile: &Value) -> String {
    hex::encode(md5::Md5::digest(serde_json::to_vec(profile).expect("json")))
}

/// Vera (updated once, so she has two versions) in group "club" with another member; her token.
async fn seed(v: &TestVault) -> String {
    let token = v.create_user(vera()).await;
    v.call("UserUpdate", by_token(&token, json!({"profile": {"note": "moved house"}}))).await.ok();
    v.call("UserUpdate", by_token(&token, json!({"profile": {"note": "prefers post"}}))).await.ok();
    let other = v.create_user(json!({"login": "otto", "name": "Otto", "email": "otto@mask.test"})).await;
    v.call("GroupCreate", json!({"groupname": "club"})).await.ok();
    for member in [&token, &other] {
        v.call("GroupAddUser", by_token(member, json!({"groupname": "club"}))).await.ok();
    }
    token
}

both!(a_role_seeing_names_only_reads_masked_profiles_everywhere, |v| {
    let token = seed(v).await;
    let (xtoken, _) = role_xtoken(v, "names", &[allow(&READS, &["users.profile.name"])]).await;
    let masked = vera_names_only();
    let me = by_token(&token, json!({}));

    let got = call_with(v, &xtoken, "UserGet", me.clone()).await.ok();
    assert_eq!(got["profile"], masked);
    assert_eq!((&got["token"], &got["version"]), (&json!(token), &json!(3)));
    // Superseded versions are masked the same way.
    let first = call_with(v, &xtoken, "UserGet", by_token(&token, json!({"version": 1}))).await.ok();
    assert_eq!(first["profile"], masked);
    let second = call_with(v, &xtoken, "UserGet", by_token(&token, json!({"version": 2}))).await.ok();
    assert_eq!(second["profile"], masked, "the note of version 2 is masked too");
    for (mode, identity) in [("email", "vera@mask.test"), ("login", "vera-login"), ("phone", "+447700900123")] {
        let got = call_with(v, &xtoken, "UserGet", json!({"mode": mode, "identity": identity})).await.ok();
        assert_eq!(got["profile"], masked, "by {mode}");
    }

    // The versions' md5s are of the masked profiles: a digest of hidden values would let the
    // role test guesses of them.
    let versions = call_with(v, &xtoken, "UserListVersions", me.clone()).await.ok();
    let stored = v.call("UserListVersions", me.clone()).await.ok();
    let md5s = |body: &Value| -> Vec<String> {
        body["versions"]
            .as_array()
            .expect("versions")
            .iter()
            .map(|r| r["md5"].as_str().expect("md5").to_owned())
            .collect()
    };
    assert_eq!(md5s(&versions), vec![md5_of(&masked); 3], "{versions}");
    for (seen, real) in md5s(&versions).iter().zip(md5s(&stored)) {
        assert_ne!(*seen, real, "the role got the digest of a whole profile");
    }
    let current = v.call("UserGet", me.clone()).await.ok();
    assert_eq!(md5s(&stored).last(), Some(&md5_of(&current["profile"])));

    // Listings: the same masked profile in every row.
    let unlock = call_with(v, &xtoken, "BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    let listed =
        call_with(v, &xtoken, "BulkListUsers", json!({"unlockuuid": unlock, "users": [me.clone()]})).await.ok();
    assert_eq!(listed["rows"][0]["profile"], masked);
    assert_eq!(listed["rows"][0]["token"], token);
    let all = call_with(v, &xtoken, "BulkListAllUsers", json!({"unlockuuid": unlock})).await.ok();
    let rows = all["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{all}");
    let row = |token: &str| rows.iter().find(|r| r["token"] == token).expect("row")["profile"].clone();
    assert_eq!(row(&token), masked);
    assert!(rows.iter().any(|r| r["profile"] == json!({"login": "***", "name": "Otto", "email": "***"})), "{all}");
    let members =
        call_with(v, &xtoken, "BulkListGroupUsers", json!({"unlockuuid": unlock, "groupname": "club"})).await.ok();
    assert_eq!(members["total"], 2);
    let member = members["rows"].as_array().expect("rows").iter().find(|r| r["token"] == token).expect("vera");
    assert_eq!(member["profile"], masked);
    // Search matches what the role sees (search looks at login, email, phone and custom): a
    // role that sees emails finds Vera by hers; this role, which sees names only, finds nothing
    // by a hidden field, so a hidden value cannot be probed by searching for it.
    let (emails, _) =
        role_xtoken(v, "emails", &[allow(&["BulkListUnlock", "UserSearch"], &["users.profile.email"])]).await;
    let its_unlock = call_with(v, &emails, "BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    let body = json!({"unlockuuid": its_unlock, "identity": "vera@mask.test"});
    let found = call_with(v, &emails, "UserSearch", body).await.ok();
    assert_eq!(found["rows"][0]["profile"]["email"], "vera@mask.test", "{found}");
    assert_eq!(found["rows"][0]["profile"]["name"], "***", "{found}");
    for search in [json!({"identity": "vera@mask.test"}), json!({"identity": "vera-login", "mode": "login"})] {
        let mut body = search.clone();
        body["unlockuuid"] = unlock.clone();
        let found = call_with(v, &xtoken, "UserSearch", body).await.ok();
        assert_eq!(found["rows"], json!([]), "{search}");
        let mut body = search.clone();
        body["unlockuuid"] = root_unlock(v).await;
        let seen_by_root = v.call("UserSearch", body).await.ok();
        assert_eq!(seen_by_root["rows"][0]["token"], token, "root finds what the role may not search");
    }
    for answer in [&listed, &all, &members] {
        assert_hides(answer);
    }

    // A report shows more than the profile: it needs the whole record in view.
    assert_denied(call_with(v, &xtoken, "SystemGetUserReport", me.clone()).await);

    // A record shared by the role shares what the role sees.
    let shared = call_with(v, &xtoken, "SharedRecordCreate", me.clone()).await.ok();
    let opened = v.call_as("SharedRecordGet", None, None, json!({"recorduuid": shared["recorduuid"]})).await.ok();
    assert_eq!(opened["data"], masked);
    let some = call_with(v, &xtoken, "SharedRecordCreate", by_token(&token, json!({"fields": "name,email,age"}))).await;
    let some = v.call_as("SharedRecordGet", None, None, json!({"recorduuid": some.ok()["recorduuid"]})).await.ok();
    assert_eq!(some["data"], json!({"email": "***", "name": "Vera Stone"}));

    // A change of a field the role does not see is refused, and nothing is written.
    assert_denied(call_with(v, &xtoken, "UserUpdate", by_token(&token, json!({"profile": {"email": "x@y.z"}}))).await);
    let mixed = json!({"profile": {"name": "V", "phone": "1"}});
    assert_denied(call_with(v, &xtoken, "UserUpdate", by_token(&token, mixed)).await);

    // The stored record is what it was: root reads it whole, at the same version.
    let after = v.call("UserGet", me.clone()).await.ok();
    assert_eq!(after["profile"], vera());
    assert_eq!(after["version"], 3);
    assert_eq!(v.call("UserListVersions", me).await.ok(), stored);
});

both!(a_field_level_deny_masks_what_an_allow_of_the_whole_profile_shows, |v| {
    let token = seed(v).await;
    let reads = ["UserGet", "BulkListUnlock", "BulkListUsers"];
    let (xtoken, _) = role_xtoken(
        v,
        "most",
        &[allow(&reads, &["users.profile.*"]), deny(&["UserGet", "BulkListUsers"], &["users.profile.email"])],
    )
    .await;
    let mut expected = vera();
    expected["email"] = json!("***");
    let got = call_with(v, &xtoken, "UserGet", by_token(&token, json!({}))).await.ok();
    assert_eq!(got["profile"], expected);
    let unlock = call_with(v, &xtoken, "BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    let users = json!([{"mode": "token", "identity": token}]);
    let listed = call_with(v, &xtoken, "BulkListUsers", json!({"unlockuuid": unlock, "users": users})).await.ok();
    assert_eq!(listed["rows"][0]["profile"], expected);

    // Inside an object: the denied key is masked, its siblings shown; a denied number goes.
    let (nested, _) = role_xtoken(
        v,
        "nested",
        &[json!([
            {"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile.*"},
            {"Effect": "Deny", "Action": "UserGet", "Resource": ["users.profile.address.city", "users.profile.age"]}
        ])],
    )
    .await;
    let got = call_with(v, &nested, "UserGet", by_token(&token, json!({}))).await.ok();
    let mut expected = vera();
    expected["address"]["city"] = json!("***");
    expected.as_object_mut().expect("profile").remove("age");
    assert_eq!(got["profile"], expected);

    // An Allow of one nested field shows that field only, inside its object.
    let (city, _) = role_xtoken(v, "city", &[allow(&["UserGet"], &["users.profile.address.city"])]).await;
    let got = call_with(v, &city, "UserGet", by_token(&token, json!({}))).await.ok();
    assert_eq!(
        got["profile"],
        json!({"login": "***", "email": "***", "name": "***", "phone": "***", "address": {"city": "Leeds", "zip": "***"},
               "note": "***"})
    );
    // The whole profile denied by one policy while another allows it: the call is refused.
    let (refused, _) =
        role_xtoken(v, "refused", &[allow(&["UserGet"], &["users.profile.*"]), deny(&["UserGet"], &["users.profile"])])
            .await;
    assert_denied(call_with(v, &refused, "UserGet", by_token(&token, json!({}))).await);
});

/// The details of the newest event of `title` by a role principal about the user `token`, read
/// back as root.
async fn role_event(v: &TestVault, token: &str, title: &str) -> Value {
    let events = v.call("AuditListUserEvents", by_token(token, json!({"limit": 100}))).await.ok();
    for row in events["rows"].as_array().expect("rows") {
        if row["title"] != title {
            continue;
        }
        let event = v.call("AuditGetEvent", json!({"auditeventuuid": row["auditeventuuid"]})).await.ok();
        if event["principalkind"] == "role" {
            return event;
        }
    }
    panic!("no {title} event by a role: {events}")
}

both!(the_audit_event_of_a_masked_read_names_the_fields_and_policies_not_the_values, |v| {
    let token = seed(v).await;
    let (roleid, policies) = role_with(v, "names", &[allow(&["UserGet", "UserUpdate"], &["users.profile.name"])]).await;
    let xtoken = role_token(v, roleid).await;
    call_with(v, &xtoken, "UserGet", by_token(&token, json!({"request_metadata": {"purpose": "support"}}))).await.ok();

    let event = role_event(v, &token, "UserGet").await;
    assert_eq!(event["httpstatus"], 200);
    let details = &event["details"];
    assert_eq!(details["usertoken"], token);
    assert_eq!(details["request_metadata"], json!({"purpose": "support"}));
    let masked = json!(["login", "email", "phone", "age", "address", "vip", "tags", "note"]);
    assert_eq!(details["extra"]["access"], json!([{"decision": "allow", "policies": policies, "masked": masked}]));
    assert_hides(&event);
    assert!(!details.to_string().contains("Vera Stone"), "a read's event holds no profile value: {event}");

    // A refused change: the reason and the policy, and nothing of what it tried to write.
    let change = json!({"profile": {"email": "stolen@mask.test"}});
    assert_denied(call_with(v, &xtoken, "UserUpdate", by_token(&token, change)).await);
    let event = role_event(v, &token, "UserUpdate").await;
    assert_eq!(event["httpstatus"], 403);
    let access = &event["details"]["extra"]["access"];
    assert_eq!(
        access,
        &json!([{"decision": "deny", "reason": "the operation needs the whole record in view", "policies": policies}])
    );
    assert_hides(&event);
    assert!(!event.to_string().contains("stolen@mask.test"), "{event}");
});

both!(a_report_needs_the_whole_record_in_view, |v| {
    // A report shows app data, sessions, shared records and requested changes besides the
    // profile: a role that sees only some profile fields is refused it, not shown it in part.
    let token = seed(v).await;
    let me = |extra: Value| by_token(&token, extra);
    v.call("AppdataCreate", me(json!({"appname": "crm", "appdata": {"memo": "moved house"}}))).await.ok();
    let (xtoken, _) = role_xtoken(v, "names", &[allow(&["SystemGetUserReport"], &["users.profile.name"])]).await;
    assert_denied(call_with(v, &xtoken, "SystemGetUserReport", me(json!({}))).await);
    let (whole, _) = role_xtoken(v, "whole", &[allow(&["SystemGetUserReport"], &["users.*"])]).await;
    let report = call_with(v, &whole, "SystemGetUserReport", me(json!({}))).await.ok();
    assert_eq!(report["report"]["profile"]["name"], "Vera Stone");
});

both!(a_masked_role_is_refused_request_changes, |v| {
    // A request carries the values a user asked for: a role that sees only names is refused it.
    let token = seed(v).await;
    let change = json!({"profile": {"email": "vera@mask.test", "phone": "+447700900123", "name": "Vera S."}});
    let request = v.call("UserUpdateRequest", by_token(&token, change)).await.ok();
    let (xtoken, _) =
        role_xtoken(v, "names", &[allow(&["UserRequestGet", "UserRequestListUserRequests"], &["users.profile.name"])])
            .await;
    assert_denied(call_with(v, &xtoken, "UserRequestGet", json!({"requestuuid": request["requestuuid"]})).await);
    assert_denied(call_with(v, &xtoken, "UserRequestListUserRequests", by_token(&token, json!({}))).await);
});

/// An unlockuuid of root's.
async fn root_unlock(v: &TestVault) -> Value {
    v.call("BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone()
}

both!(a_role_changes_exactly_the_fields_it_sees, |v| {
    let token = seed(v).await;
    let me = |extra: Value| by_token(&token, extra);
    let (xtoken, _) = role_xtoken(v, "names", &[allow(&["UserUpdate", "UserPatch"], &["users.profile.name"])]).await;
    // The field it sees: changed, and the hidden ones kept as they were.
    call_with(v, &xtoken, "UserUpdate", me(json!({"profile": {"name": "Vera S."}}))).await.ok();
    let stored = v.call("UserGet", me(json!({}))).await.ok()["profile"].clone();
    let mut expected = vera();
    expected["name"] = json!("Vera S.");
    assert_eq!(stored, expected);
    let patch = json!([{"op": "replace", "path": "/name", "value": "Vera T."}]);
    call_with(v, &xtoken, "UserPatch", me(json!({"patch": patch}))).await.ok();
    assert_eq!(v.call("UserGet", me(json!({}))).await.ok()["profile"]["name"], "Vera T.");
    // A field it does not see, by any route: refused, nothing written, and no probe by `test`.
    for patch in [
        json!([{"op": "replace", "path": "/email", "value": "x@y.z"}]),
        json!([{"op": "copy", "from": "/email", "path": "/name"}]),
        json!([{"op": "test", "path": "/email", "value": "vera@mask.test"}, {"op": "replace", "path": "/name", "value": "n"}]),
        json!([{"op": "replace", "path": "", "value": {}}]),
    ] {
        assert_denied(call_with(v, &xtoken, "UserPatch", me(json!({"patch": patch}))).await);
    }
    assert_denied(call_with(v, &xtoken, "UserUpdate", me(json!({"profile": {"vip": true}}))).await);
    let mut expected = vera();
    expected["name"] = json!("Vera T.");
    assert_eq!(v.call("UserGet", me(json!({}))).await.ok()["profile"], expected);
});
