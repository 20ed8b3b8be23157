//! Legal bases and processing activities: the tenant's catalogue, its renames, links and lists.

use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;

async fn bases(v: &TestVault) -> Vec<Value> {
    let body = v.call("LegalBasisListAgreements", json!({})).await.ok();
    body["rows"].as_array().expect("rows is an array").clone()
}

async fn activities(v: &TestVault) -> Vec<Value> {
    let body = v.call("ProcessingActivityListActivities", json!({})).await.ok();
    body["rows"].as_array().expect("rows is an array").clone()
}

fn field<'a>(rows: &'a [Value], key: &str, name: &str) -> &'a Value {
    rows.iter().find(|r| r[key] == name).unwrap_or_else(|| panic!("{name} not listed in {rows:?}"))
}

/// The PY client's `create_legal_basis` with only a brief: every other field a JSON `null`.
fn py_legal_basis(brief: &str) -> Value {
    json!({"brief": brief, "status": null, "module": null, "fulldesc": null, "shortdesc": null,
           "basistype": null, "requiredmsg": null, "requiredflag": null})
}

both!(legal_basis_create_list_update, |v| {
    v.call("LegalBasisCreate", py_legal_basis("Marketing")).await.ok();
    v.call(
        "LegalBasisCreate",
        json!({"brief": "contract-1", "status": "Inactive", "module": "billing", "fulldesc": "Long text",
               "shortdesc": "Short", "basistype": "contract", "requiredmsg": "Needed", "requiredflag": "true"}),
    )
    .await
    .ok();
    let rows = bases(v).await;
    assert_eq!(rows.len(), 2);
    let marketing = &rows[0];
    let created = marketing["creationtime"].as_i64().expect("creationtime is an integer");
    assert!(created > 1_600_000_000, "unix seconds: {created}");
    assert_eq!(
        marketing,
        &json!({"brief": "marketing", "status": "active", "module": "", "fulldesc": "", "shortdesc": "",
                "basistype": "consent", "requiredmsg": "", "requiredflag": false, "creationtime": created})
    );
    assert_eq!(rows[1]["status"], "inactive");
    assert_eq!(rows[1]["basistype"], "contract");
    assert_eq!(rows[1]["requiredflag"], true);
    assert_eq!(rows[1]["module"], "billing");

    // Only the given fields change; JAVA's `"newbrief": null` is no rename.
    v.call(
        "LegalBasisUpdate",
        json!({"brief": "contract-1", "newbrief": null, "shortdesc": "Shorter",
                                      "requiredflag": 0}),
    )
    .await
    .ok();
    let rows = bases(v).await;
    let contract = field(&rows, "brief", "contract-1");
    assert_eq!(contract["shortdesc"], "Shorter");
    assert_eq!(contract["requiredflag"], false);
    assert_eq!(
        (&contract["fulldesc"], &contract["status"], &contract["requiredmsg"]),
        (&json!("Long text"), &json!("inactive"), &json!("Needed"))
    );

    // A rename keeps every field and the creation time.
    v.call("LegalBasisUpdate", json!({"brief": "MARKETING", "newbrief": "Newsletter", "status": "inactive"}))
        .await
        .ok();
    let rows = bases(v).await;
    let renamed = field(&rows, "brief", "newsletter");
    assert_eq!((&renamed["status"], &renamed["creationtime"]), (&json!("inactive"), &json!(created)));
    assert!(rows.iter().all(|r| r["brief"] != "marketing"));
    v.call("LegalBasisUpdate", json!({"brief": "marketing", "status": "active"}))
        .await
        .error(404, "The legal basis record was not found");

    // Each write committed its own event.
    let events = v
        .scalar("SELECT COUNT(*) FROM audit_events WHERE operation IN ('LegalBasisCreate', 'LegalBasisUpdate') AND result = 'ok'")
        .await;
    assert_eq!(events, 4);
});

both!(legal_basis_bad_input_conflicts_and_not_found, |v| {
    v.call("LegalBasisCreate", json!({})).await.error(400, "Missing API request parameters: brief");
    v.call("LegalBasisCreate", py_legal_basis("  ")).await.error(400, "Missing API request parameters: brief");
    for bad in ["1abc", "a", "ab_c", "two words", "ab.c"] {
        v.call("LegalBasisCreate", json!({"brief": bad}))
            .await
            .error(400, "The brief parameter has an incorrect format");
    }
    v.call("LegalBasisCreate", json!({"brief": "ok-1", "status": "on"}))
        .await
        .error(400, "The status parameter has an incorrect format");
    v.call("LegalBasisCreate", json!({"brief": "ok-1", "requiredflag": "maybe"}))
        .await
        .error(400, "The requiredflag parameter has an incorrect format");
    assert!(bases(v).await.is_empty(), "nothing created by bad requests");

    v.call("LegalBasisCreate", json!({"brief": "alpha", "fulldesc": "A"})).await.ok();
    v.call("LegalBasisCreate", json!({"brief": "beta"})).await.ok();
    v.call("LegalBasisCreate", json!({"brief": "ALPHA"})).await.error(409, "Duplicate legal basis");
    v.call("LegalBasisUpdate", json!({"brief": "beta", "newbrief": "Alpha"})).await.error(409, "Duplicate legal basis");
    v.call("LegalBasisUpdate", json!({"brief": "beta", "newbrief": "-x"}))
        .await
        .error(400, "The newbrief parameter has an incorrect format");
    v.call("LegalBasisUpdate", json!({"brief": "beta", "status": "gone"}))
        .await
        .error(400, "The status parameter has an incorrect format");
    v.call("LegalBasisUpdate", json!({"newbrief": "gamma"})).await.error(400, "Missing API request parameters: brief");
    let rows = bases(v).await;
    assert_eq!(rows.iter().map(|r| r["brief"].clone()).collect::<Vec<_>>(), [json!("alpha"), json!("beta")]);
    assert_eq!(field(&rows, "brief", "alpha")["fulldesc"], "A");
    assert_eq!(field(&rows, "brief", "beta")["status"], "active");

    v.call("LegalBasisUpdate", json!({"brief": "nothing"})).await.error(404, "The legal basis record was not found");
    v.call("LegalBasisDelete", json!({"brief": "nothing"})).await.error(404, "The legal basis record was not found");
    v.call("LegalBasisDelete", json!({})).await.error(400, "Missing API request parameters: brief");
    v.call("LegalBasisDelete", json!({"brief": "Alpha"})).await.ok();
    v.call("LegalBasisDelete", json!({"brief": "alpha"})).await.error(404, "The legal basis record was not found");
    assert_eq!(bases(v).await.len(), 1);
    // The brief is free again.
    v.call("LegalBasisCreate", json!({"brief": "alpha"})).await.ok();
});

both!(processing_activities_links_follow_renames, |v| {
    for brief in ["consent-a", "contract-b"] {
        v.call("LegalBasisCreate", json!({"brief": brief})).await.ok();
    }
    v.call(
        "ProcessingActivityCreate",
        json!({"activity": "Newsletter", "title": null, "script": null, "fulldesc": null, "applicableto": null}),
    )
    .await
    .ok();
    v.call(
        "ProcessingActivityCreate",
        json!({"activity": "analytics", "title": "Analytics", "script": "s.js", "fulldesc": "Usage stats",
               "applicableto": "visitors"}),
    )
    .await
    .ok();
    let rows = activities(v).await;
    let created = rows[0]["creationtime"].as_i64().expect("creationtime");
    assert_eq!(
        rows[0],
        json!({"activity": "newsletter", "title": "", "script": "", "fulldesc": "", "applicableto": "",
               "legalbases": [], "creationtime": created})
    );
    assert_eq!(rows[1]["applicableto"], "visitors");

    for brief in ["contract-b", "consent-a", "CONSENT-A"] {
        v.call("ProcessingActivityLinkLegalBasis", json!({"activity": "newsletter", "brief": brief})).await.ok();
    }
    let rows = activities(v).await;
    assert_eq!(field(&rows, "activity", "newsletter")["legalbases"], json!(["consent-a", "contract-b"]));
    assert_eq!(field(&rows, "activity", "analytics")["legalbases"], json!([]));

    // Renaming either side keeps the links.
    v.call("ProcessingActivityUpdate", json!({"activity": "newsletter", "newactivity": "mailing", "title": "Mail"}))
        .await
        .ok();
    v.call("LegalBasisUpdate", json!({"brief": "consent-a", "newbrief": "opt-in"})).await.ok();
    let rows = activities(v).await;
    assert!(rows.iter().all(|r| r["activity"] != "newsletter"));
    let mailing = field(&rows, "activity", "mailing");
    assert_eq!(mailing["legalbases"], json!(["contract-b", "opt-in"]));
    assert_eq!((&mailing["title"], &mailing["creationtime"]), (&json!("Mail"), &json!(created)));

    // Fields not given stay; JAVA's `"newactivity": null` is no rename.
    v.call("ProcessingActivityUpdate", json!({"activity": "analytics", "newactivity": null, "script": "t.js"}))
        .await
        .ok();
    let rows = activities(v).await;
    let analytics = field(&rows, "activity", "analytics");
    assert_eq!((&analytics["script"], &analytics["fulldesc"]), (&json!("t.js"), &json!("Usage stats")));

    // Unlinking is idempotent too.
    for _ in 0..2 {
        v.call("ProcessingActivityUnlinkLegalBasis", json!({"activity": "mailing", "brief": "contract-b"})).await.ok();
    }
    assert_eq!(field(&activities(v).await, "activity", "mailing")["legalbases"], json!(["opt-in"]));

    // Deleting a legal basis removes its links; the activity stays.
    v.call("ProcessingActivityLinkLegalBasis", json!({"activity": "analytics", "brief": "opt-in"})).await.ok();
    v.call("LegalBasisDelete", json!({"brief": "opt-in"})).await.ok();
    let rows = activities(v).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r["legalbases"] == json!([])), "{rows:?}");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM processing_activity_legal_bases").await, 0);

    // Deleting an activity removes its links; the legal basis stays.
    v.call("ProcessingActivityLinkLegalBasis", json!({"activity": "mailing", "brief": "contract-b"})).await.ok();
    v.call("ProcessingActivityDelete", json!({"activity": "mailing"})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM processing_activity_legal_bases").await, 0);
    assert_eq!(bases(v).await.len(), 1);
    let rows = activities(v).await;
    assert_eq!(rows.iter().map(|r| r["activity"].clone()).collect::<Vec<_>>(), [json!("analytics")]);
});

both!(processing_activity_bad_input_conflicts_and_not_found, |v| {
    v.call("ProcessingActivityCreate", json!({"title": "T"}))
        .await
        .error(400, "Missing API request parameters: activity");
    v.call("ProcessingActivityCreate", json!({"activity": "9lives"}))
        .await
        .error(400, "The activity parameter has an incorrect format");
    v.call("ProcessingActivityCreate", json!({"activity": "ads"})).await.ok();
    v.call("ProcessingActivityCreate", json!({"activity": "promo"})).await.ok();
    v.call("ProcessingActivityCreate", json!({"activity": "Ads"})).await.error(409, "Duplicate processing activity");
    v.call("ProcessingActivityUpdate", json!({"activity": "promo", "newactivity": "ads"}))
        .await
        .error(409, "Duplicate processing activity");
    v.call("ProcessingActivityUpdate", json!({"activity": "promo", "newactivity": "a b"}))
        .await
        .error(400, "The newactivity parameter has an incorrect format");
    v.call("ProcessingActivityUpdate", json!({"activity": "none", "title": "x"}))
        .await
        .error(404, "The processing activity record was not found");
    v.call("ProcessingActivityDelete", json!({"activity": "none"}))
        .await
        .error(404, "The processing activity record was not found");
    assert_eq!(activities(v).await.len(), 2);

    v.call("LegalBasisCreate", json!({"brief": "consent"})).await.ok();
    for op in ["ProcessingActivityLinkLegalBasis", "ProcessingActivityUnlinkLegalBasis"] {
        v.call(op, json!({"activity": "none", "brief": "consent"}))
            .await
            .error(404, "The processing activity record was not found");
        v.call(op, json!({"activity": "ads", "brief": "none"}))
            .await
            .error(404, "The legal basis record was not found");
        v.call(op, json!({"activity": "ads"})).await.error(400, "Missing API request parameters: brief");
        v.call(op, json!({"brief": "consent"})).await.error(400, "Missing API request parameters: activity");
        v.call(op, json!({})).await.error(400, "Missing API request parameters: activity, brief");
        v.call(op, json!({"activity": "ads", "brief": "_x"}))
            .await
            .error(400, "The brief parameter has an incorrect format");
    }
    assert_eq!(v.scalar("SELECT COUNT(*) FROM processing_activity_legal_bases").await, 0);
});

both!(lists_answer_empty_arrays_without_a_body, |v| {
    for op in ["LegalBasisListAgreements", "ProcessingActivityListActivities"] {
        // The clients send no body at all for these calls.
        let answer = v.request(&format!("/v2/{op}"), Some(&v.root), None, None).await.ok();
        assert_eq!(answer, json!({"status": "ok", "rows": []}), "{op}");
    }
});

both!(denied_without_a_token, |v| {
    v.call("LegalBasisCreate", json!({"brief": "kept"})).await.ok();
    v.call("ProcessingActivityCreate", json!({"activity": "kept"})).await.ok();
    let calls = [
        ("LegalBasisCreate", json!({"brief": "other"})),
        ("LegalBasisUpdate", json!({"brief": "kept", "newbrief": "moved"})),
        ("LegalBasisDelete", json!({"brief": "kept"})),
        ("LegalBasisListAgreements", json!({})),
        ("ProcessingActivityCreate", json!({"activity": "other"})),
        ("ProcessingActivityUpdate", json!({"activity": "kept", "newactivity": "moved"})),
        ("ProcessingActivityDelete", json!({"activity": "kept"})),
        ("ProcessingActivityLinkLegalBasis", json!({"activity": "kept", "brief": "kept"})),
        ("ProcessingActivityUnlinkLegalBasis", json!({"activity": "kept", "brief": "kept"})),
        ("ProcessingActivityListActivities", json!({})),
    ];
    for (op, body) in calls {
        v.call_as(op, None, None, body.clone()).await.error(403, "Access denied");
        v.call_as(op, Some("3b1f0c2e-8d4a-4f6b-9c1d-2e7a5b8c9d0f"), None, body).await.error(403, "Access denied");
    }
    let rows = bases(v).await;
    assert_eq!(rows.iter().map(|r| r["brief"].clone()).collect::<Vec<_>>(), [json!("kept")]);
    let rows = activities(v).await;
    assert_eq!(rows.iter().map(|r| r["activity"].clone()).collect::<Vec<_>>(), [json!("kept")]);
    assert_eq!(rows[0]["legalbases"], json!([]));
});
