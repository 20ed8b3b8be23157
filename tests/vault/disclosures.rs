//! A subject's trail and report show every bulk listing and search that returned their record:
//! who, when and which operation, tied to the call's own event.

use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;

/// The user's events as `AuditListUserEvents` lists them, newest first.
async fn trail(v: &TestVault, login: &str) -> Vec<Value> {
    let page = v.call("AuditListUserEvents", json!({"mode": "login", "identity": login, "limit": 100})).await.ok();
    page["rows"].as_array().expect("rows").clone()
}

/// The events of `operation` in a trail.
fn of<'a>(rows: &'a [Value], operation: &str) -> Vec<&'a Value> {
    rows.iter().filter(|row| row["title"] == operation).collect()
}

both!(bulk_listings_and_searches_show_in_the_subjects_trail_and_report, |v| {
    v.create_user(json!({"login": "ann", "email": "ann.listed@x.io", "name": "Ann"})).await;
    v.create_user(json!({"login": "ben", "email": "ben.other@y.io", "name": "Ben"})).await;
    let unlock = v.call("BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    let all = v.call("BulkListAllUsers", json!({"unlockuuid": unlock, "offset": 0, "limit": 10})).await.ok();
    assert_eq!(all["rows"].as_array().map(Vec::len), Some(2));
    let found = v.call("UserSearch", json!({"unlockuuid": unlock, "identity": "ann.listed@x.io"})).await.ok();
    assert_eq!(found["rows"].as_array().map(Vec::len), Some(1), "{found}");
    let users = json!([{"mode": "login", "identity": "ben"}]);
    v.call("BulkListUsers", json!({"unlockuuid": unlock, "users": users})).await.ok();

    let ann = trail(v, "ann").await;
    assert_eq!(of(&ann, "BulkListAllUsers").len(), 1, "{ann:?}");
    assert_eq!(of(&ann, "UserSearch").len(), 1, "{ann:?}");
    assert!(of(&ann, "BulkListUsers").is_empty(), "ann was not in that listing: {ann:?}");
    let ben = trail(v, "ben").await;
    assert_eq!((of(&ben, "BulkListAllUsers").len(), of(&ben, "BulkListUsers").len()), (1, 1), "{ben:?}");
    assert!(of(&ben, "UserSearch").is_empty(), "ben was not found by the search: {ben:?}");

    // Each names the caller, the time and the listing call's own event (which has no subject).
    let listed = of(&ann, "UserSearch")[0]["auditeventuuid"].clone();
    let event = v.call("AuditGetEvent", json!({"auditeventuuid": listed})).await.ok();
    assert_eq!((event["principalkind"].as_str(), event["httpstatus"].as_i64()), (Some("root"), Some(200)), "{event}");
    assert!(event["when"].as_i64().is_some_and(|t| t > 0), "{event}");
    let call = event["details"]["extra"]["listing"].clone();
    let call = v.call("AuditGetEvent", json!({"auditeventuuid": call})).await.ok();
    assert_eq!(call["title"], "UserSearch");
    assert_eq!(call["details"]["extra"]["records"], 1, "{call}");
    assert!(call["details"].get("usertoken").is_none(), "the call's own event names nobody: {call}");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events WHERE operation = 'BulkListAllUsers'").await, 3);

    // The report counts them per operation.
    let report =
        v.call("SystemGetUserReport", json!({"mode": "login", "identity": "ann"})).await.ok()["report"].clone();
    let operations = report["audit"]["operations"].as_array().expect("operations");
    for operation in ["BulkListAllUsers", "UserSearch"] {
        let counted = operations.iter().find(|o| o["operation"] == operation).unwrap_or_else(|| panic!("{report}"));
        assert_eq!(counted["count"], 1, "{counted}");
    }
});

both!(group_member_listings_show_in_the_members_trail, |v| {
    v.create_user(json!({"login": "gm"})).await;
    v.call("GroupCreate", json!({"groupname": "team"})).await.ok();
    v.call("GroupAddUser", json!({"mode": "login", "identity": "gm", "groupname": "team"})).await.ok();
    let unlock = v.call("BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    let listed = v.call("BulkListGroupUsers", json!({"unlockuuid": unlock, "groupname": "team"})).await.ok();
    assert_eq!(listed["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(of(&trail(v, "gm").await, "BulkListGroupUsers").len(), 1);
});
