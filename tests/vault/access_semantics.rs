//! Policy semantics through HTTP: deny beats allow across policies and roles, wildcard actions,
//! conditions on the request's metadata, and group-relative resources (a parent reading the
//! children of its group; a manager of a parent group reading the members of the groups below).

use serde_json::{Value, json};

use crate::access_support::{
    allow, assert_denied, by_token, call_with, deny, role, role_with, role_xtoken, user_xtoken,
};
use crate::both;
use crate::common::TestVault;

/// Creates a group (below `parent`, if any); its id.
async fn group(v: &TestVault, name: &str, parent: Option<i64>) -> i64 {
    let body = json!({"groupname": name, "parentgroupid": parent});
    v.call("GroupCreate", body).await.ok()["groupid"].as_i64().expect("groupid")
}

/// A user `login` in `group` holding `rolename` there (none: a plain member); its token.
async fn member(v: &TestVault, login: &str, group: i64, rolename: Option<&str>) -> String {
    let token = v.create_user(json!({"login": login, "name": format!("{login} name")})).await;
    v.call("GroupAddUser", by_token(&token, json!({"groupid": group, "rolename": rolename}))).await.ok();
    token
}

/// Asserts that `xtoken` reads `user`'s profile whole (`true`) or is refused (`false`).
async fn assert_reads(v: &TestVault, xtoken: &str, user: &str, readable: bool, body: Value) {
    let mut request = by_token(user, json!({}));
    request.as_object_mut().expect("object").extend(body.as_object().cloned().unwrap_or_default());
    let answer = call_with(v, xtoken, "UserGet", request.clone()).await;
    if readable {
        let got = answer.ok();
        assert!(got["profile"]["name"].as_str().is_some_and(|n| n.ends_with(" name")), "{request}: {got}");
    } else {
        assert_denied(answer);
    }
}

both!(a_deny_beats_an_allow_across_the_policies_of_a_role, |v| {
    let alice = v.create_user(json!({"login": "alice", "name": "alice name"})).await;
    let (both, _) =
        role_xtoken(v, "allowed-and-denied", &[allow(&["UserGet"], &["*"]), deny(&["UserGet"], &["users"])]).await;
    assert_reads(v, &both, &alice, false, json!({})).await;
    // Whatever the order the policies were linked in.
    let (reversed, _) =
        role_xtoken(v, "denied-and-allowed", &[deny(&["UserGet"], &["*"]), allow(&["UserGet"], &["users.profile.*"])])
            .await;
    assert_reads(v, &reversed, &alice, false, json!({})).await;
    // A Deny of another operation leaves this one alone.
    let (other, _) =
        role_xtoken(v, "deny-elsewhere", &[allow(&["UserGet"], &["*"]), deny(&["UserDelete"], &["*"])]).await;
    assert_reads(v, &other, &alice, true, json!({})).await;
    assert_denied(call_with(v, &other, "UserDelete", by_token(&alice, json!({}))).await);

    // A user holding two roles in two groups: a Deny in either wins.
    let (reader, _) = role_with(v, "reader", &[allow(&["UserGet"], &["*"])]).await;
    let (blocker, _) = role_with(v, "blocker", &[deny(&["UserGet"], &["*"])]).await;
    let bob = v.create_user(json!({"login": "bob", "name": "bob name"})).await;
    let g1 = group(v, "readers", None).await;
    let g2 = group(v, "blockers", None).await;
    v.call("GroupAddUser", by_token(&bob, json!({"groupid": g1, "roleid": reader}))).await.ok();
    let xtoken = user_xtoken(v, &bob).await;
    assert_reads(v, &xtoken, &alice, true, json!({})).await;
    v.call("GroupAddUser", by_token(&bob, json!({"groupid": g2, "roleid": blocker}))).await.ok();
    assert_reads(v, &xtoken, &alice, false, json!({})).await;
    // Its own record stays its own.
    assert_reads(v, &xtoken, &bob, true, json!({})).await;
});

both!(actions_may_be_wildcards, |v| {
    let alice = v.create_user(json!({"login": "alice", "name": "alice name"})).await;
    v.call("AppdataCreate", by_token(&alice, json!({"appname": "crm", "appdata": {"a": 1}}))).await.ok();
    let me = || by_token(&alice, json!({}));
    let (users, _) = role_xtoken(v, "users", &[allow(&["User*"], &["*"])]).await;
    for op in ["UserGet", "UserListVersions", "UserRequestListUserRequests"] {
        call_with(v, &users, op, me()).await.ok();
    }
    call_with(v, &users, "UserUpdate", by_token(&alice, json!({"profile": {"x": 1}}))).await.ok();
    for op in ["AppdataListUserAppNames", "GroupListUserGroups", "AuditListUserEvents", "SystemGetUserReport"] {
        assert_denied(call_with(v, &users, op, me()).await);
    }
    assert_denied(call_with(v, &users, "BulkListUnlock", json!({})).await);

    // Any case; a wildcard in the middle or at the start.
    let (getters, _) = role_xtoken(v, "getters", &[allow(&["*get"], &["*"])]).await;
    call_with(v, &getters, "UserGet", me()).await.ok();
    call_with(v, &getters, "AppdataGet", by_token(&alice, json!({"appname": "crm"}))).await.ok();
    assert_denied(call_with(v, &getters, "UserListVersions", me()).await);
    let (lists, _) = role_xtoken(v, "lists", &[allow(&["app*list*"], &["*"])]).await;
    call_with(v, &lists, "AppdataListUserAppNames", me()).await.ok();
    call_with(v, &lists, "AppdataListAppNames", json!({})).await.ok();
    assert_denied(call_with(v, &lists, "AppdataGet", by_token(&alice, json!({"appname": "crm"}))).await);
});

both!(a_condition_on_the_request_metadata_is_met_by_what_the_request_sends, |v| {
    let alice = v.create_user(json!({"login": "alice", "name": "alice name"})).await;
    let condition = json!({"StringEquals": {"${request_metadata:purpose}": ["support", "billing"]}});
    let document = json!({"Effect": "Allow", "Action": ["UserGet"], "Resource": ["*"], "Condition": condition});
    let (xtoken, _) = role_xtoken(v, "support", &[document]).await;
    for purpose in ["support", "billing"] {
        assert_reads(v, &xtoken, &alice, true, json!({"request_metadata": {"purpose": purpose}})).await;
    }
    for metadata in [
        json!({"request_metadata": {"purpose": "marketing"}}),
        json!({"request_metadata": {"purpose": "Support"}}),
        json!({"request_metadata": {"reason": "support"}}),
        json!({"request_metadata": {}}),
        json!({}),
    ] {
        assert_reads(v, &xtoken, &alice, false, metadata).await;
    }

    // A Deny on a condition: refused when it holds, allowed otherwise (an absent key does not
    // make it hold).
    let condition = json!({"StringEquals": {"${request_metadata:purpose}": "marketing"}});
    let (guarded, _) = role_xtoken(
        v,
        "no-marketing",
        &[
            allow(&["UserGet"], &["*"]),
            json!({"Effect": "Deny", "Action": "UserGet", "Resource": "*", "Condition": condition}),
        ],
    )
    .await;
    assert_reads(v, &guarded, &alice, false, json!({"request_metadata": {"purpose": "marketing"}})).await;
    assert_reads(v, &guarded, &alice, true, json!({"request_metadata": {"purpose": "support"}})).await;
    assert_reads(v, &guarded, &alice, true, json!({})).await;
});

both!(a_parent_reads_the_children_of_its_own_group_only, |v| {
    let (parent, _) =
        role_with(v, "parent", &[allow(&["UserGet"], &["${target_group_members:role/child}.profile"])]).await;
    role(v, "child").await;
    let family = group(v, "family", None).await;
    let neighbours = group(v, "neighbours", None).await;
    let mum = member(v, "mum", family, Some("parent")).await;
    let kid = member(v, "kid", family, Some("child")).await;
    let aunt = member(v, "aunt", family, None).await;
    let other_kid = member(v, "other-kid", neighbours, Some("child")).await;
    let stranger = v.create_user(json!({"login": "stranger", "name": "stranger name"})).await;
    assert_eq!(v.call("RoleUpdate", json!({"roleid": parent, "roledesc": "x"})).await.ok()["usage"]["members"], 1);

    let xtoken = user_xtoken(v, &mum).await;
    assert_reads(v, &xtoken, &kid, true, json!({})).await;
    assert_reads(v, &xtoken, &mum, true, json!({})).await;
    for outside in [&aunt, &other_kid, &stranger] {
        assert_reads(v, &xtoken, outside, false, json!({})).await;
    }
    // The child reads no one but itself: its role grants nothing.
    let kid_token = user_xtoken(v, &kid).await;
    assert_reads(v, &kid_token, &kid, true, json!({})).await;
    assert_reads(v, &kid_token, &mum, false, json!({})).await;

    // The other child joins the family: from the next call on, mum reads it; it leaves again, and
    // she no longer does.
    v.call("GroupAddUser", by_token(&other_kid, json!({"groupid": family, "rolename": "child"}))).await.ok();
    assert_reads(v, &xtoken, &other_kid, true, json!({})).await;
    v.call("GroupDeleteUser", by_token(&other_kid, json!({"groupid": family}))).await.ok();
    assert_reads(v, &xtoken, &other_kid, false, json!({})).await;
    // Mum leaves her role: her token reads her own record only.
    v.call("GroupAddUser", by_token(&mum, json!({"groupid": family}))).await.ok();
    assert_reads(v, &xtoken, &kid, false, json!({})).await;
    assert_reads(v, &xtoken, &mum, true, json!({})).await;
});

both!(a_manager_of_a_parent_group_reads_the_members_of_the_groups_below_it, |v| {
    role_with(v, "manager", &[allow(&["UserGet"], &["${target_group_members:role/member}.profile"])]).await;
    role(v, "member").await;
    let company = group(v, "company", None).await;
    let sales = group(v, "sales", Some(company)).await;
    let emea = group(v, "sales-emea", Some(sales)).await;
    let elsewhere = group(v, "elsewhere", None).await;
    let boss = member(v, "boss", company, Some("manager")).await;
    let seller = member(v, "seller", sales, Some("member")).await;
    let deep = member(v, "deep", emea, Some("member")).await;
    let staff = member(v, "staff", company, Some("member")).await;
    let outsider = member(v, "outsider", elsewhere, Some("member")).await;
    let lead = member(v, "lead", sales, Some("manager")).await;

    let xtoken = user_xtoken(v, &boss).await;
    for below in [&seller, &deep, &staff] {
        assert_reads(v, &xtoken, below, true, json!({})).await;
    }
    assert_reads(v, &xtoken, &outsider, false, json!({})).await;
    // A manager of a group below reads its own subtree, never up the tree.
    let lead_token = user_xtoken(v, &lead).await;
    assert_reads(v, &lead_token, &seller, true, json!({})).await;
    assert_reads(v, &lead_token, &deep, true, json!({})).await;
    assert_reads(v, &lead_token, &staff, false, json!({})).await;
    assert_reads(v, &lead_token, &outsider, false, json!({})).await;

    // Moving the group out of the tree takes its members out of the boss's reach.
    v.call("GroupUpdate", json!({"groupid": sales, "noparent": true})).await.ok();
    assert_reads(v, &xtoken, &seller, false, json!({})).await;
    assert_reads(v, &xtoken, &deep, false, json!({})).await;
    assert_reads(v, &xtoken, &staff, true, json!({})).await;
    v.call("GroupUpdate", json!({"groupid": emea, "parentgroupid": company})).await.ok();
    assert_reads(v, &xtoken, &deep, true, json!({})).await;
});

/// A family and its neighbours: a parent and a child in each, and the parent role allowed to
/// list and read the children of its group. Returns (mum's user token, kid, other kid).
async fn families(v: &TestVault) -> (String, String, String) {
    let resource = "${target_group_members:role/child}.profile";
    role_with(v, "parent", &[allow(&["BulkListUnlock", "BulkListGroupUsers", "UserGet"], &[resource])]).await;
    role(v, "child").await;
    let family = group(v, "family", None).await;
    let neighbours = group(v, "neighbours", None).await;
    let mum = member(v, "mum", family, Some("parent")).await;
    let kid = member(v, "kid", family, Some("child")).await;
    member(v, "aunt", family, None).await;
    member(v, "other-mum", neighbours, Some("parent")).await;
    let other_kid = member(v, "other-kid", neighbours, Some("child")).await;
    (user_xtoken(v, &mum).await, kid, other_kid)
}

/// The tokens of the members of `group` that `xtoken` is shown.
async fn listed(v: &TestVault, xtoken: &str, group: &str) -> Vec<String> {
    let unlock = call_with(v, xtoken, "BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    let body = json!({"unlockuuid": unlock, "groupname": group});
    let page = call_with(v, xtoken, "BulkListGroupUsers", body).await.ok();
    page["rows"].as_array().expect("rows").iter().map(|r| r["token"].as_str().expect("token").to_owned()).collect()
}

both!(a_parent_lists_the_children_of_its_own_group, |v| {
    let (xtoken, kid, _) = families(v).await;
    assert_eq!(listed(v, &xtoken, "family").await, [kid]);
});

crate::both!(a_parent_lists_no_child_of_another_group, |v| {
    let (xtoken, _, other_kid) = families(v).await;
    let shown = listed(v, &xtoken, "neighbours").await;
    assert!(!shown.contains(&other_kid), "mum is shown the neighbours' child");
});
