//! BulkListTokens, BulkDeleteTokens and BulkListFilesByTag: unlock-guarded, audited listings
//! and deletions over tokens and files.

use serde_json::{Value, json};

use crate::both;
use crate::bulk::unlock;
use crate::common::TestVault;

const CARD: &str = "4532015112830366";
const UNLOCK_REFUSED: &str = "The unlockuuid value was not found or is not valid";
const UNLOCK_MISSING: &str = "Missing API request parameters: unlockuuid";

async fn token(v: &TestVault, record: &str) -> Value {
    v.call("TokenCreate", json!({"tokentype": "creditcard", "record": record, "unique": true})).await.ok()
}

both!(unique_card_listed_by_tokenbase_deleted_then_gone, |v| {
    let created = token(v, CARD).await;
    let (uuid, base) = (created["tokenuuid"].clone(), created["tokenbase"].clone());
    let u = unlock(v).await;
    // One unlockuuid serves the whole sequence, as the official clients use it.
    let listed = v.call("BulkListTokens", json!({"unlockuuid": u, "tokens": [base]})).await.ok();
    assert_eq!(listed["total"], 1);
    assert_eq!(
        listed["rows"],
        json!([{"tokenuuid": uuid, "tokenbase": base, "record": CARD, "tokentype": "creditcard"}])
    );
    let deleted = v.call("BulkDeleteTokens", json!({"unlockuuid": u, "tokens": [base]})).await.ok();
    assert_eq!(deleted["deleted"], 1);
    let again = v.call("BulkListTokens", json!({"unlockuuid": u, "tokens": [base, uuid]})).await.ok();
    assert_eq!((again["total"].clone(), again["rows"].clone()), (json!(0), json!([])));
    v.call("TokenGet", json!({"token": uuid})).await.error(404, "Token not found");
    // The value is free again: a new unique token is a different one.
    assert_ne!(token(v, CARD).await["tokenuuid"], uuid);
});

both!(token_lists_mix_handles_and_skip_unknown_ones, |v| {
    let a = token(v, CARD).await;
    let b = token(v, "5555555555554444").await;
    let u = unlock(v).await;
    let body = json!({"unlockuuid": u, "tokens": [a["tokenuuid"], b["tokenbase"], "00000000-0000-4000-8000-000000000000",
                                                  "4111111111111111", a["tokenbase"]]});
    let listed = v.call("BulkListTokens", body.clone()).await.ok();
    assert_eq!(listed["total"], 2, "{listed}");
    let uuids: Vec<Value> = listed["rows"].as_array().expect("rows").iter().map(|r| r["tokenuuid"].clone()).collect();
    assert_eq!(uuids, vec![a["tokenuuid"].clone(), b["tokenuuid"].clone()]);
    assert_eq!(v.call("BulkDeleteTokens", body).await.ok()["deleted"], 2);
});

both!(token_bulk_calls_need_a_list_and_an_unlock, |v| {
    let created = token(v, CARD).await;
    let u = unlock(v).await;
    for op in ["BulkListTokens", "BulkDeleteTokens"] {
        v.call(op, json!({"unlockuuid": u})).await.error(400, "Missing API request parameters: tokens");
        v.call(op, json!({"unlockuuid": u, "tokens": []})).await.error(400, "Missing API request parameters: tokens");
        v.call(op, json!({"tokens": [created["tokenbase"]]})).await.error(400, UNLOCK_MISSING);
        v.call(op, json!({"unlockuuid": "", "tokens": [created["tokenbase"]]})).await.error(400, UNLOCK_MISSING);
        v.call(op, json!({"unlockuuid": "00000000-0000-4000-8000-000000000000", "tokens": [created["tokenbase"]]}))
            .await
            .error(403, UNLOCK_REFUSED);
        v.call_as(op, None, None, json!({"unlockuuid": u, "tokens": [created["tokenbase"]]}))
            .await
            .error(403, "Access denied");
    }
    // Nothing was deleted by the refused calls.
    v.call("TokenGet", json!({"token": created["tokenuuid"]})).await.ok();
});

async fn file(v: &TestVault, token: &str, name: &str, data: &str, tags: Value) -> String {
    let body = json!({"mode": "token", "identity": token, "filename": name, "filedata": data, "tags": tags});
    v.call("FileCreate", body).await.ok()["fileuuid"].as_str().expect("fileuuid").to_owned()
}

both!(files_by_tag_across_users_with_paging, |v| {
    let ann = v.create_user(json!({"login": "ann"})).await;
    let bob = v.create_user(json!({"login": "bob"})).await;
    let first = file(v, &ann, "passport.pdf", "AAEC", json!(["kyc", "id"])).await;
    let second = file(v, &bob, "licence.pdf", "AwQF", json!(["KYC"])).await;
    file(v, &bob, "photo.jpg", "BgcI", json!(["avatar"])).await;
    let u = unlock(v).await;
    let page = |offset: i64, limit: i64| {
        v.call("BulkListFilesByTag", json!({"unlockuuid": u, "tag": "kyc", "offset": offset, "limit": limit}))
    };
    let all = page(0, 10).await.ok();
    assert_eq!(all["total"], 2);
    let rows = all["rows"].as_array().expect("rows");
    assert_eq!(rows.iter().map(|r| r["fileuuid"].clone()).collect::<Vec<_>>(), vec![json!(first), json!(second)]);
    assert_eq!((rows[0]["token"].clone(), rows[0]["filename"].clone()), (json!(ann), json!("passport.pdf")));
    assert_eq!(rows[1]["token"], bob);
    assert!(rows[0].get("filedata").is_none(), "metadata only: {}", rows[0]);
    let second_page = page(1, 1).await.ok();
    assert_eq!((second_page["total"].clone(), second_page["rows"][0]["fileuuid"].clone()), (json!(2), json!(second)));
    let past = page(5, 10).await.ok();
    assert_eq!((past["total"].clone(), past["rows"].clone()), (json!(2), json!([])));
    // An erased owner's files are gone from the listing.
    v.call("UserDelete", json!({"mode": "token", "identity": ann})).await.ok();
    assert_eq!(page(0, 10).await.ok()["total"], 1);

    v.call("BulkListFilesByTag", json!({"unlockuuid": u})).await.error(400, "Missing API request parameters: tag");
    v.call("BulkListFilesByTag", json!({"tag": "kyc"})).await.error(400, UNLOCK_MISSING);
    v.call("BulkListFilesByTag", json!({"unlockuuid": "junk", "tag": "kyc"})).await.error(403, UNLOCK_REFUSED);
});

both!(each_bulk_call_is_one_audited_event, |v| {
    let created = token(v, CARD).await;
    let u = unlock(v).await;
    let before = v.scalar("SELECT COUNT(*) FROM audit_events WHERE operation = 'BulkListTokens'").await;
    v.call("BulkListTokens", json!({"unlockuuid": u, "tokens": [created["tokenbase"], created["tokenuuid"]]}))
        .await
        .ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events WHERE operation = 'BulkListTokens'").await, before + 1);
    v.call("BulkDeleteTokens", json!({"unlockuuid": u, "tokens": [created["tokenbase"]]})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events WHERE operation = 'BulkDeleteTokens'").await, 1);
});
