//! What the vault caches between calls (verified principals, tenant names, unlocked keys) and
//! that what is forgotten is asked of the database again.

use bunker::crypto::secrets::{random_uuid_string, token_digest};
use bunker::tenants::TenantId;
use serde_json::json;

use crate::both;
use crate::bulk::{Bind, execute, second_tenant};

both!(an_invalidated_principal_is_looked_up_again, |v| {
    let root = token_digest(&v.root);
    v.create_user(json!({"login": "a"})).await;
    assert!(v.state.caches.principal(&root).is_some(), "a verified token is cached");
    let get = json!({"mode": "login", "identity": "a"});
    // The token expires in the database: until the principal is invalidated (or its entry
    // expires, after ten seconds) the cached one is served.
    execute(v, "UPDATE access_tokens SET expires_at = 1", &[]).await;
    v.call("UserGet", get.clone()).await.ok();
    v.state.caches.invalidate_principal(&root);
    assert!(v.state.caches.principal(&root).is_none());
    v.call("UserGet", get).await.error(403, "Access denied");
});

both!(a_forgotten_tenant_is_resolved_and_unlocked_again, |v| {
    second_tenant(v).await;
    let secret = random_uuid_string();
    let acme = token_digest(&secret);
    execute(
        v,
        "INSERT INTO access_tokens (id, tenant_id, digest, kind, created_at) VALUES ('acme-root', 2, $1, 'root', 0)",
        &[Bind::Bytes(acme.to_vec())],
    )
    .await;
    let get = json!({"mode": "login", "identity": "a"});
    v.call_as("UserCreate", Some(&secret), None, json!({"profile": {"login": "a"}})).await.ok();
    v.call_as("UserGet", Some(&v.root), Some("acme"), get.clone()).await.ok();
    let caches = &v.state.caches;
    assert!(caches.principal(&acme).is_some());
    assert_eq!(caches.tenant_id("acme"), Some(TenantId::new(2)));
    assert!(v.state.keys.cached(TenantId::new(2)).is_some());

    // Renamed in the database: the cached name still resolves until the tenant is forgotten.
    execute(v, "UPDATE tenants SET name = 'acme2' WHERE id = 2", &[]).await;
    v.call_as("UserGet", Some(&v.root), Some("acme"), get.clone()).await.ok();
    v.state.forget_tenant(TenantId::new(2));
    assert!(caches.principal(&acme).is_none());
    assert!(caches.tenant_id("acme").is_none());
    assert!(v.state.keys.cached(TenantId::new(2)).is_none());
    assert!(caches.principal(&token_digest(&v.root)).is_some(), "the main tenant's principal stays");
    assert!(v.state.keys.cached(TenantId::new(1)).is_some(), "the main tenant's keys stay");

    v.call_as("UserGet", Some(&v.root), Some("acme"), get.clone()).await.error(404, "The tenant record was not found");
    let got = v.call_as("UserGet", Some(&v.root), Some("acme2"), get.clone()).await.ok();
    assert_eq!(got["profile"], json!({"login": "a"}));
    v.call_as("UserGet", Some(&secret), None, get).await.ok();
    assert!(caches.principal(&acme).is_some());
    assert_eq!(caches.tenant_id("acme2"), Some(TenantId::new(2)));
    assert!(v.state.keys.cached(TenantId::new(2)).is_some());
});
