//! Rate limits per client address: failed authentication and public operations (issue 12).

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use bunker::http::rate::RateSettings;
use bunker::state::Settings;
use serde_json::{Value, json};

use crate::both;
use crate::common::{Answer, TestVault};

/// A call as it arrives from `peer`, with optional token and `X-Forwarded-For`.
async fn from(
    v: &TestVault,
    peer: &str,
    op: &str,
    token: Option<&str>,
    forwarded: Option<&str>,
    body: Value,
) -> Answer {
    let mut builder =
        Request::builder().method("POST").uri(format!("/v2/{op}")).header("content-type", "application/json");
    if let Some(token) = token {
        builder = builder.header("x-bunker-token", token);
    }
    if let Some(forwarded) = forwarded {
        builder = builder.header("x-forwarded-for", forwarded);
    }
    let mut request = builder.body(Body::from(body.to_string())).expect("request");
    let peer: SocketAddr = format!("{peer}:40000").parse().expect("peer");
    request.extensions_mut().insert(ConnectInfo(peer));
    v.send(request).await
}

fn tight(_: &std::path::Path) -> Settings {
    Settings {
        rate: RateSettings {
            auth_failures_per_minute: 3,
            public_per_minute: 5,
            trusted_proxies: vec!["127.0.0.1/32".parse().expect("net")],
        },
        ..Default::default()
    }
}

const TOO_MANY: &str = "Too many requests, try again later";

both!(failed_authentication_is_limited_per_address, settings = tight, |v| {
    let get = json!({"mode": "login", "identity": "nobody"});
    // The root token, verified from this address before the failures.
    from(v, "192.0.2.1", "UserGet", Some(&v.root), None, get.clone()).await.error(404, "The user record was not found");
    for _ in 0..3 {
        from(v, "192.0.2.1", "UserGet", Some("wrong-token"), None, get.clone()).await.error(403, "Access denied");
    }
    let answer = from(v, "192.0.2.1", "UserGet", Some("wrong-token"), None, get.clone()).await;
    answer.error(429, TOO_MANY);
    // Unknown tokens from that address are refused without a lookup; so is a missing one, and
    // a forwarded address from a client that is not a trusted proxy changes nothing.
    from(v, "192.0.2.1", "UserGet", Some("another-guess"), None, get.clone()).await.error(429, TOO_MANY);
    from(v, "192.0.2.1", "UserGet", None, None, get.clone()).await.error(429, TOO_MANY);
    from(v, "192.0.2.1", "UserGet", Some("guess-3"), Some("198.51.100.7"), get.clone()).await.error(429, TOO_MANY);
    // A token the vault verified recently keeps working from there, even once it is no longer
    // in the principal cache (its digest is remembered for ten minutes).
    tokio::time::sleep(std::time::Duration::from_millis(10_200)).await;
    from(v, "192.0.2.1", "UserGet", Some(&v.root), None, get.clone()).await.error(404, "The user record was not found");
    // Other addresses are not affected.
    from(v, "192.0.2.2", "UserGet", Some("wrong-token"), None, get.clone()).await.error(403, "Access denied");
    from(v, "192.0.2.2", "UserGet", Some(&v.root), None, get.clone()).await.error(404, "The user record was not found");
});

both!(public_operations_are_limited_per_address, settings = tight, |v| {
    let body = json!({"recorduuid": "5e1f2d3c-0000-4000-8000-000000000000"});
    for _ in 0..5 {
        from(v, "192.0.2.10", "SharedRecordGet", None, None, body.clone())
            .await
            .error(404, "The shared record was not found");
    }
    from(v, "192.0.2.10", "SharedRecordGet", None, None, body.clone()).await.error(429, TOO_MANY);
    from(v, "192.0.2.11", "SharedRecordGet", None, None, body.clone())
        .await
        .error(404, "The shared record was not found");
    // Behind the trusted proxy each forwarded client has its own allowance; the proxy's own
    // address is never what is counted.
    for client in ["203.0.113.1", "203.0.113.2"] {
        for _ in 0..5 {
            from(v, "127.0.0.1", "SharedRecordGet", None, Some(client), body.clone())
                .await
                .error(404, "The shared record was not found");
        }
        from(v, "127.0.0.1", "SharedRecordGet", None, Some(client), body.clone()).await.error(429, TOO_MANY);
    }
    // IPv6 clients share their /64.
    for _ in 0..5 {
        from(v, "[2001:db8:1:2::1]", "SharedRecordGet", None, None, body.clone())
            .await
            .error(404, "The shared record was not found");
    }
    from(v, "[2001:db8:1:2::99]", "SharedRecordGet", None, None, body.clone()).await.error(429, TOO_MANY);
});

/// Through the real server, the connection's peer is the address counted.
#[test]
fn the_served_vault_counts_the_peer_address() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut demo = crate::process::start(
        dir.path(),
        "rates",
        &["demo"],
        &[("BUNKER_AUTH_FAILURES_PER_MINUTE", "2"), ("BUNKER_PUBLIC_REQUESTS_PER_MINUTE", "3")],
    );
    assert!(demo.ready(), "{:?}", demo.output());
    let get = json!({"mode": "login", "identity": "nobody"});
    assert_eq!(demo.call("UserGet", "DEMO", get.clone()).0, 404);
    assert_eq!(demo.call("UserGet", "wrong", get.clone()).0, 403);
    assert_eq!(demo.call("UserGet", "wrong", get.clone()).0, 403);
    let (status, body) = demo.call("UserGet", "wrong", get.clone());
    assert_eq!((status, &body["message"]), (429, &json!(TOO_MANY)));
    // The demo token, verified before, still works from the same address.
    assert_eq!(demo.call("UserGet", "DEMO", get).0, 404);
    let record = json!({"recorduuid": "5e1f2d3c-0000-4000-8000-000000000000"});
    let statuses: Vec<u16> = (0..4).map(|_| demo.call("SharedRecordGet", "", record.clone()).0).collect();
    assert_eq!(statuses, [404, 404, 404, 429]);
    demo.stop();
}
