//! Authentication: what is denied, with which answer, and that denials leave no trace.

use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;

/// The root token with one character changed.
fn one_char_off(token: &str, index: usize) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = index.min(chars.len() - 1);
    chars[i] = if chars[i] == '0' { '1' } else { '0' };
    chars.into_iter().collect()
}

/// Tokens that must all be refused.
fn bad_tokens(root: &str) -> Vec<String> {
    vec![
        String::new(),
        "   ".to_owned(),
        "not-a-token".to_owned(),
        uuid::Uuid::new_v4().to_string(),
        uuid::Uuid::nil().to_string(),
        one_char_off(root, 0),
        one_char_off(root, root.len() / 2),
        one_char_off(root, root.len() - 1),
        format!("{root}0"),
        root[..root.len() - 1].to_owned(),
        root.replace('-', ""),
    ]
}

/// The number of audit events listed for a user (as root).
async fn event_total(v: &TestVault, token: &str) -> i64 {
    let body = v.call("AuditListUserEvents", json!({"mode": "token", "identity": token})).await.ok();
    body["total"].as_i64().expect("total")
}

both!(no_token_is_denied, |v| {
    let token = v.create_user(json!({"login": "a"})).await;
    v.call_as("UserGet", None, None, json!({"mode": "token", "identity": token})).await.error(403, "Access denied");
    v.request("/v2/UserGet", None, None, None).await.error(403, "Access denied");
    // Even with the main tenant named.
    v.call_as("UserGet", None, Some("main"), json!({"mode": "token", "identity": token}))
        .await
        .error(403, "Access denied");
    // The root token works, so the denial above was about the token.
    v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
});

both!(empty_wrong_and_near_miss_tokens_are_denied, |v| {
    let token = v.create_user(json!({"login": "a"})).await;
    for bad in bad_tokens(&v.root) {
        assert_ne!(bad, v.root);
        v.call_as("UserGet", Some(&bad), None, json!({"mode": "token", "identity": token}))
            .await
            .error(403, "Access denied");
        v.call_as("UserCreate", Some(&bad), None, json!({"profile": {"login": "intruder"}}))
            .await
            .error(403, "Access denied");
    }
    // Nothing was created by the refused calls.
    v.call("UserGet", json!({"mode": "login", "identity": "intruder"}))
        .await
        .error(404, "The user record was not found");
    // A near-miss after a success must not be served from a cache of verified tokens.
    v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    let near = one_char_off(&v.root, v.root.len() - 1);
    v.call_as("UserGet", Some(&near), None, json!({"mode": "token", "identity": token}))
        .await
        .error(403, "Access denied");
});

both!(the_main_tenant_header_works, |v| {
    let token = v.create_user(json!({"login": "m"})).await;
    let got = v.call_as("UserGet", Some(&v.root), Some("main"), json!({"mode": "login", "identity": "m"})).await.ok();
    assert_eq!(got["token"], token.as_str());
    // And what is created under the header is the same tenant as without it.
    let body = v.call_as("UserCreate", Some(&v.root), Some("main"), json!({"profile": {"login": "m2"}})).await.ok();
    let got = v.call("UserGet", json!({"mode": "login", "identity": "m2"})).await.ok();
    assert_eq!(got["token"], body["token"]);
});

both!(an_unknown_tenant_is_not_found, |v| {
    let token = v.create_user(json!({"login": "t"})).await;
    for tenant in ["nosuchtenant", "main2", "acme"] {
        v.call_as("UserGet", Some(&v.root), Some(tenant), json!({"mode": "token", "identity": token}))
            .await
            .error(404, "The tenant record was not found");
    }
    // Authentication comes first: without a valid token the tenant's existence is not revealed.
    v.call_as("UserGet", None, Some("nosuchtenant"), json!({"mode": "token", "identity": token}))
        .await
        .error(403, "Access denied");
    let wrong = uuid::Uuid::new_v4().to_string();
    v.call_as("UserGet", Some(&wrong), Some("nosuchtenant"), json!({"mode": "token", "identity": token}))
        .await
        .error(403, "Access denied");
});

both!(denied_calls_write_no_audit_event, |v| {
    let token = v.create_user(json!({"login": "quiet"})).await;
    let before_total = event_total(v, &token).await;
    // UserCreate only.
    assert_eq!(before_total, 1);
    let rows_before = v.scalar("SELECT COUNT(*) FROM audit_events").await;
    let wrong = uuid::Uuid::new_v4().to_string();
    let near = one_char_off(&v.root, 3);
    let get = json!({"mode": "token", "identity": token});
    for token in [None, Some(""), Some(wrong.as_str()), Some(near.as_str())] {
        v.call_as("UserGet", token, None, get.clone()).await.error(403, "Access denied");
        v.call_as("UserUpdate", token, None, json!({"mode": "login", "identity": "quiet", "profile": {"x": 1}}))
            .await
            .error(403, "Access denied");
        v.call_as("AuditListUserEvents", token, None, get.clone()).await.error(403, "Access denied");
    }
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events").await, rows_before, "a denied call was audited");
    // The only new event of the user is the listing above itself.
    assert_eq!(event_total(v, &token).await, before_total + 1);
    let got = v.call("UserGet", get).await.ok();
    assert_eq!(got["profile"], json!({"login": "quiet"}), "a denied update changed the profile");
});

both!(every_operation_requires_a_token, |v| {
    let names: Vec<&str> = bunker::app::operations().iter().map(|op| op.name).collect();
    for expected in ["UserCreate", "UserGet", "UserDelete", "AuditListUserEvents", "AuditGetEvent"] {
        assert!(names.contains(&expected), "{expected} is not routed: {names:?}");
    }
    let wrong = uuid::Uuid::new_v4().to_string();
    let rows_before = v.scalar("SELECT COUNT(*) FROM audit_events").await;
    for name in &names {
        let path = format!("/v2/{name}");
        for token in [None, Some(""), Some(wrong.as_str())] {
            let answer = v.request(&path, token, None, None).await;
            assert_eq!(answer.status.as_u16(), 403, "{name} without a valid token: {}", answer.body);
            answer.error(403, "Access denied");
            v.call_as(name, token, None, json!({})).await.error(403, "Access denied");
            v.call_as(name, token, Some("main"), json!({"mode": "login", "identity": "x"}))
                .await
                .error(403, "Access denied");
        }
    }
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events").await, rows_before);
    // The names really are routed: with the root token none of them is "not found".
    for name in &names {
        let answer = v.call(name, json!({})).await;
        assert_ne!(answer.body["message"], Value::from("The API request was not found"), "{name}");
        // (Bulk operations answer a 400 of their own for a missing unlockuuid; that is not a denial of root.)
        assert_ne!(answer.body["message"], Value::from("Access denied"), "{name} denied to root: {}", answer.body);
    }
});
