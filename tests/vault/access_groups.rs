//! Groups, roles and policies through the API as their administrators use them: create, read,
//! update, list; duplicates; parents and cycles; custom attributes; what deleting a group or a
//! policy refuses and takes with it; usage counts; the 400s of a bad policy; users joining
//! groups as they are created; group roles in bulk listings.

use serde_json::{Value, json};

use crate::access_support::{allow, by_token, link, policy, role, role_token};
use crate::both;
use crate::common::TestVault;

/// Creates a group as root with the fields of `body`; its id.
async fn group(v: &TestVault, body: Value) -> i64 {
    v.call("GroupCreate", body).await.ok()["groupid"].as_i64().expect("groupid")
}

/// The groups `user` is in, as `(groupname, rolename)` pairs.
async fn user_groups(v: &TestVault, user: &str) -> Vec<(String, Option<String>)> {
    let body = v.call("GroupListUserGroups", by_token(user, json!({}))).await.ok();
    let rows = body["rows"].as_array().expect("rows");
    assert_eq!(body["total"], rows.len(), "{body}");
    rows.iter()
        .map(|row| {
            let name = row["groupname"].as_str().expect("groupname").to_owned();
            (name, row["rolename"].as_str().map(str::to_owned))
        })
        .collect()
}

both!(groups_are_created_read_updated_and_listed, |v| {
    let attributes = json!({"region": "eu", "level": 3, "active": true});
    let staff = group(
        v,
        json!({"groupname": "staff", "groupdesc": "All staff", "grouptype": "team", "attributes": attributes}),
    )
    .await;
    let got = v.call("GroupGet", json!({"groupid": staff})).await.ok();
    assert_eq!(got["groupid"], staff);
    assert_eq!(got["groupname"], "staff");
    assert_eq!(got["groupdesc"], "All staff");
    assert_eq!(got["grouptype"], "team");
    assert_eq!(got["parentgroupid"], Value::Null);
    assert_eq!(got["attributes"], attributes);
    assert!(got["creationtime"].as_i64().is_some_and(|t| (t - v.clock().now()).abs() < 5), "{got}");
    let by_name = v.call("GroupGet", json!({"groupname": "staff"})).await.ok();
    assert_eq!(by_name, got);
    // A numeric string names the group by id, as the clients send it.
    assert_eq!(v.call("GroupGet", json!({"groupid": staff.to_string()})).await.ok(), got);

    // Defaults: type "users", no attributes; `description` is the vendor page's alias.
    let guests = group(v, json!({"groupname": "guests", "description": "Visitors"})).await;
    let got = v.call("GroupGet", json!({"groupname": "guests"})).await.ok();
    assert_eq!(
        (&got["grouptype"], &got["groupdesc"], &got["attributes"]),
        (&json!("users"), &json!("Visitors"), &json!({}))
    );

    // An update changes what it names and keeps the rest; `groupname` with `groupid` renames.
    let update = json!({"groupid": staff, "groupdesc": "Everyone on payroll", "attributes": {"region": "us"}});
    v.call("GroupUpdate", update).await.ok();
    let got = v.call("GroupGet", json!({"groupid": staff})).await.ok();
    assert_eq!(got["groupdesc"], "Everyone on payroll");
    assert_eq!(got["grouptype"], "team");
    assert_eq!(got["attributes"], json!({"region": "us"}));
    v.call("GroupUpdate", json!({"groupid": staff, "groupname": "employees"})).await.ok();
    v.call("GroupGet", json!({"groupname": "staff"})).await.error(404, "The group record was not found");
    assert_eq!(v.call("GroupGet", json!({"groupname": "employees"})).await.ok()["groupid"], staff);
    // Named by `groupname` alone, the group named is the one changed.
    v.call("GroupUpdate", json!({"groupname": "guests", "groupdesc": "Visitors only"})).await.ok();
    assert_eq!(v.call("GroupGet", json!({"groupid": guests})).await.ok()["groupdesc"], "Visitors only");

    let list = v.call("GroupListAllGroups", json!({})).await.ok();
    assert_eq!(list["total"], 2, "{list}");
    let names: Vec<&str> =
        list["rows"].as_array().expect("rows").iter().filter_map(|r| r["groupname"].as_str()).collect();
    assert_eq!(names, ["employees", "guests"]);
    let page = v.call("GroupListAllGroups", json!({"offset": 1, "limit": 1})).await.ok();
    assert_eq!(page["rows"][0]["groupid"], guests, "{page}");
    assert_eq!(page["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(page["total"], 2, "a page's total counts every group: {page}");
});

both!(group_names_are_unique_and_checked, |v| {
    let staff = group(v, json!({"groupname": "staff"})).await;
    let other = group(v, json!({"groupname": "other"})).await;
    v.call("GroupCreate", json!({"groupname": "staff"})).await.error(409, "The group record already exists");
    // Unique whatever the type, and after trimming.
    v.call("GroupCreate", json!({"groupname": " staff ", "grouptype": "admins"}))
        .await
        .error(409, "The group record already exists");
    v.call("GroupUpdate", json!({"groupid": other, "groupname": "staff"}))
        .await
        .error(409, "The group record already exists");
    v.call("GroupCreate", json!({})).await.error(400, "Missing API request parameters: groupname");
    v.call("GroupCreate", json!({"groupname": "  "})).await.error(400, "Missing API request parameters: groupname");
    v.call("GroupCreate", json!({"groupname": "12345"}))
        .await
        .error(400, "The groupname parameter has an incorrect format");
    v.call("GroupCreate", json!({"groupname": "x".repeat(129)}))
        .await
        .error(400, "The groupname parameter has an incorrect format");
    v.call("GroupCreate", json!({"groupname": "long-type", "grouptype": "t".repeat(31)}))
        .await
        .error(400, "The grouptype is too long");
    v.call("GroupGet", json!({"groupid": 999_999})).await.error(404, "The group record was not found");
    v.call("GroupGet", json!({})).await.error(400, "Missing API request parameters: groupid or groupname");
    v.call("GroupUpdate", json!({"groupid": 999_999, "groupdesc": "x"}))
        .await
        .error(404, "The group record was not found");
    let list = v.call("GroupListAllGroups", json!({})).await.ok();
    assert_eq!(list["total"], 2, "nothing refused was stored: {list}");
    assert_eq!(v.call("GroupGet", json!({"groupid": staff})).await.ok()["groupname"], "staff");
});

both!(parents_are_named_by_id_or_name_and_cycles_are_refused, |v| {
    let top = group(v, json!({"groupname": "top"})).await;
    let middle = group(v, json!({"groupname": "middle", "parentgroupid": top})).await;
    let bottom = group(v, json!({"groupname": "bottom", "parentgroupname": "middle"})).await;
    assert_eq!(v.call("GroupGet", json!({"groupid": middle})).await.ok()["parentgroupid"], top);
    assert_eq!(v.call("GroupGet", json!({"groupid": bottom})).await.ok()["parentgroupid"], middle);
    v.call("GroupCreate", json!({"groupname": "orphan", "parentgroupid": 999_999}))
        .await
        .error(404, "The group record was not found");
    v.call("GroupCreate", json!({"groupname": "orphan", "parentgroupname": "nowhere"}))
        .await
        .error(404, "The group record was not found");

    // A group below itself, directly or through its descendants, is refused and nothing changes.
    let cycle = "A group cannot be placed below itself";
    v.call("GroupUpdate", json!({"groupid": top, "parentgroupid": top})).await.error(400, cycle);
    v.call("GroupUpdate", json!({"groupid": top, "parentgroupid": bottom})).await.error(400, cycle);
    v.call("GroupUpdate", json!({"groupid": middle, "parentgroupname": "bottom"})).await.error(400, cycle);
    assert_eq!(v.call("GroupGet", json!({"groupid": top})).await.ok()["parentgroupid"], Value::Null);
    assert_eq!(v.call("GroupGet", json!({"groupid": middle})).await.ok()["parentgroupid"], top);

    // Moving a group elsewhere in the tree, and out of it.
    v.call("GroupUpdate", json!({"groupid": bottom, "parentgroupid": top})).await.ok();
    assert_eq!(v.call("GroupGet", json!({"groupid": bottom})).await.ok()["parentgroupid"], top);
    v.call("GroupUpdate", json!({"groupid": middle, "parentgroupid": bottom})).await.ok();
    assert_eq!(v.call("GroupGet", json!({"groupid": middle})).await.ok()["parentgroupid"], bottom);
    v.call("GroupUpdate", json!({"groupid": middle, "noparent": true})).await.ok();
    assert_eq!(v.call("GroupGet", json!({"groupid": middle})).await.ok()["parentgroupid"], Value::Null);
    v.call("GroupUpdate", json!({"groupid": middle, "parentgroupid": 999_999}))
        .await
        .error(404, "The group record was not found");
});

both!(group_attributes_are_an_object_of_scalars, |v| {
    let bad = "The attributes parameter must be an object of strings, numbers or booleans";
    for attributes in [
        json!("region=eu"),
        json!(["eu"]),
        json!(7),
        json!({"nested": {"region": "eu"}}),
        json!({"list": ["eu"]}),
        json!({"none": null}),
        json!({"long": "v".repeat(300)}),
        Value::Object([("k".repeat(129), json!("v"))].into_iter().collect()),
    ] {
        v.call("GroupCreate", json!({"groupname": "g", "attributes": attributes})).await.error(400, bad);
    }
    let many: serde_json::Map<String, Value> = (0..33).map(|i| (format!("a{i}"), json!(i))).collect();
    v.call("GroupCreate", json!({"groupname": "g", "attributes": many}))
        .await
        .error(400, "A group has at most 32 attributes");
    assert_eq!(v.call("GroupListAllGroups", json!({})).await.ok()["total"], 0);

    let most: serde_json::Map<String, Value> = (0..32).map(|i| (format!("a{i}"), json!(i))).collect();
    let id = group(v, json!({"groupname": "g", "attributes": most.clone()})).await;
    assert_eq!(v.call("GroupGet", json!({"groupid": id})).await.ok()["attributes"], Value::Object(most));
    v.call("GroupUpdate", json!({"groupid": id, "attributes": {"nested": {}}})).await.error(400, bad);
    // An update without attributes keeps them; an empty object clears them.
    v.call("GroupUpdate", json!({"groupid": id, "groupdesc": "d"})).await.ok();
    assert_eq!(v.call("GroupGet", json!({"groupid": id})).await.ok()["attributes"]["a31"], 31);
    v.call("GroupUpdate", json!({"groupid": id, "attributes": {}})).await.ok();
    assert_eq!(v.call("GroupGet", json!({"groupid": id})).await.ok()["attributes"], json!({}));
});

both!(deleting_a_group_with_children_or_members_needs_cascade, |v| {
    let member = role(v, "member").await;
    let parent = group(v, json!({"groupname": "parent"})).await;
    let child = group(v, json!({"groupname": "child", "parentgroupid": parent})).await;
    let grandchild = group(v, json!({"groupname": "grandchild", "parentgroupid": child})).await;
    let alice = v.create_user(json!({"login": "alice"})).await;
    let bob = v.create_user(json!({"login": "bob"})).await;
    v.call("GroupAddUser", by_token(&alice, json!({"groupid": parent, "roleid": member}))).await.ok();
    v.call("GroupAddUser", by_token(&bob, json!({"groupid": grandchild}))).await.ok();
    v.call("GroupAddUser", by_token(&alice, json!({"groupname": "child", "rolename": "member"}))).await.ok();

    v.call("GroupDelete", json!({"groupid": parent}))
        .await
        .error(409, "The group has 2 groups below it and 1 members: delete with cascade to remove them");
    v.call("GroupDelete", json!({"groupname": "grandchild", "cascade": false}))
        .await
        .error(409, "The group has 0 groups below it and 1 members: delete with cascade to remove them");
    for id in [parent, child, grandchild] {
        v.call("GroupGet", json!({"groupid": id})).await.ok();
    }
    assert_eq!(user_groups(v, &alice).await.len(), 2);

    // A group emptied of members and children goes without cascade.
    let lone = group(v, json!({"groupname": "lone"})).await;
    assert_eq!(v.call("GroupDelete", json!({"groupid": lone})).await.ok()["groups"], 0);

    let deleted = v.call("GroupDelete", json!({"groupid": parent, "cascade": true})).await.ok();
    assert_eq!((&deleted["groups"], &deleted["members"]), (&json!(2), &json!(3)), "{deleted}");
    for id in [parent, child, grandchild, lone] {
        v.call("GroupGet", json!({"groupid": id})).await.error(404, "The group record was not found");
    }
    assert!(user_groups(v, &alice).await.is_empty());
    assert!(user_groups(v, &bob).await.is_empty());
    // The users stay, and so does the role.
    v.call("UserGet", by_token(&bob, json!({}))).await.ok();
    let usage = v.call("RoleUpdate", json!({"roleid": member, "roledesc": "kept"})).await.ok();
    assert_eq!(usage["usage"]["members"], 0, "{usage}");
    v.call("GroupDelete", json!({"groupid": parent})).await.error(404, "The group record was not found");
});

both!(members_hold_one_role_per_group, |v| {
    role(v, "reader").await;
    role(v, "writer").await;
    let g = group(v, json!({"groupname": "team"})).await;
    let alice = v.create_user(json!({"login": "alice"})).await;
    v.call("GroupAddUser", by_token(&alice, json!({"groupid": g, "rolename": "reader"}))).await.ok();
    assert_eq!(user_groups(v, &alice).await, [("team".to_owned(), Some("reader".to_owned()))]);
    // Adding again changes the role held there (the vendor page's `role` alias).
    v.call("GroupAddUser", by_token(&alice, json!({"groupname": "team", "role": "writer"}))).await.ok();
    assert_eq!(user_groups(v, &alice).await, [("team".to_owned(), Some("writer".to_owned()))]);
    let rows = v.call("GroupListUserGroups", by_token(&alice, json!({}))).await.ok();
    assert_eq!(rows["rows"][0]["groupid"], g);
    assert!(rows["rows"][0]["roleid"].as_i64().is_some(), "{rows}");

    v.call("GroupAddUser", by_token(&alice, json!({"groupid": g, "rolename": "nobody"})))
        .await
        .error(404, "The role record was not found");
    v.call("GroupAddUser", by_token(&alice, json!({"groupname": "nowhere"})))
        .await
        .error(404, "The group record was not found");
    v.call("GroupAddUser", json!({"mode": "login", "identity": "nobody", "groupid": g}))
        .await
        .error(404, "The user record was not found");
    v.call("GroupDeleteUser", by_token(&alice, json!({"groupid": g}))).await.ok();
    assert!(user_groups(v, &alice).await.is_empty());
    v.call("GroupDeleteUser", by_token(&alice, json!({"groupid": g})))
        .await
        .error(404, "The user is not a member of the group");
});

both!(roles_are_unique_and_updates_answer_their_usage, |v| {
    let clerk = role(v, "clerk").await;
    v.call("RoleCreate", json!({"rolename": "clerk"})).await.error(409, "The role record already exists");
    v.call("RoleCreate", json!({})).await.error(400, "Missing API request parameters: rolename");
    v.call("RoleCreate", json!({"rolename": "42"})).await.error(400, "The rolename parameter has an incorrect format");
    let other = role(v, "other").await;

    let unused = v.call("RoleUpdate", json!({"roleid": clerk, "roledesc": "Front desk"})).await.ok();
    assert_eq!(unused["usage"], json!({"policies": 0, "members": 0, "tokens": 0}));

    let document = allow(&["UserGet"], &["users.profile.name"]);
    for name in ["p1", "p2"] {
        let id = policy(v, name, document.clone()).await;
        link(v, clerk, id).await;
        // Linking twice is no error and counts once.
        link(v, clerk, id).await;
    }
    let team = group(v, json!({"groupname": "team"})).await;
    let desk = group(v, json!({"groupname": "desk"})).await;
    let alice = v.create_user(json!({"login": "alice"})).await;
    let bob = v.create_user(json!({"login": "bob"})).await;
    v.call("GroupAddUser", by_token(&alice, json!({"groupid": team, "roleid": clerk}))).await.ok();
    v.call("GroupAddUser", by_token(&alice, json!({"groupid": desk, "rolename": "clerk"}))).await.ok();
    v.call("GroupAddUser", by_token(&bob, json!({"groupid": team, "roleid": other}))).await.ok();
    role_token(v, clerk).await;
    // A token that has expired is no longer counted.
    v.call("XTokenCreateForRole", json!({"roleid": clerk, "finaltime": "30s"})).await.ok();
    v.clock().advance(31);
    role_token(v, clerk).await;

    let used = v.call("RoleUpdate", json!({"roleid": clerk, "rolename": "registrar"})).await.ok();
    assert_eq!(used["usage"], json!({"policies": 2, "members": 2, "tokens": 2}));
    assert_eq!(user_groups(v, &alice).await[0].1.as_deref(), Some("registrar"));
    // Named by `rolename` alone, the role named is the one changed.
    let again = v.call("RoleUpdate", json!({"rolename": "registrar", "roledesc": "x"})).await.ok();
    assert_eq!(again["usage"]["members"], 2);
    v.call("RoleUpdate", json!({"roleid": other, "rolename": "registrar"}))
        .await
        .error(409, "The role record already exists");
    v.call("RoleUpdate", json!({"roleid": 999_999, "roledesc": "x"})).await.error(404, "The role record was not found");

    // Deleting answers what it took; the members stay in their groups without the role.
    let deleted = v.call("RoleDelete", json!({"rolename": "registrar"})).await.ok();
    assert_eq!(deleted["usage"], json!({"policies": 2, "members": 2, "tokens": 2}));
    assert_eq!(user_groups(v, &alice).await, [("team".to_owned(), None), ("desk".to_owned(), None)]);
    v.call("RoleUpdate", json!({"roleid": clerk, "roledesc": "x"})).await.error(404, "The role record was not found");
    // Its policies remain, unlinked.
    assert_eq!(v.call("PolicyDelete", json!({"policyname": "p1"})).await.ok()["roles"], 0);
});

both!(policies_are_read_listed_updated_and_deleted_unless_linked, |v| {
    let document = json!({"Effect": "Allow", "Action": ["UserGet"], "Resource": ["users.profile.*"]});
    let id = policy(v, "readers", document.clone()).await;
    v.call("PolicyCreate", json!({"policyname": "readers", "policy": document}))
        .await
        .error(409, "The policy record already exists");
    let got = v.call("PolicyGet", json!({"policyid": id})).await.ok();
    assert_eq!(got["policyid"], id);
    assert_eq!(got["policyname"], "readers");
    assert_eq!(got["policydesc"], "readers (test)");
    assert_eq!(got["policy"], document);
    assert!(got["creationtime"].as_i64().is_some(), "{got}");
    assert_eq!(v.call("PolicyGet", json!({"policyname": "readers"})).await.ok(), got);
    // A policy sent as a JSON string is read as the object it holds.
    let text = allow(&["UserGet"], &["*"]).to_string();
    let second =
        v.call("PolicyCreate", json!({"policyname": "as-text", "policy": text})).await.ok()["policyid"].clone();
    assert_eq!(v.call("PolicyGet", json!({"policyid": second})).await.ok()["policy"], allow(&["UserGet"], &["*"]));
    let list = v.call("PolicyListAllPolicies", json!({})).await.ok();
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(list["rows"][0]["policyname"], "readers");

    let clerk = role(v, "clerk").await;
    let auditor = role(v, "auditor").await;
    link(v, clerk, id).await;
    link(v, auditor, id).await;
    let changed = json!({"Effect": "Deny", "Action": "UserGet", "Resource": "*"});
    let updated =
        v.call("PolicyUpdate", json!({"policyid": id, "policydesc": "now denies", "policy": changed})).await.ok();
    assert_eq!(updated["roles"], 2);
    let got = v.call("PolicyGet", json!({"policyid": id})).await.ok();
    assert_eq!((&got["policydesc"], &got["policy"]), (&json!("now denies"), &changed));
    v.call("PolicyUpdate", json!({"policyid": id, "policy": {"Effect": "Maybe"}}))
        .await
        .error(400, "The policy Effect must be Allow or Deny");
    assert_eq!(v.call("PolicyGet", json!({"policyid": id})).await.ok()["policy"], changed);

    let linked = "The policy is linked to roles: unlink it first, or delete with force";
    v.call("PolicyDelete", json!({"policyid": id})).await.error(409, linked);
    v.call("RoleLinkPolicy", json!({"roleid": clerk, "policyid": id, "unlink": true})).await.ok();
    v.call("PolicyDelete", json!({"policyname": "readers", "force": false})).await.error(409, linked);
    v.call("PolicyGet", json!({"policyid": id})).await.ok();
    assert_eq!(v.call("PolicyDelete", json!({"policyid": id, "force": true})).await.ok()["roles"], 1);
    v.call("PolicyGet", json!({"policyid": id})).await.error(404, "The policy record was not found");
    assert_eq!(v.call("RoleUpdate", json!({"roleid": auditor, "roledesc": "x"})).await.ok()["usage"]["policies"], 0);
    assert_eq!(v.call("PolicyDelete", json!({"policyid": second})).await.ok()["roles"], 0);
    v.call("PolicyDelete", json!({"policyid": id})).await.error(404, "The policy record was not found");
    v.call("RoleLinkPolicy", json!({"roleid": clerk, "policyid": id}))
        .await
        .error(404, "The policy record was not found");
    v.call("RoleLinkPolicy", json!({"roleid": 999_999, "policyname": "x"}))
        .await
        .error(404, "The role record was not found");
});

both!(a_bad_policy_is_refused_naming_the_problem, |v| {
    let statement = |extra: Value| {
        let mut document = json!({"Effect": "Allow", "Action": ["UserGet"], "Resource": ["users.profile.*"]});
        document.as_object_mut().expect("object").extend(extra.as_object().cloned().unwrap_or_default());
        document
    };
    let cases = [
        (statement(json!({"Action": ["UserGett"]})), "Unknown action in policy: UserGett"),
        (statement(json!({"Action": ["Nothing*"]})), "Unknown action in policy: Nothing*"),
        (
            statement(json!({"Condition": {"StringEqualz": {"${request_metadata:purpose}": "support"}}})),
            "Unknown condition operator in policy: StringEqualz",
        ),
        (
            statement(json!({"Condition": {"StringEquals": {"${request_metadata:}": "support"}}})),
            "Malformed variable in policy: ${request_metadata:}",
        ),
        (
            statement(json!({"Condition": {"StringEquals": {"${request_metadata:purpose": "support"}}})),
            "Malformed variable in policy: ${request_metadata:purpose",
        ),
        (
            statement(json!({"Condition": {"StringEquals": {"purpose": "${user:}"}}})),
            "Malformed variable in policy: ${user:}",
        ),
        (
            statement(json!({"Condition": {"StringEquals": {"${nothing}": "x"}}})),
            "Unknown variable in policy: ${nothing}",
        ),
        (
            statement(json!({"Condition": {"NumericLessThan": {"${request_metadata:age}": "old"}}})),
            "Invalid condition value in policy: NumericLessThan \"old\"",
        ),
        (statement(json!({"Resource": ["users.nothing"]})), "Unknown resource in policy: users.nothing"),
        (statement(json!({"NotAction": ["UserGet"]})), "Unknown key in policy: NotAction"),
        (statement(json!({"Effect": "Permit"})), "The policy Effect must be Allow or Deny"),
        (json!({"Effect": "Allow", "Resource": ["*"]}), "The policy needs at least one Action"),
        (json!({"Effect": "Allow", "Action": ["UserGet"]}), "The policy needs at least one Resource"),
        (json!([]), "The policy needs at least one statement"),
        (json!(7), "The policy must be a statement object, an object with a Statement list, or an array of statements"),
        (json!("{not json"), "The policy parameter has an incorrect format"),
    ];
    for (document, message) in cases {
        v.call("PolicyCreate", json!({"policyname": "bad", "policy": document.clone()})).await.error(400, message);
    }
    v.call("PolicyCreate", json!({"policyname": "bad"})).await.error(400, "Missing API request parameters: policy");
    assert_eq!(v.call("PolicyListAllPolicies", json!({})).await.ok()["total"], 0, "no refused policy was stored");
    // The same document, well formed, is accepted: wildcards and array forms included.
    let good = json!({"Statement": [
        {"Effect": "Allow", "Action": ["User*"], "Resource": ["users.profile.*"],
         "Condition": {"StringEquals": {"${request_metadata:purpose}": "support"}}},
        {"Effect": "Deny", "Action": "UserGet", "Resource": "${target_group_members:role/child}.profile.ssn"}
    ]});
    policy(v, "good", good).await;
});

both!(a_user_created_with_a_group_and_role_joins_it, |v| {
    let g = group(v, json!({"groupname": "family"})).await;
    let parent = role(v, "parent").await;
    let token = v
        .call("UserCreate", json!({"profile": {"login": "mum"}, "groupname": "family", "rolename": "parent"}))
        .await
        .ok()["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let rows = v.call("GroupListUserGroups", by_token(&token, json!({}))).await.ok();
    assert_eq!(rows["total"], 1);
    assert_eq!(rows["rows"][0]["groupid"], g);
    assert_eq!(rows["rows"][0]["groupname"], "family");
    assert_eq!(rows["rows"][0]["roleid"], parent);
    assert_eq!(rows["rows"][0]["rolename"], "parent");
    // By id, and without a role.
    let kid = v.call("UserCreate", json!({"profile": {"login": "kid"}, "groupid": g})).await.ok();
    let kid = kid["token"].as_str().expect("token");
    assert_eq!(user_groups(v, kid).await, [("family".to_owned(), None)]);

    // An unknown group or role is refused before the user exists.
    v.call("UserCreate", json!({"profile": {"login": "stray"}, "groupname": "nowhere"}))
        .await
        .error(404, "The group record was not found");
    v.call("UserCreate", json!({"profile": {"login": "stray"}, "groupid": 999_999}))
        .await
        .error(404, "The group record was not found");
    v.call("UserCreate", json!({"profile": {"login": "stray"}, "groupname": "family", "rolename": "nobody"}))
        .await
        .error(404, "The role record was not found");
    v.call("UserCreate", json!({"profile": {"login": "stray"}, "rolename": "parent"}))
        .await
        .error(400, "A role is held in a group: give groupname or groupid");
    v.call("UserGet", json!({"mode": "login", "identity": "stray"})).await.error(404, "The user record was not found");
});

both!(bulk_rows_carry_the_groups_and_roles_of_each_user, |v| {
    let team = group(v, json!({"groupname": "team"})).await;
    let desk = group(v, json!({"groupname": "desk"})).await;
    let lead = role(v, "lead").await;
    let alice = v.create_user(json!({"login": "alice"})).await;
    let bob = v.create_user(json!({"login": "bob"})).await;
    let carol = v.create_user(json!({"login": "carol"})).await;
    v.call("GroupAddUser", by_token(&alice, json!({"groupid": team, "roleid": lead}))).await.ok();
    v.call("GroupAddUser", by_token(&alice, json!({"groupid": desk}))).await.ok();
    v.call("GroupAddUser", by_token(&bob, json!({"groupid": desk, "rolename": "lead"}))).await.ok();
    let unlock = v.call("BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    let users = json!([{"mode": "token", "identity": alice}, {"mode": "login", "identity": "bob"},
                       {"mode": "token", "identity": carol}]);
    let listed = v.call("BulkListUsers", json!({"unlockuuid": unlock, "users": users})).await.ok();
    let rows = listed["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{listed}");
    let mut alice_roles = rows[0]["grouproles"].as_array().expect("grouproles").clone();
    alice_roles.sort_by_key(|r| r["groupid"].as_i64());
    assert_eq!(
        alice_roles,
        [
            json!({"groupid": team, "groupname": "team", "roleid": lead, "rolename": "lead"}),
            json!({"groupid": desk, "groupname": "desk", "roleid": null, "rolename": null}),
        ]
    );
    assert_eq!(
        rows[1]["grouproles"],
        json!([{"groupid": desk, "groupname": "desk", "roleid": lead, "rolename": "lead"}])
    );
    assert_eq!(rows[2]["grouproles"], json!([]));
    let all = v.call("BulkListAllUsers", json!({"unlockuuid": unlock})).await.ok();
    let bob_row = all["rows"].as_array().expect("rows").iter().find(|r| r["token"] == bob).expect("bob").clone();
    assert_eq!(bob_row["grouproles"], rows[1]["grouproles"]);

    let members = v.call("BulkListGroupUsers", json!({"unlockuuid": unlock, "groupname": "desk"})).await.ok();
    assert_eq!(members["total"], 2, "{members}");
    // Members who joined in the same second come in record order: compare them by token.
    let by_token: std::collections::BTreeMap<&str, (&Value, &Value)> = members["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| (r["token"].as_str().expect("token"), (&r["rolename"], &r["profile"])))
        .collect();
    let expected = [
        (alice.as_str(), (&Value::Null, &json!({"login": "alice"}))),
        (bob.as_str(), (&json!("lead"), &json!({"login": "bob"}))),
    ];
    assert_eq!(by_token, expected.into_iter().collect());
    v.call("BulkListGroupUsers", json!({"unlockuuid": unlock, "groupid": 999_999}))
        .await
        .error(404, "The group record was not found");
});

both!(a_nul_in_free_text_is_refused_not_a_500, |v| {
    // PostgreSQL's text cannot hold NUL: every free-text parameter refuses it up front.
    v.call("GroupCreate", json!({"groupname": "g1", "groupdesc": "a\u{0}b"}))
        .await
        .error(400, "The groupdesc parameter has an incorrect format");
    v.call("RoleCreate", json!({"rolename": "r1", "roledesc": "a\u{0}b"}))
        .await
        .error(400, "The roledesc parameter has an incorrect format");
    v.call("LegalBasisCreate", json!({"brief": "b1", "fulldesc": "a\u{0}b"}))
        .await
        .error(400, "The fulldesc parameter has an incorrect format");
    v.call("GroupCreate", json!({"groupname": "g1", "groupdesc": "fine"})).await.ok();
});

both!(groups_nest_at_most_32_deep, |v| {
    let mut parent = v.call("GroupCreate", json!({"groupname": "level-0"})).await.ok()["groupid"].clone();
    for level in 1..=32 {
        let body = json!({"groupname": format!("level-{level}"), "parentgroupid": parent});
        parent = v.call("GroupCreate", body).await.ok()["groupid"].clone();
    }
    let body = json!({"groupname": "level-33", "parentgroupid": parent});
    v.call("GroupCreate", body).await.error(400, "Groups nest at most 32 deep");
});
