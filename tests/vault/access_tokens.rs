//! Role and user access tokens (xtokens): their lifetimes, their end with their role, their user
//! or the policies behind them, and their tenant.

use bunker::state::Settings;
use serde_json::{Value, json};

use crate::access_support::{
    ACCESS_DENIED, allow, assert_denied, by_token, call_with, deny, role_with, role_xtoken, user_xtoken,
};
use crate::both;
use crate::common::TestVault;

/// Asserts that `expiration` is `seconds` from now (within the second or two of the calls).
#[track_caller]
fn assert_expires_in(v: &TestVault, answer: &Value, seconds: i64) {
    let expiration = answer["expiration"].as_i64().unwrap_or_else(|| panic!("no expiration: {answer}"));
    let delta = expiration - v.clock().now() - seconds;
    assert!((-2..=0).contains(&delta), "expires {delta}s off {seconds}s from now: {answer}");
}

/// A role that may read any profile, and a user to read.
async fn reader(v: &TestVault) -> (i64, String) {
    let (roleid, _) = role_with(v, "reader", &[allow(&["UserGet"], &["*"])]).await;
    (roleid, v.create_user(json!({"login": "alice", "name": "Alice"})).await)
}

both!(an_xtoken_lasts_ten_minutes_unless_told, |v| {
    let (roleid, alice) = reader(v).await;
    let created = v.call("XTokenCreateForRole", json!({"roleid": roleid})).await.ok();
    assert_eq!(created["roleid"], roleid);
    assert_expires_in(v, &created, 600);
    let role = created["xtoken"].as_str().expect("xtoken").to_owned();
    let created = v.call("XTokenCreateForUser", by_token(&alice, json!({}))).await.ok();
    assert_eq!(created["token"], alice);
    assert_expires_in(v, &created, 600);
    let user = created["xtoken"].as_str().expect("xtoken").to_owned();
    assert_ne!(role, user);

    for xtoken in [&role, &user] {
        assert_eq!(call_with(v, xtoken, "UserGet", by_token(&alice, json!({}))).await.ok()["profile"]["name"], "Alice");
    }
    v.clock().advance(595);
    for xtoken in [&role, &user] {
        call_with(v, xtoken, "UserGet", by_token(&alice, json!({}))).await.ok();
    }
    v.clock().advance(6);
    for xtoken in [&role, &user] {
        // The principal was cached by the calls above: it still expires on time.
        call_with(v, xtoken, "UserGet", by_token(&alice, json!({}))).await.error(403, ACCESS_DENIED);
    }

    // A lifetime asked for, by role name.
    let created = v.call("XTokenCreateForRole", json!({"rolename": "reader", "finaltime": "2h"})).await.ok();
    assert_expires_in(v, &created, 7_200);
    let created = v.call("XTokenCreateForUser", by_token(&alice, json!({"slidingtime": "90min"}))).await.ok();
    assert_expires_in(v, &created, 5_400);
    // A sliding window is the token's whole life: using it does not renew it.
    let sliding = created["xtoken"].as_str().expect("xtoken").to_owned();
    v.clock().advance(5_000);
    call_with(v, &sliding, "UserGet", by_token(&alice, json!({}))).await.ok();
    v.clock().advance(401);
    call_with(v, &sliding, "UserGet", by_token(&alice, json!({}))).await.error(403, ACCESS_DENIED);
});

both!(xtoken_requests_are_checked, |v| {
    let (roleid, alice) = reader(v).await;
    v.call("XTokenCreateForRole", json!({})).await.error(400, "Missing API request parameters: roleid or rolename");
    v.call("XTokenCreateForRole", json!({"roleid": 999_999})).await.error(404, "The role record was not found");
    v.call("XTokenCreateForRole", json!({"rolename": "nobody"})).await.error(404, "The role record was not found");
    v.call("XTokenCreateForRole", json!({"roleid": roleid, "finaltime": "soon"}))
        .await
        .error(400, "The finaltime parameter has an incorrect format");
    v.call("XTokenCreateForRole", json!({"roleid": roleid, "finaltime": "2001-01-01"}))
        .await
        .error(400, "The finaltime parameter is in the past");
    v.call("XTokenCreateForUser", json!({"mode": "login", "identity": "nobody"}))
        .await
        .error(404, "The user record was not found");
    v.call("XTokenCreateForUser", json!({"identity": alice})).await.error(400, "Missing API request parameters: mode");
});

fn an_hour_at_most(_: &std::path::Path) -> Settings {
    Settings { max_xtoken_retention: 3_600, ..Settings::default() }
}

both!(an_xtoken_lives_no_longer_than_the_retention_allows, settings = an_hour_at_most, |v| {
    let (roleid, alice) = reader(v).await;
    for asked in
        [json!({"finaltime": "1d"}), json!({"slidingtime": "2h"}), json!({"finaltime": v.clock().now() + 86_400})]
    {
        let mut body = asked.clone();
        body["roleid"] = json!(roleid);
        let created = v.call("XTokenCreateForRole", body).await.ok();
        assert_expires_in(v, &created, 3_600);
        let created = v.call("XTokenCreateForUser", by_token(&alice, asked)).await.ok();
        assert_expires_in(v, &created, 3_600);
    }
    // Shorter than the maximum is kept; the default stays ten minutes.
    let created = v.call("XTokenCreateForRole", json!({"roleid": roleid, "finaltime": "30min"})).await.ok();
    assert_expires_in(v, &created, 1_800);
    let created = v.call("XTokenCreateForRole", json!({"roleid": roleid})).await.ok();
    assert_expires_in(v, &created, 600);

    let capped = v.call("XTokenCreateForRole", json!({"roleid": roleid, "finaltime": "1y"})).await.ok();
    let capped = capped["xtoken"].as_str().expect("xtoken").to_owned();
    v.clock().advance(3_590);
    call_with(v, &capped, "UserGet", by_token(&alice, json!({}))).await.ok();
    v.clock().advance(11);
    call_with(v, &capped, "UserGet", by_token(&alice, json!({}))).await.error(403, ACCESS_DENIED);
});

fn five_minutes_at_most(_: &std::path::Path) -> Settings {
    Settings { max_xtoken_retention: 300, ..Settings::default() }
}

both!(the_default_lifetime_is_capped_too, settings = five_minutes_at_most, |v| {
    let (roleid, alice) = reader(v).await;
    assert_expires_in(v, &v.call("XTokenCreateForRole", json!({"roleid": roleid})).await.ok(), 300);
    assert_expires_in(v, &v.call("XTokenCreateForUser", by_token(&alice, json!({}))).await.ok(), 300);
});

both!(a_role_token_dies_with_its_role, |v| {
    let (roleid, alice) = reader(v).await;
    let used = crate::access_support::role_token(v, roleid).await;
    let unused = crate::access_support::role_token(v, roleid).await;
    call_with(v, &used, "UserGet", by_token(&alice, json!({}))).await.ok();
    let deleted = v.call("RoleDelete", json!({"roleid": roleid})).await.ok();
    assert_eq!(deleted["usage"]["tokens"], 2, "{deleted}");
    for xtoken in [&used, &unused] {
        call_with(v, xtoken, "UserGet", by_token(&alice, json!({}))).await.error(403, ACCESS_DENIED);
    }
    // A role of the same name made again, with the same policy, does not bring them back.
    crate::access_support::role(v, "reader").await;
    v.call("RoleLinkPolicy", json!({"rolename": "reader", "policyname": "reader-0"})).await.ok();
    for xtoken in [&used, &unused] {
        call_with(v, xtoken, "UserGet", by_token(&alice, json!({}))).await.error(403, ACCESS_DENIED);
    }
});

both!(a_role_token_is_judged_by_its_policies_as_they_are_now, |v| {
    let (roleid, policies) = role_with(v, "reader", &[allow(&["UserGet"], &["*"])]).await;
    let alice = v.create_user(json!({"login": "alice"})).await;
    let xtoken = crate::access_support::role_token(v, roleid).await;
    let get = || call_with(v, &xtoken, "UserGet", by_token(&alice, json!({})));
    get().await.ok();
    v.call("PolicyUpdate", json!({"policyid": policies[0], "policy": deny(&["UserGet"], &["*"])})).await.ok();
    assert_denied(get().await);
    v.call("PolicyUpdate", json!({"policyid": policies[0], "policy": allow(&["UserGet"], &["*"])})).await.ok();
    get().await.ok();
    v.call("RoleLinkPolicy", json!({"roleid": roleid, "policyid": policies[0], "unlink": true})).await.ok();
    assert_denied(get().await);
    v.call("RoleLinkPolicy", json!({"roleid": roleid, "policyid": policies[0]})).await.ok();
    get().await.ok();
    v.call("PolicyDelete", json!({"policyid": policies[0], "force": true})).await.ok();
    assert_denied(get().await);
});

both!(a_user_token_unused_before_its_user_is_deleted_dies_with_it, |v| {
    let alice = v.create_user(json!({"login": "alice"})).await;
    let xtoken = user_xtoken(v, &alice).await;
    v.call("UserDelete", by_token(&alice, json!({}))).await.ok();
    call_with(v, &xtoken, "UserGet", by_token(&alice, json!({}))).await.error(403, ACCESS_DENIED);
    call_with(v, &xtoken, "GroupListAllGroups", json!({})).await.error(403, ACCESS_DENIED);
});

both!(a_user_token_in_use_dies_with_its_user, |v| {
    // The parent of a family may read its child through its role there.
    let (parent, _) =
        role_with(v, "parent", &[allow(&["UserGet"], &["${target_group_members:role/child}.profile"])]).await;
    let child_role = crate::access_support::role(v, "child").await;
    v.call("GroupCreate", json!({"groupname": "family"})).await.ok();
    let mum = v.create_user(json!({"login": "mum"})).await;
    let kid = v.create_user(json!({"login": "kid", "name": "Kid"})).await;
    v.call("GroupAddUser", by_token(&mum, json!({"groupname": "family", "roleid": parent}))).await.ok();
    v.call("GroupAddUser", by_token(&kid, json!({"groupname": "family", "roleid": child_role}))).await.ok();
    let xtoken = user_xtoken(v, &mum).await;
    call_with(v, &xtoken, "UserGet", by_token(&mum, json!({}))).await.ok();
    call_with(v, &xtoken, "UserGet", by_token(&kid, json!({}))).await.ok();

    v.call("UserDelete", by_token(&mum, json!({}))).await.ok();
    call_with(v, &xtoken, "UserGet", by_token(&kid, json!({}))).await.error(403, ACCESS_DENIED);
    call_with(v, &xtoken, "UserGet", by_token(&mum, json!({}))).await.error(403, ACCESS_DENIED);
});

both!(an_xtoken_acts_in_its_own_tenant_only, |v| {
    let mut tenants = Vec::new();
    for name in ["tenant-alpha", "tenant-bravo"] {
        let created = v.call("TenantCreate", json!({"tenantname": name})).await.ok();
        let admin = created["xtoken"].as_str().expect("xtoken").to_owned();
        let call = |op: &'static str, body: Value| {
            let admin = admin.clone();
            async move { v.call_as(op, Some(&admin), None, body).await.ok() }
        };
        let policyid = call("PolicyCreate", json!({"policyname": "read", "policy": allow(&["UserGet"], &["*"])})).await
            ["policyid"]
            .clone();
        let roleid = call("RoleCreate", json!({"rolename": "reader"})).await["roleid"].clone();
        call("RoleLinkPolicy", json!({"roleid": roleid, "policyid": policyid})).await;
        let user = call("UserCreate", json!({"profile": {"login": "same-login", "name": name}})).await["token"].clone();
        let role_token = call("XTokenCreateForRole", json!({"roleid": roleid})).await["xtoken"].clone();
        let user_token =
            call("XTokenCreateForUser", json!({"mode": "token", "identity": user})).await["xtoken"].clone();
        let text = |value: Value| value.as_str().expect("string").to_owned();
        tenants.push((name, text(role_token), text(user_token), text(user)));
    }
    let [(alpha, alpha_role, alpha_user, alpha_token), (bravo, _, _, bravo_token)] = &tenants[..] else {
        panic!("two tenants")
    };
    let by_login = json!({"mode": "login", "identity": "same-login"});
    for xtoken in [alpha_role, alpha_user] {
        for header in [None, Some(*alpha)] {
            let got = v.call_as("UserGet", Some(xtoken), header, by_login.clone()).await.ok();
            assert_eq!((&got["token"], &got["profile"]["name"]), (&json!(alpha_token), &json!(alpha)));
        }
        // B's tenant named in the header: refused, whatever the request aims at.
        for body in [by_login.clone(), by_token(bravo_token, json!({})), by_token(alpha_token, json!({}))] {
            v.call_as("UserGet", Some(xtoken), Some(*bravo), body).await.error(403, ACCESS_DENIED);
        }
        v.call_as("GroupListAllGroups", Some(xtoken), Some(*bravo), json!({})).await.error(403, ACCESS_DENIED);
        // B's user by its token, from A: not found in A.
        v.call_as("UserGet", Some(xtoken), None, by_token(bravo_token, json!({})))
            .await
            .error(404, "The user record was not found");
    }
    // The main tenant's header is another tenant too.
    v.call_as("UserGet", Some(alpha_role.as_str()), Some("main"), by_login.clone()).await.error(403, ACCESS_DENIED);
});

both!(xtokens_mint_no_role_tokens, |v| {
    let (roleid, _) = role_with(v, "minter", &[allow(&["XTokenCreate*", "UserGet"], &["*"])]).await;
    let alice = v.create_user(json!({"login": "alice"})).await;
    let role = crate::access_support::role_token(v, roleid).await;
    let user = user_xtoken(v, &alice).await;
    for xtoken in [&role, &user] {
        call_with(v, xtoken, "XTokenCreateForRole", json!({"roleid": roleid})).await.error(403, ACCESS_DENIED);
    }
});

both!(a_role_cannot_mint_a_user_token_that_sees_more_than_itself, |v| {
    let (xtoken, _) =
        role_xtoken(v, "names-only", &[allow(&["UserGet", "XTokenCreateForUser"], &["users.profile.name"])]).await;
    let alice = v.create_user(json!({"login": "alice", "name": "Alice", "ssn": "123-45-6789"})).await;
    let seen = call_with(v, &xtoken, "UserGet", by_token(&alice, json!({}))).await.ok();
    assert_eq!(seen["profile"], json!({"login": "***", "name": "Alice", "ssn": "***"}));
    let minted = call_with(v, &xtoken, "XTokenCreateForUser", by_token(&alice, json!({}))).await;
    assert_eq!(minted.status.as_u16(), 403, "a role that sees names only minted a user token: {}", minted.body);
});
