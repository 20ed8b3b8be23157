//! The file API: binary round-trips, lookups, raw downloads, tags, de-duplication, listings,
//! replacing tags, deletion, refused input and the denied path (storage: `file_storage.rs`).

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use base64::Engine;
use bunker::files::cipher::CHUNK;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::both;
use crate::common::TestVault;

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn unb64(value: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(value.as_str().expect("base64 string")).expect("valid base64")
}

/// Deterministic bytes that do not repeat within a chunk (so a misplaced chunk shows).
pub(crate) fn pattern(size: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..size)
        .map(|_| {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            (state >> 56) as u8
        })
        .collect()
}

/// `{"mode":"token","identity":token}` with extra fields.
pub(crate) fn addr(token: &str, extra: Value) -> Value {
    let mut body = json!({"mode": "token", "identity": token});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

pub(crate) async fn upload(v: &TestVault, token: &str, filename: &str, content: &[u8], extra: Value) -> Value {
    let mut body = addr(token, json!({"filename": filename, "filedata": b64(content)}));
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    v.call("FileCreate", body).await.ok()
}

pub(crate) async fn files(v: &TestVault, token: &str, extra: Value) -> Value {
    v.call("FileListUserFiles", addr(token, extra)).await.ok()["files"].clone()
}

/// A `FileGet` answered with raw bytes: status, headers and body.
pub(crate) async fn raw_get(v: &TestVault, body: Value) -> (StatusCode, HeaderMap, Vec<u8>) {
    let request = Request::builder()
        .method("POST")
        .uri("/v2/FileGet")
        .header("content-type", "application/json")
        .header("x-bunker-token", &v.root)
        .body(Body::from(body.to_string()))
        .expect("request");
    let response = v.app.clone().oneshot(request).await.expect("infallible");
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.expect("body").to_bytes().to_vec();
    (parts.status, parts.headers, bytes)
}

both!(binary_content_round_trips, |v| {
    let token = v.create_user(json!({"email": "bin@x.io"})).await;
    let all: Vec<u8> = (0..=255).collect();
    let created =
        upload(v, &token, "bytes.bin", &all, json!({"mimetype": "text/plain", "tags": ["Raw", "kyc", "raw"]})).await;
    assert_eq!(created["duplicate"], false);
    assert_eq!(created["tags"], json!(["kyc", "raw"]));
    assert_eq!(created["token"], token.as_str());
    let fileuuid = created["fileuuid"].as_str().expect("fileuuid").to_owned();
    assert_eq!(fileuuid.len(), 36);

    let got = v.call("FileGet", addr(&token, json!({"fileuuid": fileuuid, "raw": false}))).await.ok();
    assert_eq!(unb64(&got["filedata"]), all);
    assert_eq!((got["fileuuid"].as_str(), got["filename"].as_str()), (Some(fileuuid.as_str()), Some("bytes.bin")));
    assert_eq!((got["mimetype"].clone(), got["size"].clone()), (json!("text/plain"), json!(256)));
    assert_eq!((got["tags"].clone(), got["token"].clone()), (json!(["kyc", "raw"]), json!(token)));

    // Larger than one chunk, not a multiple of it: every chunk in its place.
    let big = pattern(2 * CHUNK + 1_000, 7);
    let created = upload(v, &token, "big.dat", &big, json!({})).await;
    let got = v.call("FileGet", addr(&token, json!({"fileuuid": created["fileuuid"]}))).await.ok();
    assert_eq!(got["size"], big.len());
    assert!(unb64(&got["filedata"]) == big, "multi-chunk content differs");
    let (status, _, body) = raw_get(v, addr(&token, json!({"fileuuid": created["fileuuid"], "raw": true}))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body == big, "raw multi-chunk content differs");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM file_chunks").await, 1 + 3);

    // An empty file is a file.
    let created = upload(v, &token, "empty.txt", b"", json!({})).await;
    let got = v.call("FileGet", addr(&token, json!({"fileuuid": created["fileuuid"]}))).await.ok();
    assert_eq!(
        (got["filedata"].clone(), got["size"].clone(), got["mimetype"].clone()),
        (json!(""), json!(0), json!("text/plain"))
    );
    let (status, headers, body) =
        raw_get(v, addr(&token, json!({"fileuuid": created["fileuuid"], "raw": "true"}))).await;
    assert_eq!((status, body.len()), (StatusCode::OK, 0));
    assert_eq!(headers["content-length"], "0");
});

both!(by_filename_the_newest_wins_and_lookups_are_per_user, |v| {
    let alice = v.create_user(json!({"email": "alice@x.io"})).await;
    let bob = v.create_user(json!({"email": "bob@x.io"})).await;
    let first = upload(v, &alice, "scan.pdf", b"first version", json!({})).await;
    let second = upload(v, &alice, "scan.pdf", b"second version", json!({})).await;
    upload(v, &alice, "other.pdf", b"third", json!({})).await;
    assert_ne!(first["fileuuid"], second["fileuuid"]);
    let got = v.call("FileGet", json!({"mode": "email", "identity": "alice@x.io", "filename": "scan.pdf"})).await.ok();
    assert_eq!(
        (got["fileuuid"].clone(), unb64(&got["filedata"])),
        (second["fileuuid"].clone(), b"second version".to_vec())
    );
    // By id, the older one is still there; the name is exact (case matters).
    let got = v.call("FileGet", addr(&alice, json!({"fileuuid": first["fileuuid"]}))).await.ok();
    assert_eq!(unb64(&got["filedata"]), b"first version");
    v.call("FileGet", addr(&alice, json!({"filename": "SCAN.pdf"}))).await.error(404, "The file record was not found");
    // Another user sees neither by name nor by id.
    v.call("FileGet", addr(&bob, json!({"filename": "scan.pdf"}))).await.error(404, "The file record was not found");
    v.call("FileGet", addr(&bob, json!({"fileuuid": first["fileuuid"]})))
        .await
        .error(404, "The file record was not found");
    v.call("FileDelete", addr(&bob, json!({"fileuuid": first["fileuuid"]})))
        .await
        .error(404, "The file record was not found");
    // Deleting the newest makes the older the newest.
    v.call("FileDelete", addr(&alice, json!({"fileuuid": second["fileuuid"]}))).await.ok();
    let got = v.call("FileGet", addr(&alice, json!({"filename": "scan.pdf"}))).await.ok();
    assert_eq!(got["fileuuid"], first["fileuuid"]);
    // Bad lookups.
    v.call("FileGet", addr(&alice, json!({}))).await.error(400, "Missing API request parameters: fileuuid or filename");
    v.call("FileGet", addr(&alice, json!({"fileuuid": "nope"}))).await.error(400, "Bad UUID");
    v.call("FileGet", addr(&alice, json!({"fileuuid": "0b6f6a52-8d1c-4c39-9a0e-4f5d7c2e1a10"})))
        .await
        .error(404, "The file record was not found");
    v.call("FileGet", json!({"mode": "email", "identity": "nobody@x.io", "filename": "scan.pdf"}))
        .await
        .error(404, "The user record was not found");
});

both!(raw_download_carries_type_and_a_safe_name, |v| {
    let token = v.create_user(json!({"login": "raw"})).await;
    let png = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R'];
    let created = upload(v, &token, "Pässe \"scan\".png", &png, json!({})).await;
    let (status, headers, body) = raw_get(v, addr(&token, json!({"fileuuid": created["fileuuid"], "raw": true}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, png);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["content-length"], png.len().to_string());
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename=\"P_sse _scan_.png\"; filename*=UTF-8''P%C3%A4sse%20%22scan%22.png"
    );
    assert_eq!(
        (headers["x-content-type-options"].as_bytes(), headers["cache-control"].as_bytes()),
        (&b"nosniff"[..], &b"no-store"[..])
    );
    // Without an extension the magic bytes decide; with a given type, that type.
    let created =
        upload(v, &token, "noext", &[&png[..], b"x"].concat(), json!({"mimetype": "application/x-custom; v=1"})).await;
    let (_, headers, _) = raw_get(v, addr(&token, json!({"fileuuid": created["fileuuid"], "raw": 1}))).await;
    assert_eq!(headers["content-type"], "application/x-custom; v=1");
    assert_eq!(headers["content-disposition"], "attachment; filename=\"noext\"");
    let sniffed = upload(v, &token, "noext2", &[&png[..], b"y"].concat(), json!({})).await;
    let (_, headers, _) = raw_get(v, addr(&token, json!({"fileuuid": sniffed["fileuuid"], "raw": 1}))).await;
    assert_eq!(headers["content-type"], "image/png");
    let listed = files(v, &token, json!({})).await;
    assert_eq!(listed[0]["mimetype"], "image/png");
    // Errors of a raw request are JSON like any other.
    let (status, _, body) = raw_get(v, addr(&token, json!({"filename": "missing", "raw": true}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_slice(&body).expect("json error");
    assert_eq!(body, json!({"status": "error", "message": "The file record was not found"}));
});

both!(tags_are_normalised_and_checked, |v| {
    let token = v.create_user(json!({"login": "tags"})).await;
    let created = upload(v, &token, "a.txt", b"a", json!({"tags": ["Passport", "kyc", "KYC", " id.card_2-x "]})).await;
    assert_eq!(created["tags"], json!(["id.card_2-x", "kyc", "passport"]));
    let created = upload(v, &token, "b.txt", b"b", json!({"tags": "zeta, Alpha,alpha,"})).await;
    assert_eq!(created["tags"], json!(["alpha", "zeta"]));
    let sixteen: Vec<String> = (0..16).map(|i| format!("t{i:02}")).collect();
    let created = upload(v, &token, "c.txt", b"c", json!({"tags": sixteen})).await;
    assert_eq!(created["tags"].as_array().map(Vec::len), Some(16));

    let seventeen: Vec<String> = (0..17).map(|i| format!("t{i:02}")).collect();
    let format = "The tags parameter has an incorrect format: ^[a-z0-9][a-z0-9._-]{0,49}$";
    let base = |tags: Value| addr(&token, json!({"filename": "d.txt", "filedata": b64(b"d"), "tags": tags}));
    v.call("FileCreate", base(json!(seventeen))).await.error(400, "The tags parameter has more than 16 tags");
    for bad in [json!(["-lead"]), json!(["secret diagnosis"]), json!(["ünï"]), json!("ok,_bad"), json!([""])] {
        v.call("FileCreate", base(bad)).await.error(400, format);
    }
    v.call("FileCreate", base(json!({"t": 1}))).await.error(400, "The tags parameter has an incorrect format");
    assert_eq!(files(v, &token, json!({})).await.as_array().map(Vec::len), Some(3), "no file was stored on error");
});

both!(same_content_for_the_same_user_is_a_duplicate, |v| {
    let alice = v.create_user(json!({"login": "dup-a"})).await;
    let bob = v.create_user(json!({"login": "dup-b"})).await;
    let content = pattern(5_000, 1);
    let first = upload(v, &alice, "one.bin", &content, json!({"tags": ["x"]})).await;
    let again = upload(v, &alice, "renamed.bin", &content, json!({"tags": ["y"]})).await;
    assert_eq!((again["fileuuid"].clone(), again["duplicate"].clone()), (first["fileuuid"].clone(), json!(true)));
    assert_eq!(again["tags"], json!(["x"]), "the existing file is answered unchanged");
    let theirs = upload(v, &bob, "one.bin", &content, json!({})).await;
    assert_eq!(theirs["duplicate"], false);
    assert_ne!(theirs["fileuuid"], first["fileuuid"]);
    let other = upload(v, &alice, "one.bin", &pattern(5_000, 2), json!({})).await;
    assert_eq!(other["duplicate"], false);
    let listed = files(v, &alice, json!({})).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
    // The doublehash is keyed per user: equal content, different users, different digests.
    let bobs = files(v, &bob, json!({})).await;
    let hash = listed[0]["doublehash"].as_str().expect("doublehash");
    assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()), "{hash}");
    assert_ne!(bobs[0]["doublehash"], listed[0]["doublehash"]);
    assert_ne!(listed[1]["doublehash"], listed[0]["doublehash"]);
    use sha2::Digest;
    assert_ne!(hash, hex::encode(sha2::Sha256::digest(&content)), "never a plain content hash");
    // After deletion the same content is new again.
    v.call("FileDelete", addr(&alice, json!({"fileuuid": first["fileuuid"]}))).await.ok();
    let fresh = upload(v, &alice, "one.bin", &content, json!({})).await;
    assert_eq!(fresh["duplicate"], false);
    assert_ne!(fresh["fileuuid"], first["fileuuid"]);
});

both!(listing_filters_by_tag_and_is_empty_as_a_list, |v| {
    let token = v.create_user(json!({"login": "lister"})).await;
    assert_eq!(files(v, &token, json!({})).await, json!([]));
    let before = v.clock().now();
    let passport =
        upload(v, &token, "passport.jpg", b"fake passport scan bytes", json!({"tags": ["passport", "kyc"]})).await;
    let bill = upload(v, &token, "bill.pdf", b"a bill", json!({"tags": "kyc"})).await;
    upload(v, &token, "cat.gif", b"a cat", json!({})).await;
    let listed = files(v, &token, json!({})).await;
    let names: Vec<&str> = listed.as_array().expect("files").iter().filter_map(|f| f["filename"].as_str()).collect();
    assert_eq!(names, ["passport.jpg", "bill.pdf", "cat.gif"]);
    let row = &listed[0];
    assert_eq!(
        (row["fileuuid"].clone(), row["mimetype"].clone(), row["size"].clone()),
        (passport["fileuuid"].clone(), json!("image/jpeg"), json!(24))
    );
    assert_eq!(row["tags"], json!(["kyc", "passport"]));
    assert!(row["creationtime"].as_i64().is_some_and(|t| t >= before && t <= v.clock().now()), "{row}");
    assert!(row.get("filedata").is_none(), "metadata only");
    assert_eq!(listed[1]["mimetype"], "application/pdf");

    let kyc = files(v, &token, json!({"tag": "KYC"})).await;
    let ids: Vec<Value> = kyc.as_array().expect("files").iter().map(|f| f["fileuuid"].clone()).collect();
    assert_eq!(ids, [passport["fileuuid"].clone(), bill["fileuuid"].clone()]);
    assert_eq!(files(v, &token, json!({"tag": "passport"})).await.as_array().map(Vec::len), Some(1));
    assert_eq!(files(v, &token, json!({"tag": "nothing-here"})).await, json!([]));
    v.call("FileListUserFiles", addr(&token, json!({"tag": "kyc,passport"})))
        .await
        .error(400, "The tag parameter has an incorrect format: ^[a-z0-9][a-z0-9._-]{0,49}$");
    let answer = v.call("FileListUserFiles", addr(&token, json!({}))).await.ok();
    assert_eq!(answer["token"], token.as_str());
});

both!(replacing_tags_replaces_the_whole_set, |v| {
    let token = v.create_user(json!({"login": "retag"})).await;
    let created = upload(v, &token, "a.txt", b"a", json!({"tags": ["old", "kyc"]})).await;
    let id = created["fileuuid"].clone();
    let replaced =
        v.call("FileReplaceTags", addr(&token, json!({"fileuuid": id, "tags": ["New", "KYC", "new"]}))).await.ok();
    assert_eq!((replaced["tags"].clone(), replaced["fileuuid"].clone()), (json!(["kyc", "new"]), id.clone()));
    assert_eq!(files(v, &token, json!({"tag": "old"})).await, json!([]));
    assert_eq!(files(v, &token, json!({"tag": "new"})).await[0]["tags"], json!(["kyc", "new"]));
    let got = v.call("FileGet", addr(&token, json!({"fileuuid": id}))).await.ok();
    assert_eq!((got["tags"].clone(), unb64(&got["filedata"])), (json!(["kyc", "new"]), b"a".to_vec()));
    let cleared = v.call("FileReplaceTags", addr(&token, json!({"fileuuid": id, "tags": []}))).await.ok();
    assert_eq!(cleared["tags"], json!([]));
    assert_eq!(files(v, &token, json!({"tag": "kyc"})).await, json!([]));
    v.call("FileReplaceTags", addr(&token, json!({"fileuuid": id})))
        .await
        .error(400, "Missing API request parameters: tags");
    v.call("FileReplaceTags", addr(&token, json!({"fileuuid": id, "tags": ["bad tag"]})))
        .await
        .error(400, "The tags parameter has an incorrect format: ^[a-z0-9][a-z0-9._-]{0,49}$");
    v.call("FileReplaceTags", addr(&token, json!({"tags": ["x"]})))
        .await
        .error(400, "Missing API request parameters: fileuuid");
    v.call("FileReplaceTags", addr(&token, json!({"fileuuid": "0b6f6a52-8d1c-4c39-9a0e-4f5d7c2e1a10", "tags": ["x"]})))
        .await
        .error(404, "The file record was not found");
});

both!(delete_removes_the_file_and_its_content, |v| {
    let token = v.create_user(json!({"login": "del"})).await;
    let created = upload(v, &token, "gone.bin", &pattern(CHUNK + 10, 3), json!({"tags": ["t"]})).await;
    let kept = upload(v, &token, "kept.bin", b"kept", json!({})).await;
    let deleted = v.call("FileDelete", addr(&token, json!({"fileuuid": created["fileuuid"]}))).await.ok();
    assert_eq!(deleted["token"], token.as_str());
    v.call("FileGet", addr(&token, json!({"fileuuid": created["fileuuid"]})))
        .await
        .error(404, "The file record was not found");
    v.call("FileDelete", addr(&token, json!({"fileuuid": created["fileuuid"]})))
        .await
        .error(404, "The file record was not found");
    v.call("FileDelete", addr(&token, json!({}))).await.error(400, "Missing API request parameters: fileuuid");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM file_chunks").await, 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM file_tags").await, 0);
    let listed = files(v, &token, json!({})).await;
    assert_eq!((listed.as_array().map(Vec::len), listed[0]["fileuuid"].clone()), (Some(1), kept["fileuuid"].clone()));
    // Each step is audited, without the filename.
    let events = v.call("AuditListUserEvents", json!({"mode": "token", "identity": token, "limit": 20})).await.ok();
    let ops: Vec<&str> = events["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|e| e["operation"].as_str().or(e["title"].as_str()))
        .collect();
    for op in ["FileCreate", "FileDelete", "FileListUserFiles", "FileGet"] {
        assert!(ops.contains(&op), "{op} missing from {ops:?}");
    }
    assert!(!events.to_string().contains("gone.bin"), "the filename is in the audit trail");
});

both!(every_operation_needs_a_token, |v| {
    let token = v.create_user(json!({"login": "deny"})).await;
    let created = upload(v, &token, "a.txt", b"a", json!({})).await;
    let body = addr(
        &token,
        json!({"fileuuid": created["fileuuid"], "filename": "b.txt", "filedata": b64(b"b"), "tags": ["t"]}),
    );
    for op in ["FileCreate", "FileGet", "FileListUserFiles", "FileReplaceTags", "FileDelete"] {
        v.call_as(op, None, None, body.clone()).await.error(403, "Access denied");
        v.call_as(op, Some("not-a-token"), None, body.clone()).await.error(403, "Access denied");
    }
    let listed = files(v, &token, json!({})).await;
    assert_eq!((listed.as_array().map(Vec::len), listed[0]["tags"].clone()), (Some(1), json!([])));
});

both!(bad_uploads_are_refused_without_echo, |v| {
    let token = v.create_user(json!({"login": "bad"})).await;
    let create = |extra: Value| {
        let mut body = addr(&token, json!({"filename": "f.txt", "filedata": "QUJD"}));
        if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        body
    };
    for bad in ["QUJD\n", "not base64!", "QUJ", "QUJD-_", "Q"] {
        v.call("FileCreate", create(json!({"filedata": bad})))
            .await
            .error(400, "The filedata parameter is not valid base64");
    }
    v.call("FileCreate", create(json!({"filedata": 12})))
        .await
        .error(400, "The filedata parameter is not valid base64");
    v.call("FileCreate", addr(&token, json!({"filename": "f"})))
        .await
        .error(400, "Missing API request parameters: filedata");
    v.call("FileCreate", addr(&token, json!({"filedata": "QUJD"})))
        .await
        .error(400, "Missing API request parameters: filename");
    for bad in [String::new(), "x".repeat(256), "bad\r\nname".into()] {
        v.call("FileCreate", create(json!({"filename": bad})))
            .await
            .error(400, "The filename parameter has an incorrect format");
    }
    v.call("FileCreate", create(json!({"filename": "é".repeat(255)}))).await.ok();
    v.call("FileCreate", create(json!({"mimetype": "text/plain\r\nX-Evil: 1"})))
        .await
        .error(400, "The mimetype parameter has an incorrect format");
    v.call("FileCreate", json!({"mode": "login", "identity": "nobody", "filename": "f", "filedata": "QUJD"}))
        .await
        .error(404, "The user record was not found");
    // Unpadded base64 is read as padded.
    let created = v.call("FileCreate", create(json!({"filedata": "QUI", "filename": "ab.txt"}))).await.ok();
    let got = v.call("FileGet", addr(&token, json!({"fileuuid": created["fileuuid"]}))).await.ok();
    assert_eq!(got["filedata"], "QUI=");
});
