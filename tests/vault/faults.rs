//! A handler that panics or runs past its deadline still leaves an audit event saying what the
//! client was told (500 or 503), behind the same authentication middleware as every operation.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::Request;
use axum::routing::post;
use bunker::http::RequestContext;
use bunker::http::auth::{Authenticator, authenticate};
use bunker::state::{AppState, Settings};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::both;
use crate::common::TestVault;

async fn panics(_: RequestContext) -> &'static str {
    panic!("a fault in a handler");
}

/// Commits a user with its event, then panics.
async fn commits_then_panics(State(app): State<AppState>, ctx: RequestContext) -> &'static str {
    bunker::users::service::create(&app, &ctx, &json!({"login": "made"}), Default::default()).await.expect("create");
    panic!("a fault after a commit");
}

async fn sleeps(_: RequestContext) -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "late"
}

/// The vault's state behind its authentication middleware, with the faulty operations routed.
fn faulty_router(v: &TestVault) -> Router {
    let names = ["Panics", "CommitsThenPanics", "Sleeps"].map(|name| (format!("/v2/{name}"), name));
    let authenticator = Authenticator::new(v.state.clone(), names);
    Router::new()
        .route("/v2/Panics", post(panics))
        .route("/v2/CommitsThenPanics", post(commits_then_panics))
        .route("/v2/Sleeps", post(sleeps))
        .route_layer(axum::middleware::from_fn_with_state(authenticator, authenticate))
        .with_state(v.state.clone())
}

async fn call(v: &TestVault, operation: &str) -> (u16, Value) {
    let request = Request::builder()
        .method("POST")
        .uri(format!("/v2/{operation}"))
        .header("x-bunker-token", &v.root)
        .body(axum::body::Body::from("{}"))
        .expect("request");
    let response = faulty_router(v).oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&body).expect("JSON"))
}

/// The HTTP statuses of the events of `operation`, oldest first.
async fn statuses(v: &TestVault, operation: &str) -> Vec<i64> {
    let mut found = Vec::new();
    for status in [200, 500, 503] {
        let sql =
            format!("SELECT COUNT(*) FROM audit_events WHERE operation = '{operation}' AND http_status = {status}");
        for _ in 0..v.scalar(&sql).await {
            found.push(status);
        }
    }
    found
}

fn two_second_requests(_: &std::path::Path) -> Settings {
    Settings { request_timeout: Duration::from_secs(2), ..Settings::default() }
}

both!(a_panic_or_a_timeout_still_leaves_an_event, settings = two_second_requests, |v| {
    let (status, body) = call(v, "Panics").await;
    assert_eq!((status, &body), (500, &json!({"status": "error", "message": "Internal error"})));
    assert_eq!(statuses(v, "Panics").await, vec![500]);
    // A change committed before the panic keeps its event, and the 500 follows it.
    let (status, _) = call(v, "CommitsThenPanics").await;
    assert_eq!(status, 500);
    assert_eq!(statuses(v, "CommitsThenPanics").await, vec![200, 500]);
    assert_eq!(v.call("UserGet", json!({"mode": "login", "identity": "made"})).await.ok()["profile"]["login"], "made");
    // A handler past its deadline is cut, and the event says 503.
    let started = std::time::Instant::now();
    let (status, body) = call(v, "Sleeps").await;
    assert_eq!((status, body["message"].as_str()), (503, Some("Request timed out")));
    assert!(started.elapsed() < Duration::from_secs(2), "cut before the router's own timeout");
    assert_eq!(statuses(v, "Sleeps").await, vec![503]);
});
