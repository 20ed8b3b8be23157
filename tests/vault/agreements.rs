//! Agreements: accept, get with history, list, cancel, revoke-all, errors and erasure.

use serde_json::{Value, json};

use crate::both;
use crate::common::{TestVault, assert_absent};

const REF: &str = "Consent-Form-Zq81";
const REF2: &str = "Consent-Form-Wx42";

async fn basis(v: &TestVault, brief: &str) {
    v.call("LegalBasisCreate", json!({"brief": brief, "basistype": "consent"})).await.ok();
}

fn addr(token: &str, brief: &str, extra: Value) -> Value {
    let mut body = json!({"mode": "token", "identity": token, "brief": brief});
    body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    body
}

async fn agreement(v: &TestVault, token: &str, brief: &str) -> Value {
    v.call("AgreementGet", addr(token, brief, json!({}))).await.ok()["agreement"].clone()
}

both!(accept_get_list_cancel_keep_the_history, |v| {
    basis(v, "marketing").await;
    basis(v, "analytics").await;
    let token = v.create_user(json!({"login": "ann"})).await;
    // The times below are the calls' own seconds: start at the top of a second so that the
    // calls (a few hundred milliseconds under load) stay within it.
    while v.clock().now_ms().rem_euclid(1000) > 20 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let now = v.clock().now();
    v.call(
        "AgreementAccept",
        json!({"mode": "login", "identity": "ann", "brief": "Marketing", "agreementmethod": "web-form",
               "referencecode": REF, "status": "pending", "finaltime": "100d"}),
    )
    .await
    .ok();
    let got = agreement(v, &token, "marketing").await;
    assert_eq!(got["brief"], "marketing");
    assert_eq!(got["status"], "pending");
    assert_eq!(got["agreementmethod"], "web-form");
    assert_eq!(got["referencecode"], REF);
    assert_eq!(got["starttime"], now);
    assert_eq!(got["finaltime"], now + 100 * 86_400);
    assert_eq!(got["lastmodifiedby"], "root");
    assert_eq!(got["creationtime"], now);
    assert_eq!(got["history"].as_array().expect("history").len(), 1);

    // Accepting again updates the state (absent fields kept) and appends to the history.
    v.clock().advance(60);
    v.call("AgreementAccept", addr(&token, "marketing", json!({"referencecode": REF2, "lastmodifiedby": "dpo"})))
        .await
        .ok();
    v.call("AgreementAccept", addr(&token, "analytics", json!({"starttime": "1d"}))).await.ok();
    let got = agreement(v, &token, "marketing").await;
    assert_eq!(got["status"], "active");
    assert_eq!(got["referencecode"], REF2);
    assert_eq!(got["agreementmethod"], "web-form");
    assert_eq!(got["lastmodifiedby"], "dpo");
    assert_eq!(got["creationtime"], now);
    let history = got["history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["status"], "pending");
    assert_eq!(history[0]["referencecode"], REF);
    assert_eq!(history[0]["time"], now);
    assert_eq!(history[0]["principal"]["kind"], "root");
    assert!(history[0]["principal"]["id"].is_string());
    assert_eq!(history[1]["status"], "active");
    assert_eq!(history[1]["referencecode"], REF2);
    assert_eq!(history[1]["time"], now + 60);

    let rows =
        v.call("AgreementListUserAgreements", json!({"mode": "token", "identity": token})).await.ok()["rows"].clone();
    assert_eq!(
        rows,
        json!([
            {"brief": "analytics", "status": "active", "agreementmethod": "", "referencecode": "",
             "starttime": now + 60 + 86_400, "finaltime": 0, "lastmodifiedby": "root"},
            {"brief": "marketing", "status": "active", "agreementmethod": "web-form", "referencecode": REF2,
             "starttime": now, "finaltime": now + 100 * 86_400, "lastmodifiedby": "dpo"},
        ])
    );

    v.clock().advance(60);
    v.call("AgreementCancel", addr(&token, "marketing", json!({}))).await.ok();
    let got = agreement(v, &token, "marketing").await;
    assert_eq!(got["status"], "canceled");
    let history = got["history"].as_array().expect("history");
    assert_eq!(history.len(), 3);
    assert_eq!(history[2]["status"], "canceled");
    assert_eq!(history[2]["time"], now + 120);
    assert_eq!(history[2]["referencecode"], REF2);
    // Sealed at rest: the reference codes are nowhere in clear.
    assert_absent(&v.dump().await, &[REF, REF2, "web-form", "dpo"]);
    // The changes are audited under the user.
    let events = v.call("AuditListUserEvents", json!({"mode": "token", "identity": token, "limit": 50})).await.ok();
    let titles: Vec<&Value> = events["rows"].as_array().expect("rows").iter().map(|e| &e["title"]).collect();
    for title in ["AgreementAccept", "AgreementGet", "AgreementListUserAgreements", "AgreementCancel"] {
        assert!(titles.contains(&&json!(title)), "{title} not in {titles:?}");
    }
});

both!(an_active_agreement_past_its_final_time_reads_expired, |v| {
    basis(v, "marketing").await;
    let token = v.create_user(json!({"login": "ann"})).await;
    v.call("AgreementAccept", addr(&token, "marketing", json!({"finaltime": "1h"}))).await.ok();
    assert_eq!(agreement(v, &token, "marketing").await["status"], "active");
    v.clock().advance(3_601);
    assert_eq!(agreement(v, &token, "marketing").await["status"], "expired");
});

both!(revoke_all_cancels_every_active_agreement_of_the_basis, |v| {
    basis(v, "marketing").await;
    basis(v, "analytics").await;
    let ann = v.create_user(json!({"login": "ann"})).await;
    let bob = v.create_user(json!({"login": "bob"})).await;
    let cy = v.create_user(json!({"login": "cy"})).await;
    v.call("AgreementAccept", addr(&ann, "marketing", json!({"referencecode": REF}))).await.ok();
    v.call("AgreementAccept", addr(&bob, "marketing", json!({}))).await.ok();
    v.call("AgreementAccept", addr(&cy, "marketing", json!({"status": "pending"}))).await.ok();
    v.call("AgreementAccept", addr(&ann, "analytics", json!({}))).await.ok();
    let body = v.call("AgreementRevokeAll", json!({"brief": "Marketing"})).await.ok();
    assert_eq!(body, json!({"status": "ok", "revoked": 2}));
    for user in [&ann, &bob] {
        let got = agreement(v, user, "marketing").await;
        assert_eq!(got["status"], "canceled");
        let history = got["history"].as_array().expect("history");
        assert_eq!(history.len(), 2);
        assert_eq!(history[1]["status"], "canceled");
    }
    assert_eq!(agreement(v, &ann, "marketing").await["referencecode"], REF);
    assert_eq!(agreement(v, &cy, "marketing").await["status"], "pending");
    assert_eq!(agreement(v, &ann, "analytics").await["status"], "active");
    // Nothing active is left: a second revocation revokes nothing.
    let body = v.call("AgreementRevokeAll", json!({"brief": "marketing"})).await.ok();
    assert_eq!(body["revoked"], 0);
    v.call("AgreementRevokeAll", json!({"brief": "nosuch"})).await.error(404, "The legal basis record was not found");
    v.call("AgreementRevokeAll", json!({})).await.error(400, "Missing API request parameters: brief");
    assert_eq!(
        v.scalar("SELECT COUNT(*) FROM audit_events WHERE operation = 'AgreementRevokeAll' AND result = 'ok'").await,
        2
    );
});

both!(bad_input_and_missing_records, |v| {
    basis(v, "marketing").await;
    let token = v.create_user(json!({"login": "ann"})).await;
    v.call("AgreementAccept", addr(&token, "nosuch", json!({})))
        .await
        .error(404, "The legal basis record was not found");
    v.call("AgreementAccept", json!({"mode": "login", "identity": "nobody", "brief": "marketing"}))
        .await
        .error(404, "The user record was not found");
    v.call("AgreementAccept", addr(&token, "marketing", json!({"status": "maybe"})))
        .await
        .error(400, "The status parameter has an incorrect format");
    v.call("AgreementAccept", addr(&token, "marketing", json!({"finaltime": "soon"})))
        .await
        .error(400, "The finaltime parameter has an incorrect format");
    v.call("AgreementAccept", addr(&token, "marketing", json!({"starttime": "later"})))
        .await
        .error(400, "The starttime parameter has an incorrect format");
    v.call("AgreementAccept", json!({"mode": "token", "identity": token}))
        .await
        .error(400, "Missing API request parameters: brief");
    v.call("AgreementGet", addr(&token, "marketing", json!({}))).await.error(404, "The agreement record was not found");
    v.call("AgreementGet", addr(&token, "nosuch", json!({}))).await.error(404, "The agreement record was not found");
    v.call("AgreementCancel", addr(&token, "marketing", json!({})))
        .await
        .error(404, "The agreement record was not found");
    v.call("AgreementCancel", addr(&token, "nosuch", json!({})))
        .await
        .error(404, "The legal basis record was not found");
    let body = v.call("AgreementListUserAgreements", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(body["rows"], json!([]));
    v.call("AgreementListUserAgreements", json!({"mode": "login", "identity": "nobody"}))
        .await
        .error(404, "The user record was not found");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM agreements").await, 0);
});

both!(agreement_operations_require_a_token, |v| {
    basis(v, "marketing").await;
    let token = v.create_user(json!({"login": "ann"})).await;
    for op in
        ["AgreementAccept", "AgreementGet", "AgreementListUserAgreements", "AgreementCancel", "AgreementRevokeAll"]
    {
        v.call_as(op, None, None, addr(&token, "marketing", json!({}))).await.error(403, "Access denied");
    }
    assert_eq!(v.scalar("SELECT COUNT(*) FROM agreements").await, 0);
});

both!(user_delete_erases_agreements_and_history, |v| {
    basis(v, "marketing").await;
    let ann = v.create_user(json!({"login": "ann"})).await;
    let bob = v.create_user(json!({"login": "bob"})).await;
    v.call("AgreementAccept", addr(&ann, "marketing", json!({"referencecode": REF}))).await.ok();
    v.call("AgreementAccept", addr(&ann, "marketing", json!({"referencecode": REF2}))).await.ok();
    v.call("AgreementAccept", addr(&bob, "marketing", json!({}))).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM agreement_history").await, 3);
    v.call("UserDelete", json!({"mode": "token", "identity": ann})).await.ok();
    v.call("AgreementGet", addr(&ann, "marketing", json!({}))).await.error(404, "The user record was not found");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM agreements").await, 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM agreement_history").await, 1);
    assert_absent(&v.dump().await, &[REF, REF2]);
    // The remaining user's agreement is untouched and still revocable.
    let body = v.call("AgreementRevokeAll", json!({"brief": "marketing"})).await.ok();
    assert_eq!(body["revoked"], 1);
});

both!(agreements_follow_a_renamed_basis_and_go_with_a_deleted_one, |v| {
    basis(v, "marketing").await;
    let token = v.create_user(json!({"login": "ann"})).await;
    v.call("AgreementAccept", addr(&token, "marketing", json!({"referencecode": REF}))).await.ok();
    v.call("LegalBasisUpdate", json!({"brief": "marketing", "newbrief": "newsletter"})).await.ok();
    let got = agreement(v, &token, "newsletter").await;
    assert_eq!((got["brief"].clone(), got["referencecode"].clone()), (json!("newsletter"), json!(REF)));
    v.call("AgreementGet", addr(&token, "marketing", json!({}))).await.error(404, "The agreement record was not found");
    v.call("LegalBasisDelete", json!({"brief": "newsletter"})).await.ok();
    let body = v.call("AgreementListUserAgreements", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(body["rows"], json!([]));
    assert_eq!(v.scalar("SELECT COUNT(*) FROM agreement_history").await, 0);
});
