//! Connectors (issue 17): a user's rows in the company's own PostgreSQL and MariaDB databases are
//! found, reported and erased through the ten `Connector*` operations and through `UserDelete`,
//! with the outcome in the audit trail.

use std::path::Path;
use std::time::{Duration, Instant};

use bunker::connectors::hosts::HostPolicy;
use bunker::state::Settings;
use serde_json::{Value, json};

use crate::both;
use crate::common::{TestVault, assert_absent};
use crate::external_db::{ANN_EMAIL, ANN_LOGIN, BOB_EMAIL, CUSTOMERS, Engine, ExternalDb, ORDERS};

/// Connectors may reach loopback (listed, as the default refuses it); the worker retries at once.
pub fn settings(_: &Path) -> Settings {
    let mut settings = Settings::default();
    settings.connectors.hosts = HostPolicy::parse("127.0.0.1").expect("hosts");
    settings.connectors.limits.connect = Duration::from_secs(3);
    settings.connectors.worker.backoff = Duration::ZERO;
    settings.connectors.worker.max_attempts = 2;
    settings
}

/// Creates a connector to `db` with `extra` fields; returns its id.
async fn connector(v: &TestVault, db: &ExternalDb, name: &str, extra: Value) -> i64 {
    let mut body = db.fields("");
    body["connectorname"] = json!(name);
    for (key, value) in extra.as_object().expect("object") {
        body[key] = value.clone();
    }
    let created = v.call("ConnectorCreate", body).await.ok();
    created["connectorid"].as_i64().expect("connectorid")
}

/// Ann, in the vault.
async fn ann(v: &TestVault) -> String {
    v.create_user(json!({"email": ANN_EMAIL, "login": ANN_LOGIN, "name": "Ann"})).await
}

fn by_email(id: i64) -> Value {
    json!({"mode": "email", "identity": ANN_EMAIL, "connectorid": id})
}

/// The details of the events of `operation` in the main tenant, newest last.
async fn events_of(v: &TestVault, operation: &str) -> Vec<Value> {
    let uuids = match v.db() {
        bunker::store::Db::Sqlite(pool) => {
            sqlx::query_scalar::<_, String>("SELECT uuid FROM audit_events WHERE operation = $1 ORDER BY id")
                .bind(operation)
                .fetch_all(pool)
                .await
        }
        bunker::store::Db::Postgres(pool) => {
            sqlx::query_scalar::<_, String>("SELECT uuid FROM audit_events WHERE operation = $1 ORDER BY id")
                .bind(operation)
                .fetch_all(pool)
                .await
        }
    }
    .expect("events");
    let mut events = Vec::new();
    for uuid in uuids {
        events.push(v.call("AuditGetEvent", json!({"auditeventuuid": uuid})).await.ok()["details"].clone());
    }
    events
}

both!(supported_connectors_and_their_configuration, settings = settings, |v| {
    let supported = v.call("ConnectorListSupportedConnectors", json!({})).await.ok();
    assert_eq!(supported["connectors"], json!(["postgresql", "mysql"]));

    let db = ExternalDb::create(Engine::MariaDb);
    let mut body = db.fields("a-Secret-pw-4471");
    body["connectorname"] = json!("crm");
    body["connectordesc"] = json!("the CRM");
    body["dbport"] = json!(3306);
    let id = v.call("ConnectorCreate", body.clone()).await.ok()["connectorid"].as_i64().expect("id");
    v.call("ConnectorCreate", body.clone()).await.error(409, "Duplicate connector name");

    let listed = v.call("ConnectorListConnectors", json!({})).await.ok();
    let row = &listed["rows"][0];
    assert_eq!(listed["total"], 1);
    assert_eq!(row["connectorid"], id);
    assert_eq!(row["connectorname"], "crm");
    assert_eq!(row["connectortype"], "mysql");
    assert_eq!(row["connectordesc"], "the CRM");
    assert_eq!(row["dbhost"], "127.0.0.1");
    assert_eq!(row["dbname"], db.name.as_str());
    assert_eq!(row["tablename"], CUSTOMERS);
    assert_eq!(row["status"], "active");
    assert!(!listed.to_string().contains("a-Secret-pw-4471"), "a listing never shows the password");
    assert_absent(&v.dump().await, &["a-Secret-pw-4471"]);

    // The stored password never follows the connector to another server: moving it needs it again.
    for moved in [
        json!({"dbhost": "db.example.com"}),
        json!({"dbport": 3307}),
        json!({"username": "other"}),
        json!({"connectortype": "postgresql"}),
    ] {
        let mut body = moved.clone();
        body["connectorid"] = json!(id);
        v.call("ConnectorUpdate", body)
            .await
            .error(400, "apikey is required when the connector's type, host, port or user name changes");
    }
    v.call(
        "ConnectorUpdate",
        json!({"connectorid": id.to_string(), "status": "disabled", "dbport": "3307", "apikey": "a-Secret-pw-4471",
               "connectorname": "crm2", "erasure": true, "reports": "true"}),
    )
    .await
    .ok();
    let row = v.call("ConnectorListConnectors", json!({})).await.ok()["rows"][0].clone();
    assert_eq!(
        (row["status"].clone(), row["dbport"].clone(), row["connectorname"].clone()),
        (json!("disabled"), json!("3307"), json!("crm2"))
    );
    assert_eq!((row["erasure"].clone(), row["reports"].clone()), (json!(true), json!(true)));
    v.call("ConnectorGetUserData", json!({"mode": "login", "identity": "x", "connectorid": id}))
        .await
        .error(409, "The connector is disabled");
    v.call("ConnectorValidateConnectivity", json!({"connectorid": id})).await.error(409, "The connector is disabled");

    for (body, message) in [
        (
            json!({"connectortype": "mysql", "dbhost": "h", "dbname": "d", "tablename": "t", "username": "u"}),
            "connectorname is required",
        ),
        (
            json!({"connectorname": "x", "connectortype": "oracle", "dbhost": "h", "dbname": "d", "tablename": "t", "username": "u"}),
            "connectortype must be postgresql or mysql",
        ),
        (
            json!({"connectorname": "x", "connectortype": "mysql", "dbhost": "h", "dbport": "99999", "dbname": "d", "tablename": "t", "username": "u"}),
            "dbport must be a port number",
        ),
        (
            json!({"connectorname": "x", "connectortype": "mysql", "dbhost": "h/x", "dbname": "d", "tablename": "t", "username": "u"}),
            "dbhost is not a host name or address",
        ),
    ] {
        v.call("ConnectorCreate", body).await.error(400, message);
    }
    v.call("ConnectorUpdate", json!({"connectorid": 999_999, "status": "active"}))
        .await
        .error(404, "The connector was not found");
    v.call("ConnectorDelete", json!({"connectorid": id, "connectorname": "other"}))
        .await
        .error(404, "The connector was not found");
    let deleted = v.call("ConnectorDelete", json!({"connectorid": id, "connectorname": "crm2"})).await.ok();
    assert_eq!(deleted["abandonederasures"], 0);
    assert_eq!(v.call("ConnectorListConnectors", json!({})).await.ok()["total"], 0);
    v.call("ConnectorDelete", json!({"connectorid": id})).await.error(404, "The connector was not found");
});

both!(connectivity_is_told_within_the_time_limit, settings = settings, |v| {
    for engine in Engine::BOTH {
        let db = ExternalDb::with_customers(engine);
        let id = connector(v, &db, &format!("c-{}", engine.connectortype()), json!({})).await;
        let answer = v.call("ConnectorValidateConnectivity", json!({"connectorid": id})).await.ok();
        assert_eq!(answer["connected"], true, "{engine:?}: {answer}");
        // A connector not saved yet.
        let answer = v.call("ConnectorValidateConnectivity", db.fields("")).await.ok();
        assert_eq!(answer["connected"], true, "{engine:?}: {answer}");

        // Nobody listens on the port: false, at once.
        let mut closed = db.fields("");
        closed["dbport"] = json!(crate::process::free_addr().port().to_string());
        let started = Instant::now();
        let answer = v.call("ConnectorValidateConnectivity", closed).await.ok();
        assert_eq!(answer["connected"], false, "{answer}");
        assert!(started.elapsed() < Duration::from_secs(10));

        // A listener that accepts and never answers (a black hole): false within the limit.
        let hole = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let mut silent = db.fields("");
        silent["dbport"] = json!(hole.local_addr().expect("addr").port());
        let started = Instant::now();
        let answer = v.call("ConnectorValidateConnectivity", silent).await.ok();
        assert_eq!(answer["connected"], false, "{answer}");
        assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
        drop(hole);

        // A host the allow-list does not hold: refused without a connection.
        let mut elsewhere = db.fields("");
        elsewhere["dbhost"] = json!("10.1.2.3");
        let answer = v.call("ConnectorValidateConnectivity", elsewhere).await.ok();
        assert_eq!(
            answer,
            json!({"status": "ok", "connected": false, "reason": "The connector's host is not allowed"})
        );

        // A table that is not there.
        let mut missing = db.fields("");
        missing["tablename"] = json!("no_such_table");
        let answer = v.call("ConnectorValidateConnectivity", missing).await.ok();
        assert_eq!(answer["connected"], false, "{answer}");
    }

    // A wrong password (MariaDB: the machine's PostgreSQL trusts every local connection).
    let db = ExternalDb::with_customers(Engine::MariaDb);
    let user = format!("u{}", &db.name[4..16]);
    db.exec(&format!(
        "CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'right-pw-1'; GRANT ALL ON {}.* TO '{user}'@'127.0.0.1'",
        db.name
    ));
    let mut fields = db.fields("wrong-pw-2");
    fields["username"] = json!(user);
    let answer = v.call("ConnectorValidateConnectivity", fields.clone()).await.ok();
    assert_eq!(answer["connected"], false, "{answer}");
    assert!(!answer.to_string().contains("wrong-pw-2") && !answer.to_string().contains(&user), "{answer}");
    fields["apikey"] = json!("right-pw-1");
    assert_eq!(v.call("ConnectorValidateConnectivity", fields).await.ok()["connected"], true);
    db.exec(&format!("DROP USER '{user}'@'127.0.0.1'"));
});

both!(table_metadata_and_a_users_rows_on_both_engines, settings = settings, |v| {
    let token = ann(v).await;
    for engine in Engine::BOTH {
        let db = ExternalDb::with_customers(engine);
        let id = connector(v, &db, &format!("c-{}", engine.connectortype()), json!({})).await;

        let meta = v.call("ConnectorGetTableMetaData", json!({"connectorid": id})).await.ok()["metadata"].clone();
        assert_eq!(meta["name"], CUSTOMERS);
        let columns: Vec<&str> = meta["columns"]
            .as_array()
            .expect("columns")
            .iter()
            .map(|c| c["name"].as_str().expect("test value"))
            .collect();
        assert_eq!(columns, ["id", "email", "login", "phone", "fullname"]);
        assert_eq!(meta["columns"][0]["key"], "primary");
        assert_eq!(meta["columns"][2]["nullable"], false);
        assert_eq!(meta["columns"][1]["nullable"], true);
        assert_eq!(meta["referencedby"][0]["table"], ORDERS, "{meta}");
        assert_eq!(meta["referencedby"][0]["columns"], json!(["customer_id"]));
        // The same through the fields of a connector not saved.
        let unsaved = v.call("ConnectorGetTableMetaData", db.fields("")).await.ok()["metadata"].clone();
        assert_eq!(unsaved, meta);

        // By e-mail (the default column), by login, by token: Ann's row, never Bob's.
        for (mode, identity) in [("email", ANN_EMAIL), ("login", ANN_LOGIN), ("token", token.as_str())] {
            let data = v
                .call("ConnectorGetUserData", json!({"mode": mode, "identity": identity, "connectorid": id}))
                .await
                .ok()["data"]
                .clone();
            let rows = data["rows"].as_array().expect("rows");
            assert_eq!(rows.len(), 1, "{engine:?} {mode}: {data}");
            assert_eq!(rows[0]["email"], ANN_EMAIL);
            assert_eq!(rows[0]["fullname"], "Ann Example");
            assert!(!data.to_string().contains(BOB_EMAIL));
        }
        let extra = v.call("ConnectorGetUserExtraData", by_email(id)).await.ok()["data"].clone();
        let orders = extra[ORDERS]["rows"].as_array().expect("orders");
        let mut items: Vec<&str> = orders.iter().map(|o| o["item"].as_str().expect("test value")).collect();
        items.sort_unstable();
        assert_eq!(items, ["book", "pen"], "{extra}");

        // A user the vault does not hold is not looked for outside it.
        v.call("ConnectorGetUserData", json!({"mode": "email", "identity": BOB_EMAIL, "connectorid": id}))
            .await
            .error(404, "The user record was not found");
        // A column mapping naming a column the table lacks.
        v.call("ConnectorUpdate", json!({"connectorid": id, "identitycolumns": {"email": "mail"}})).await.ok();
        v.call("ConnectorGetUserData", by_email(id))
            .await
            .error(409, "identitycolumns names a column the connector's table does not have");
        v.call("ConnectorUpdate", json!({"connectorid": id, "identitycolumns": {"custom": "id", "email": "email"}}))
            .await
            .ok();
        assert_eq!(
            v.call("ConnectorGetUserData", by_email(id)).await.ok()["data"]["rows"]
                .as_array()
                .expect("test value")
                .len(),
            1
        );
    }
});

both!(deleting_a_users_rows_with_a_dry_run_first, settings = settings, |v| {
    ann(v).await;
    for engine in Engine::BOTH {
        let db = ExternalDb::with_customers(engine);
        let id = connector(v, &db, &format!("c-{}", engine.connectortype()), json!({})).await;
        let mut dry = by_email(id);
        dry["dryrun"] = json!(true);
        let answer = v.call("ConnectorDeleteUser", dry).await.ok();
        assert_eq!(answer["dryrun"], true);
        assert_eq!(answer["changed"], json!({CUSTOMERS: 1, ORDERS: 2}), "{engine:?}: {answer}");
        assert_eq!((db.customers_with(ANN_EMAIL), db.orders_of(1)), (1, 2), "a dry run changes nothing");

        let answer = v.call("ConnectorDeleteUser", by_email(id)).await.ok();
        assert_eq!(answer["changed"], json!({CUSTOMERS: 1, ORDERS: 2}), "{answer}");
        assert_eq!(answer["total"], 3);
        assert_eq!((db.customers_with(ANN_EMAIL), db.orders_of(1)), (0, 0));
        assert_eq!((db.customers_with(BOB_EMAIL), db.orders_of(2)), (1, 1), "a stranger's rows are untouched");

        let events = events_of(v, "ConnectorDeleteUser").await;
        let last = events.last().expect("event");
        assert_eq!(last["extra"]["changed"], json!({CUSTOMERS: 1, ORDERS: 2}), "{last}");
        assert!(!last.to_string().contains(ANN_EMAIL));
    }

    // Nullify: the identity columns are cleared, the row stays; a NOT NULL one cannot be.
    let db = ExternalDb::with_customers(Engine::Postgres);
    let id = connector(
        v,
        &db,
        "nullify",
        json!({"erasemode": "nullify", "identitycolumns": {"email": "email", "phone": "phone"}}),
    )
    .await;
    let answer = v.call("ConnectorDeleteUser", by_email(id)).await.ok();
    assert_eq!(answer["changed"], json!({CUSTOMERS: 1}), "{answer}");
    assert_eq!(
        db.count(&format!(
            "SELECT COUNT(*) FROM {} WHERE id = 1 AND email IS NULL AND phone IS NULL",
            db.quote(CUSTOMERS)
        )),
        1
    );
    assert_eq!(db.orders_of(1), 2);
});

both!(user_delete_erases_the_users_rows_through_the_queue, settings = settings, |v| {
    let pg = ExternalDb::with_customers(Engine::Postgres);
    let maria = ExternalDb::with_customers(Engine::MariaDb);
    let on_pg = connector(v, &pg, "pg", json!({"erasure": true})).await;
    let on_maria = connector(v, &maria, "maria", json!({"erasure": true})).await;
    let _reports_only = connector(v, &maria, "not-for-erasure", json!({})).await;
    let token = ann(v).await;

    v.call("UserDelete", json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM connector_erasures").await, 2, "one job per connector taking part");
    assert_absent(&v.dump().await, &[ANN_EMAIL, ANN_LOGIN]);
    assert_eq!(pg.customers_with(ANN_EMAIL), 1, "the vault's erasure does not wait on the external database");

    let ended = bunker::connectors::erasure::work_once(&v.state).await.expect("work");
    assert_eq!(ended, 2);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM connector_erasures").await, 0);
    for db in [&pg, &maria] {
        assert_eq!((db.customers_with(ANN_EMAIL), db.orders_of(1)), (0, 0), "{:?}", db.engine);
        assert_eq!((db.customers_with(BOB_EMAIL), db.orders_of(2)), (1, 1), "{:?}", db.engine);
    }
    let (_, metrics) = v.get_text("/metrics").await;
    assert!(metrics.contains("bunker_connector_erasures_total{outcome=\"erased\"} 2"), "{metrics}");
    let events = events_of(v, "ConnectorErasure").await;
    assert_eq!(events.len(), 2);
    let mut ids: Vec<i64> = events.iter().map(|e| e["extra"]["connectorid"].as_i64().expect("test value")).collect();
    ids.sort_unstable();
    assert_eq!(ids, [on_pg, on_maria]);
    for event in &events {
        assert_eq!(event["extra"]["outcome"], "erased", "{event}");
        assert_eq!(event["extra"]["changed"], json!({CUSTOMERS: 1, ORDERS: 2}), "{event}");
        assert!(!event.to_string().contains(&token) && !event.to_string().contains(ANN_EMAIL));
    }
});

both!(a_failing_erasure_is_retried_then_recorded_as_failed, settings = settings, |v| {
    let db = ExternalDb::with_customers(Engine::MariaDb);
    let id = connector(v, &db, "down", json!({"erasure": true})).await;
    let closed = crate::process::free_addr().port();
    v.call("ConnectorUpdate", json!({"connectorid": id, "dbport": closed, "apikey": ""})).await.ok();
    let token = ann(v).await;
    v.call("UserDelete", json!({"mode": "token", "identity": token})).await.ok();

    assert_eq!(bunker::connectors::erasure::work_once(&v.state).await.expect("work"), 0);
    assert_eq!(v.scalar("SELECT attempts FROM connector_erasures").await, 1, "kept for a retry");
    let listed = v.call("ConnectorListConnectors", json!({})).await.ok();
    assert_eq!(listed["rows"][0]["pendingerasures"], 1);
    assert_eq!(bunker::connectors::erasure::work_once(&v.state).await.expect("work"), 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM connector_erasures").await, 0, "given up after the last attempt");
    let events = events_of(v, "ConnectorErasure").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["extra"]["outcome"], "failed", "{}", events[0]);
    assert_eq!(events[0]["extra"]["attempts"], 2);
    let (_, metrics) = v.get_text("/metrics").await;
    for outcome in ["retried", "failed"] {
        assert!(metrics.contains(&format!("bunker_connector_erasures_total{{outcome=\"{outcome}\"}} 1")), "{metrics}");
    }
    assert_eq!(db.customers_with(ANN_EMAIL), 1);
});

both!(a_claimed_erasure_is_one_workers, settings = settings, |v| {
    let db = ExternalDb::with_customers(Engine::Postgres);
    connector(v, &db, "pg", json!({"erasure": true})).await;
    let token = ann(v).await;
    v.call("UserDelete", json!({"mode": "token", "identity": token})).await.ok();
    let now = v.state.clock.now_ms();
    let first = bunker::store::connectors::claim_due(v.db(), now, now, 60_000, 10).await.expect("claim");
    let second = bunker::store::connectors::claim_due(v.db(), now, now, 60_000, 10).await.expect("claim");
    assert_eq!((first.len(), second.len()), (1, 0), "a leased job is not claimed twice");
    // Its lease ran out (its worker stopped): another takes it over.
    let later =
        bunker::store::connectors::claim_due(v.db(), now + 60_001, now + 60_001, 60_000, 10).await.expect("claim");
    assert_eq!(later.len(), 1);
});

both!(the_report_includes_connector_data, settings = settings, |v| {
    let db = ExternalDb::with_customers(Engine::MariaDb);
    let id = connector(v, &db, "shop", json!({"reports": true})).await;
    let _down = connector(v, &db, "down", json!({"reports": true, "dbport": crate::process::free_addr().port()})).await;
    let _not_for_reports = connector(v, &db, "quiet", json!({})).await;
    let token = ann(v).await;
    let report =
        v.call("SystemGetUserReport", json!({"mode": "token", "identity": token})).await.ok()["report"].clone();
    let sources = report["connectors"].as_array().expect("connectors");
    assert_eq!(sources.len(), 2, "{report}");
    assert_eq!(sources[0]["connectorid"], id);
    assert_eq!(sources[0]["rows"][0]["fullname"], "Ann Example");
    assert_eq!(sources[0]["rows"].as_array().expect("test value").len(), 1);
    assert!(sources[1]["error"].is_string(), "a database that is down is said, not fatal: {}", sources[1]);
    let html =
        v.call("SystemGetUserHTMLReport", json!({"mode": "token", "identity": token})).await.ok()["html"].clone();
    let html = html.as_str().expect("html");
    assert!(html.contains("Other systems") && html.contains("Ann Example") && !html.contains("Bob Stranger"), "{html}");
});

both!(forget_me_and_bulk_deletions_queue_erasures_too, settings = settings, |v| {
    let db = ExternalDb::with_customers(Engine::Postgres);
    connector(v, &db, "pg", json!({"erasure": true})).await;
    connector(v, &db, "off", json!({"erasure": true, "status": "disabled"})).await;
    // An approved forget-me request.
    let token = ann(v).await;
    let asked = v.call("UserDeleteRequest", json!({"mode": "token", "identity": token})).await.ok();
    let requestuuid = asked["requestuuid"].as_str().expect("requestuuid").to_owned();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM connector_erasures").await, 0, "nothing before the approval");
    v.call("UserRequestApprove", json!({"requestuuid": requestuuid})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM connector_erasures").await, 1, "a disabled connector takes no part");
    // A bulk deletion: one job per user.
    let mut users = Vec::new();
    for n in 0..3 {
        let token = v.create_user(json!({"login": format!("bulk{n}")})).await;
        users.push(json!({"mode": "token", "identity": token}));
    }
    v.call("UserDeleteBulk", json!({"users": users})).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM connector_erasures").await, 4);
    assert_eq!(bunker::connectors::erasure::work_once(&v.state).await.expect("work"), 4);
    assert_eq!((db.customers_with(ANN_EMAIL), db.customers_with(BOB_EMAIL)), (0, 1));
});
