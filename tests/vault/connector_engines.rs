//! The external-database layer of connectors, straight against real engines: PostgreSQL (the
//! shared server, and a private cluster for passwords) and MariaDB, a fresh database per test.
//! Every test runs once per engine unless its name says otherwise.

mod cluster;
mod scratch;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bunker::connectors::external::{self, Connection, Engine, Erase, Failure, Limits, Matches, Rows, Table, Target};
use scratch::{CUSTOMERS, Scratch};

/// Runs `body(engine)` as one test per engine.
macro_rules! engines {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use bunker::connectors::external::Engine;

            #[tokio::test]
            async fn postgresql() {
                super::$name(Engine::Postgres).await;
            }

            #[tokio::test]
            async fn mysql() {
                super::$name(Engine::MySql).await;
            }
        }
    )*};
}

engines!(
    metadata,
    rows_by_email_or_integer,
    referencing_rows_one_level,
    delete_dryrun_changes_nothing,
    delete_in_one_transaction,
    delete_blocked_deeper_changes_nothing,
    nullify,
    nullify_not_null_column,
    result_caps,
    unknown_names_and_empty_matches,
    unknown_database,
    unreachable_port,
    black_holed_host,
    query_timeout,
    composite_keys_and_bytes,
);

/// The subject: customer 1 by email, customer 3 by its (integer) customer number given as text.
fn subject() -> Matches {
    Matches(vec![("email".into(), "sub@example.com".into()), ("customer_no".into(), "4243".into())])
}

async fn open(scratch: &Scratch, limits: &Limits) -> (Connection, Table) {
    let mut conn = external::connect(&scratch.target(), limits).await.expect("connect");
    let table = conn.table(CUSTOMERS).await.expect("customers' metadata");
    (conn, table)
}

/// The ids of `rows`, sorted.
fn ids(rows: &Rows) -> Vec<i64> {
    let mut ids: Vec<i64> = rows.rows.iter().map(|row| row["id"].as_i64().expect("numeric id")).collect();
    ids.sort_unstable();
    ids
}

fn counts(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|(table, n)| (table.to_string(), *n)).collect()
}

/// The reason is one of the fixed phrases: no value, password or address in it.
fn assert_clean(failure: &Failure, secrets: &[&str]) {
    let reason = failure.reason();
    assert_eq!(reason, failure.to_string());
    for secret in secrets.iter().chain(&["sub@example.com", "127.0.0.1", "postgres://", "mysql://"]) {
        assert!(!reason.contains(secret), "{reason:?} contains {secret:?}");
    }
}

async fn metadata(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let (mut conn, customers) = open(&scratch, &Limits::default()).await;
    assert_eq!(customers.name, CUSTOMERS);
    let names: Vec<&str> = customers.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "email", "phone", "login", "customer_no"]);
    let column = |name: &str| customers.column(name).expect("column").clone();
    assert!(column("id").r#type.contains("int"), "{:?}", column("id"));
    assert!(column("email").r#type.contains(if engine == Engine::Postgres { "text" } else { "varchar" }));
    assert_eq!((column("id").nullable, column("email").nullable, column("login").nullable), (false, true, false));
    assert_eq!(column("id").key.as_deref(), Some("primary"));
    assert_eq!(column("email").key.as_deref(), Some("unique"));
    assert_eq!(column("phone").key, None);
    assert_eq!(customers.primarykey, ["id"]);
    assert!(customers.foreignkeys.is_empty());
    assert_eq!(customers.referencedby.len(), 1, "{:?}", customers.referencedby);
    let key = &customers.referencedby[0];
    assert_eq!(
        (key.name.as_str(), key.table.as_str(), key.referencestable.as_str()),
        ("orders_customer", "orders", CUSTOMERS)
    );
    assert_eq!((key.columns.clone(), key.referencescolumns.clone()), (vec!["customer_id".into()], vec!["id".into()]));

    let orders = conn.table("orders").await.expect("orders' metadata");
    assert_eq!(orders.foreignkeys, customers.referencedby);
    assert_eq!(orders.column("customer_id").and_then(|c| c.key.as_deref()), Some("foreign"));
    assert_eq!(orders.referencedby.len(), 1);
    assert_eq!(orders.referencedby[0].table, "order_lines");

    let json = serde_json::to_value(&customers).expect("serialise");
    assert_eq!(json["columns"][0]["name"], "id");
    assert!(json["columns"][0]["type"].is_string());
    // Matched exactly: another case, or the name as a quoted identifier, is another table.
    for near in ["CUST\"O`MERS X", "\"cust\"\"o`mers x\"", "`cust\"o``mers x`", "cust\"o`mers x "] {
        assert_eq!(conn.table(near).await, Err(Failure::NoSuchTable), "{near}");
    }
    conn.close().await;
}

async fn rows_by_email_or_integer(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let (mut conn, customers) = open(&scratch, &Limits::default()).await;
    let found = conn.rows(&customers, &subject()).await.expect("rows");
    assert_eq!(ids(&found), [1, 3]);
    assert!(!found.truncated);
    let first = found.rows.iter().find(|row| row["id"] == 1).expect("customer 1");
    assert_eq!(first["email"], "sub@example.com");
    assert_eq!(first["customer_no"], 4242);
    assert_eq!(found.rows.iter().find(|row| row["id"] == 3).expect("customer 3")["phone"], serde_json::Value::Null);
    // Exact comparison: another case, or an injection attempt, is another value.
    for value in ["SUB@example.com", "x' OR '1'='1", "4243 OR 1=1"] {
        let found = conn.rows(&customers, &Matches(vec![("email".into(), value.into())])).await.expect("rows");
        assert!(found.rows.is_empty(), "{value}: {found:?}");
    }
    let by_id = conn.rows(&customers, &Matches(vec![("id".into(), "2".into())])).await.expect("rows");
    assert_eq!(ids(&by_id), [2]);
    conn.close().await;
}

async fn referencing_rows_one_level(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    // A second level under the subject's order: ExtraData stops at the first.
    scratch.exec("INSERT INTO order_lines (id, order_id, qty) VALUES (201, 10, 2)").await;
    let (mut conn, customers) = open(&scratch, &Limits::default()).await;
    let found = conn.referencing_rows(&customers, &subject()).await.expect("referencing rows");
    assert_eq!(found.keys().collect::<Vec<_>>(), ["orders"]);
    assert_eq!(ids(&found["orders"]), [10, 11]);
    let book = found["orders"].rows.iter().find(|row| row["id"] == 10).expect("order 10");
    assert_eq!((book["customer_id"].as_i64(), book["item"].as_str()), (Some(1), Some("book")));
    conn.close().await;
}

async fn delete_dryrun_changes_nothing(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let before = scratch.all_ids().await;
    let (mut conn, customers) = open(&scratch, &Limits::default()).await;
    let counted = conn.erase(&customers, &subject(), &Erase::Delete, true).await.expect("dry run");
    assert_eq!(counted, counts(&[("orders", 2), (CUSTOMERS, 2)]));
    assert_eq!(scratch.all_ids().await, before);
    conn.close().await;
}

async fn delete_in_one_transaction(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let (mut conn, customers) = open(&scratch, &Limits::default()).await;
    let deleted = conn.erase(&customers, &subject(), &Erase::Delete, false).await.expect("delete");
    assert_eq!(deleted, counts(&[("orders", 2), (CUSTOMERS, 2)]));
    assert_eq!(scratch.all_ids().await, [vec![2], vec![20], vec![200]]);
    conn.close().await;
}

async fn delete_blocked_deeper_changes_nothing(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    // Order 10's line (a second level, restricted) blocks deleting order 10, so the customers too.
    scratch.exec("INSERT INTO order_lines (id, order_id, qty) VALUES (201, 10, 2)").await;
    let before = scratch.all_ids().await;
    let (mut conn, customers) = open(&scratch, &Limits::default()).await;
    let failure = conn.erase(&customers, &subject(), &Erase::Delete, false).await.expect_err("blocked");
    assert_eq!(failure, Failure::Constraint);
    assert_clean(&failure, &[]);
    assert_eq!(scratch.all_ids().await, before);
    // Rolled back, and the connection is still usable.
    assert_eq!(ids(&conn.rows(&customers, &subject()).await.expect("rows")), [1, 3]);
    conn.close().await;
}

async fn nullify(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let (mut conn, customers) = open(&scratch, &Limits::default()).await;
    let how = Erase::Nullify(vec!["email".into(), "phone".into()]);
    let counted = conn.erase(&customers, &subject(), &how, true).await.expect("dry run");
    assert_eq!(counted, counts(&[(CUSTOMERS, 2)]));
    let c = scratch.quoted(CUSTOMERS);
    let with_email = format!("SELECT id FROM {c} WHERE email IS NOT NULL");
    assert_eq!(scratch.ids(&with_email).await, [1, 2, 3]);
    let changed = conn.erase(&customers, &subject(), &how, false).await.expect("nullify");
    assert_eq!(changed, counts(&[(CUSTOMERS, 2)]));
    assert_eq!(scratch.ids(&with_email).await, [2]);
    assert_eq!(scratch.ids(&format!("SELECT id FROM {c} WHERE phone IS NOT NULL")).await, [2]);
    assert_eq!(scratch.all_ids().await, [vec![1, 2, 3], vec![10, 11, 20], vec![200]]);
    conn.close().await;
}

async fn nullify_not_null_column(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let (mut conn, customers) = open(&scratch, &Limits::default()).await;
    for dryrun in [true, false] {
        let how = Erase::Nullify(vec!["email".into(), "login".into()]);
        let failure = conn.erase(&customers, &subject(), &how, dryrun).await.expect_err("not nullable");
        assert_eq!(failure, Failure::NotNullable("login".into()));
        assert_clean(&failure, &[]);
        let how = Erase::Nullify(vec!["nope".into()]);
        let failure = conn.erase(&customers, &subject(), &how, dryrun).await.expect_err("no column");
        assert_eq!(failure, Failure::NoSuchColumn("nope".into()));
    }
    let c = scratch.quoted(CUSTOMERS);
    assert_eq!(scratch.ids(&format!("SELECT id FROM {c} WHERE email IS NOT NULL")).await, [1, 2, 3]);
    conn.close().await;
}

async fn result_caps(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let (conn, customers) = open(&scratch, &Limits::default()).await;
    conn.close().await;
    let everyone = Matches(vec![("login".into(), "subject".into()), ("login".into(), "subject2".into())]);
    let capped = |max_rows, max_bytes| Limits { max_rows, max_bytes, ..Limits::default() };

    let (mut conn, _) = open(&scratch, &capped(1, 1 << 20)).await;
    let found = conn.rows(&customers, &everyone).await.expect("rows");
    assert_eq!((found.rows.len(), found.truncated), (1, true));
    conn.close().await;

    let (mut conn, _) = open(&scratch, &capped(2, 1 << 20)).await;
    let found = conn.rows(&customers, &everyone).await.expect("rows");
    assert_eq!((found.rows.len(), found.truncated), (2, false));
    conn.close().await;

    // Each row's JSON is about 100 bytes: one fits in 150, two do not; none fits in 20.
    let (mut conn, _) = open(&scratch, &capped(10, 150)).await;
    let found = conn.rows(&customers, &everyone).await.expect("rows");
    assert_eq!((found.rows.len(), found.truncated), (1, true));
    conn.close().await;

    let (mut conn, _) = open(&scratch, &capped(10, 20)).await;
    assert_eq!(conn.rows(&customers, &everyone).await, Err(Failure::TooLarge));
    conn.close().await;
}

async fn unknown_names_and_empty_matches(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let before = scratch.all_ids().await;
    let (mut conn, customers) = open(&scratch, &Limits::default()).await;
    for name in ["nope", "", "orders\0"] {
        assert_eq!(conn.table(name).await, Err(Failure::NoSuchTable), "{name:?}");
    }
    let wrong = Matches(vec![("email".into(), "sub@example.com".into()), ("e-mail".into(), "x".into())]);
    assert_eq!(conn.rows(&customers, &wrong).await, Err(Failure::NoSuchColumn("e-mail".into())));
    assert_eq!(
        conn.erase(&customers, &wrong, &Erase::Delete, false).await,
        Err(Failure::NoSuchColumn("e-mail".into()))
    );

    let none = Matches::default();
    assert_eq!(conn.rows(&customers, &none).await, Ok(Rows::default()));
    let referencing = conn.referencing_rows(&customers, &none).await.expect("referencing rows");
    assert!(referencing.values().all(|rows| rows.rows.is_empty()));
    for dryrun in [true, false] {
        let changed = conn.erase(&customers, &none, &Erase::Delete, dryrun).await.expect("erase nothing");
        assert_eq!(changed, counts(&[("orders", 0), (CUSTOMERS, 0)]));
    }
    assert_eq!(scratch.all_ids().await, before);
    conn.close().await;
}

async fn unknown_database(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let target = Target { database: format!("{}_absent", scratch.name), ..scratch.target() };
    let failure = external::connect(&target, &Limits::default()).await.err().expect("no such database");
    assert_eq!(failure, Failure::NoSuchDatabase);
    assert_clean(&failure, &[&target.database]);
}

/// A target on 127.0.0.1 at `port`.
fn local(engine: Engine, port: u16) -> Target {
    Target {
        engine,
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port,
        database: "db".into(),
        username: "someone".into(),
        password: "hunter2-secret".into(),
    }
}

async fn unreachable_port(engine: Engine) {
    // A port just freed: nobody listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
    let started = Instant::now();
    let failure = external::connect(&local(engine, port), &Limits::default()).await.err().expect("refused");
    assert_eq!(failure, Failure::Unreachable);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_clean(&failure, &["hunter2-secret", &port.to_string()]);
}

async fn black_holed_host(engine: Engine) {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let holding = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let limits = Limits { connect: Duration::from_millis(700), ..Limits::default() };
    let started = Instant::now();
    let failure = external::connect(&local(engine, port), &limits).await.err().expect("no answer");
    assert_eq!(failure, Failure::Timeout);
    assert!(started.elapsed() < limits.connect + Duration::from_secs(1), "{:?}", started.elapsed());
    assert_clean(&failure, &["hunter2-secret"]);
    holding.abort();
}

async fn query_timeout(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let limits = Limits { query: Duration::from_millis(800), ..Limits::default() };
    let (mut conn, customers) = open(&scratch, &limits).await;
    let held = scratch.lock(CUSTOMERS).await;
    let started = Instant::now();
    let failure = conn.rows(&customers, &subject()).await.expect_err("waits for the lock");
    assert_eq!(failure, Failure::Timeout);
    assert!(started.elapsed() < limits.query + Duration::from_secs(1), "{:?}", started.elapsed());
    drop(held);
    // The server's own limit, a little shorter, normally cancels the statement first and the
    // connection stays usable; if the client gave up first, the connection is closed.
    match conn.rows(&customers, &subject()).await {
        Ok(found) => assert_eq!(ids(&found), [1, 3]),
        Err(failure) => assert_eq!(failure, Failure::Unreachable),
    }
    conn.close().await;
}

async fn composite_keys_and_bytes(engine: Engine) {
    let scratch = Scratch::new(engine).await;
    let ddl = match engine {
        Engine::Postgres => [
            "CREATE TABLE accounts (region text, no integer, owner text, avatar bytea, PRIMARY KEY (region, no))",
            "CREATE TABLE visits (id integer PRIMARY KEY, region text, no integer, \
             CONSTRAINT visits_account FOREIGN KEY (no, region) REFERENCES accounts (no, region))",
        ],
        Engine::MySql => [
            "CREATE TABLE accounts (region VARCHAR(8), no INT, owner VARCHAR(64), avatar VARBINARY(8), \
             PRIMARY KEY (region, no), UNIQUE KEY (no, region)) ENGINE=InnoDB",
            "CREATE TABLE visits (id INT PRIMARY KEY, region VARCHAR(8), no INT, \
             CONSTRAINT visits_account FOREIGN KEY (no, region) REFERENCES accounts (no, region)) ENGINE=InnoDB",
        ],
    };
    let avatar = if engine == Engine::Postgres { "'\\x01ff'::bytea" } else { "x'01ff'" };
    let rows = [
        format!("INSERT INTO accounts VALUES ('eu', 1, 'sub@example.com', {avatar}), ('us', 1, 'other', NULL)"),
        "INSERT INTO visits VALUES (1, 'eu', 1), (2, 'us', 1), (3, 'eu', 1)".to_owned(),
    ];
    for sql in ddl.iter().map(|sql| sql.to_string()).chain(rows) {
        scratch.exec(&sql).await;
    }
    let mut conn = external::connect(&scratch.target(), &Limits::default()).await.expect("connect");
    let accounts = conn.table("accounts").await.expect("metadata");
    assert_eq!(accounts.primarykey, ["region", "no"]);
    let key = &accounts.referencedby[0];
    assert_eq!(
        (key.columns.clone(), key.referencescolumns.clone()),
        (vec!["no".into(), "region".into()], vec!["no".into(), "region".into()])
    );
    let subject = Matches(vec![("owner".into(), "sub@example.com".into())]);
    let found = conn.rows(&accounts, &subject).await.expect("rows");
    assert_eq!(found.rows.len(), 1);
    assert_eq!(found.rows[0]["avatar"], "\\x01ff");
    let referencing = conn.referencing_rows(&accounts, &subject).await.expect("referencing rows");
    assert_eq!(ids(&referencing["visits"]), [1, 3]);
    let deleted = conn.erase(&accounts, &subject, &Erase::Delete, false).await.expect("delete");
    assert_eq!(deleted, counts(&[("accounts", 1), ("visits", 2)]));
    assert_eq!(scratch.ids("SELECT id FROM visits").await, [2]);
    conn.close().await;
}

#[tokio::test]
async fn mysql_wrong_password() {
    let mut scratch = Scratch::new(Engine::MySql).await;
    let user = scratch.mysql_user("right-Password-1").await;
    let right = Target { username: user.clone(), password: "right-Password-1".into(), ..scratch.target() };
    let mut conn = external::connect(&right, &Limits::default()).await.expect("the right password");
    conn.table(CUSTOMERS).await.expect("metadata as the new user");
    conn.close().await;

    let wrong = Target { password: "wrong-Password-2".into(), ..right.clone() };
    let failure = external::connect(&wrong, &Limits::default()).await.err().expect("the wrong password");
    assert_eq!(failure, Failure::Authentication);
    assert_clean(&failure, &["right-Password-1", "wrong-Password-2", &user]);
    assert!(!format!("{wrong:?}").contains("wrong-Password-2"));
}

#[tokio::test]
async fn postgresql_wrong_password() {
    let password = "right-Password-3";
    let cluster = tokio::task::spawn_blocking(move || cluster::Cluster::start(password)).await.expect("start");
    let right = Target {
        engine: Engine::Postgres,
        ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        port: cluster.port,
        database: "postgres".into(),
        username: "postgres".into(),
        password: password.into(),
    };
    let mut conn = external::connect(&right, &Limits::default()).await.expect("the right password");
    assert_eq!(conn.table(CUSTOMERS).await, Err(Failure::NoSuchTable));
    conn.close().await;

    for wrong in [
        Target { password: "wrong-Password-4".into(), ..right.clone() },
        Target { username: "nobody".into(), ..right.clone() },
    ] {
        let failure = external::connect(&wrong, &Limits::default()).await.err().expect("refused");
        assert_eq!(failure, Failure::Authentication);
        assert_clean(&failure, &[password, "wrong-Password-4", "nobody"]);
        assert!(!format!("{wrong:?}").contains("Password"), "{wrong:?}");
    }
}

#[test]
fn engines_by_name() {
    for (name, engine) in [("PostgreSQL", Engine::Postgres), ("pgsql", Engine::Postgres), ("MariaDB", Engine::MySql)] {
        assert_eq!(Engine::parse(name), Some(engine));
    }
    assert_eq!(Engine::parse("oracle"), None);
    assert_eq!((Engine::Postgres.name(), Engine::MySql.default_port()), ("postgresql", 3306));
}

/// The operations' futures can cross threads (an axum handler awaits them).
#[test]
fn futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let target = local(Engine::Postgres, 1);
    let limits = Limits::default();
    send(&external::connect(&target, &limits));
    let _check = |conn: &mut Connection, table: &Table, matches: &Matches| {
        send(&conn.table("t"));
        send(&conn.rows(table, matches));
        send(&conn.referencing_rows(table, matches));
        send(&conn.erase(table, matches, &Erase::Delete, false));
    };
}
