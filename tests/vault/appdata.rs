//! The app data API: per-user app records, merge updates, versions, listings, erasure.

use serde_json::{Value, json};

use crate::both;
use crate::common::{TestVault, assert_absent};

/// The `mode`/`identity`/`appname` body for a user token, with extra fields.
fn addr(token: &str, appname: &str, extra: Value) -> Value {
    let mut body = json!({"mode": "token", "identity": token, "appname": appname});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

async fn create_app(v: &TestVault, token: &str, appname: &str, appdata: Value) {
    v.call("AppdataCreate", addr(token, appname, json!({"appdata": appdata}))).await.ok();
}

async fn apps(v: &TestVault, token: &str) -> Value {
    v.call("AppdataListUserAppNames", json!({"mode": "token", "identity": token})).await.ok()["apps"].clone()
}

/// `AppdataListAppNames` sent as PHP sends it: no body at all.
async fn all_apps(v: &TestVault) -> Value {
    v.request("/v2/AppdataListAppNames", Some(&v.root), None, None).await.ok()["apps"].clone()
}

both!(create_get_and_merge_update, |v| {
    let token = v.create_user(json!({"email": "app@x.io"})).await;
    create_app(v, &token, "Shop", json!({"cart": [1, 2], "theme": "dark", "n": 3})).await;
    // Any identity mode, and the app name in any case, address the same record.
    let got = v.call("AppdataGet", json!({"mode": "email", "identity": "app@x.io", "appname": "shop"})).await.ok();
    assert_eq!(got["appdata"], json!({"cart": [1, 2], "theme": "dark", "n": 3}));
    assert_eq!((got["version"].clone(), got["appname"].clone()), (json!(1), json!("shop")));
    v.call("AppdataUpdate", addr(&token, "SHOP", json!({"appdata": {"theme": null, "n": 4, "lang": "fr"}}))).await.ok();
    let got = v.call("AppdataGet", addr(&token, "shop", json!({}))).await.ok();
    assert_eq!(got["appdata"], json!({"cart": [1, 2], "n": 4, "lang": "fr"}));
    assert_eq!(got["version"], 2);
    // The profile is untouched by app data.
    let user = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!((user["profile"].clone(), user["version"].clone()), (json!({"email": "app@x.io"}), json!(1)));
});

both!(every_operation_needs_a_token, |v| {
    let token = v.create_user(json!({"login": "deny"})).await;
    create_app(v, &token, "shop", json!({"a": 1})).await;
    for op in [
        "AppdataCreate",
        "AppdataGet",
        "AppdataUpdate",
        "AppdataDelete",
        "AppdataListUserAppNames",
        "AppdataListAppNames",
        "AppdataListVersions",
    ] {
        v.call_as(op, None, None, addr(&token, "shop", json!({"appdata": {"a": 2}}))).await.error(403, "Access denied");
        v.call_as(op, Some("not-a-token"), None, addr(&token, "shop", json!({"appdata": {"a": 2}})))
            .await
            .error(403, "Access denied");
    }
    let got = v.call("AppdataGet", addr(&token, "shop", json!({}))).await.ok();
    assert_eq!((got["appdata"].clone(), got["version"].clone()), (json!({"a": 1}), json!(1)));
});

both!(bad_input_is_refused_without_echo, |v| {
    let token = v.create_user(json!({"login": "bad"})).await;
    for op in ["AppdataCreate", "AppdataGet", "AppdataUpdate", "AppdataDelete", "AppdataListVersions"] {
        let data = json!({"appdata": {"a": 1}});
        v.call(op, json!({"mode": "token", "identity": token, "appdata": {"a": 1}}))
            .await
            .error(400, "Missing API request parameters: appname");
        for bad in ["x", "1shop", "my-shop", "shop app", "a_very_long_application_name_here"] {
            v.call(op, addr(&token, bad, data.clone()))
                .await
                .error(400, "The appname parameter has an incorrect format");
        }
        v.call(op, json!({"identity": token, "appname": "shop"}))
            .await
            .error(400, "Missing API request parameters: mode");
        v.call(op, json!({"mode": "shoe", "identity": "x", "appname": "shop"}))
            .await
            .error(400, "The mode parameter has an incorrect format");
        v.call(op, json!({"mode": "token", "identity": "nope", "appname": "shop"})).await.error(400, "Bad UUID");
    }
    for op in ["AppdataCreate", "AppdataUpdate"] {
        v.call(op, addr(&token, "shop", json!({}))).await.error(400, "Missing API request parameters: appdata");
        for bad in [json!("text"), json!([1]), json!(5)] {
            v.call(op, addr(&token, "shop", json!({"appdata": bad})))
                .await
                .error(400, "The appdata parameter has an incorrect format");
        }
    }
    v.call("AppdataListUserAppNames", json!({"mode": "token"}))
        .await
        .error(400, "Missing API request parameters: identity");
    v.call("AppdataGet", addr(&token, "shop", json!({"version": "two"})))
        .await
        .error(400, "The version parameter has an incorrect format");
    // Nothing was created by the refused calls.
    assert_eq!(apps(v, &token).await, json!([]));
});

both!(missing_users_apps_and_versions_are_404, |v| {
    let nobody = "3b1f0c2e-8d4a-4f6b-9c1d-2e7a5b8c9d0f";
    for op in ["AppdataCreate", "AppdataGet", "AppdataUpdate", "AppdataDelete", "AppdataListVersions"] {
        v.call(op, addr(nobody, "shop", json!({"appdata": {"a": 1}})))
            .await
            .error(404, "The user record was not found");
    }
    v.call("AppdataListUserAppNames", json!({"mode": "email", "identity": "none@x.io"}))
        .await
        .error(404, "The user record was not found");
    let token = v.create_user(json!({"login": "nf"})).await;
    for op in ["AppdataGet", "AppdataUpdate", "AppdataDelete", "AppdataListVersions"] {
        v.call(op, addr(&token, "shop", json!({"appdata": {"a": 1}}))).await.error(404, "The app record was not found");
    }
    create_app(v, &token, "shop", json!({"a": 1})).await;
    v.call("AppdataGet", addr(&token, "shop", json!({"version": 2}))).await.error(404, "The app version was not found");
    // An app of one user is not visible through another user.
    let other = v.create_user(json!({"login": "other"})).await;
    v.call("AppdataGet", addr(&other, "shop", json!({}))).await.error(404, "The app record was not found");
});

both!(creating_an_existing_app_record_is_a_conflict, |v| {
    let token = v.create_user(json!({"login": "dup"})).await;
    create_app(v, &token, "shop", json!({"keep": "me"})).await;
    v.call("AppdataCreate", addr(&token, "Shop", json!({"appdata": {"keep": "not"}})))
        .await
        .error(409, "Duplicate app record");
    let got = v.call("AppdataGet", addr(&token, "shop", json!({}))).await.ok();
    assert_eq!((got["appdata"].clone(), got["version"].clone()), (json!({"keep": "me"}), json!(1)));
    // The same app name for another user is a separate record.
    let other = v.create_user(json!({"login": "dup2"})).await;
    create_app(v, &other, "shop", json!({"keep": "other"})).await;
});

both!(app_names_are_listed_per_user_and_per_tenant, |v| {
    assert_eq!(all_apps(v).await, json!([]));
    let alice = v.create_user(json!({"login": "alice"})).await;
    let bob = v.create_user(json!({"login": "bob"})).await;
    assert_eq!(apps(v, &alice).await, json!([]));
    create_app(v, &alice, "shop", json!({"a": 1})).await;
    create_app(v, &alice, "blog", json!({"a": 2})).await;
    create_app(v, &bob, "shop", json!({"b": 1})).await;
    create_app(v, &bob, "Zoo_1", json!({"b": 2})).await;
    assert_eq!(apps(v, &alice).await, json!(["blog", "shop"]));
    let by_login = v.call("AppdataListUserAppNames", json!({"mode": "login", "identity": "bob"})).await.ok();
    assert_eq!(by_login["apps"], json!(["shop", "zoo_1"]));
    assert_eq!(all_apps(v).await, json!(["blog", "shop", "zoo_1"]));
    // An empty JSON object works as well as no body.
    assert_eq!(v.call("AppdataListAppNames", json!({})).await.ok()["apps"], json!(["blog", "shop", "zoo_1"]));
});

both!(versions_are_listed_readable_and_pruned, |v| {
    let token = v.create_user(json!({"login": "ver"})).await;
    create_app(v, &token, "shop", json!({"step": 1})).await;
    for step in 2..=4 {
        v.call("AppdataUpdate", addr(&token, "shop", json!({"appdata": {"step": step}}))).await.ok();
    }
    let listed = v.call("AppdataListVersions", addr(&token, "shop", json!({}))).await.ok();
    let versions = listed["versions"].as_array().expect("versions");
    assert_eq!(versions.iter().map(|x| x["version"].as_i64().expect("int")).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    let md5 = |step: i64| {
        use md5::Digest;
        hex::encode(md5::Md5::digest(json!({"step": step}).to_string()))
    };
    for (i, entry) in versions.iter().enumerate() {
        assert_eq!(entry["md5"], md5(i as i64 + 1), "version {}", i + 1);
        assert!(entry["optime"].as_i64().expect("optime") > 1_700_000_000);
    }
    let old = v.call("AppdataGet", addr(&token, "shop", json!({"version": "2"}))).await.ok();
    assert_eq!((old["appdata"].clone(), old["version"].clone()), (json!({"step": 2}), json!(2)));
    let current = v.call("AppdataGet", addr(&token, "shop", json!({"version": 0}))).await.ok();
    assert_eq!((current["appdata"].clone(), current["version"].clone()), (json!({"step": 4}), json!(4)));
    // Ten superseded versions are kept (the default), plus the current one.
    for step in 5..=14 {
        v.call("AppdataUpdate", addr(&token, "shop", json!({"appdata": {"step": step}}))).await.ok();
    }
    let listed = v.call("AppdataListVersions", addr(&token, "shop", json!({}))).await.ok();
    let numbers: Vec<i64> =
        listed["versions"].as_array().expect("versions").iter().map(|x| x["version"].as_i64().expect("int")).collect();
    assert_eq!(numbers, (4..=14).collect::<Vec<_>>());
    v.call("AppdataGet", addr(&token, "shop", json!({"version": 3}))).await.error(404, "The app version was not found");
    // Versions are per app: another app of the same user starts at 1.
    create_app(v, &token, "blog", json!({"x": 1})).await;
    let blog = v.call("AppdataListVersions", addr(&token, "blog", json!({}))).await.ok();
    assert_eq!(blog["versions"].as_array().map(Vec::len), Some(1));
});

both!(delete_removes_the_record_and_its_versions, |v| {
    let token = v.create_user(json!({"login": "del"})).await;
    create_app(v, &token, "shop", json!({"a": 1})).await;
    create_app(v, &token, "blog", json!({"b": 1})).await;
    v.call("AppdataUpdate", addr(&token, "shop", json!({"appdata": {"a": 2}}))).await.ok();
    v.call("AppdataDelete", addr(&token, "Shop", json!({}))).await.ok();
    v.call("AppdataGet", addr(&token, "shop", json!({}))).await.error(404, "The app record was not found");
    v.call("AppdataDelete", addr(&token, "shop", json!({}))).await.error(404, "The app record was not found");
    assert_eq!(apps(v, &token).await, json!(["blog"]));
    assert_eq!(all_apps(v).await, json!(["blog"]));
    assert_eq!(v.scalar("SELECT COUNT(*) FROM userapp_versions").await, 0);
    // Created again, it starts over at version 1 with no history.
    create_app(v, &token, "shop", json!({"a": 9})).await;
    let listed = v.call("AppdataListVersions", addr(&token, "shop", json!({}))).await.ok();
    assert_eq!(listed["versions"].as_array().map(Vec::len), Some(1));
    assert_eq!(v.call("AppdataGet", addr(&token, "shop", json!({}))).await.ok()["version"], 1);
});

both!(user_delete_erases_app_data, |v| {
    let token = v.create_user(json!({"login": "gone"})).await;
    let keeper = v.create_user(json!({"login": "keeper"})).await;
    create_app(v, &token, "medical", json!({"diagnosis": "Zygomycosis-Q7"})).await;
    v.call("AppdataUpdate", addr(&token, "medical", json!({"appdata": {"diagnosis": "Xanthelasma-K3"}}))).await.ok();
    create_app(v, &token, "shop", json!({"a": 1})).await;
    create_app(v, &keeper, "shop", json!({"a": 2})).await;
    // Sealed at rest from the start: neither value is in the database in clear.
    assert_absent(&v.dump().await, &["Zygomycosis-Q7", "Xanthelasma-K3"]);
    v.call("UserDelete", json!({"mode": "token", "identity": token})).await.ok();
    v.call("AppdataGet", addr(&token, "medical", json!({}))).await.error(404, "The user record was not found");
    // An app only the erased user had is no longer listed; a shared one still is.
    assert_eq!(all_apps(v).await, json!(["shop"]));
    assert_eq!(v.scalar("SELECT COUNT(*) FROM userapps").await, 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM userapp_versions").await, 0);
    assert_eq!(v.call("AppdataGet", addr(&keeper, "shop", json!({}))).await.ok()["appdata"], json!({"a": 2}));
    assert_absent(&v.dump().await, &["Zygomycosis-Q7", "Xanthelasma-K3"]);
});

both!(changes_and_reads_are_audited_on_the_user, |v| {
    let token = v.create_user(json!({"login": "aud"})).await;
    create_app(v, &token, "shop", json!({"a": 1})).await;
    v.call("AppdataUpdate", addr(&token, "shop", json!({"appdata": {"a": 2}}))).await.ok();
    v.call("AppdataGet", addr(&token, "shop", json!({}))).await.ok();
    v.call("AppdataCreate", addr(&token, "shop", json!({"appdata": {"a": 3}})))
        .await
        .error(409, "Duplicate app record");
    let events = v.call("AuditListUserEvents", json!({"mode": "token", "identity": token, "limit": 100})).await.ok();
    let titles: Vec<&str> =
        events["rows"].as_array().expect("rows").iter().filter_map(|r| r["title"].as_str()).collect();
    for op in ["AppdataCreate", "AppdataUpdate", "AppdataGet"] {
        assert_eq!(
            titles.iter().filter(|t| **t == op).count(),
            if op == "AppdataCreate" { 2 } else { 1 },
            "{titles:?}"
        );
    }
    let update =
        events["rows"].as_array().expect("rows").iter().find(|r| r["title"] == "AppdataUpdate").expect("event");
    let details = v.call("AuditGetEvent", json!({"auditeventuuid": update["auditeventuuid"]})).await.ok();
    let text = details.to_string();
    assert!(text.contains("shop") && text.contains("\"a\":1") && text.contains("\"a\":2"), "{text}");
});

both!(concurrent_updates_lose_nothing, |v| {
    let token = v.create_user(json!({"login": "conc"})).await;
    create_app(v, &token, "shop", json!({})).await;
    let calls = (0..8).map(|i| {
        let token = token.clone();
        async move {
            v.call("AppdataUpdate", addr(&token, "shop", json!({"appdata": {format!("k{i}"): i}}))).await.ok();
        }
    });
    futures::future::join_all(calls).await;
    let got = v.call("AppdataGet", addr(&token, "shop", json!({}))).await.ok();
    for i in 0..8 {
        assert_eq!(got["appdata"][format!("k{i}")], i, "update {i} was lost: {}", got["appdata"]);
    }
    assert_eq!(got["version"], 9);
});
