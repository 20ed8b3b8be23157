//! Tenants: the six operations, tenant admin tokens, tenant selection, deletion by
//! crypto-shredding and the change feed that keeps another replica in step.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::both;
use crate::common::TestVault;

/// Creates a tenant as root; returns (tenantid, xtoken).
async fn create(v: &TestVault, name: &str) -> (i64, String) {
    let body = v.call("TenantCreate", json!({"tenantname": name, "tenantorg": format!("Org of {name}")})).await.ok();
    let id = body["tenantid"].as_i64().expect("tenantid is an integer");
    let xtoken = body["xtoken"].as_str().expect("xtoken").to_owned();
    (id, xtoken)
}

async fn user_in(v: &TestVault, token: &str, tenant: Option<&str>, email: &str) -> String {
    let body =
        v.call_as("UserCreate", Some(token), tenant, json!({"profile": {"email": email, "name": "Ann"}})).await.ok();
    body["token"].as_str().expect("token").to_owned()
}

both!(create_get_update_list, |v| {
    let created = v
        .call("TenantCreate", json!({"tenantname": "acme-corp", "tenantorg": "Acme", "email": "admin@acme.test"}))
        .await
        .ok();
    let id = created["tenantid"].as_i64().expect("tenantid");
    assert!(id > 1, "the main tenant is 1: {created}");
    assert_eq!(created["xtoken"].as_str().map(str::len), Some(36), "{created}");

    // TenantGet takes the id as an integer or a numeric string (JAVA), or the name.
    for body in [json!({"tenantid": id}), json!({"tenantid": id.to_string()}), json!({"tenantname": "acme-corp"})] {
        let got = v.call("TenantGet", body).await.ok();
        assert_eq!(got["tenantname"], "acme-corp");
        assert_eq!(got["tenantorg"], "Acme");
        assert_eq!(got["email"], "admin@acme.test");
        assert_eq!(got["tenantid"], id);
    }

    v.call("TenantUpdate", json!({"tenantid": id, "tenantorg": "Acme Ltd", "email": "ops@acme.test"})).await.ok();
    let got = v.call("TenantGet", json!({"tenantid": id})).await.ok();
    assert_eq!((got["tenantorg"].as_str(), got["email"].as_str()), (Some("Acme Ltd"), Some("ops@acme.test")));

    create(v, "beta").await;
    let listed = v.call("TenantListTenants", json!({"offset": 0, "limit": 10})).await.ok();
    assert_eq!(listed["total"], 3, "{listed}");
    let names: Vec<&str> =
        listed["rows"].as_array().expect("rows").iter().filter_map(|r| r["tenantname"].as_str()).collect();
    assert_eq!(names, ["main", "acme-corp", "beta"]);
    assert_eq!(listed["rows"][1], json!({"tenantid": id, "tenantname": "acme-corp", "tenantorg": "Acme Ltd"}));
    let second = v.call("TenantListTenants", json!({"offset": "1", "limit": "1"})).await.ok();
    assert_eq!(second["rows"].as_array().map(Vec::len), Some(1));
    assert_eq!(second["rows"][0]["tenantname"], "acme-corp");
});

both!(names_are_checked_and_unique, |v| {
    create(v, "acme").await;
    v.call("TenantCreate", json!({"tenantname": "acme", "tenantorg": "Again"}))
        .await
        .error(409, "Duplicate tenant name");
    for bad in ["Acme", "my company", "a", "-acme", "ac_me"] {
        let answer = v.call("TenantCreate", json!({"tenantname": bad})).await;
        assert_eq!(answer.status.as_u16(), 400, "{bad}: {}", answer.body);
    }
    v.call("TenantCreate", json!({"tenantorg": "No name"}))
        .await
        .error(400, "Missing API request parameters: tenantname");
    let (beta, _) = create(v, "beta").await;
    v.call("TenantUpdate", json!({"tenantid": beta, "tenantname": "acme"})).await.error(409, "Duplicate tenant name");
    v.call("TenantGet", json!({"tenantid": 999})).await.error(404, "The tenant record was not found");
    v.call("TenantGet", json!({"tenantname": "nobody"})).await.error(404, "The tenant record was not found");
});

both!(tenant_admin_token_works_in_its_own_tenant_only, |v| {
    let (a_id, a_token) = create(v, "tenant-a").await;
    let (b_id, b_token) = create(v, "tenant-b").await;

    // With its tenant's name in the header, or with none (the token's own tenant).
    let token = user_in(v, &a_token, Some("tenant-a"), "ann@example.com").await;
    let got = v.call_as("UserGet", Some(&a_token), None, json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(got["profile"]["email"], "ann@example.com");
    // The same email in another tenant is another user; nothing links them.
    let other = user_in(v, &b_token, Some("tenant-b"), "ann@example.com").await;
    assert_ne!(token, other);
    v.call_as("UserGet", Some(&b_token), None, json!({"mode": "token", "identity": token}))
        .await
        .error(404, "The user record was not found");
    // Nor is it the main tenant's.
    v.call("UserGet", json!({"mode": "email", "identity": "ann@example.com"}))
        .await
        .error(404, "The user record was not found");

    // Another tenant's name in the header: 403, the same whether or not that tenant exists.
    for header in ["tenant-b", "main", "no-such-tenant"] {
        v.call_as("UserGet", Some(&a_token), Some(header), json!({"mode": "token", "identity": token}))
            .await
            .error(403, "Access denied");
    }
    // The main tenant's root acts in any tenant through the header.
    let got =
        v.call_as("UserGet", Some(&v.root), Some("tenant-a"), json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(got["profile"]["email"], "ann@example.com");
    v.call_as("UserGet", Some(&v.root), Some("no-such-tenant"), json!({}))
        .await
        .error(404, "The tenant record was not found");

    // Its own tenant: TenantGet and TenantUpdate with the tenant implied.
    let own = v.call_as("TenantGet", Some(&a_token), None, json!({})).await.ok();
    assert_eq!((own["tenantid"].as_i64(), own["tenantname"].as_str()), (Some(a_id), Some("tenant-a")));
    v.call_as("TenantGet", Some(&a_token), None, json!({"tenantid": b_id})).await.error(403, "Access denied");
    v.call_as("TenantGet", Some(&a_token), None, json!({"tenantid": 999})).await.error(403, "Access denied");
    v.call_as("TenantGet", Some(&a_token), None, json!({"tenantname": "tenant-b"})).await.error(403, "Access denied");
    v.call_as("TenantUpdate", Some(&a_token), None, json!({"tenantid": b_id, "tenantorg": "x"}))
        .await
        .error(403, "Access denied");

    // The main-tenant-only operations are 403 for a tenant admin.
    for (op, body) in [
        ("TenantCreate", json!({"tenantname": "gamma"})),
        ("TenantListTenants", json!({})),
        ("TenantDelete", json!({"tenantid": b_id})),
        ("TenantDelete", json!({"tenantid": a_id})),
        ("SystemGenerateWrappingKey", json!({"key1": "00", "key2": "00", "key3": "00"})),
        ("SystemRotateRecoveryKey", json!({"key1": "00", "key2": "00", "key3": "00"})),
    ] {
        v.call_as(op, Some(&a_token), None, body).await.error(403, "Access denied");
    }
    // No token at all: every tenant operation is refused.
    for op in ["TenantCreate", "TenantGet", "TenantUpdate", "TenantDelete", "TenantListTenants"] {
        v.call_as(op, None, None, json!({"tenantid": a_id})).await.error(403, "Access denied");
    }
    // B is unchanged by all of it.
    let b = v.call("TenantGet", json!({"tenantid": b_id})).await.ok();
    assert_eq!(b["tenantorg"], "Org of tenant-b");
});

both!(rename_with_the_tenants_own_token, |v| {
    let (id, token) = create(v, "old-name").await;
    // As the vendor's docs do it: only the new name, the tenant implied by the token.
    v.call_as("TenantUpdate", Some(&token), Some("old-name"), json!({"tenantname": "new-name"})).await.ok();
    let got = v.call("TenantGet", json!({"tenantid": id})).await.ok();
    assert_eq!(got["tenantname"], "new-name");
    // The old name is no longer a tenant; the new one is.
    v.call_as("TenantGet", Some(&token), Some("old-name"), json!({})).await.error(403, "Access denied");
    v.call_as("TenantGet", Some(&token), Some("new-name"), json!({})).await.ok();
    v.call_as("UserGet", Some(&v.root), Some("old-name"), json!({}))
        .await
        .error(404, "The tenant record was not found");
    // The freed name can be taken by a new tenant.
    create(v, "old-name").await;
});

both!(delete_shreds_the_tenant, |v| {
    let (id, token) = create(v, "doomed").await;
    let user = user_in(v, &token, None, "gone@example.com").await;
    v.call_as(
        "AppdataCreate",
        Some(&token),
        None,
        json!({"mode": "token", "identity": user, "appname": "shop", "appdata": {"a": 1}}),
    )
    .await
    .ok();
    v.call_as("SessionUpsert", Some(&token), None, json!({"mode": "token", "identity": user, "sessionuuid": "7f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", "sessiondata": {"s": 1}}))
        .await
        .ok();
    v.call_as("TokenCreate", Some(&token), None, json!({"tokentype": "creditcard", "record": "4111111111111111"}))
        .await
        .ok();
    let keep = v.create_user(json!({"email": "stay@example.com"})).await;

    // Only the main tenant's admin deletes, and never the main tenant.
    v.call("TenantDelete", json!({"tenantid": 1})).await.error(403, "The main tenant cannot be deleted");
    v.call("TenantDelete", json!({})).await.error(400, "Missing API request parameters: tenantid");
    v.call("TenantDelete", json!({"tenantid": id})).await.ok();
    v.call("TenantDelete", json!({"tenantid": id})).await.error(404, "The tenant record was not found");

    // Its token stops working at once; its name is free; nothing of it is listed.
    v.call_as("UserGet", Some(&token), None, json!({"mode": "token", "identity": user}))
        .await
        .error(403, "Access denied");
    v.call("TenantGet", json!({"tenantid": id})).await.error(404, "The tenant record was not found");
    v.call_as("UserGet", Some(&v.root), Some("doomed"), json!({})).await.error(404, "The tenant record was not found");
    let listed = v.call("TenantListTenants", json!({})).await.ok();
    assert_eq!(listed["total"], 1, "{listed}");

    // Its keys first, then every row: no table holds anything of it.
    for table in crate::tenants::tenant_tables(v).await {
        let left = crate::tenants::rows_of(v, &table, id).await;
        assert_eq!(left, 0, "{table} still holds {left} rows of the deleted tenant");
    }
    // The main tenant is untouched, and its audit trail records the deletion.
    let got = v.call("UserGet", json!({"mode": "token", "identity": keep})).await.ok();
    assert_eq!(got["profile"]["email"], "stay@example.com");
    let (again, _) = create(v, "doomed").await;
    assert!(again > id, "tenant ids are never given out twice: {again} after {id}");
});

both!(admin_email_is_sealed, |v| {
    v.call("TenantCreate", json!({"tenantname": "sealed", "email": "secret-admin@sealed.test"})).await.ok();
    let dump = v.dump().await;
    let needle = b"secret-admin@sealed.test";
    assert!(!dump.windows(needle.len()).any(|w| w == needle), "the tenant email is stored in clear");
});

both!(ui_conf_is_public_and_says_the_same_for_unknown_tenants, |v| {
    create(v, "shown").await;
    let known = v.call_as("TenantGetUIConf", None, Some("shown"), json!({})).await.ok();
    assert_eq!(known["ui"], json!({"tenantname": "shown", "tenantorg": "Org of shown"}));
    let unknown = v.call_as("TenantGetUIConf", Some("not-a-token"), Some("hidden"), json!({})).await.ok();
    let keys = |b: &Value| b["ui"].as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
    assert_eq!(keys(&unknown), keys(&known));
    assert_eq!(unknown["ui"]["tenantorg"], "");
    let main = v.request("/v2/TenantGetUIConf", None, None, None).await.ok();
    assert_eq!(main["ui"]["tenantname"], "main");
});

both!(another_replica_honours_deletion_and_rename, |v| {
    let (id, token) = create(v, "shared-db").await;
    let replica = v.reopen(&v.wrapping).await.expect("second replica");
    // The replica verifies and caches the token and the tenant's name and keys.
    let user = user_in(&replica, &token, Some("shared-db"), "r@example.com").await;
    v.call("TenantUpdate", json!({"tenantid": id, "tenantname": "renamed"})).await.ok();
    let mut applied = HashMap::new();
    let seen = bunker::tenants::changes::apply_new(&replica.state, &mut applied).await.expect("feed");
    assert_eq!(seen, 1);
    replica.call_as("UserGet", Some(&token), Some("shared-db"), json!({})).await.error(403, "Access denied");
    replica.call_as("UserGet", Some(&token), Some("renamed"), json!({"mode": "token", "identity": user})).await.ok();

    v.call("TenantDelete", json!({"tenantid": id})).await.ok();
    assert_eq!(bunker::tenants::changes::apply_new(&replica.state, &mut applied).await.expect("feed"), 1);
    replica
        .call_as("UserGet", Some(&token), None, json!({"mode": "token", "identity": user}))
        .await
        .error(403, "Access denied");
    // Each change is applied once.
    assert_eq!(bunker::tenants::changes::apply_new(&replica.state, &mut applied).await.expect("feed"), 0);
    replica.close().await;
});

/// The tables that have a `tenant_id` column (the catalogue of the backend).
pub async fn tenant_tables(v: &TestVault) -> Vec<String> {
    use bunker::store::Db;
    use sqlx::Row;
    match v.db() {
        Db::Postgres(pool) => sqlx::query(
            "SELECT table_name FROM information_schema.columns \
             WHERE column_name = 'tenant_id' AND table_schema = current_schema() ORDER BY table_name",
        )
        .fetch_all(pool)
        .await
        .expect("catalogue")
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect(),
        Db::Sqlite(pool) => sqlx::query(
            "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND p.name = 'tenant_id' ORDER BY m.name",
        )
        .fetch_all(pool)
        .await
        .expect("catalogue")
        .iter()
        .map(|r| r.get::<String, _>(0))
        .collect(),
    }
}

/// How many rows of `table` belong to tenant `id` (the feed keeps its own entries for a while).
pub async fn rows_of(v: &TestVault, table: &str, id: i64) -> i64 {
    use bunker::store::Db;
    use sqlx::Row;
    if table == "vault_changes" {
        return 0;
    }
    let sql = format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = $1");
    match v.db() {
        Db::Postgres(pool) => sqlx::query(&sql).bind(id).fetch_one(pool).await.expect("count").get(0),
        Db::Sqlite(pool) => sqlx::query(&sql).bind(id).fetch_one(pool).await.expect("count").get(0),
    }
}

both!(a_replica_with_a_rotated_wrapping_key_wraps_nothing, |v| {
    let stale = v.reopen(&v.wrapping).await.expect("second replica");
    let shares = json!({"key1": v.shares[0], "key2": v.shares[1], "key3": v.shares[2]});
    let rotated = v.call("SystemGenerateWrappingKey", shares.clone()).await.ok();
    let new_key = bunker::crypto::WrappingKey::from_hex(rotated["wrappingkey"].as_str().expect("key")).expect("hex");
    // A start with the new key completes the rotation; the replica still holding the old key
    // then stores no master key the others could not open.
    let renewed = v.reopen(&new_key).await.expect("opens with the new key");
    let refused = "The wrapping key has changed: retry on a vault started with the new key";
    stale.call("TenantCreate", json!({"tenantname": "late"})).await.error(409, refused);
    // Nor can it rotate again from the old key.
    stale.call("SystemGenerateWrappingKey", shares).await.error(409, refused);
    // The replica started with the new key creates tenants, and another start reads them.
    let (_, token) = create(&renewed, "after-rotation").await;
    let user = user_in(&renewed, &token, None, "rot@example.com").await;
    let reopened = v.reopen(&new_key).await.expect("opens with the new key");
    let got = reopened.call_as("UserGet", Some(&token), None, json!({"mode": "token", "identity": user})).await.ok();
    assert_eq!(got["profile"]["email"], "rot@example.com");
    stale.close().await;
    renewed.close().await;
    reopened.close().await;
});

/// PostgreSQL's row-level security binds the vault's own serving connection: inside a tenant's
/// transaction, a query with no tenant in it at all sees that tenant's rows only, and writes none
/// of another's; with no tenant set it sees nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_level_security_binds_the_serving_connection() {
    use bunker::store::Db;
    use sqlx::Row;
    let v = TestVault::new(crate::common::Backend::Postgres).await;
    let (b, b_token) = create(&v, "rls-b").await;
    for n in 0..3 {
        user_in(&v, &b_token, None, &format!("b{n}@example.com")).await;
    }
    v.create_user(json!({"email": "main@example.com"})).await;
    let Db::Postgres(serving) = &v.state.db else { unreachable!("a PostgreSQL vault") };

    let role = sqlx::query("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
        .fetch_one(serving)
        .await
        .expect("role");
    assert!(!role.get::<bool, _>(0), "the vault serves with a role row-level security binds");
    assert_eq!(v.state.db.bypasses_row_security().await.expect("role"), None);

    let mut tx = serving.begin().await.expect("begin");
    sqlx::query("SELECT set_config('bunker.tenant', $1, true)")
        .bind(b.to_string())
        .execute(&mut *tx)
        .await
        .expect("set");
    // Deliberately unscoped: no tenant in the statement.
    let tenants: Vec<i64> = sqlx::query("SELECT tenant_id FROM users")
        .fetch_all(&mut *tx)
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(tenants, vec![b; 3], "only tenant {b}'s users are visible");
    let events: i64 = sqlx::query("SELECT COUNT(*) FROM audit_events WHERE tenant_id = 1")
        .fetch_one(&mut *tx)
        .await
        .expect("count")
        .get(0);
    assert_eq!(events, 0, "the main tenant's audit trail is invisible");
    // Writing another tenant's row is refused by the policy.
    let foreign = sqlx::query("UPDATE users SET version = version + 1 WHERE tenant_id = 1")
        .execute(&mut *tx)
        .await
        .expect("update");
    assert_eq!(foreign.rows_affected(), 0);
    let insert = sqlx::query("INSERT INTO legal_bases (tenant_id, brief, status, module, fulldesc, shortdesc, basistype, requiredmsg, requiredflag, created_at) VALUES (1, 'x', 'active', '', '', '', 'consent', '', false, 0)")
        .execute(&mut *tx)
        .await;
    assert!(insert.is_err(), "a row for another tenant is refused");
    tx.rollback().await.ok();

    // A connection on which no tenant is set sees no tenant data at all.
    let mut conn = serving.acquire().await.expect("acquire");
    sqlx::query("SELECT set_config('bunker.tenant', '', false)").execute(&mut *conn).await.expect("reset");
    let visible: i64 = sqlx::query("SELECT COUNT(*) FROM users").fetch_one(&mut *conn).await.expect("count").get(0);
    assert_eq!(visible, 0);
    drop(conn);
    // The administrator (a superuser) sees everyone: four users.
    assert_eq!(v.scalar("SELECT COUNT(*) FROM users").await, 4);
    v.cleanup().await;
}

both!(the_main_tenant_keeps_its_name, |v| {
    v.call("TenantUpdate", json!({"tenantname": "renamed-main"})).await.error(403, "The main tenant cannot be renamed");
    v.call("TenantUpdate", json!({"tenantid": 1, "tenantname": "x1"}))
        .await
        .error(403, "The main tenant cannot be renamed");
    v.call("TenantUpdate", json!({"tenantid": 1, "tenantorg": "The vault's own"})).await.ok();
    let main = v.call("TenantGet", json!({"tenantid": 1})).await.ok();
    assert_eq!((main["tenantname"].as_str(), main["tenantorg"].as_str()), (Some("main"), Some("The vault's own")));
    // An empty or invalid tenant header is an unknown tenant for the public UI settings too.
    for header in ["", "béta"] {
        let request = axum::http::Request::builder()
            .method("POST")
            .uri("/v2/TenantGetUIConf")
            .header("x-bunker-tenant", axum::http::HeaderValue::from_bytes(header.as_bytes()).expect("header"))
            .body(axum::body::Body::empty())
            .expect("request");
        let answer = v.send(request).await.ok();
        assert_eq!(answer["ui"], json!({"tenantname": "", "tenantorg": ""}), "{header:?}");
    }
});

/// Every primary key and unique constraint of a table of tenant data includes `tenant_id`, so the
/// schema can be distributed by tenant (docs/scaling.md); the vault's own tables are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_of_tenant_data_includes_the_tenant() {
    use bunker::store::Db;
    use sqlx::Row;
    let v = TestVault::new(crate::common::Backend::Postgres).await;
    let Db::Postgres(pool) = v.db() else { unreachable!("a PostgreSQL vault") };
    // The vault's own tables: looked up before a tenant is known, or about tenants themselves.
    const VAULT_TABLES: [&str; 7] =
        ["vault_meta", "tenants", "tenant_keys", "access_tokens", "vault_changes", "licence", "_sqlx_migrations"];
    let rows = sqlx::query(
        "SELECT c.conrelid::regclass::text, c.conname, \
                bool_or(a.attname = 'tenant_id') \
         FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace \
         JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey) \
         WHERE c.contype IN ('p', 'u') AND n.nspname = current_schema() \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .expect("catalogue");
    let missing: Vec<String> = rows
        .iter()
        .filter(|r| !VAULT_TABLES.contains(&r.get::<String, _>(0).as_str()) && !r.get::<bool, _>(2))
        .map(|r| format!("{}.{}", r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect();
    assert!(rows.len() > 10, "the catalogue query found the constraints: {}", rows.len());
    assert!(missing.is_empty(), "keys of tenant data without tenant_id: {missing:?}");
    v.cleanup().await;
}

both!(empty_strings_in_integer_parameters_are_absent, |v| {
    let listed = v.call("TenantListTenants", json!({"offset": "", "limit": ""})).await.ok();
    assert_eq!(listed["total"], 1);
    let own = v.call("TenantGet", json!({"tenantid": ""})).await.ok();
    assert_eq!(own["tenantname"], "main");
    let token = v.create_user(json!({"login": "empty-int"})).await;
    let got = v.call("UserGet", json!({"mode": "token", "identity": token, "version": ""})).await.ok();
    assert_eq!(got["profile"]["login"], "empty-int");
    // Still refused: text that is not a number.
    v.call("TenantListTenants", json!({"offset": "ten"}))
        .await
        .error(400, "The offset parameter has an incorrect format");
});
