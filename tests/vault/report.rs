//! The data subject's report: JSON and HTML, every domain, escaping, errors and erasure.

use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;

const SID: &str = "5d1a3f0e-8c2b-4f6a-9e7d-1b2c3d4e5f60";

fn who(token: &str) -> Value {
    json!({"mode": "token", "identity": token})
}

/// A user with something in every domain; returns its token.
async fn rich_user(v: &TestVault) -> String {
    let token =
        v.create_user(json!({"login": "rep", "email": "rep@example.com", "name": "<script>alert('x')</script>"})).await;
    v.call("UserUpdate", json!({"mode": "token", "identity": token, "profile": {"city": "Leeds & York"}})).await.ok();
    v.call("AppdataCreate", json!({"mode": "token", "identity": token, "appname": "shop", "appdata": {"cart": 3}}))
        .await
        .ok();
    v.call("LegalBasisCreate", json!({"brief": "marketing", "basistype": "consent"})).await.ok();
    let accept = json!({"mode": "token", "identity": token, "brief": "marketing", "agreementmethod": "web-form"});
    v.call("AgreementAccept", accept).await.ok();
    v.call("AgreementCancel", json!({"mode": "token", "identity": token, "brief": "marketing"})).await.ok();
    v.call("SessionUpsert", json!({"sessionuuid": SID, "sessiondata": {"token": token, "device": "phone-7"}}))
        .await
        .ok();
    v.call("SharedRecordCreate", json!({"mode": "token", "identity": token, "fields": "city", "partner": "acme"}))
        .await
        .ok();
    v.call("UserUpdateRequest", json!({"mode": "token", "identity": token, "profile": {"city": "Hull"}})).await.ok();
    let file = json!({"mode": "token", "identity": token, "filename": "scan-<b>.pdf", "filedata": "JVBERi0=", "tags": ["kyc"]});
    v.call("FileCreate", file).await.ok();
    token
}

both!(report_holds_every_domain, |v| {
    let token = rich_user(v).await;
    let other = v.create_user(json!({"login": "other"})).await;
    v.call("AppdataCreate", json!({"mode": "token", "identity": other, "appname": "crm", "appdata": {"x": 1}}))
        .await
        .ok();
    let before = v.clock().now();
    let report =
        v.call("SystemGetUserReport", json!({"mode": "login", "identity": "rep"})).await.ok()["report"].clone();
    let after = v.clock().now();
    assert_eq!(report["token"], token);
    assert_eq!(report["profile"]["city"], "Leeds & York");
    assert_eq!(report["version"], 2);
    // The request's own second (a second boundary may fall between the call and this check).
    let generated = report["generated"].as_i64().expect("generated is an integer");
    assert!((before..=after).contains(&generated), "{generated} not in {before}..={after}");
    assert_eq!(report["appdata"], json!([{"appname": "shop", "appdata": {"cart": 3}, "version": 1}]));
    let agreements = report["agreements"].as_array().expect("agreements");
    assert_eq!(agreements.len(), 1);
    assert_eq!(agreements[0]["brief"], "marketing");
    assert_eq!(agreements[0]["status"], "canceled");
    assert_eq!(agreements[0]["history"].as_array().map(Vec::len), Some(2));
    assert_eq!(report["sessions"], json!([{"sessionuuid": SID, "sessiondata": {"token": token, "device": "phone-7"}}]));
    let shared = report["sharedrecords"].as_array().expect("shared");
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0]["data"], json!({"city": "Leeds & York"}));
    assert!(shared[0]["expirationtime"].as_i64() > shared[0]["creationtime"].as_i64());
    let requests = report["requests"].as_array().expect("requests");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0]["requesttype"], "change-profile");
    assert_eq!(requests[0]["change"], json!({"city": "Hull"}));
    let files = report["files"].as_array().expect("files");
    assert_eq!(files.len(), 1);
    assert_eq!((files[0]["filename"].clone(), files[0]["tags"].clone()), (json!("scan-<b>.pdf"), json!(["kyc"])));
    assert!(files[0].get("filedata").is_none(), "metadata only: {}", files[0]);
    // Nothing of the other user.
    assert!(!report.to_string().contains("crm"), "{report}");

    let audit = &report["audit"];
    let count = |op: &str| {
        audit["operations"]
            .as_array()
            .expect("operations")
            .iter()
            .find(|o| o["operation"] == op)
            .map(|o| o["count"].clone())
    };
    assert_eq!(count("UserCreate"), Some(json!(1)));
    assert_eq!(count("AgreementAccept"), Some(json!(1)));
    assert_eq!(count("UserUpdateRequest"), Some(json!(1)));
    assert_eq!(count("AppdataCreate"), Some(json!(1)));
    let total: i64 = audit["operations"].as_array().expect("ops").iter().filter_map(|o| o["count"].as_i64()).sum();
    assert_eq!(audit["total"], total);
    // UserCreate, UserUpdate, AppdataCreate, AgreementAccept, AgreementCancel, SessionUpsert,
    // SharedRecordCreate, UserUpdateRequest, FileCreate.
    assert_eq!(total, 9, "{audit}");

    // Making the report is itself audited on the user.
    let events = v.call("AuditListUserEvents", json!({"mode": "token", "identity": token, "limit": 100})).await.ok();
    assert!(events["rows"].as_array().expect("rows").iter().any(|r| r["title"] == "SystemGetUserReport"));
});

both!(html_report_is_readable_and_escaped, |v| {
    let token = rich_user(v).await;
    let answer = v.call("SystemGetUserHTMLReport", who(&token)).await.ok();
    let html = answer["html"].as_str().expect("html");
    assert!(html.starts_with("<!DOCTYPE html>"), "{html}");
    assert!(!html.contains("<script>"), "profile markup must be escaped: {html}");
    assert!(html.contains("&lt;script&gt;alert('x')&lt;/script&gt;"), "{html}");
    assert!(html.contains("Leeds &amp; York"), "{html}");
    assert!(html.contains("scan-&lt;b&gt;.pdf"), "{html}");
    for expected in [token.as_str(), "shop", "marketing", "canceled", "phone-7", "change-profile", "Hull", "UserCreate"]
    {
        assert!(html.contains(expected), "{expected} missing: {html}");
    }
});

both!(empty_sections_and_errors, |v| {
    let token = v.create_user(json!({"login": "bare"})).await;
    let report = v.call("SystemGetUserReport", who(&token)).await.ok()["report"].clone();
    for section in ["appdata", "agreements", "sessions", "sharedrecords", "requests", "files"] {
        assert_eq!(report[section], json!([]), "{section}");
    }
    assert!(
        v.call("SystemGetUserHTMLReport", who(&token)).await.ok()["html"].as_str().expect("html").contains("None.")
    );
    for op in ["SystemGetUserReport", "SystemGetUserHTMLReport"] {
        v.call(op, json!({"mode": "login", "identity": "nobody"})).await.error(404, "The user record was not found");
        v.call(op, json!({"identity": "bare"})).await.error(400, "Missing API request parameters: mode");
        v.call_as(op, None, None, who(&token)).await.error(403, "Access denied");
    }
});

both!(no_report_after_erasure_by_request, |v| {
    let token = rich_user(v).await;
    let uuid = v.call("UserDeleteRequest", who(&token)).await.ok()["requestuuid"].as_str().expect("uuid").to_owned();
    v.call("UserRequestApprove", json!({"requestuuid": uuid})).await.ok();
    for op in ["SystemGetUserReport", "SystemGetUserHTMLReport"] {
        v.call(op, who(&token)).await.error(404, "The user record was not found");
        v.call(op, json!({"mode": "email", "identity": "rep@example.com"}))
            .await
            .error(404, "The user record was not found");
    }
    for table in ["userapps", "agreements", "agreement_history", "sessions", "shared_records", "user_requests", "files"]
    {
        assert_eq!(v.scalar(&format!("SELECT COUNT(*) FROM {table}")).await, 0, "{table}");
    }
});
