//! Files at rest: nothing in clear in the database or the file directory, lifetimes, the size
//! limit, erasure with the user (database and directory), and the tenant-wide listing by tag.

use bunker::tenants::TenantId;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::StatusCode;
use bunker::files::cipher::CHUNK;
use bunker::http::RequestContext;
use bunker::http::context::{Principal, PrincipalKind};
use bunker::state::Settings;
use bunker::store::bulk::{Cursor, id_key};
use serde_json::{Value, json};

use crate::both;
use crate::common::{TestVault, assert_absent};
use crate::files::{addr, b64, files, pattern, raw_get, unb64, upload};

/// Settings keeping file content as blobs in `dir`.
fn in_dir(dir: &Path) -> Settings {
    Settings { file_dir: Some(dir.to_path_buf()), ..Settings::default() }
}

/// Settings with a 1000-byte file limit.
fn small_files(_: &Path) -> Settings {
    Settings { max_file_size: 1000, ..Settings::default() }
}

fn file_dir(v: &TestVault) -> PathBuf {
    v.state.settings.file_dir.clone().expect("a file directory is configured")
}

/// Every regular file under `dir`, recursively.
fn blobs_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(&next).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() { pending.push(path) } else { out.push(path) }
        }
    }
    out
}

fn dir_dump(dir: &Path) -> Vec<u8> {
    blobs_under(dir).iter().flat_map(|path| std::fs::read(path).expect("read blob")).collect()
}

both!(files_expire_and_are_swept, |v| {
    let token = v.create_user(json!({"login": "expiring"})).await;
    let sliding = upload(v, &token, "sliding.txt", b"sliding", json!({"slidingtime": "1h"})).await;
    let fixed = upload(v, &token, "fixed.txt", b"fixed", json!({"finaltime": "2h"})).await;
    upload(v, &token, "forever.txt", b"forever", json!({})).await;
    v.call("FileCreate", addr(&token, json!({"filename": "x", "filedata": "", "finaltime": "yesterday"})))
        .await
        .error(400, "The finaltime parameter has an incorrect format");
    // Reading the sliding file restarts its hour.
    v.clock().advance(50 * 60);
    v.call("FileGet", addr(&token, json!({"fileuuid": sliding["fileuuid"]}))).await.ok();
    v.clock().advance(50 * 60);
    v.call("FileGet", addr(&token, json!({"fileuuid": sliding["fileuuid"]}))).await.ok();
    v.clock().advance(21 * 60);
    v.call("FileGet", addr(&token, json!({"fileuuid": fixed["fileuuid"]})))
        .await
        .error(404, "The file record was not found");
    let names: Vec<Value> =
        files(v, &token, json!({})).await.as_array().expect("files").iter().map(|f| f["filename"].clone()).collect();
    assert_eq!(names, [json!("sliding.txt"), json!("forever.txt")]);
    // Expired content does not stand in the way of the same content again.
    let again = upload(v, &token, "fixed-again.txt", b"fixed", json!({})).await;
    assert_eq!(again["duplicate"], false);
    v.clock().advance(3 * 3600);
    v.call("FileGet", addr(&token, json!({"fileuuid": sliding["fileuuid"]})))
        .await
        .error(404, "The file record was not found");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM files").await, 3);
    let erased = bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    assert_eq!(erased.get(&TenantId::MAIN).map(|e| e.files), Some(1), "{erased:?}");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM files").await, 2);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM file_chunks").await, 2);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events WHERE operation = 'RetentionSweep'").await, 1);
});

both!(erasing_the_user_erases_its_files, |v| {
    let token = v.create_user(json!({"email": "erase-me@x.io"})).await;
    let other = v.create_user(json!({"email": "stays@x.io"})).await;
    upload(v, &token, "passport-john.pdf", &pattern(CHUNK + 5, 9), json!({"tags": ["kyc"]})).await;
    upload(v, &other, "theirs.pdf", b"theirs", json!({"tags": ["kyc"]})).await;
    v.call("UserDelete", json!({"mode": "email", "identity": "erase-me@x.io"})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM files").await, 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM file_chunks").await, 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM file_tags").await, 1);
    v.call("FileListUserFiles", addr(&token, json!({}))).await.error(404, "The user record was not found");
    assert_eq!(files(v, &other, json!({})).await.as_array().map(Vec::len), Some(1));
});

both!(content_and_names_are_never_in_clear, |v| {
    let token = v.create_user(json!({"login": "clear"})).await;
    let secret = b"DIAGNOSIS-HIV-POSITIVE-patient-john-doe ".repeat(3_000);
    let created = upload(
        v,
        &token,
        "passport-john-doe.pdf",
        &secret,
        json!({"tags": ["hiv-clinic-x"], "mimetype": "application/x-medical-record"}),
    )
    .await;
    v.call("FileReplaceTags", addr(&token, json!({"fileuuid": created["fileuuid"], "tags": ["oncology-ward"]})))
        .await
        .ok();
    let dump = v.dump().await;
    assert_absent(
        &dump,
        &["DIAGNOSIS-HIV-POSITIVE", "passport-john-doe", "hiv-clinic-x", "oncology-ward", "x-medical-record"],
    );
    assert_absent(&dump, &[&b64(&secret[..300])[..200]]);
});

both!(files_over_the_size_limit_are_refused, settings = small_files, |v| {
    let token = v.create_user(json!({"login": "limit"})).await;
    let created = upload(v, &token, "fits.bin", &pattern(1000, 4), json!({})).await;
    assert_eq!(created["duplicate"], false);
    v.call("FileCreate", addr(&token, json!({"filename": "big.bin", "filedata": b64(&pattern(1001, 4))})))
        .await
        .error(413, "The file is larger than the limit of 1000 bytes");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM files").await, 1);
});

both!(blobs_in_a_directory_are_ciphertext_and_go_with_their_rows, settings = in_dir, |v| {
    let dir = file_dir(v);
    let token = v.create_user(json!({"email": "blobs@x.io"})).await;
    let secret = b"BLOB-SECRET-john-doe-passport ".repeat(4_000);
    let big = upload(v, &token, "passport-john.pdf", &secret, json!({"tags": ["kyc"]})).await;
    let small = upload(v, &token, "small.txt", b"BLOB-SMALL-SECRET", json!({"finaltime": "1h"})).await;
    let gone = upload(v, &token, "gone.txt", b"BLOB-GONE", json!({})).await;
    assert_eq!(v.scalar("SELECT COUNT(*) FROM file_chunks").await, 0, "content is not in the database");
    assert_eq!(blobs_under(&dir).len(), 3);
    let got = v.call("FileGet", addr(&token, json!({"fileuuid": big["fileuuid"]}))).await.ok();
    assert!(unb64(&got["filedata"]) == secret, "blob round-trip differs");
    let (status, _, body) = raw_get(v, addr(&token, json!({"filename": "passport-john.pdf", "raw": true}))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == secret, "raw blob download differs");
    assert_absent(&dir_dump(&dir), &["BLOB-SECRET", "BLOB-SMALL-SECRET", "BLOB-GONE", "passport-john"]);
    assert_absent(&v.dump().await, &["BLOB-SECRET", "passport-john"]);
    // Names in the directory are tenant ids and file uuids only.
    let names: Vec<String> =
        blobs_under(&dir).iter().map(|p| p.strip_prefix(&dir).expect("under").display().to_string()).collect();
    assert!(names.iter().all(|n| n.starts_with("1/") && n.len() == 2 + 36), "{names:?}");

    // FileDelete removes the blob.
    v.call("FileDelete", addr(&token, json!({"fileuuid": gone["fileuuid"]}))).await.ok();
    assert_eq!(blobs_under(&dir).len(), 2);
    // Expiry: the sweeper removes the blob with the row.
    v.clock().advance(3_601);
    let erased = bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    assert_eq!(erased.get(&TenantId::MAIN).map(|e| e.files), Some(1));
    let left: Vec<PathBuf> = blobs_under(&dir);
    assert_eq!(left.len(), 1);
    assert!(left[0].ends_with(big["fileuuid"].as_str().expect("uuid")));
    assert!(!left[0].ends_with(small["fileuuid"].as_str().expect("uuid")));
    // Erasing the user removes its blobs; the queue is empty afterwards.
    v.call("UserDelete", json!({"mode": "email", "identity": "blobs@x.io"})).await.ok();
    assert_eq!(blobs_under(&dir), Vec::<PathBuf>::new());
    assert_eq!(v.scalar("SELECT COUNT(*) FROM files").await, 0);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM file_blobs_gone").await, 0);
});

both!(the_sweeper_removes_blobs_of_expired_users, settings = in_dir, |v| {
    let dir = file_dir(v);
    let short = v.call("UserCreate", json!({"profile": {"login": "short"}, "slidingtime": "1h"})).await.ok();
    let token = short["token"].as_str().expect("token").to_owned();
    upload(v, &token, "a.bin", b"expiring user content", json!({})).await;
    let stays = v.create_user(json!({"login": "stays"})).await;
    upload(v, &stays, "b.bin", b"staying user content", json!({})).await;
    assert_eq!(blobs_under(&dir).len(), 2);
    v.clock().advance(2 * 3600);
    let erased = bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    assert_eq!(
        erased.get(&TenantId::MAIN).map(|e| (e.users, e.files)),
        Some((1, 0)),
        "files of erased users go with them"
    );
    assert_eq!(blobs_under(&dir).len(), 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM file_blobs_gone").await, 0);
    // Bulk deletion of users removes their blobs too.
    v.call("UserDeleteBulk", json!({"users": [{"mode": "login", "identity": "stays"}]})).await.ok();
    assert_eq!(blobs_under(&dir), Vec::<PathBuf>::new());
});

both!(files_are_listed_across_users_by_tag, |v| {
    let alice = v.create_user(json!({"login": "t-alice"})).await;
    let bob = v.create_user(json!({"login": "t-bob"})).await;
    let a1 = upload(v, &alice, "a1.pdf", b"a1", json!({"tags": ["kyc", "id"]})).await;
    upload(v, &alice, "a2.pdf", b"a2", json!({"tags": ["other"]})).await;
    let b1 = upload(v, &bob, "b1.pdf", b"b1", json!({"tags": "kyc"})).await;
    let a3 = upload(v, &alice, "a3.pdf", b"a3", json!({"tags": ["kyc"], "finaltime": "1h"})).await;
    let keys = v.state.tenant_keys(TenantId::new(1)).await.expect("keys");
    let principal = Arc::new(Principal::admin("test".into(), PrincipalKind::Root, TenantId::new(1)));
    let ctx =
        |now_ms| RequestContext::new(TenantId::new(1), principal.clone(), "BulkListFilesByTag", keys.clone(), now_ms);
    let tag =
        bunker::files::record::Tag::parse(Some(bunker::http::lenient::Text("KYC".into()))).expect("tag").expect("some");
    let from = |after: Option<i64>, skip: i64, limit: i64| {
        let ctx = ctx(v.clock().now_ms());
        let tag = tag.clone();
        let cursor = Cursor { after: after.map(id_key), skip };
        async move {
            bunker::files::service::list_tenant_files_by_tag(&v.state, &ctx, &tag, &cursor, limit).await.expect("list")
        }
    };
    let list = |offset, limit| {
        let page = from(None, offset, limit);
        async move { page.await.0 }
    };
    let page = list(0, 10).await;
    assert_eq!(page.total, 3);
    let rows: Vec<(String, String)> = page.rows.iter().map(|r| (r.token.clone(), r.fileuuid.clone())).collect();
    let id = |v: &Value| v["fileuuid"].as_str().expect("uuid").to_owned();
    assert_eq!(rows, [(alice.clone(), id(&a1)), (bob.clone(), id(&b1)), (alice.clone(), id(&a3))]);
    let first = &page.rows[0];
    assert_eq!((first.filename.as_str(), first.mimetype.as_str(), first.size), ("a1.pdf", "application/pdf", 2));
    assert_eq!(first.tags, ["id", "kyc"]);
    let second = list(1, 1).await;
    assert_eq!((second.total, second.rows.len(), second.rows[0].fileuuid.clone()), (3, 1, id(&b1)));
    // Continuing from the last file of a page (a keyset bookmark) gives the next page.
    let (first_page, last) = from(None, 0, 1).await;
    assert_eq!(first_page.rows[0].fileuuid, id(&a1));
    let (next, _) = from(last, 0, 1).await;
    assert_eq!((next.total, next.rows[0].fileuuid.clone()), (3, id(&b1)));
    let past = list(3, 10).await;
    assert_eq!((past.total, past.rows.len()), (3, 0));
    // Expired files and erased users drop out.
    v.clock().advance(3_601);
    v.call("UserDelete", json!({"mode": "token", "identity": bob})).await.ok();
    let page = list(0, 10).await;
    assert_eq!((page.total, page.rows.len(), page.rows[0].fileuuid.clone()), (1, 1, id(&a1)));
});
