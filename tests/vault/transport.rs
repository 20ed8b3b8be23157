//! Transport conventions (API contract §1): bodies, routing, the error envelope, limits, health
//! and metrics.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bunker::state::Settings;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::both;
use crate::common::{Answer, Backend, TestBody, TestVault};

/// A personal value that must never come back in an error message or show up in metrics.
const SECRET: &str = "alice@example.com";

/// Sends a raw body to `/v2/{op}` as root.
async fn raw(v: &TestVault, op: &str, body: &[u8]) -> Answer {
    v.request(&format!("/v2/{op}"), Some(&v.root), None, Some(body.to_vec())).await
}

/// Sends a request with any method, returning the status, the content type and the raw body.
async fn exchange(v: &TestVault, method: &str, path: &str, body: Option<&[u8]>) -> (StatusCode, String, Vec<u8>) {
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("x-bunker-token", v.root.as_str());
    if body.is_none() {
        builder = builder.header("content-length", "0");
    }
    let request = builder.body(body.map_or_else(Body::empty, |b| Body::from(b.to_vec()))).expect("request");
    let response = v.app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|h| h.to_str().expect("ascii content type").to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.expect("body").to_bytes().to_vec();
    (status, content_type, bytes)
}

/// Checks that an error answer is a JSON object `{"status":"error","message":<non-empty>}`.
fn error_envelope(status: StatusCode, content_type: &str, bytes: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(bytes);
    if !(status.is_client_error() || status.is_server_error()) {
        return Err(format!("status {status}"));
    }
    if !content_type.starts_with("application/json") {
        return Err(format!("status {status}, content type {content_type:?}, body {text:?}"));
    }
    let body: Value = serde_json::from_slice(bytes).map_err(|_| format!("status {status}, non-JSON body {text:?}"))?;
    let message = body.get("message").and_then(Value::as_str).unwrap_or_default();
    if body.get("status") != Some(&json!("error")) || message.is_empty() {
        return Err(format!("status {status}, body {body}"));
    }
    Ok(())
}

both!(an_empty_body_is_an_empty_object, |v| {
    v.request("/v2/UserGet", Some(&v.root), None, None)
        .await
        .error(400, "Missing API request parameters: mode, identity");
    v.request("/v2/UserCreate", Some(&v.root), None, None).await.error(400, "Missing API request parameters: profile");
    // Whitespace only is no body either.
    raw(v, "UserGet", b" \r\n\t ").await.error(400, "Missing API request parameters: mode, identity");
    // With a user present the answer is the same: no body addresses nobody.
    v.create_user(json!({"login": "empty"})).await;
    v.request("/v2/UserGet", Some(&v.root), None, None)
        .await
        .error(400, "Missing API request parameters: mode, identity");
    v.request("/v2/AuditGetEvent", Some(&v.root), None, None)
        .await
        .error(400, "Missing API request parameters: auditeventuuid");
});

both!(bodies_that_are_not_a_json_object_fail_to_decode, |v| {
    for body in [
        &b"{not json"[..],
        b"{\"mode\": \"login\", \"identity\": \"x\"",
        b"[]",
        b"[{\"mode\": \"login\", \"identity\": \"x\"}]",
        b"\"mode\"",
        b"42",
        b"null",
        b"true",
        b"{\"a\":1} {\"b\":2}",
        b"\xff\xfe{}",
    ] {
        raw(v, "UserGet", body).await.error(400, "Failed to decode the request body");
    }
    raw(v, "UserCreate", b"[{\"profile\": {\"a\": 1}}]").await.error(400, "Failed to decode the request body");
});

both!(unknown_operations_and_paths_are_json_404s, |v| {
    for op in ["UserFrobnicate", "UserGet/extra", "Status", "v2/UserGet"] {
        v.call(op, json!({})).await.error(404, "The API request was not found");
    }
    // Without a token the answer is the same: the name is not an operation at all.
    v.call_as("UserFrobnicate", None, None, json!({})).await.error(404, "The API request was not found");
    for path in ["/", "/nope", "/v1/UserGet", "/v2", "/api/v2/UserGet", "/UserGet"] {
        v.request(path, Some(&v.root), None, Some(b"{}".to_vec())).await.error(404, "endpoint is missing");
    }
    // GET outside /v2 as well.
    let answer = v.send(Request::builder().uri("/nope").body(Body::empty()).expect("request")).await;
    answer.error(404, "endpoint is missing");
});

both!(unknown_keys_are_ignored, |v| {
    let body = v
        .call("UserCreate", json!({"profile": {"login": "u1"}, "unknown": {"deep": [1, 2]}, "Profile": "x", "zz": 1}))
        .await
        .ok();
    let token = body["token"].as_str().expect("token").to_owned();
    let got = v
        .call("UserGet", json!({"mode": "login", "identity": "u1", "extra": true, "request_id": 17, "MODE": "x"}))
        .await
        .ok();
    assert_eq!(got["token"], token.as_str());
    assert_eq!(got["profile"], json!({"login": "u1"}));
});

both!(top_level_null_means_absent, |v| {
    let body = v
        .call(
            "UserCreate",
            json!({"profile": {"login": "n1", "keep": null}, "slidingtime": null, "finaltime": null,
                   "groupname": null, "groupid": null, "rolename": null, "roleid": null,
                   "request_metadata": null}),
        )
        .await
        .ok();
    let token = body["token"].as_str().expect("token").to_owned();
    let got = v.call("UserGet", json!({"mode": "token", "identity": token, "version": null})).await.ok();
    // Only top-level nulls are dropped: inside the profile a null is a value like any other.
    assert_eq!(got["profile"], json!({"login": "n1", "keep": null}));
    assert_eq!((got["version"].clone(), got["slidingtime"].clone()), (json!(1), json!(0)));
    // A required parameter given as null is missing.
    v.call("UserCreate", json!({"profile": null})).await.error(400, "Missing API request parameters: profile");
    v.call("UserGet", json!({"mode": "token", "identity": null}))
        .await
        .error(400, "Missing API request parameters: identity");
    v.call("UserGet", json!({"mode": null, "identity": null}))
        .await
        .error(400, "Missing API request parameters: mode, identity");
});

both!(numeric_strings_are_accepted_for_integers, |v| {
    let token = v.create_user(json!({"name": "first"})).await;
    v.call("UserUpdate", json!({"mode": "token", "identity": token, "profile": {"name": "second"}})).await.ok();
    for version in [json!("1"), json!(" 1 "), json!(1), json!(1.0)] {
        let old = v.call("UserGet", json!({"mode": "token", "identity": token, "version": version})).await.ok();
        assert_eq!((old["profile"].clone(), old["version"].clone()), (json!({"name": "first"}), json!(1)), "{version}");
    }
    let current = v.call("UserGet", json!({"mode": "token", "identity": token, "version": "2"})).await.ok();
    assert_eq!(current["profile"], json!({"name": "second"}));
    v.call("UserGet", json!({"mode": "token", "identity": token, "version": "9"}))
        .await
        .error(404, "The user version was not found");
    for bad in [json!("one"), json!("1.5"), json!(1.5), json!([1]), json!({"v": 1}), json!(true)] {
        v.call("UserGet", json!({"mode": "token", "identity": token, "version": bad}))
            .await
            .error(400, "The version parameter has an incorrect format");
    }
});

both!(a_doubled_leading_slash_is_routed, |v| {
    let token = v.create_user(json!({"login": "slash"})).await;
    let body = json!({"mode": "login", "identity": "slash"}).to_string().into_bytes();
    let got = v.request("//v2/UserGet", Some(&v.root), None, Some(body.clone())).await.ok();
    assert_eq!(got["token"], token.as_str());
    v.request("///v2/UserGet", Some(&v.root), None, Some(body)).await.ok();
    v.request("//v2/UserFrobnicate", Some(&v.root), None, Some(b"{}".to_vec()))
        .await
        .error(404, "The API request was not found");
    let (status, _) = v.get_text("//status").await;
    assert_eq!(status, StatusCode::OK);
});

both!(every_error_answer_is_a_json_error_object, |v| {
    let token = v.create_user(json!({"email": "taken@x.io"})).await;
    let cases: Vec<(&str, &str, &str, Option<Vec<u8>>)> = vec![
        ("invalid JSON", "POST", "/v2/UserGet", Some(b"{oops".to_vec())),
        ("array body", "POST", "/v2/UserGet", Some(b"[]".to_vec())),
        ("missing parameters", "POST", "/v2/UserGet", None),
        ("bad mode", "POST", "/v2/UserGet", Some(br#"{"mode":"x","identity":"y"}"#.to_vec())),
        ("unknown user", "POST", "/v2/UserGet", Some(br#"{"mode":"login","identity":"nobody"}"#.to_vec())),
        ("duplicate", "POST", "/v2/UserCreate", Some(br#"{"profile":{"email":"taken@x.io"}}"#.to_vec())),
        ("unknown operation", "POST", "/v2/NoSuchThing", Some(b"{}".to_vec())),
        ("unknown path", "POST", "/nowhere", Some(b"{}".to_vec())),
        ("unknown path, GET", "GET", "/nowhere", None),
        ("wrong method on an operation", "GET", "/v2/UserGet", None),
        ("wrong method on an operation, PUT", "PUT", "/v2/UserGet", Some(b"{}".to_vec())),
        ("bad uuid", "POST", "/v2/AuditGetEvent", Some(br#"{"auditeventuuid":"x"}"#.to_vec())),
        ("wrong method on /status", "POST", "/status", Some(b"{}".to_vec())),
    ];
    // Every case is checked before failing, so that a failure lists all offenders.
    let mut failures = Vec::new();
    for (what, method, path, body) in cases {
        let (status, content_type, bytes) = exchange(v, method, path, body.as_deref()).await;
        if let Err(problem) = error_envelope(status, &content_type, &bytes) {
            failures.push(format!("{what} ({method} {path}): {problem}"));
        }
    }
    assert!(failures.is_empty(), "answers that are not a JSON error object:\n{}", failures.join("\n"));
    // Denied calls too (no token at all).
    let denied = v.call_as("UserGet", None, None, json!({"mode": "token", "identity": token})).await;
    assert_eq!(denied.body.as_object().map(|o| o.len()), Some(2), "{}", denied.body);
    denied.error(403, "Access denied");
});

both!(error_messages_never_echo_request_values, |v| {
    let token = v.create_user(json!({"email": SECRET, "login": "owner"})).await;
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "UserGet",
            json!({"mode": "token", "identity": token, "version": SECRET}).to_string().into_bytes(),
            400,
            "The version parameter has an incorrect format",
        ),
        (
            "UserGet",
            json!({"mode": SECRET, "identity": "x"}).to_string().into_bytes(),
            400,
            "The mode parameter has an incorrect format",
        ),
        (
            "UserGet",
            json!({"mode": {"nested": SECRET}, "identity": "x"}).to_string().into_bytes(),
            400,
            "The mode parameter has an incorrect format",
        ),
        ("UserGet", json!({"mode": "token", "identity": SECRET}).to_string().into_bytes(), 400, "Bad UUID"),
        (
            "UserGet",
            json!({"mode": "email", "identity": "bob@example.com"}).to_string().into_bytes(),
            404,
            "The user record was not found",
        ),
        ("UserCreate", json!({"profile": {"email": SECRET}}).to_string().into_bytes(), 409, "Duplicate index: email"),
        (
            "UserCreate",
            json!({"profile": SECRET}).to_string().into_bytes(),
            400,
            "The profile parameter has an incorrect format",
        ),
        (
            "UserCreate",
            json!({"profile": {"a": 1}, "slidingtime": SECRET}).to_string().into_bytes(),
            400,
            "The slidingtime parameter has an incorrect format",
        ),
        (
            "UserCreate",
            json!({"profile": {"a": 1}, "finaltime": SECRET}).to_string().into_bytes(),
            400,
            "The finaltime parameter has an incorrect format",
        ),
        (
            "UserPatch",
            json!({"mode": "token", "identity": token, "patch": [{"op": SECRET, "path": "/a"}]})
                .to_string()
                .into_bytes(),
            400,
            "The patch parameter has an incorrect format",
        ),
        (
            "UserPatch",
            json!({"mode": "token", "identity": token, "patch": [{"op": "test", "path": "/email", "value": "x"}]})
                .to_string()
                .into_bytes(),
            400,
            "Failed to apply the patch: operation 0 failed",
        ),
        (
            "AuditListUserEvents",
            json!({"mode": "token", "identity": token, "limit": SECRET}).to_string().into_bytes(),
            400,
            "The limit parameter has an incorrect format",
        ),
        ("AuditGetEvent", json!({"auditeventuuid": SECRET}).to_string().into_bytes(), 400, "Bad UUID"),
        (
            "UserGet",
            format!("{{\"mode\": \"email\", \"identity\": {SECRET}}}").into_bytes(),
            400,
            "Failed to decode the request body",
        ),
    ];
    // Every case is checked before failing, so that a failure lists all offenders.
    let mut failures = Vec::new();
    for (op, body, status, message) in cases {
        let answer = raw(v, op, &body).await;
        let text = answer.body.to_string();
        if text.contains("alice") || text.contains("bob@") {
            failures.push(format!("{op} echoed a value: {text}"));
        }
        let expected = json!({"status": "error", "message": message});
        if answer.status.as_u16() != status || answer.body != expected {
            let sent = String::from_utf8_lossy(&body);
            failures.push(format!("{op} {sent}: expected {status} {expected}, got {} {text}", answer.status));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
});

both!(status_answers_200, |v| {
    let (status, _) = v.get_text("/status").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = v.get_text("/status/").await;
    assert_eq!(status, StatusCode::OK);
});

both!(metrics_count_routes_and_never_show_request_values, |v| {
    let token = v.create_user(json!({"email": SECRET})).await;
    v.call("UserGet", json!({"mode": "email", "identity": SECRET})).await.ok();
    v.request(
        "//v2/UserGet",
        Some(&v.root),
        None,
        Some(json!({"mode": "token", "identity": token}).to_string().into_bytes()),
    )
    .await
    .ok();
    v.call("UserGet", json!({"mode": "email", "identity": "nobody@example.com"}))
        .await
        .error(404, "The user record was not found");
    v.call(SECRET, json!({"mode": "email", "identity": SECRET})).await.error(404, "The API request was not found");
    v.request(&format!("/{SECRET}"), Some(&v.root), None, None).await.error(404, "endpoint is missing");
    v.call_as("UserGet", Some(SECRET), None, json!({})).await.error(403, "Access denied");
    let (status, text) = v.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        r#"http_requests_total{method="POST",path="/v2/UserCreate",status="200"} 1"#,
        r#"http_requests_total{method="POST",path="/v2/UserGet",status="200"} 2"#,
        r#"http_requests_total{method="POST",path="/v2/UserGet",status="404"} 1"#,
        r#"http_requests_total{method="POST",path="/v2/UserGet",status="403"} 1"#,
        r#"http_requests_total{method="POST",path="other",status="404"} 2"#,
    ] {
        assert!(lines.contains(&expected), "missing {expected}:\n{text}");
    }
    assert!(!text.contains("alice"), "a request value leaked into /metrics:\n{text}");
    assert!(!text.contains("nobody"), "a request value leaked into /metrics:\n{text}");
    assert!(!text.contains(&token), "a user token leaked into /metrics:\n{text}");
    assert!(!text.contains(&v.root), "the root token leaked into /metrics:\n{text}");
});

/// Runs `body` on a fresh vault with `settings` and always drops the database afterwards.
async fn run_with(backend: Backend, settings: Settings, body: TestBody) {
    use futures::FutureExt;
    let vault = TestVault::with_settings(backend, settings).await;
    let outcome = std::panic::AssertUnwindSafe(body(&vault)).catch_unwind().await;
    vault.cleanup().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

fn body_limit_body(v: &TestVault) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
    Box::pin(async move {
        // Just under the limit: accepted.
        let filler = "x".repeat(900);
        let small = json!({"profile": {"login": "small", "f": filler}}).to_string().into_bytes();
        assert!(small.len() < 1024);
        let token = v.request("/v2/UserCreate", Some(&v.root), None, Some(small)).await.ok()["token"].clone();
        // Over the limit: 413 with the JSON envelope, and nothing is created.
        let filler = "y".repeat(2048);
        let large = json!({"profile": {"login": "large", "f": filler}}).to_string().into_bytes();
        v.request("/v2/UserCreate", Some(&v.root), None, Some(large.clone()))
            .await
            .error(413, "Request body is too large");
        v.call("UserGet", json!({"mode": "login", "identity": "large"}))
            .await
            .error(404, "The user record was not found");
        // Any operation, even one whose body is not needed to fail.
        v.request("/v2/UserGet", Some(&v.root), None, Some(large.clone()))
            .await
            .error(413, "Request body is too large");
        // A declared length above the limit is refused as well.
        let request = Request::builder()
            .method("POST")
            .uri("/v2/UserCreate")
            .header("content-type", "application/json")
            .header("content-length", large.len().to_string())
            .header("x-bunker-token", v.root.as_str())
            .body(Body::from(large))
            .expect("request");
        v.send(request).await.error(413, "Request body is too large");
        // The vault still works afterwards.
        v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_limit_is_413_sqlite() {
    run_with(Backend::Sqlite, Settings { body_limit: 1024, ..Default::default() }, body_limit_body).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_over_the_limit_is_413_postgres() {
    run_with(Backend::Postgres, Settings { body_limit: 1024, ..Default::default() }, body_limit_body).await;
}

both!(request_metadata_must_be_an_object, |v| {
    v.call("UserCreate", json!({"profile": {"login": "m"}, "request_metadata": "tag"}))
        .await
        .error(400, "The request_metadata parameter has an incorrect format");
    v.call("UserCreate", json!({"profile": {"login": "m"}, "request_metadata": {"ip": "10.0.0.1"}})).await.ok();
});
