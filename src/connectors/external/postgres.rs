//! PostgreSQL through sqlx's own driver: one `PgConnection`, tables of `current_schema()`.

use futures::StreamExt;
use futures::stream::BoxStream;
use secrecy::ExposeSecret;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgSslMode};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Connection, Executor, PgConnection, Postgres};

use super::catalogue::{Column, ForeignKey, Table, key_of};
use super::deadline::Deadline;
use super::driver::{Driver, statement_methods};
use super::failure::from_connecting;
use super::sql::{Dialect, Statement};
use super::{Failure, Limits, Target};

/// An open PostgreSQL connection and the schema its tables live in.
pub(super) struct Session {
    conn: PgConnection,
    schema: String,
    limits: Limits,
    deadline: Deadline,
}

/// Connects (TLS if the server offers it) within `limits.connect`, with the server's own
/// `statement_timeout` set from `limits.query` and no notices sent.
pub(super) async fn connect(target: &Target, limits: &Limits) -> Result<Session, Failure> {
    let statement_timeout = limits.server_query().as_millis().max(1).to_string();
    let options = PgConnectOptions::new_without_pgpass()
        .host(&target.ip.to_string())
        .port(target.port)
        .username(&target.username)
        .password(target.password.expose_secret())
        .database(&target.database)
        .ssl_mode(PgSslMode::Prefer)
        .application_name("bunker")
        // Notices (a trigger's RAISE NOTICE, say) may quote values, and sqlx would log them.
        .options([("statement_timeout", statement_timeout.as_str()), ("client_min_messages", "error")])
        .disable_statement_logging();
    let opening = async {
        let mut conn = PgConnection::connect_with(&options).await?;
        let schema: String =
            sqlx::query_scalar("SELECT COALESCE(current_schema()::text, 'public')").fetch_one(&mut conn).await?;
        Ok::<_, sqlx::Error>((conn, schema))
    };
    match tokio::time::timeout(limits.connect, opening).await {
        Ok(Ok((conn, schema))) => {
            Ok(Session { conn, schema, limits: limits.clone(), deadline: Deadline::new(limits.query) })
        }
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
fn query(statement: &Statement) -> Query<'_, Postgres, PgArguments> {
    statement.binds.iter().fold(sqlx::query(&statement.text), |query, value| query.bind(value.as_str()))
}

/// One constraint row of the catalogue.
#[derive(sqlx::FromRow)]
struct Constraint {
    name: String,
    kind: String,
    /// Declared on the table asked about.
    outgoing: bool,
    /// Pointing at the table asked about, from a table of the same schema.
    incoming: bool,
    table: String,
    columns: Vec<String>,
    referencestable: Option<String>,
    referencescolumns: Vec<String>,
}

const FIND_TABLE: &str = "SELECT c.oid, c.relname::text FROM pg_class c \
    JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname::text = $1 AND c.relname::text = $2 AND c.relkind IN ('r', 'p')";

const COLUMNS: &str = "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull \
    FROM pg_attribute a WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum";

const CONSTRAINTS: &str = "SELECT con.conname::text AS name, con.contype::text AS kind, \
    con.conrelid = $1 AS outgoing, (con.confrelid = $1 AND tn.nspname::text = $2) AS incoming, \
    tc.relname::text AS \"table\", \
    ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(num, pos) \
        JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num ORDER BY k.pos) AS columns, \
    rc.relname::text AS referencestable, \
    ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY AS k(num, pos) \
        JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num ORDER BY k.pos) AS referencescolumns \
    FROM pg_constraint con \
    JOIN pg_class tc ON tc.oid = con.conrelid JOIN pg_namespace tn ON tn.oid = tc.relnamespace \
    LEFT JOIN pg_class rc ON rc.oid = con.confrelid \
    WHERE (con.conrelid = $1 AND con.contype IN ('p', 'u', 'f')) OR (con.confrelid = $1 AND con.contype = 'f') \
    ORDER BY tc.relname, con.conname";

impl Driver for Session {
    const DIALECT: Dialect = Dialect::Postgres;

    fn limits(&self) -> &Limits {
        &self.limits
    }

    fn deadline(&self) -> Deadline {
        self.deadline.clone()
    }

    fn relation(&self, table: &str) -> String {
        // Qualified: an unqualified name would find pg_catalog's and pg_temp's tables first.
        format!("{}.{}", Dialect::Postgres.ident(&self.schema), Dialect::Postgres.ident(table))
    }

    async fn table(&mut self, name: &str) -> Result<Table, Failure> {
        let deadline = self.deadline.clone();
        let found: Option<(Oid, String)> = deadline
            .run(sqlx::query_as(FIND_TABLE).bind(&self.schema).bind(name).fetch_optional(&mut self.conn))
            .await?;
        let (oid, name) = found.ok_or(Failure::NoSuchTable)?;
        let columns: Vec<(String, String, bool)> =
            deadline.run(sqlx::query_as(COLUMNS).bind(oid).fetch_all(&mut self.conn)).await?;
        let constraints: Vec<Constraint> =
            deadline.run(sqlx::query_as(CONSTRAINTS).bind(oid).bind(&self.schema).fetch_all(&mut self.conn)).await?;
        Ok(assemble(name, columns, constraints))
    }

    statement_methods!();
}

/// The table's metadata from its catalogue rows.
fn assemble(name: String, columns: Vec<(String, String, bool)>, constraints: Vec<Constraint>) -> Table {
    let mut primarykey = Vec::new();
    let mut unique = Vec::new();
    let mut foreignkeys = Vec::new();
    let mut referencedby = Vec::new();
    for constraint in constraints {
        let key = || ForeignKey {
            name: constraint.name.clone(),
            table: constraint.table.clone(),
            columns: constraint.columns.clone(),
            referencestable: constraint.referencestable.clone().unwrap_or_default(),
            referencescolumns: constraint.referencescolumns.clone(),
        };
        match constraint.kind.as_str() {
            "p" if constraint.outgoing => primarykey = constraint.columns.clone(),
            "u" if constraint.outgoing => unique.push(constraint.columns.clone()),
            "f" => {
                if constraint.outgoing {
                    foreignkeys.push(key());
                }
                if constraint.incoming {
                    referencedby.push(key());
                }
            }
            _ => {}
        }
    }
    let columns = columns
        .into_iter()
        .map(|(name, r#type, nullable)| {
            let key = key_of(&name, &primarykey, &unique, &foreignkeys);
            Column { name, r#type, nullable, key }
        })
        .collect();
    Table { name, columns, primarykey, foreignkeys, referencedby }
}
