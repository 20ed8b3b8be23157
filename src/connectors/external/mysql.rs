//! MySQL and MariaDB through sqlx's own driver: one `MySqlConnection`, tables of its database.

use futures::StreamExt;
use futures::stream::BoxStream;
use secrecy::ExposeSecret;
use sqlx::mysql::{MySqlArguments, MySqlConnectOptions, MySqlSslMode};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Connection, Executor, MySql, MySqlConnection};

use super::catalogue::{Column, ForeignKey, Table, key_of};
use super::deadline::Deadline;
use super::driver::{Driver, statement_methods};
use super::failure::from_connecting;
use super::sql::{Dialect, Statement};
use super::{Failure, Limits, Target};

/// An open MySQL or MariaDB connection.
pub(super) struct Session {
    conn: MySqlConnection,
    limits: Limits,
    deadline: Deadline,
}

/// Connects (TLS if the server offers it) within `limits.connect`, with the server's own
/// statement limit (MariaDB `max_statement_time`, else MySQL `max_execution_time`) and lock wait
/// set from `limits.query`.
pub(super) async fn connect(target: &Target, limits: &Limits) -> Result<Session, Failure> {
    let mut options = MySqlConnectOptions::new()
        .host(&target.ip.to_string())
        .port(target.port)
        .username(&target.username)
        .database(&target.database)
        .ssl_mode(MySqlSslMode::Preferred)
        .disable_statement_logging();
    // sqlx scrambles even an empty password, which the server then refuses: none is sent as none.
    let password = target.password.expose_secret();
    if !password.is_empty() {
        options = options.password(password);
    }
    let server = limits.server_query();
    let seconds = server.as_secs_f64().max(0.001);
    let opening = async {
        let mut conn = MySqlConnection::connect_with(&options).await?;
        // Numbers of ours, not input. Which variable exists depends on the server: try both.
        let mariadb = format!("SET SESSION max_statement_time = {seconds:.3}");
        if conn.execute(mariadb.as_str()).await.is_err() {
            let mysql = format!("SET SESSION max_execution_time = {}", server.as_millis().max(1));
            let _ = conn.execute(mysql.as_str()).await;
        }
        let lock_wait = format!("SET SESSION innodb_lock_wait_timeout = {}", limits.query.as_secs().max(1));
        let _ = conn.execute(lock_wait.as_str()).await;
        Ok::<_, sqlx::Error>(conn)
    };
    match tokio::time::timeout(limits.connect, opening).await {
        Ok(Ok(conn)) => Ok(Session { conn, limits: limits.clone(), deadline: Deadline::new(limits.query) }),
        Ok(Err(error)) => Err(from_connecting(&error)),
        Err(_elapsed) => Err(Failure::Timeout),
    }
}

impl Session {
    /// Says goodbye to the server.
    pub(super) async fn close(self) {
        let _ = tokio::time::timeout(self.limits.query, self.conn.close()).await;
    }
}

/// The statement with its values bound as text.
fn query(statement: &Statement) -> Query<'_, MySql, MySqlArguments> {
    statement.binds.iter().fold(sqlx::query(&statement.text), |query, value| query.bind(value.as_str()))
}

/// The catalogue compares names without regard to case; `exact` adds a byte-wise comparison
/// (table names are case-sensitive on most servers). Both bind the same name.
const FIND_TABLE: &str = "SELECT CAST(TABLE_NAME AS CHAR) FROM information_schema.TABLES \
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' \
    AND TABLE_NAME = ? AND CAST(TABLE_NAME AS BINARY) = CAST(? AS BINARY)";

const COLUMNS: &str = "SELECT CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR), CAST(IS_NULLABLE AS CHAR) \
    FROM information_schema.COLUMNS \
    WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? AND CAST(TABLE_NAME AS BINARY) = CAST(? AS BINARY) \
    ORDER BY ORDINAL_POSITION";

/// Every key column of the table's constraints and of the foreign keys pointing at it.
const CONSTRAINTS: &str = "SELECT CAST(k.CONSTRAINT_NAME AS CHAR), CAST(tc.CONSTRAINT_TYPE AS CHAR), \
    CAST(k.TABLE_NAME AS CHAR), CAST(k.COLUMN_NAME AS CHAR), \
    CAST(k.REFERENCED_TABLE_NAME AS CHAR), CAST(k.REFERENCED_COLUMN_NAME AS CHAR) \
    FROM information_schema.KEY_COLUMN_USAGE k \
    JOIN information_schema.TABLE_CONSTRAINTS tc ON tc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
        AND tc.TABLE_SCHEMA = k.TABLE_SCHEMA AND tc.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
        AND CAST(tc.TABLE_NAME AS BINARY) = CAST(k.TABLE_NAME AS BINARY) \
    WHERE k.TABLE_SCHEMA = DATABASE() AND ( \
        (k.TABLE_NAME = ? AND CAST(k.TABLE_NAME AS BINARY) = CAST(? AS BINARY)) \
        OR (k.REFERENCED_TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME = ? \
            AND CAST(k.REFERENCED_TABLE_NAME AS BINARY) = CAST(? AS BINARY))) \
    ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION";

/// One key column: constraint, type, table, column, referenced table and column.
type KeyColumn = (String, String, String, String, Option<String>, Option<String>);

impl Driver for Session {
    const DIALECT: Dialect = Dialect::MySql;

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn deadline(&self) -> Deadline {
        self.deadline.clone()
    }

    fn relation(&self, table: &str) -> String {
        Dialect::MySql.ident(table)
    }

    async fn table(&mut self, name: &str) -> Result<Table, Failure> {
        let deadline = self.deadline.clone();
        let found: Option<String> =
            deadline.run(sqlx::query_scalar(FIND_TABLE).bind(name).bind(name).fetch_optional(&mut self.conn)).await?;
        let name = found.ok_or(Failure::NoSuchTable)?;
        let columns: Vec<(String, String, String)> =
            deadline.run(sqlx::query_as(COLUMNS).bind(&name).bind(&name).fetch_all(&mut self.conn)).await?;
        let keys: Vec<KeyColumn> = deadline
            .run(sqlx::query_as(CONSTRAINTS).bind(&name).bind(&name).bind(&name).bind(&name).fetch_all(&mut self.conn))
            .await?;
        Ok(assemble(name, columns, keys))
    }

    statement_methods!();
}

/// The table's metadata from its catalogue rows (one row per key column, in key order).
fn assemble(name: String, columns: Vec<(String, String, String)>, keys: Vec<KeyColumn>) -> Table {
    let mut primarykey = Vec::new();
    let mut unique: Vec<Vec<String>> = Vec::new();
    let mut foreignkeys: Vec<ForeignKey> = Vec::new();
    let mut referencedby: Vec<ForeignKey> = Vec::new();
    let mut last: Option<(String, String)> = None;
    for (constraint, kind, table, column, referencestable, referencescolumn) in keys {
        let continues = last.as_ref().is_some_and(|(t, c)| *t == table && *c == constraint);
        last = Some((table.clone(), constraint.clone()));
        match kind.as_str() {
            "PRIMARY KEY" if table == name => primarykey.push(column),
            "UNIQUE" if table == name => {
                if !continues {
                    unique.push(Vec::new());
                }
                if let Some(columns) = unique.last_mut() {
                    columns.push(column);
                }
            }
            "FOREIGN KEY" => {
                let referencestable = referencestable.unwrap_or_default();
                let referencescolumn = referencescolumn.unwrap_or_default();
                let add = |keys: &mut Vec<ForeignKey>| {
                    if !continues {
                        keys.push(ForeignKey {
                            name: constraint.clone(),
                            table: table.clone(),
                            columns: Vec::new(),
                            referencestable: referencestable.clone(),
                            referencescolumns: Vec::new(),
                        });
                    }
                    if let Some(key) = keys.last_mut() {
                        key.columns.push(column.clone());
                        key.referencescolumns.push(referencescolumn.clone());
                    }
                };
                if table == name {
                    add(&mut foreignkeys);
                }
                if referencestable == name {
                    add(&mut referencedby);
                }
            }
            _ => {}
        }
    }
    let columns = columns
        .into_iter()
        .map(|(name, r#type, nullable)| {
            let key = key_of(&name, &primarykey, &unique, &foreignkeys);
            Column { name, r#type, nullable: nullable == "YES", key }
        })
        .collect();
    Table { name, columns, primarykey, foreignkeys, referencedby }
}
