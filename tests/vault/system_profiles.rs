//! The vault-wide profile operations of the main tenant's administrator: lookup and fuzzy
//! search over every tenant, deletion held for a grace period, restore, and erasure once the
//! grace period ends.

use serde_json::{Value, json};

use crate::both;
use crate::bulk::unlock;
use crate::common::TestVault;

const EMAIL: &str = "Shared.Person@Example.com";

/// A grace period of one hour; unlock grants that outlive the test.
fn settings(_: &std::path::Path) -> bunker::state::Settings {
    bunker::state::Settings { deleted_retention: 3_600, bulk_unlock_ttl: 86_400, ..Default::default() }
}

/// Creates a tenant as root; returns its admin token.
async fn tenant(v: &TestVault, name: &str) -> String {
    let body = v.call("TenantCreate", json!({"tenantname": name, "tenantorg": "Org"})).await.ok();
    body["xtoken"].as_str().expect("xtoken").to_owned()
}

/// Creates a user in `tenant` (None: the main tenant) as root; returns its token.
async fn user_in(v: &TestVault, tenant: Option<&str>, profile: Value) -> String {
    let body = v.call_as("UserCreate", Some(&v.root), tenant, json!({ "profile": profile })).await.ok();
    body["token"].as_str().expect("token").to_owned()
}

/// The same person (same e-mail, a name of each tenant) in the main tenant and in two others.
/// Returns the tokens: main, alpha, bravo.
async fn same_person_in_three(v: &TestVault) -> [String; 3] {
    for name in ["alpha", "bravo"] {
        tenant(v, name).await;
    }
    let mut tokens = Vec::new();
    for (tenant, name) in [(None, "main-person"), (Some("alpha"), "alpha-person"), (Some("bravo"), "bravo-person")] {
        tokens.push(user_in(v, tenant, json!({"email": EMAIL, "login": name, "name": name})).await);
    }
    tokens.try_into().expect("three")
}

/// `(tenantname, login)` of every row, sorted.
fn rows_of(body: &Value) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> = body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            (
                r["tenantname"].as_str().expect("tenantname").to_owned(),
                r["profile"]["login"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn expected(names: &[(&str, &str)]) -> Vec<(String, String)> {
    names.iter().map(|(t, l)| (t.to_string(), l.to_string())).collect()
}

both!(profiles_of_every_tenant_are_found_with_each_tenants_own_keys, settings = settings, |v| {
    let [main, alpha, _] = same_person_in_three(v).await;
    // Someone else in alpha, whom nothing here asks for.
    user_in(v, Some("alpha"), json!({"email": "other@example.com", "login": "other"})).await;
    let uuid = unlock(v).await;
    let all = [("alpha", "alpha-person"), ("bravo", "bravo-person"), ("main", "main-person")];

    // The e-mail, in any case, finds the person in all three tenants.
    let body = v
        .call(
            "SystemGetUserProfiles",
            json!({"mode": "email", "identity": "shared.person@example.com", "unlockuuid": uuid}),
        )
        .await
        .ok();
    assert_eq!(body["total"], json!(3), "{body}");
    assert_eq!(rows_of(&body), expected(&all));
    for row in body["rows"].as_array().expect("rows") {
        assert!(row["token"].as_str().is_some_and(|t| t.len() == 36), "{row}");
        assert!(row["tenantid"].as_i64().is_some(), "{row}");
        assert_eq!(row["profile"]["email"], json!(EMAIL), "the stored profile verbatim: {row}");
    }
    let main_row = body["rows"].as_array().expect("rows").iter().find(|r| r["tenantname"] == "main").expect("main");
    assert_eq!(main_row["token"], json!(main));
    assert_eq!(main_row["tenantid"], json!(1));

    // Keys this process has not unlocked (another replica's tenants) are read in one go.
    for row in body["rows"].as_array().expect("rows") {
        v.state.forget_tenant(bunker::tenants::TenantId::new(row["tenantid"].as_i64().expect("id")));
    }
    let again =
        v.call("SystemGetUserProfiles", json!({"mode": "email", "identity": EMAIL, "unlockuuid": uuid})).await.ok();
    assert_eq!(rows_of(&again), expected(&all));

    // A login is per tenant: it finds only that tenant's user.
    let body = v
        .call("SystemGetUserProfiles", json!({"mode": "login", "identity": "alpha-person", "unlockuuid": uuid}))
        .await
        .ok();
    assert_eq!(rows_of(&body), expected(&[("alpha", "alpha-person")]));
    assert_eq!(body["rows"][0]["token"], json!(alpha));

    // Fuzzy: a partial e-mail with a typo, the mode detected.
    let body =
        v.call("SystemSearchUserProfiles", json!({"identity": "shared.persn@example", "unlockuuid": uuid})).await.ok();
    assert_eq!(rows_of(&body), expected(&all), "{body}");
    let body = v.call("SystemSearchUserProfiles", json!({"identity": "alpha-persn", "unlockuuid": uuid})).await.ok();
    assert_eq!(rows_of(&body), expected(&[("alpha", "alpha-person")]), "{body}");
    let body =
        v.call("SystemSearchUserProfiles", json!({"identity": "nobody@nowhere.test", "unlockuuid": uuid})).await.ok();
    assert_eq!(body["total"], json!(0));
    assert_eq!(body["rows"], json!([]));

    // Each tenant's user trail shows the disclosure, in that tenant.
    let trail = v
        .call_as("AuditListUserEvents", Some(&v.root), Some("alpha"), json!({"mode": "token", "identity": alpha}))
        .await
        .ok();
    let titles: Vec<&str> =
        trail["rows"].as_array().expect("rows").iter().filter_map(|r| r["title"].as_str()).collect();
    assert!(titles.contains(&"SystemGetUserProfiles"), "{titles:?}");
    assert!(titles.contains(&"SystemSearchUserProfiles"), "{titles:?}");

    // No token mode (a token is one tenant's), and the unlock grant is required.
    v.call("SystemGetUserProfiles", json!({"mode": "token", "identity": main, "unlockuuid": uuid}))
        .await
        .error(400, "The mode parameter must be login, email, phone or custom");
    v.call("SystemGetUserProfiles", json!({"mode": "email", "identity": EMAIL}))
        .await
        .error(400, "Missing API request parameters: unlockuuid");
});

both!(only_the_main_tenants_administrator_reaches_every_tenant, settings = settings, |v| {
    let [_, alpha, _] = same_person_in_three(v).await;
    let charlie_admin = tenant(v, "charlie").await;
    let charlie_unlock = {
        let body = v.call_as("BulkListUnlock", Some(&charlie_admin), Some("charlie"), json!({})).await.ok();
        body["unlockuuid"].as_str().expect("unlockuuid").to_owned()
    };
    let calls = [
        ("SystemGetUserProfiles", json!({"mode": "email", "identity": EMAIL, "unlockuuid": charlie_unlock})),
        ("SystemSearchUserProfiles", json!({"identity": EMAIL, "unlockuuid": charlie_unlock})),
        ("SystemDeleteUserProfiles", json!({"mode": "email", "identity": EMAIL, "unlockuuid": charlie_unlock})),
        ("SystemRestoreUserProfile", json!({"token": alpha, "tenantname": "alpha", "unlockuuid": charlie_unlock})),
    ];
    for (op, body) in &calls {
        // A tenant's administrator, in its own tenant or naming the main one.
        v.call_as(op, Some(&charlie_admin), Some("charlie"), body.clone()).await.error(403, "Access denied");
        // The main root acting in another tenant is not acting vault-wide.
        v.call_as(op, Some(&v.root), Some("alpha"), body.clone()).await.error(403, "Access denied");
        // No token, a wrong one.
        v.call_as(op, None, None, body.clone()).await.error(403, "Access denied");
        v.call_as(op, Some("00000000-0000-0000-0000-000000000000"), None, body.clone())
            .await
            .error(403, "Access denied");
    }
    // Nothing was held by any of them.
    let found = v.call_as("UserGet", Some(&v.root), Some("alpha"), json!({"mode": "token", "identity": alpha})).await;
    found.ok();
});

both!(a_system_deletion_holds_then_restores_then_erases, settings = settings, |v| {
    let [main, alpha, bravo] = same_person_in_three(v).await;
    // Things of the main tenant's user that other operations reach without its identity.
    let session = "7f0c8d43-1a7e-4c39-9f3b-5d8a2f3e1c01";
    v.call("SessionUpsert", json!({"sessionuuid": session, "sessiondata": {"token": main, "step": 1}})).await.ok();
    let shared = v.call("SharedRecordCreate", json!({"mode": "token", "identity": main, "fields": "login"})).await.ok();
    let record = shared["recorduuid"].as_str().expect("recorduuid").to_owned();
    let me = json!({"mode": "token", "identity": main});
    let with_me = |extra: Value| {
        let mut body = me.clone();
        body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
        body
    };
    v.call("FileCreate", with_me(json!({"filename": "id.pdf", "filedata": "QUJD", "tags": ["kyc"]}))).await.ok();
    v.call("AppdataCreate", with_me(json!({"appname": "shop", "appdata": {"cart": 1}}))).await.ok();
    v.call("UserUpdateRequest", with_me(json!({"profile": {"name": "asked"}}))).await.ok();
    let trail = v.call("AuditListUserEvents", json!({"mode": "token", "identity": main})).await.ok();
    let event = trail["rows"][0]["auditeventuuid"].as_str().expect("event").to_owned();
    let uuid = unlock(v).await;

    // Only alpha and the main tenant (by name and by id).
    let body = v
        .call(
            "SystemDeleteUserProfiles",
            json!({"mode": "email", "identity": EMAIL, "tenantname": "alpha", "unlockuuid": uuid}),
        )
        .await
        .ok();
    assert_eq!(body["total"], json!(1), "{body}");
    assert_eq!(
        body["rows"][0],
        json!({"token": alpha, "tenantid": body["rows"][0]["tenantid"], "tenantname": "alpha"})
    );
    let body = v
        .call("SystemDeleteUserProfiles", json!({"mode": "token", "identity": main, "tenantid": 1, "unlockuuid": uuid}))
        .await
        .ok();
    assert_eq!(body["rows"], json!([{"token": main, "tenantid": 1, "tenantname": "main"}]));
    // Asked again, there is nothing left to delete: only bravo's remains.
    let body =
        v.call("SystemDeleteUserProfiles", json!({"mode": "email", "identity": EMAIL, "unlockuuid": uuid})).await.ok();
    assert_eq!(body["rows"], json!([{"token": bravo, "tenantid": body["rows"][0]["tenantid"], "tenantname": "bravo"}]));
    let restored = v
        .call("SystemRestoreUserProfile", json!({"token": bravo, "tenantname": "bravo", "unlockuuid": uuid}))
        .await
        .ok();
    assert_eq!(restored["result"], json!("restored"));

    // Held: absent through every operation, at once, statistics included (root in the main
    // tenant sees the vault's).
    assert_eq!(num_users(v).await, 1);
    v.call("UserGet", json!({"mode": "token", "identity": main})).await.error(404, "The user record was not found");
    v.call("UserGet", json!({"mode": "email", "identity": EMAIL})).await.error(404, "The user record was not found");
    v.call_as("UserGet", Some(&v.root), Some("alpha"), json!({"mode": "token", "identity": alpha}))
        .await
        .error(404, "The user record was not found");
    v.call("UserUpdate", json!({"mode": "token", "identity": main, "profile": {"name": "x"}}))
        .await
        .error(404, "The user record was not found");
    let answer = v.call("SessionGet", json!({"sessionuuid": session})).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    let answer = v.call("SharedRecordGet", json!({"recorduuid": record})).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    let all = v.call("BulkListAllUsers", json!({"unlockuuid": uuid})).await.ok();
    assert_eq!(all["total"], json!(0), "{all}");
    let found = v.call("UserSearch", json!({"identity": EMAIL, "unlockuuid": uuid})).await.ok();
    assert_eq!(found["total"], json!(0), "{found}");
    let listed =
        v.call("BulkListUsers", json!({"unlockuuid": uuid, "users": [{"mode": "token", "identity": main}]})).await.ok();
    assert_eq!(listed["rows"], json!([]), "{listed}");
    let files = v.call("BulkListFilesByTag", json!({"unlockuuid": uuid, "tag": "kyc"})).await.ok();
    assert_eq!(files["total"], json!(0), "{files}");
    let requests = v.call("BulkListAllUserRequests", json!({"unlockuuid": uuid})).await.ok();
    assert_eq!(requests["total"], json!(0), "{requests}");
    let apps = v.request("/v2/AppdataListAppNames", Some(&v.root), None, None).await.ok();
    assert_eq!(apps["apps"], json!([]), "{apps}");
    let across =
        v.call("SystemGetUserProfiles", json!({"mode": "email", "identity": EMAIL, "unlockuuid": uuid})).await.ok();
    assert_eq!(rows_of(&across), expected(&[("bravo", "bravo-person")]), "{across}");
    let opened = v.call("AuditGetEvent", json!({"auditeventuuid": event})).await.ok();
    assert_eq!(opened["details"], Value::Null, "{opened}");
    assert_eq!(opened["erased"], json!(false), "held, not erased: {opened}");
    // Its identities stay reserved while it can come back.
    let clash = v.call("UserCreate", json!({"profile": {"email": EMAIL}})).await;
    assert_eq!(clash.status, 409, "{}", clash.body);

    // Restored within the grace period: as it was, with everything attached.
    v.clock().advance(3_000);
    let restored =
        v.call("SystemRestoreUserProfile", json!({"token": main, "tenantid": 1, "unlockuuid": uuid})).await.ok();
    assert_eq!(restored["token"], json!(main));
    assert_eq!(restored["profile"]["login"], json!("main-person"));
    v.call("UserGet", json!({"mode": "email", "identity": EMAIL})).await.ok();
    assert_eq!(num_users(v).await, 2);
    v.call("SessionGet", json!({"sessionuuid": session})).await.ok();
    v.call("SharedRecordGet", json!({"recorduuid": record})).await.ok();
    let files = v.call("BulkListFilesByTag", json!({"unlockuuid": uuid, "tag": "kyc"})).await.ok();
    assert_eq!(files["total"], json!(1), "{files}");
    let requests = v.call("BulkListAllUserRequests", json!({"unlockuuid": uuid})).await.ok();
    assert_eq!(requests["total"], json!(1), "{requests}");
    let opened = v.call("AuditGetEvent", json!({"auditeventuuid": event})).await.ok();
    assert_ne!(opened["details"], Value::Null, "{opened}");
    // Once only; a live user is not restored; a token of another tenant is not found here.
    for body in [
        json!({"token": main, "tenantid": 1, "unlockuuid": uuid}),
        json!({"token": alpha, "tenantid": 1, "unlockuuid": uuid}),
    ] {
        v.call("SystemRestoreUserProfile", body).await.error(404, "The user record was not found");
    }

    // Past the grace period, alpha's is erased by the sweeper as UserDelete would, and can no
    // longer be restored.
    v.clock().advance(700);
    let erased = bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    let alpha_id = across_id(&erased, 1);
    assert_eq!(erased.get(&alpha_id).map(|e| (e.users, e.held_users)), Some((1, 1)), "{erased:?}");
    v.call("SystemRestoreUserProfile", json!({"token": alpha, "tenantname": "alpha", "unlockuuid": unlock(v).await}))
        .await
        .error(404, "The user record was not found");
    let rows = v.scalar("SELECT COUNT(*) FROM users WHERE held_until IS NOT NULL").await;
    assert_eq!(rows, 0);
    // The others were untouched by the sweep.
    assert_eq!(v.scalar("SELECT COUNT(*) FROM users").await, 2);
    assert_eq!(num_users(v).await, 2);
});

/// `numusers` of the vault's statistics (root in the main tenant).
async fn num_users(v: &TestVault) -> i64 {
    let body = v.call("SystemGetSystemStats", json!({})).await.ok();
    body["stats"]["numusers"].as_i64().unwrap_or_else(|| panic!("numusers: {body}"))
}

both!(a_system_deletion_erases_the_unbound_sessions_naming_the_person, settings = settings, |v| {
    // Stored before its user existed, the session names the person without being bound to it.
    let session = "0b6f2c1e-9d4a-4f3b-8e7c-2a1d5c6b7e8f";
    v.call("SessionUpsert", json!({"sessionuuid": session, "sessiondata": {"email": "later@example.com"}})).await.ok();
    let token = v.create_user(json!({"email": "later@example.com"})).await;
    v.call("SessionGet", json!({"sessionuuid": session})).await.ok();
    let uuid = unlock(v).await;
    let body = v
        .call("SystemDeleteUserProfiles", json!({"mode": "email", "identity": "later@example.com", "unlockuuid": uuid}))
        .await
        .ok();
    assert_eq!(body["rows"][0]["token"], json!(token), "{body}");
    let answer = v.call("SessionGet", json!({"sessionuuid": session})).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    // A restore does not bring it back: it was not the profile's.
    v.call("SystemRestoreUserProfile", json!({"token": token, "tenantid": 1, "unlockuuid": uuid})).await.ok();
    let answer = v.call("SessionGet", json!({"sessionuuid": session})).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
});

both!(a_held_users_access_token_is_revoked_and_not_brought_back, settings = settings, |v| {
    let token = v.create_user(json!({"email": "held@example.com", "name": "Held"})).await;
    let minted = v.call("XTokenCreateForUser", json!({"mode": "token", "identity": token})).await.ok();
    let xtoken = minted["xtoken"].as_str().expect("xtoken").to_owned();
    let own = json!({"mode": "token", "identity": token});
    v.call_as("UserGet", Some(&xtoken), None, own.clone()).await.ok();
    let uuid = unlock(v).await;
    v.call("SystemDeleteUserProfiles", json!({"mode": "token", "identity": token, "tenantid": 1, "unlockuuid": uuid}))
        .await
        .ok();
    v.call_as("UserGet", Some(&xtoken), None, own.clone()).await.error(403, "Access denied");
    // None can be minted for it while it is held.
    v.call("XTokenCreateForUser", own.clone()).await.error(404, "The user record was not found");
    v.call("SystemRestoreUserProfile", json!({"token": token, "tenantid": 1, "unlockuuid": uuid})).await.ok();
    v.call_as("UserGet", Some(&xtoken), None, own).await.error(403, "Access denied");
});

/// The one tenant other than `main` in the sweep's counts.
fn across_id(
    erased: &std::collections::BTreeMap<bunker::tenants::TenantId, bunker::store::retention::Erased>,
    main: i64,
) -> bunker::tenants::TenantId {
    *erased.keys().find(|t| t.get() != main).expect("another tenant swept")
}

both!(system_deletion_refuses_what_it_cannot_name, settings = settings, |v| {
    let [main, _, _] = same_person_in_three(v).await;
    let uuid = unlock(v).await;
    v.call("SystemDeleteUserProfiles", json!({"mode": "token", "identity": main, "unlockuuid": uuid}))
        .await
        .error(400, "The token mode needs tenantid or tenantname");
    v.call(
        "SystemDeleteUserProfiles",
        json!({"mode": "email", "identity": EMAIL, "tenantname": "nope", "unlockuuid": uuid}),
    )
    .await
    .error(404, "The tenant record was not found");
    v.call(
        "SystemDeleteUserProfiles",
        json!({"mode": "email", "identity": EMAIL, "tenantid": 999, "unlockuuid": uuid}),
    )
    .await
    .error(404, "The tenant record was not found");
    v.call("SystemRestoreUserProfile", json!({"token": main, "unlockuuid": uuid}))
        .await
        .error(400, "Missing API request parameters: tenantid or tenantname");
    v.call("SystemRestoreUserProfile", json!({"token": "not-a-uuid", "tenantid": 1, "unlockuuid": uuid}))
        .await
        .error(400, "Bad UUID");
    // Nobody carries it: nothing held, an empty answer.
    let body = v
        .call(
            "SystemDeleteUserProfiles",
            json!({"mode": "email", "identity": "nobody@example.com", "unlockuuid": uuid}),
        )
        .await
        .ok();
    assert_eq!(body, json!({"status": "ok", "total": 0, "rows": []}));
    // The main tenant's user is still there.
    v.call("UserGet", json!({"mode": "token", "identity": main})).await.ok();
});
