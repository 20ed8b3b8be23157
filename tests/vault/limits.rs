//! What a caller may send: body limits by operation, the memory budget, requests in flight,
//! record sizes, patch lengths and the shape of identities (issue 12).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use bunker::state::Settings;
use serde_json::{Value, json};

use crate::both;
use crate::common::Answer;

/// A request with a declared `Content-Length` and whatever body bytes follow.
fn declared(path: &str, token: Option<&str>, length: u64, body: Vec<u8>) -> Request<Body> {
    let mut builder = Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/json")
        .header("content-length", length.to_string());
    if let Some(token) = token {
        builder = builder.header("x-bunker-token", token);
    }
    builder.body(Body::from(body)).expect("request")
}

/// `{"profile":{"login":…,"f":"xxx…"}}` of about `size` bytes.
fn profile_of_size(login: &str, size: usize) -> Value {
    json!({"login": login, "f": "x".repeat(size)})
}

both!(a_declared_length_over_the_limit_is_413_before_any_byte_is_read, |v| {
    // 10 GB declared, a few bytes sent: refused at once, not after waiting for the rest.
    let started = Instant::now();
    v.send(declared("/v2/UserGet", Some(&v.root), 10_000_000_000, b"{}".to_vec()))
        .await
        .error(413, "Request body is too large");
    // The public operation answers the same without a token.
    v.send(declared("/v2/SharedRecordGet", None, 10_000_000_000, b"{}".to_vec()))
        .await
        .error(413, "Request body is too large");
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    // A Content-Length that is not a number is refused, not guessed.
    let request = Request::builder()
        .method("POST")
        .uri("/v2/UserGet")
        .header("content-length", "lots")
        .header("x-bunker-token", v.root.as_str())
        .body(Body::empty())
        .expect("request");
    let answer = v.send(request).await;
    assert_eq!(answer.status.as_u16(), 400, "{}", answer.body);
});

both!(public_operations_take_a_few_kib_ordinary_ones_a_mib, |v| {
    // SharedRecordGet needs a recorduuid only: 4 KiB is plenty, 5 KiB is refused unread.
    let padding = "p".repeat(5 * 1024);
    let body = json!({"recorduuid": "5e1f2d3c-0000-4000-8000-000000000000", "pad": padding}).to_string();
    v.request("/v2/SharedRecordGet", None, None, Some(body.into_bytes())).await.error(413, "Request body is too large");
    let body = json!({"recorduuid": "5e1f2d3c-0000-4000-8000-000000000000"}).to_string();
    v.request("/v2/SharedRecordGet", None, None, Some(body.into_bytes()))
        .await
        .error(404, "The shared record was not found");
    // An ordinary operation takes up to 1 MiB (a profile of 900 KB is fine), not 2 MiB.
    v.call("UserCreate", json!({"profile": profile_of_size("big", 900_000)})).await.ok();
    v.call("UserCreate", json!({"profile": profile_of_size("bigger", 2 * 1024 * 1024)}))
        .await
        .error(413, "Request body is too large");
    v.call("UserGet", json!({"mode": "login", "identity": "bigger"})).await.error(404, "The user record was not found");
    // A bulk operation has the large limit: 2 MiB of records is accepted.
    let records: Vec<Value> =
        (0..4).map(|i| json!({"profile": profile_of_size(&format!("bulk{i}"), 512 * 1024)})).collect();
    let created = v.call("UserCreateBulk", json!({"records": records})).await.ok();
    assert_eq!(created["created"].as_array().map(Vec::len), Some(4), "{}", created["errors"]);
});

fn small_budget(_: &std::path::Path) -> Settings {
    // 1 MiB of request memory: a body may take up to 72 times its size once decoded.
    Settings { request_memory: 1024 * 1024, ..Default::default() }
}

both!(a_body_the_memory_budget_cannot_cover_is_503_with_retry_after, settings = small_budget, |v| {
    let big = json!({"profile": profile_of_size("big", 20_000)}).to_string().into_bytes();
    let response = {
        use tower::ServiceExt;
        let request = declared("/v2/UserCreate", Some(&v.root), big.len() as u64, big);
        v.app.clone().oneshot(request).await.expect("infallible")
    };
    assert_eq!(response.status().as_u16(), 503);
    assert_eq!(response.headers().get("retry-after").and_then(|h| h.to_str().ok()), Some("1"));
    let bytes = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    let body: Value = serde_json::from_slice(&bytes).expect("JSON");
    assert_eq!(body, json!({"status": "error", "message": "The vault is busy, try again shortly"}));
    v.call("UserGet", json!({"mode": "login", "identity": "big"})).await.error(404, "The user record was not found");
    // Small calls fit, and the refused call's reservation was given back.
    for i in 0..20 {
        v.call("UserCreate", json!({"profile": {"login": format!("small{i}")}})).await.ok();
    }
});

fn one_in_flight(_: &std::path::Path) -> Settings {
    Settings { max_in_flight: 1, ..Default::default() }
}

both!(requests_beyond_the_bound_in_flight_are_refused_at_once, settings = one_in_flight, |v| {
    use tower::ServiceExt;
    type Chunks = futures::channel::mpsc::Sender<Result<axum::body::Bytes, std::io::Error>>;
    // A call whose body never finishes holds the only place in flight (it may itself be the
    // one refused if a probe got there first: then it is sent again).
    let hold = || -> (Chunks, tokio::task::JoinHandle<_>) {
        let (sender, receiver) = futures::channel::mpsc::channel(1);
        let stuck = Request::builder()
            .method("POST")
            .uri("/v2/UserGet")
            .header("x-bunker-token", v.root.as_str())
            .body(Body::from_stream(receiver))
            .expect("request");
        let app = v.app.clone();
        (sender, tokio::spawn(async move { app.oneshot(stuck).await }))
    };
    let (mut sender, mut held) = hold();
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        if held.is_finished() {
            (sender, held) = hold();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let answer = v.call("UserGet", json!({"mode": "login", "identity": "x"})).await;
        if answer.status.as_u16() == 503 || Instant::now() > deadline {
            break answer;
        }
    };
    refused.error(503, "The vault is busy, try again shortly");
    // Health stays outside the bound.
    let (status, _) = v.get_text("/status").await;
    assert_eq!(status.as_u16(), 200);
    drop(sender);
    let finished = held.await.expect("join").expect("infallible");
    assert_eq!(finished.status().as_u16(), 400);
    v.call("UserGet", json!({"mode": "login", "identity": "x"})).await.error(404, "The user record was not found");
});

fn small_records(_: &std::path::Path) -> Settings {
    Settings { max_record_size: 2000, ..Default::default() }
}

both!(records_have_a_maximum_size, settings = small_records, |v| {
    let limit = "The profile is larger than the limit of 2000 bytes";
    v.call("UserCreate", json!({"profile": profile_of_size("big", 2500)})).await.error(400, limit);
    v.call("UserGet", json!({"mode": "login", "identity": "big"})).await.error(404, "The user record was not found");
    let token = v.create_user(profile_of_size("grows", 1500)).await;
    let who = json!({"mode": "token", "identity": token});
    // A merge that grows the profile past the limit is refused and changes nothing.
    let mut update = who.clone();
    update["profile"] = json!({"g": "y".repeat(600)});
    v.call("UserUpdate", update).await.error(400, limit);
    // So is a patch, and an approved change request.
    let mut patch = who.clone();
    patch["patch"] = json!([{"op": "add", "path": "/g", "value": "z".repeat(600)}]);
    v.call("UserPatch", patch.clone()).await.error(400, limit);
    let request = v.call("UserPatchRequest", patch).await.ok();
    v.call("UserRequestApprove", json!({"requestuuid": request["requestuuid"]})).await.error(400, limit);
    let stored = v.call("UserGet", who.clone()).await.ok();
    assert_eq!(stored["profile"], profile_of_size("grows", 1500));
    assert_eq!(stored["version"], 1);
    // Bulk: the oversized record is refused, the others created.
    let bulk = v
        .call(
            "UserCreateBulk",
            json!({"records": [{"profile": profile_of_size("b1", 2500)}, {"profile": {"login": "b2"}}]}),
        )
        .await
        .ok();
    assert_eq!(bulk["created"].as_array().map(Vec::len), Some(1));
    assert_eq!(bulk["errors"][0]["reason"], limit);
    // App data, sessions and agreements are records too.
    let mut appdata = who.clone();
    appdata["appname"] = json!("shop");
    appdata["appdata"] = json!({"f": "a".repeat(2500)});
    v.call("AppdataCreate", appdata.clone()).await.error(400, "The appdata is larger than the limit of 2000 bytes");
    appdata["appdata"] = json!({"f": "a".repeat(1500)});
    v.call("AppdataCreate", appdata.clone()).await.ok();
    appdata["appdata"] = json!({"g": "b".repeat(600)});
    v.call("AppdataUpdate", appdata).await.error(400, "The appdata is larger than the limit of 2000 bytes");
    v.call(
        "SessionUpsert",
        json!({"sessionuuid": "0b6f6a52-8d1c-4c39-9a0e-4f5d7c2e1a10", "sessiondata": {"f": "s".repeat(2500)}}),
    )
    .await
    .error(400, "The sessiondata is larger than the limit of 2000 bytes");
    v.call("LegalBasisCreate", json!({"brief": "marketing", "basistype": "consent"})).await.ok();
    let mut accept = who.clone();
    accept["brief"] = json!("marketing");
    accept["referencecode"] = json!("r".repeat(2500));
    v.call("AgreementAccept", accept).await.error(400, "The agreement is larger than the limit of 2000 bytes");
});

fn three_bulk_records(_: &std::path::Path) -> Settings {
    Settings { max_bulk_records: 3, ..Default::default() }
}

both!(bulk_calls_take_a_bounded_number_of_records, settings = three_bulk_records, |v| {
    let records: Vec<Value> = (0..4).map(|i| json!({"profile": {"login": format!("b{i}")}})).collect();
    v.call("UserCreateBulk", json!({"records": records}))
        .await
        .error(400, "The records parameter has more than 3 entries");
    v.call("UserGet", json!({"mode": "login", "identity": "b0"})).await.error(404, "The user record was not found");
    let created = v.call("UserCreateBulk", json!({"records": records[..3]})).await.ok();
    assert_eq!(created["created"].as_array().map(Vec::len), Some(3));
    let users: Vec<Value> = (0..4).map(|i| json!({"mode": "login", "identity": format!("b{i}")})).collect();
    v.call("UserDeleteBulk", json!({"users": users})).await.error(400, "The users parameter has more than 3 entries");
    v.call("UserGet", json!({"mode": "login", "identity": "b0"})).await.ok();
    v.call("UserDeleteBulk", json!({"users": [{"mode": 7, "identity": []}]}))
        .await
        .error(400, "The users[0].identity parameter has an incorrect format");
    let tokens = json!({"records": vec![json!({"tokentype": "email", "record": "a@example.com"}); 4]});
    v.call("TokenCreateBulk", tokens).await.error(400, "The records parameter has more than 3 entries");
    v.call("UserCreateBulk", json!({"records": "b0"}))
        .await
        .error(400, "The records parameter has an incorrect format");
});

both!(a_bulk_call_of_tiny_records_is_refused_before_it_holds_them, |v| {
    // 64 MiB of `0,` would be 33 million records: counted while read, refused at the limit.
    let zeros = format!(r#"{{"records":[{}0]}}"#, "0,".repeat(10_000));
    let answer = v.request("/v2/UserCreateBulk", Some(&v.root), None, Some(zeros.into_bytes())).await;
    answer.error(400, "The records parameter has more than 10000 entries");
});

both!(a_patch_cannot_amplify_a_profile, |v| {
    let token = v.create_user(json!({"login": "amp", "name": "x".repeat(200)})).await;
    // Each `copy` of the whole document doubles it: 25 of them would make 200 bytes 6.7 GB.
    let operations: Vec<Value> = (0..25).map(|i| json!({"op": "copy", "from": "", "path": format!("/a{i}")})).collect();
    let started = Instant::now();
    v.call("UserPatch", json!({"mode": "token", "identity": token, "patch": operations}))
        .await
        .error(400, "The profile is larger than the limit of 1048576 bytes");
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let stored = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(stored["version"], 1);
    assert_eq!(stored["profile"].as_object().map(|p| p.len()), Some(2));
    // Patches are capped in length.
    let operations: Vec<Value> = (0..257).map(|i| json!({"op": "add", "path": format!("/k{i}"), "value": i})).collect();
    v.call("UserPatch", json!({"mode": "token", "identity": token, "patch": operations.clone()}))
        .await
        .error(400, "The patch has more than 256 operations");
    v.call("UserPatchRequest", json!({"mode": "token", "identity": token, "patch": operations}))
        .await
        .error(400, "The patch has more than 256 operations");
    // A failing operation is named by its position in the whole patch.
    let patch = json!([{"op": "add", "path": "/ok", "value": 1}, {"op": "remove", "path": "/missing"}]);
    v.call("UserPatch", json!({"mode": "token", "identity": token, "patch": patch}))
        .await
        .error(400, "Failed to apply the patch: operation 1 failed");
});

both!(identities_must_have_their_shape, |v| {
    for (profile, field) in [
        (json!({"email": 12345}), "email"),
        (json!({"email": {"a": "alice@example.com"}}), "email"),
        (json!({"email": "not-an-address"}), "email"),
        (json!({"phone": "no digits"}), "phone"),
        (json!({"phone": ["+44 7700 900123"]}), "phone"),
        (json!({"login": 42}), "login"),
        (json!({"custom": {"id": 1}}), "custom"),
        (json!({"login": true}), "login"),
    ] {
        let answer: Answer = v.call("UserCreate", json!({"profile": profile})).await;
        let text = answer.body.to_string();
        answer.error(400, &format!("The profile {field} has an incorrect format"));
        assert!(!text.contains("alice") && !text.contains("not-an-address"), "{text}");
    }
    // What the official clients send keeps working: a numeric phone, empty values.
    let token = v.create_user(json!({"phone": 447700900123_i64, "email": "", "login": "shape"})).await;
    v.call("UserGet", json!({"mode": "phone", "identity": "447700900123"})).await.ok();
    // A change cannot introduce a malformed identity either.
    v.call("UserUpdate", json!({"mode": "token", "identity": token, "profile": {"email": 7}}))
        .await
        .error(400, "The profile email has an incorrect format");
    v.call("UserCreateBulk", json!({"records": [{"profile": {"email": ["x@example.com"]}}]}))
        .await
        .ok()["errors"][0]["reason"]
        .as_str()
        .map(|reason| assert_eq!(reason, "The profile email has an incorrect format"))
        .expect("refused");
});

both!(the_tenant_header_must_name_a_tenant, |v| {
    v.create_user(json!({"login": "tenanted"})).await;
    for tenant in ["", "   "] {
        v.call_as("UserGet", Some(&v.root), Some(tenant), json!({"mode": "login", "identity": "tenanted"}))
            .await
            .error(400, "The X-Bunker-Tenant header has an incorrect format");
    }
    let request = Request::builder()
        .method("POST")
        .uri("/v2/UserGet")
        .header("x-bunker-token", v.root.as_str())
        .header("x-bunker-tenant", axum::http::HeaderValue::from_bytes(b"caf\xc3\xa9").expect("header"))
        .body(Body::from(json!({"mode": "login", "identity": "tenanted"}).to_string()))
        .expect("request");
    v.send(request).await.error(400, "The X-Bunker-Tenant header has an incorrect format");
    // Without the header the credential's own tenant is used.
    v.call("UserGet", json!({"mode": "login", "identity": "tenanted"})).await.ok();
});
