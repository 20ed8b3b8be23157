//! External databases (the company's own PostgreSQL and MySQL/MariaDB) through sqlx's own drivers:
//! a table's metadata, a data subject's rows, the rows that reference them, and their erasure.
//!
//! A pure library layer: it knows nothing of the vault. The caller resolves and allow-lists the
//! host and hands over an IP address. Safety holds here, whoever calls:
//! - table and column names come from the catalogue (a name the user typed is matched exactly
//!   against it) and are always quoted; the user's values are always bound parameters;
//! - connecting is bounded by [`Limits::connect`], every statement by [`Limits::query`] (on the
//!   client, and on the server where cheap), results by [`Limits::max_rows`] and
//!   [`Limits::max_bytes`];
//! - no [`Failure`] carries a value, password, host or connection string, sqlx's statement
//!   logging is off, and this module logs nothing.

mod catalogue;
mod deadline;
mod driver;
mod failure;
mod mysql;
mod ops;
mod postgres;
mod sql;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use driver::Driver;
use secrecy::SecretString;

pub use catalogue::{Column, Erase, ForeignKey, Matches, Rows, Table};
pub use failure::Failure;

/// A database engine that connectors reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    MySql,
}

impl Engine {
    /// The engine named `name` ("postgresql", "postgres", "pgsql", "mysql", "mariadb"; any case).
    pub fn parse(name: &str) -> Option<Engine> {
        match name.to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" | "pgsql" => Some(Engine::Postgres),
            "mysql" | "mariadb" => Some(Engine::MySql),
            _ => None,
        }
    }

    /// The engine's canonical name: "postgresql" or "mysql".
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "postgresql",
            Engine::MySql => "mysql",
        }
    }

    /// The engine's usual TCP port.
    pub fn default_port(self) -> u16 {
        match self {
            Engine::Postgres => 5432,
            Engine::MySql => 3306,
        }
    }
}

/// Where and as whom to connect. `Debug` never shows the password.
#[derive(Clone)]
pub struct Target {
    /// The database engine.
    pub engine: Engine,
    /// The server's address, already resolved and allow-listed by the caller.
    pub ip: IpAddr,
    /// The server's TCP port.
    pub port: u16,
    /// The database to open.
    pub database: String,
    /// The user to log in as.
    pub username: String,
    /// The user's password.
    pub password: SecretString,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("engine", &self.engine)
            .field("ip", &self.ip)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("username", &self.username)
            .field("password", &"[redacted]")
            .finish()
    }
}

/// Bounds on time and size for one connection.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connecting and logging in.
    pub connect: Duration,
    /// Each statement.
    pub query: Duration,
    /// Rows returned per table; more set [`Rows::truncated`].
    pub max_rows: usize,
    /// JSON bytes returned per table; more set [`Rows::truncated`] (see [`Connection::rows`]).
    pub max_bytes: usize,
}

impl Limits {
    /// The server's own statement limit: a little under [`Limits::query`], so that the server
    /// cancels a slow statement (and the connection stays usable) before the client gives up.
    fn server_query(&self) -> Duration {
        self.query - (self.query / 10).min(Duration::from_millis(500))
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect: Duration::from_secs(5),
            query: Duration::from_secs(10),
            max_rows: 1000,
            max_bytes: 4 * 1024 * 1024,
        }
    }
}

/// One open connection to an external database.
///
/// A statement the server cancels for its time limit leaves the connection usable; one the client
/// abandons (the server did not answer in time) closes it, and later calls answer
/// [`Failure::Unreachable`].
pub struct Connection {
    session: Option<Session>,
}

enum Session {
    Postgres(postgres::Session),
    MySql(mysql::Session),
}

/// Opens a connection to `target`, within `limits.connect`.
pub async fn connect(target: &Target, limits: &Limits) -> Result<Connection, Failure> {
    let session = match target.engine {
        Engine::Postgres => Session::Postgres(postgres::connect(target, limits).await?),
        Engine::MySql => Session::MySql(mysql::connect(target, limits).await?),
    };
    Ok(Connection { session: Some(session) })
}

impl Connection {
    /// Metadata of the base table `name` (as the user typed it, matched exactly against the
    /// catalogue: it may contain quotes and spaces, and a dot is no schema separator). PostgreSQL
    /// looks in `current_schema()`, MySQL in the connection's database; foreign keys pointing at
    /// it count from tables of that same schema. [`Failure::NoSuchTable`] if absent (or a view).
    pub async fn table(&mut self, name: &str) -> Result<Table, Failure> {
        let result = match self.session.as_mut() {
            Some(Session::Postgres(session)) => ops::table(session, name).await,
            Some(Session::MySql(session)) => ops::table(session, name).await,
            None => Err(Failure::Unreachable),
        };
        self.settle(result)
    }

    /// The rows of `table` where any of `matches` holds (column = value, compared as text), at
    /// most `max_rows` and `max_bytes` of JSON: past either, the rows stop and `truncated` is set.
    /// A single row larger than `max_bytes` answers [`Failure::TooLarge`]. Empty `matches` match
    /// nothing.
    pub async fn rows(&mut self, table: &Table, matches: &Matches) -> Result<Rows, Failure> {
        let result = match self.session.as_mut() {
            Some(Session::Postgres(session)) => ops::rows(session, table, matches).await,
            Some(Session::MySql(session)) => ops::rows(session, table, matches).await,
            None => Err(Failure::Unreachable),
        };
        self.settle(result)
    }

    /// Rows of other tables whose foreign keys point at the matched rows of `table` (one level),
    /// by table name; each table's rows capped as in [`Connection::rows`].
    pub async fn referencing_rows(
        &mut self,
        table: &Table,
        matches: &Matches,
    ) -> Result<BTreeMap<String, Rows>, Failure> {
        let result = match self.session.as_mut() {
            Some(Session::Postgres(session)) => ops::referencing_rows(session, table, matches).await,
            Some(Session::MySql(session)) => ops::referencing_rows(session, table, matches).await,
            None => Err(Failure::Unreachable),
        };
        self.settle(result)
    }

    /// Erases the matched rows of `table` in one transaction and answers the rows changed per
    /// table (tables with none included). [`Erase::Delete`] deletes the referencing rows (one
    /// level) and then the matched rows; [`Erase::Nullify`] sets those columns of the matched rows
    /// to NULL. With `dryrun`, counts what would change (`SELECT COUNT`) and writes nothing; a
    /// deeper constraint that would block the real run shows only then, as
    /// [`Failure::Constraint`], with nothing changed.
    pub async fn erase(
        &mut self,
        table: &Table,
        matches: &Matches,
        how: &Erase,
        dryrun: bool,
    ) -> Result<BTreeMap<String, u64>, Failure> {
        let result = match self.session.as_mut() {
            Some(Session::Postgres(session)) => ops::erase(session, table, matches, how, dryrun).await,
            Some(Session::MySql(session)) => ops::erase(session, table, matches, how, dryrun).await,
            None => Err(Failure::Unreachable),
        };
        self.settle(result)
    }

    /// Passes `result` on; after a statement was abandoned mid-way the connection's state is
    /// unknown, so it is dropped.
    fn settle<T>(&mut self, result: Result<T, Failure>) -> Result<T, Failure> {
        let abandoned = match &self.session {
            Some(Session::Postgres(session)) => session.deadline().ran_out(),
            Some(Session::MySql(session)) => session.deadline().ran_out(),
            None => false,
        };
        if abandoned {
            self.session = None;
        }
        result
    }

    /// Closes the connection politely (a failure to do so changes nothing for the caller).
    pub async fn close(self) {
        match self.session {
            Some(Session::Postgres(session)) => session.close().await,
            Some(Session::MySql(session)) => session.close().await,
            None => {}
        }
    }
}
