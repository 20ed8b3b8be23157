//! What connectors read and write: a table's metadata, the matches that pick a subject's rows,
//! the rows found and how to erase them.

use serde::Serialize;
use serde_json::{Map, Value};

use super::Failure;

/// A table's metadata, as the database's catalogue has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Table {
    /// The table's name, exactly as in the catalogue.
    pub name: String,
    /// Its columns, in their order.
    pub columns: Vec<Column>,
    /// The primary key's columns (empty without one).
    pub primarykey: Vec<String>,
    /// Foreign keys from this table to others.
    pub foreignkeys: Vec<ForeignKey>,
    /// Foreign keys of tables (of the same schema) pointing at this one.
    pub referencedby: Vec<ForeignKey>,
}

impl Table {
    /// The column named exactly `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|column| column.name == name)
    }
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The column's name.
    pub name: String,
    /// The engine's type name (PostgreSQL `format_type`, MySQL `COLUMN_TYPE`).
    #[serde(rename = "type")]
    pub r#type: String,
    /// Whether it accepts NULL.
    pub nullable: bool,
    /// "primary", "unique" or "foreign", the first that holds; none for other columns.
    pub key: Option<String>,
}

/// A foreign key: `table(columns)` references `referencestable(referencescolumns)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignKey {
    /// The constraint's name.
    pub name: String,
    /// The referencing table.
    pub table: String,
    /// The referencing columns.
    pub columns: Vec<String>,
    /// The referenced table.
    pub referencestable: String,
    /// The referenced columns, in the order of `columns`.
    pub referencescolumns: Vec<String>,
}

/// Which rows are the subject's: those where any (column, value) holds, compared as text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matches(pub Vec<(String, String)>);

impl Matches {
    /// Fails with [`Failure::NoSuchColumn`] unless every column is one of `table`'s.
    pub(super) fn check(&self, table: &Table) -> Result<(), Failure> {
        match self.0.iter().find(|(column, _)| table.column(column).is_none()) {
            Some((column, _)) => Err(Failure::NoSuchColumn(column.clone())),
            None => Ok(()),
        }
    }

    /// Whether nothing can match.
    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Rows as JSON objects (binary values as `\x`-prefixed hex strings).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Rows {
    /// The rows found, up to the limits.
    pub rows: Vec<Map<String, Value>>,
    /// Whether more rows matched than the limits let through.
    pub truncated: bool,
}

/// How a subject's rows are erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Erase {
    /// Delete the rows that reference them (one level), then the rows themselves.
    Delete,
    /// Set these columns of the rows to NULL.
    Nullify(Vec<String>),
}

/// A table's column keys, from its constraints: primary first, then unique, then foreign.
pub(super) fn key_of(
    column: &str,
    primarykey: &[String],
    unique: &[Vec<String>],
    foreign: &[ForeignKey],
) -> Option<String> {
    let named = |columns: &[String]| columns.iter().any(|c| c == column);
    if named(primarykey) {
        Some("primary".to_owned())
    } else if unique.iter().any(|columns| named(columns)) {
        Some("unique".to_owned())
    } else if foreign.iter().any(|key| named(&key.columns)) {
        Some("foreign".to_owned())
    } else {
        None
    }
}
