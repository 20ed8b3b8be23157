//! Shared records: create (snapshot of selected fields), the public get, lifetimes, auditing
//! and erasure with the user.

use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;

const UNKNOWN: &str = "5d3c1a2b-7e8f-4a9b-8c0d-1e2f3a4b5c6d";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Creates a shared record as root and returns its uuid.
async fn share(v: &TestVault, body: Value) -> String {
    let answer = v.call("SharedRecordCreate", body).await.ok();
    answer["recorduuid"].as_str().unwrap_or_else(|| panic!("recorduuid: {answer}")).to_owned()
}

/// The public read: no token at all.
async fn public_get(v: &TestVault, uuid: &str) -> crate::common::Answer {
    v.call_as("SharedRecordGet", None, None, json!({"recorduuid": uuid})).await
}

/// A user's events, newest first as listed.
async fn user_events(v: &TestVault, token: &str) -> Vec<Value> {
    let body = v.call("AuditListUserEvents", json!({"mode": "token", "identity": token, "limit": 100})).await.ok();
    body["rows"].as_array().expect("rows").clone()
}

both!(shares_only_the_chosen_fields_publicly, |v| {
    let profile = json!({"name": "Ann", "email": "ann@x.io", "phone": "4420", "address": {"city": "Oslo"}});
    let token = v.create_user(profile.clone()).await;
    let subset =
        share(v, json!({"mode": "token", "identity": token, "fields": " name, address ,nope", "partner": "acme"}))
            .await;
    let whole = share(v, json!({"mode": "email", "identity": "ann@x.io", "fields": null, "partner": null})).await;
    assert_ne!(subset, whole);
    // No token, as a public client sends.
    let body = public_get(v, &subset).await.ok();
    assert_eq!(body["data"], json!({"name": "Ann", "address": {"city": "Oslo"}}));
    // A stale or foreign token is ignored, not rejected; the uuid matches in any case.
    let body =
        v.call_as("SharedRecordGet", Some(UNKNOWN), None, json!({"recorduuid": whole.to_uppercase()})).await.ok();
    assert_eq!(body["data"], profile);
    // A snapshot: later profile changes do not show through.
    v.call("UserUpdate", json!({"mode": "token", "identity": token, "profile": {"name": "Bea"}})).await.ok();
    assert_eq!(public_get(v, &subset).await.ok()["data"]["name"], "Ann");
    // Both calls are audited under the user; the public read with principal "public".
    let events = user_events(v, &token).await;
    let titles: Vec<&str> = events.iter().filter_map(|e| e["title"].as_str()).collect();
    assert_eq!(titles.iter().filter(|t| **t == "SharedRecordCreate").count(), 2, "{titles:?}");
    assert_eq!(titles.iter().filter(|t| **t == "SharedRecordGet").count(), 3, "{titles:?}");
    for event in &events {
        let uuid = event["auditeventuuid"].as_str().expect("uuid");
        let full = v.call("AuditGetEvent", json!({"auditeventuuid": uuid})).await.ok();
        match event["title"].as_str() {
            Some("SharedRecordGet") => {
                assert_eq!(full["principalkind"], "public", "{full}");
                assert_eq!(full["details"]["usertoken"], token.as_str(), "{full}");
            }
            Some("SharedRecordCreate") if full["details"]["extra"]["partner"] == "acme" => {
                assert_eq!(full["details"]["extra"]["fields"], 2, "{full}");
                assert_eq!(full["principalkind"], "root", "{full}");
            }
            Some("SharedRecordCreate") => assert_eq!(full["details"]["extra"]["fields"], 4, "{full}"),
            _ => {}
        }
    }
});

both!(shares_app_data_instead_of_the_profile, |v| {
    let token = v.create_user(json!({"login": "cy", "name": "Cy"})).await;
    let who = json!({"mode": "login", "identity": "cy"});
    let mut body = who.clone();
    body["appname"] = json!("shop");
    v.call("SharedRecordCreate", body.clone()).await.error(404, "The app record was not found");
    v.call(
        "AppdataCreate",
        json!({"mode": "token", "identity": token, "appname": "shop", "appdata": {"cart": [1], "vip": true}}),
    )
    .await
    .ok();
    body["appname"] = json!("Shop");
    let all = share(v, body.clone()).await;
    body["fields"] = json!("vip");
    let vip = share(v, body.clone()).await;
    assert_eq!(public_get(v, &all).await.ok()["data"], json!({"cart": [1], "vip": true}));
    assert_eq!(public_get(v, &vip).await.ok()["data"], json!({"vip": true}));
    body["appname"] = json!("no way");
    v.call("SharedRecordCreate", body).await.error(400, "The appname parameter has an incorrect format");
});

both!(shared_records_expire_and_are_capped, |v| {
    let token = v.create_user(json!({"name": "Di"})).await;
    let who = |finaltime: Value| json!({"mode": "token", "identity": token, "finaltime": finaltime});
    let hour = share(v, who(json!("1h"))).await;
    let year = share(v, who(json!("1y"))).await;
    let default = share(v, who(Value::Null)).await;
    v.call("SharedRecordCreate", who(json!("soon")))
        .await
        .error(400, "The finaltime parameter has an incorrect format");
    v.clock().advance(3_601);
    public_get(v, &hour).await.error(404, "The shared record was not found");
    public_get(v, &year).await.ok();
    public_get(v, &default).await.ok();
    // Both the capped year and the default end at the 30-day maximum.
    v.clock().advance(30 * 86_400 - 3_601 - 5);
    public_get(v, &year).await.ok();
    v.clock().advance(10);
    public_get(v, &year).await.error(404, "The shared record was not found");
    public_get(v, &default).await.error(404, "The shared record was not found");
});

both!(bad_and_unknown_requests, |v| {
    let token = v.create_user(json!({"name": "Ed"})).await;
    public_get(v, UNKNOWN).await.error(404, "The shared record was not found");
    public_get(v, "not-a-uuid").await.error(400, "Bad UUID");
    v.call_as("SharedRecordGet", None, None, json!({})).await.error(400, "Missing API request parameters: recorduuid");
    v.call_as("SharedRecordGet", None, Some("nosuchtenant"), json!({"recorduuid": UNKNOWN}))
        .await
        .error(404, "The tenant record was not found");
    // Creating is not public.
    v.call_as("SharedRecordCreate", None, None, json!({"mode": "token", "identity": token}))
        .await
        .error(403, "Access denied");
    v.call_as("SharedRecordCreate", Some(UNKNOWN), None, json!({"mode": "token", "identity": token}))
        .await
        .error(403, "Access denied");
    v.call("SharedRecordCreate", json!({"mode": "login", "identity": "nobody"}))
        .await
        .error(404, "The user record was not found");
    v.call("SharedRecordCreate", json!({})).await.error(400, "Missing API request parameters: mode, identity");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM shared_records").await, 0);
});

both!(shared_records_are_sealed_and_erased_with_their_user, |v| {
    let secret = "zebra-shared-4411";
    let token = v.create_user(json!({"name": secret, "login": "fay"})).await;
    let other = v.create_user(json!({"name": "other-okapi"})).await;
    let uuid = share(v, json!({"mode": "token", "identity": token, "fields": "name"})).await;
    let kept = share(v, json!({"mode": "token", "identity": other})).await;
    assert_eq!(public_get(v, &uuid).await.ok()["data"], json!({"name": secret}));
    let dump = v.dump().await;
    assert!(contains(&dump, b"SharedRecordCreate"), "the dump holds the audit rows");
    for needle in [uuid.as_str(), &uuid.replace('-', "")] {
        assert!(!contains(&dump, needle.as_bytes()), "{needle} is stored in clear");
    }
    v.call("UserDelete", json!({"mode": "token", "identity": token})).await.ok();
    public_get(v, &uuid).await.error(404, "The shared record was not found");
    public_get(v, &kept).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM shared_records").await, 1);
    assert!(!contains(&v.dump().await, secret.as_bytes()), "{secret} survives erasure");
});
