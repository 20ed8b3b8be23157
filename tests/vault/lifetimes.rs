//! Record lifetimes: app data expiry and erasure, sliding lifetimes extended on access.

use bunker::tenants::TenantId;
use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

async fn app_get(v: &TestVault, app: &str) -> crate::common::Answer {
    v.call("AppdataGet", json!({"mode": "login", "identity": "ann", "appname": app})).await
}

async fn apps(v: &TestVault) -> (Value, Value) {
    let mine = v.call("AppdataListUserAppNames", json!({"mode": "login", "identity": "ann"})).await.ok();
    let all = v.call("AppdataListAppNames", json!({})).await.ok();
    (mine["apps"].clone(), all["apps"].clone())
}

both!(app_data_with_a_finaltime_expires_disappears_and_is_swept, |v| {
    v.create_user(json!({"login": "ann"})).await;
    let now = v.clock().now();
    for (app, data, finaltime) in [
        ("shop", json!({"size": "XL-quokka"}), Some("1h")),
        ("cart", json!({"item": "old-cart-heron"}), Some("1h")),
        ("blog", json!({"theme": "dark"}), None),
    ] {
        let mut body = json!({"mode": "login", "identity": "ann", "appname": app, "appdata": data});
        if let Some(finaltime) = finaltime {
            body["finaltime"] = json!(finaltime);
        }
        v.call("AppdataCreate", body).await.ok();
    }
    // A version of the expiring record, to see it erased with it.
    v.call("AppdataUpdate", json!({"mode": "login", "identity": "ann", "appname": "shop", "appdata": {"v": 2}}))
        .await
        .ok();
    let got = app_get(v, "shop").await.ok();
    let finaltime = got["finaltime"].as_i64().expect("finaltime");
    assert!((now + HOUR..=now + HOUR + 5).contains(&finaltime), "{got}");
    assert_eq!((got["slidingtime"].clone(), got["expirationtime"].clone()), (json!(0), json!(finaltime)));
    let got = app_get(v, "blog").await.ok();
    assert_eq!((got["finaltime"].clone(), got["expirationtime"].clone()), (json!(0), json!(0)), "{got}");
    assert_eq!(apps(v).await, (json!(["blog", "cart", "shop"]), json!(["blog", "cart", "shop"])));

    v.clock().advance(HOUR + 10);
    let who = json!({"mode": "login", "identity": "ann", "appname": "shop"});
    app_get(v, "shop").await.error(404, "The app record was not found");
    v.call("AppdataListVersions", who.clone()).await.error(404, "The app record was not found");
    let mut update = who.clone();
    update["appdata"] = json!({"v": 3});
    v.call("AppdataUpdate", update).await.error(404, "The app record was not found");
    v.call("AppdataDelete", who).await.error(404, "The app record was not found");
    assert_eq!(apps(v).await, (json!(["blog"]), json!(["blog"])));
    // An expired record is no obstacle to a new one under the same name.
    v.call("AppdataCreate", json!({"mode": "login", "identity": "ann", "appname": "cart", "appdata": {"item": "new"}}))
        .await
        .ok();
    assert_eq!(app_get(v, "cart").await.ok()["appdata"], json!({"item": "new"}));
    // Hidden until the sweeper erases it, with its versions.
    assert_eq!(v.scalar("SELECT COUNT(*) FROM userapps").await, 3);
    let erased = bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    let main = erased.get(&TenantId::MAIN).copied().unwrap_or_default();
    assert_eq!((main.users, main.app_records), (0, 1), "{erased:?}");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM userapps").await, 2);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM userapp_versions").await, 0);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events WHERE operation = 'RetentionSweep'").await, 1);
    let dump = v.dump().await;
    for gone in ["XL-quokka", "old-cart-heron"] {
        assert!(!contains(&dump, gone), "{gone} remains at rest");
    }
    assert_eq!(apps(v).await, (json!(["blog", "cart"]), json!(["blog", "cart"])));
});

both!(sliding_users_live_on_while_accessed_and_expire_when_not, |v| {
    let kept = v.call("UserCreate", json!({"profile": {"login": "kept"}, "slidingtime": "1h"})).await.ok();
    let kept = kept["token"].as_str().expect("token").to_owned();
    v.call("UserCreate", json!({"profile": {"login": "left"}, "slidingtime": "1h"})).await.ok();
    // Any operation that reads the user is an access, not only UserGet.
    let reads = [
        ("UserGet", json!({"mode": "token", "identity": kept})),
        ("AppdataListUserAppNames", json!({"mode": "login", "identity": "kept"})),
        ("UserListVersions", json!({"mode": "login", "identity": "kept"})),
    ];
    for (op, body) in reads {
        v.clock().advance(1_500);
        v.call(op, body).await.ok();
    }
    // 75 minutes on: past the original expiry of both.
    let now = v.clock().now();
    let got = v.call("UserGet", json!({"mode": "login", "identity": "kept"})).await.ok();
    let expiration = got["expirationtime"].as_i64().expect("expirationtime");
    assert!((now + HOUR - 60..=now + HOUR + 5).contains(&expiration), "{got} at {now}");
    v.call("UserGet", json!({"mode": "login", "identity": "left"})).await.error(404, "The user record was not found");
    v.clock().advance(HOUR + 1);
    v.call("UserGet", json!({"mode": "login", "identity": "kept"})).await.error(404, "The user record was not found");
    let erased = bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    assert_eq!(erased.get(&TenantId::MAIN).map(|e| e.users), Some(2), "{erased:?}");
});

both!(reads_write_an_extension_only_when_it_moves_the_expiry_meaningfully, |v| {
    v.call("UserCreate", json!({"profile": {"login": "month"}, "slidingtime": "30d"})).await.ok();
    let stored = v.scalar("SELECT expires_at FROM users").await;
    // The step of a 30-day period is 1% of it (7.2 hours): a read within it writes nothing.
    v.clock().advance(HOUR);
    let got = v.call("UserGet", json!({"mode": "login", "identity": "month"})).await.ok();
    assert_eq!(got["expirationtime"], stored);
    assert_eq!(v.scalar("SELECT expires_at FROM users").await, stored);
    v.clock().advance(7 * HOUR);
    let now = v.clock().now();
    let got = v.call("UserGet", json!({"mode": "login", "identity": "month"})).await.ok();
    let extended = v.scalar("SELECT expires_at FROM users").await;
    assert!((now + 30 * DAY..=now + 30 * DAY + 5).contains(&extended), "{extended} at {now}");
    assert_eq!(got["expirationtime"], extended);
    // The extension has no audit event of its own: one event per read.
    let events = v.call("AuditListUserEvents", json!({"mode": "login", "identity": "month"})).await.ok();
    let titles: Vec<&Value> = events["rows"].as_array().expect("rows").iter().map(|e| &e["title"]).collect();
    assert_eq!(titles.iter().filter(|t| **t == "UserGet").count(), 2, "{titles:?}");
});

both!(the_finaltime_caps_the_sliding_extension, |v| {
    let body = v
        .call("UserCreate", json!({"profile": {"login": "capped"}, "slidingtime": "1h", "finaltime": "2h"}))
        .await
        .ok();
    let token = body["token"].as_str().expect("token").to_owned();
    let finaltime = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok()["finaltime"]
        .as_i64()
        .expect("finaltime");
    for _ in 0..4 {
        v.clock().advance(1_500);
        let got = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
        assert!(got["expirationtime"].as_i64().expect("expirationtime") <= finaltime, "{got}");
    }
    // 100 minutes on, the expiry has reached the fixed end and stays there.
    let got = v.call("UserGet", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(got["expirationtime"], finaltime);
    v.clock().advance(finaltime - v.clock().now() + 1);
    v.call("UserGet", json!({"mode": "token", "identity": token})).await.error(404, "The user record was not found");
});

both!(sliding_app_data_lives_on_while_read_or_updated, |v| {
    v.create_user(json!({"login": "ann"})).await;
    for app in ["shop", "idle"] {
        v.call(
            "AppdataCreate",
            json!({"mode": "login", "identity": "ann", "appname": app, "appdata": {"n": 1}, "slidingtime": "1h"}),
        )
        .await
        .ok();
    }
    let got = app_get(v, "shop").await.ok();
    assert_eq!(got["slidingtime"], HOUR);
    assert_eq!(got["finaltime"], 0);
    v.clock().advance(1_500);
    app_get(v, "shop").await.ok();
    v.clock().advance(1_500);
    // An update is an access too.
    v.call("AppdataUpdate", json!({"mode": "login", "identity": "ann", "appname": "shop", "appdata": {"n": 2}}))
        .await
        .ok();
    v.clock().advance(1_500);
    let now = v.clock().now();
    let got = app_get(v, "shop").await.ok();
    assert_eq!(got["appdata"], json!({"n": 2}));
    let expiration = got["expirationtime"].as_i64().expect("expirationtime");
    assert!((now + HOUR - 60..=now + HOUR + 5).contains(&expiration), "{got} at {now}");
    app_get(v, "idle").await.error(404, "The app record was not found");
    assert_eq!(apps(v).await, (json!(["shop"]), json!(["shop"])));
    v.clock().advance(HOUR + 1);
    app_get(v, "shop").await.error(404, "The app record was not found");
    // The user itself has no lifetime and stays.
    v.call("UserGet", json!({"mode": "login", "identity": "ann"})).await.ok();
});

both!(app_data_lifetimes_are_validated_and_capped, |v| {
    v.create_user(json!({"login": "ann"})).await;
    let create = |app: &str, extra: Value| {
        let mut body = json!({"mode": "login", "identity": "ann", "appname": app, "appdata": {"a": 1}});
        for (key, value) in extra.as_object().expect("object") {
            body[key] = value.clone();
        }
        v.call("AppdataCreate", body)
    };
    create("shop", json!({"slidingtime": "soon"}))
        .await
        .error(400, "The slidingtime parameter has an incorrect format");
    create("shop", json!({"slidingtime": "2030-01-01"}))
        .await
        .error(400, "The slidingtime parameter has an incorrect format");
    create("shop", json!({"finaltime": [1]})).await.error(400, "The finaltime parameter has an incorrect format");
    create("shop", json!({"finaltime": "2001-01-01"})).await.error(400, "The finaltime parameter is in the past");
    app_get(v, "shop").await.error(404, "The app record was not found");
    // Refused without a valid token, lifetime or not.
    let body = json!({"mode": "login", "identity": "ann", "appname": "shop", "appdata": {}, "finaltime": "1d"});
    v.call_as("AppdataCreate", None, None, body).await.error(403, "Access denied");
    // Far beyond the maximum user retention (10 years by default): capped, not refused.
    let now = v.clock().now();
    create("shop", json!({"finaltime": "200y", "slidingtime": "100y"})).await.ok();
    let got = app_get(v, "shop").await.ok();
    assert_eq!(got["slidingtime"], 10 * 365 * DAY);
    let finaltime = got["finaltime"].as_i64().expect("finaltime");
    assert!((now + 10 * 365 * DAY..=now + 10 * 365 * DAY + 5).contains(&finaltime), "{got}");
    assert_eq!(got["expirationtime"], finaltime);
});
