//! What the shared operations need from an engine's session.

use std::future::Future;

use futures::stream::BoxStream;

use super::catalogue::Table;
use super::deadline::Deadline;
use super::sql::{Dialect, Statement};
use super::{Failure, Limits};

/// One engine's open session: its catalogue, and statements run as written.
pub(super) trait Driver: Send {
    /// How this engine spells statements.
    const DIALECT: Dialect;

    /// The connection's limits.
    fn limits(&self) -> &Limits;

    /// The connection's statement limit.
    fn deadline(&self) -> Deadline;

    /// `table` quoted (and qualified where the engine needs it) for a FROM clause.
    fn relation(&self, table: &str) -> String;

    /// The catalogue's metadata of the table named exactly `name`, bounded by the limits.
    fn table(&mut self, name: &str) -> impl Future<Output = Result<Table, Failure>> + Send;

    /// The statement's rows: one text column each. Unbounded: the caller bounds it.
    fn fetch<'a>(&'a mut self, statement: &'a Statement) -> BoxStream<'a, Result<String, sqlx::Error>>;

    /// Runs the statement and answers the rows it changed. Unbounded: the caller bounds it.
    fn execute(&mut self, statement: &Statement) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Runs the statement's single `COUNT(*)`. Unbounded: the caller bounds it.
    fn count(&mut self, statement: &Statement) -> impl Future<Output = Result<u64, sqlx::Error>> + Send;

    /// Runs fixed SQL (BEGIN, COMMIT, ROLLBACK) without preparing it. Unbounded.
    fn simple(&mut self, sql: &'static str) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

/// The statement methods of [`Driver`], the same text for every engine's session (a `conn`
/// field, and a `query(&Statement)` of the engine's module that binds every value).
macro_rules! statement_methods {
    () => {
        fn fetch<'a>(&'a mut self, statement: &'a Statement) -> BoxStream<'a, Result<String, sqlx::Error>> {
            let rows = sqlx::query_scalar(&statement.text);
            statement.binds.iter().fold(rows, |rows, value| rows.bind(value.as_str())).fetch(&mut self.conn).boxed()
        }

        async fn execute(&mut self, statement: &Statement) -> Result<u64, sqlx::Error> {
            Ok(query(statement).execute(&mut self.conn).await?.rows_affected())
        }

        async fn count(&mut self, statement: &Statement) -> Result<u64, sqlx::Error> {
            let rows = sqlx::query_scalar(&statement.text);
            let count: i64 = statement
                .binds
                .iter()
                .fold(rows, |rows, value| rows.bind(value.as_str()))
                .fetch_one(&mut self.conn)
                .await?;
            Ok(u64::try_from(count).unwrap_or_default())
        }

        async fn simple(&mut self, sql: &'static str) -> Result<(), sqlx::Error> {
            // A bare text has no arguments, so sqlx sends it unprepared.
            self.conn.execute(sql).await.map(drop)
        }
    };
}
pub(super) use statement_methods;
