//! Why an external database operation failed, in words safe to show and log: never a value,
//! password, host or connection string.

use std::io::ErrorKind;

use sqlx::error::DatabaseError;
use sqlx::mysql::MySqlDatabaseError;
use sqlx::postgres::PgDatabaseError;

/// Why an external database operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// The server refused the connection or could not be reached.
    #[error("the database server cannot be reached")]
    Unreachable,
    /// The server did not answer within the limits.
    #[error("the database server did not answer in time")]
    Timeout,
    /// The server refused the credentials.
    #[error("the database refused the credentials")]
    Authentication,
    /// The database named in the target does not exist.
    #[error("the database does not exist")]
    NoSuchDatabase,
    /// No such table in the catalogue.
    #[error("no such table")]
    NoSuchTable,
    /// The named column is not one of the table's.
    #[error("no such column: {0}")]
    NoSuchColumn(String),
    /// The named column cannot be set to NULL.
    #[error("column {0} cannot be set to null")]
    NotNullable(String),
    /// A constraint of the database (a foreign key, most often) forbids the change.
    #[error("a constraint of the database forbids the change")]
    Constraint,
    /// More tables reference the table than one call may read or erase.
    #[error("more tables reference the table than one call may read or erase")]
    TooManyReferences,
    /// A single row is larger than the size limit.
    #[error("a row is larger than the size limit")]
    TooLarge,
    /// The database rejected the statement for another reason.
    #[error("the database rejected the query")]
    Query,
}

impl Failure {
    /// A short English reason, safe to show and log.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

/// The failure a sqlx error stands for. Only codes and names are read, never the message text
/// (which may quote a value), except MySQL's NOT NULL message, for the column's name.
pub(super) fn from_sqlx(error: &sqlx::Error) -> Failure {
    match error {
        sqlx::Error::Io(io) if io.kind() == ErrorKind::TimedOut => Failure::Timeout,
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) => Failure::Unreachable,
        sqlx::Error::PoolTimedOut => Failure::Timeout,
        sqlx::Error::Database(database) => from_database(database.as_ref()),
        _ => Failure::Query,
    }
}

/// The failure an error while connecting stands for: what the server did not explain, it did not
/// answer properly, so it counts as unreachable.
pub(super) fn from_connecting(error: &sqlx::Error) -> Failure {
    match from_sqlx(error) {
        Failure::Query if !matches!(error, sqlx::Error::Database(_)) => Failure::Unreachable,
        failure => failure,
    }
}

fn from_database(error: &dyn DatabaseError) -> Failure {
    if let Some(postgres) = error.try_downcast_ref::<PgDatabaseError>() {
        from_postgres(postgres)
    } else if let Some(mysql) = error.try_downcast_ref::<MySqlDatabaseError>() {
        from_mysql(mysql)
    } else {
        Failure::Query
    }
}

fn from_postgres(error: &PgDatabaseError) -> Failure {
    match error.code() {
        "28P01" | "28000" => Failure::Authentication,
        "3D000" => Failure::NoSuchDatabase,
        "42P01" => Failure::NoSuchTable,
        "23502" => Failure::NotNullable(error.column().unwrap_or_default().to_owned()),
        code if code.starts_with("23") => Failure::Constraint,
        // query_canceled (statement_timeout) and lock_not_available.
        "57014" | "55P03" => Failure::Timeout,
        code if code.starts_with("08") || code == "53300" || code.starts_with("57P") => Failure::Unreachable,
        _ => Failure::Query,
    }
}

fn from_mysql(error: &MySqlDatabaseError) -> Failure {
    match error.number() {
        // Access denied (to the server; to the database).
        1045 | 1044 => Failure::Authentication,
        1049 => Failure::NoSuchDatabase,
        1146 => Failure::NoSuchTable,
        1048 => Failure::NotNullable(null_column(error.message())),
        // Foreign keys (parent and child side, old and new numbers), duplicates, CHECK.
        1451 | 1452 | 1216 | 1217 | 1062 | 1586 | 3819 | 4025 => Failure::Constraint,
        // MariaDB max_statement_time, MySQL max_execution_time, lock wait timeout.
        1969 | 3024 | 1205 => Failure::Timeout,
        // Too many connections, host blocked.
        1040 | 1129 | 1130 => Failure::Unreachable,
        _ => Failure::Query,
    }
}

/// The column named in MySQL's "Column 'name' cannot be null" (a name, never a value).
fn null_column(message: &str) -> String {
    message
        .strip_prefix("Column '")
        .and_then(|rest| rest.strip_suffix("' cannot be null"))
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_fixed_words() {
        assert_eq!(Failure::Authentication.reason(), "the database refused the credentials");
        assert_eq!(Failure::NotNullable("email".into()).to_string(), "column email cannot be set to null");
    }

    #[test]
    fn mysql_null_message_names_the_column() {
        assert_eq!(null_column("Column 'e''x' cannot be null"), "e''x");
        assert_eq!(null_column("something else"), "");
    }
}
