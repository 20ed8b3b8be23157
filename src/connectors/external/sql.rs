//! Statement texts for both engines: names from the catalogue, quoted; values bound, in order.

use super::catalogue::{ForeignKey, Matches, Table};

/// How an engine spells identifiers, parameters and text comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Postgres,
    MySql,
}

impl Dialect {
    /// `name` quoted as an identifier: PostgreSQL `"..."`, MySQL `` `...` ``, the quote doubled.
    pub(super) fn ident(self, name: &str) -> String {
        let quote = match self {
            Dialect::Postgres => '"',
            Dialect::MySql => '`',
        };
        let mut quoted = String::with_capacity(name.len() + 2);
        quoted.push(quote);
        for c in name.chars() {
            if c == quote {
                quoted.push(quote);
            }
            quoted.push(c);
        }
        quoted.push(quote);
        quoted
    }
}

/// A statement's text and the values bound to it, in placeholder order.
#[derive(Debug)]
pub(super) struct Statement {
    dialect: Dialect,
    pub(super) text: String,
    pub(super) binds: Vec<String>,
}

impl Statement {
    pub(super) fn new(dialect: Dialect) -> Statement {
        Statement { dialect, text: String::new(), binds: Vec::new() }
    }

    /// Appends SQL text written here (never input).
    pub(super) fn push(&mut self, sql: &str) -> &mut Self {
        self.text.push_str(sql);
        self
    }

    /// Appends a quoted identifier.
    pub(super) fn ident(&mut self, name: &str) -> &mut Self {
        let quoted = self.dialect.ident(name);
        self.push(&quoted)
    }

    /// Appends a placeholder bound to `value`.
    pub(super) fn bind(&mut self, value: &str) -> &mut Self {
        self.binds.push(value.to_owned());
        match self.dialect {
            Dialect::Postgres => {
                let placeholder = format!("${}", self.binds.len());
                self.push(&placeholder)
            }
            Dialect::MySql => self.push("?"),
        }
    }

    /// Appends `column` as exact text, so a text value compares with any column type.
    fn column_as_text(&mut self, column: &str) -> &mut Self {
        match self.dialect {
            Dialect::Postgres => self.ident(column).push("::text"),
            Dialect::MySql => {
                // Binary collation: as exact as PostgreSQL, whatever the column's own collation.
                self.push("CAST(").ident(column).push(" AS CHAR CHARACTER SET utf8mb4) COLLATE utf8mb4_bin")
            }
        }
    }

    /// Appends `(c1 = v1 OR c2 = v2 ...)`; `matches` must not be empty.
    pub(super) fn filter(&mut self, matches: &Matches) -> &mut Self {
        self.push("(");
        for (i, (column, value)) in matches.0.iter().enumerate() {
            if i > 0 {
                self.push(" OR ");
            }
            self.column_as_text(column).push(" = ").bind(value);
        }
        self.push(")")
    }

    /// Appends `(k1, k2) IN (SELECT r1, r2 FROM parent WHERE filter)`: the rows of the key's
    /// table that reference the matched rows of `parent` (written `relation`).
    pub(super) fn references(&mut self, key: &ForeignKey, relation: &str, matches: &Matches) -> &mut Self {
        self.push("(").idents(&key.columns).push(") IN (");
        // MySQL refuses a subquery on the table a DELETE changes unless it is materialised (a
        // derived table, which DISTINCT keeps the optimiser from merging back).
        let mysql = self.dialect == Dialect::MySql;
        self.push(if mysql { "SELECT * FROM (SELECT DISTINCT " } else { "SELECT " })
            .idents(&key.referencescolumns)
            .push(" FROM ")
            .push(relation)
            .push(" WHERE ")
            .filter(matches);
        if mysql {
            self.push(") AS matched");
        }
        self.push(")")
    }

    /// Appends `(k1 IN ...) OR (k2 IN ...)` for every key in `keys`.
    pub(super) fn any_reference(&mut self, keys: &[&ForeignKey], relation: &str, matches: &Matches) -> &mut Self {
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                self.push(" OR ");
            }
            self.references(key, relation, matches);
        }
        self
    }

    /// Appends the quoted names, comma-separated.
    fn idents(&mut self, names: &[String]) -> &mut Self {
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.ident(name);
        }
        self
    }

    /// Appends `"c1" = NULL, "c2" = NULL`.
    pub(super) fn set_null(&mut self, columns: &[String]) -> &mut Self {
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.ident(column).push(" = NULL");
        }
        self
    }

    /// Appends one JSON object per row of `table` (aliased `t`), as text.
    pub(super) fn json_row(&mut self, table: &Table) -> &mut Self {
        match self.dialect {
            Dialect::Postgres => self.push("row_to_json(t.*)::text"),
            Dialect::MySql => {
                self.push("CAST(JSON_OBJECT(");
                for (i, column) in table.columns.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    self.bind(&column.name).push(", ");
                    if is_mysql_binary(&column.r#type) {
                        // Hex, as PostgreSQL's row_to_json writes bytea.
                        self.push("CONCAT(").bind("\\x").push(", LOWER(HEX(t.").ident(&column.name).push(")))");
                    } else {
                        self.push("t.").ident(&column.name);
                    }
                }
                self.push(") AS CHAR CHARACTER SET utf8mb4)")
            }
        }
    }
}

/// Whether a MySQL `COLUMN_TYPE` holds bytes rather than text or numbers.
fn is_mysql_binary(column_type: &str) -> bool {
    let base = column_type.split(['(', ' ']).next().unwrap_or_default().to_ascii_lowercase();
    matches!(
        base.as_str(),
        "binary"
            | "varbinary"
            | "tinyblob"
            | "blob"
            | "mediumblob"
            | "longblob"
            | "bit"
            | "geometry"
            | "point"
            | "linestring"
            | "polygon"
            | "multipoint"
            | "multilinestring"
            | "multipolygon"
            | "geometrycollection"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_double_their_quote() {
        assert_eq!(Dialect::Postgres.ident("cust\"o`mers x"), "\"cust\"\"o`mers x\"");
        assert_eq!(Dialect::MySql.ident("cust\"o`mers x"), "`cust\"o``mers x`");
    }

    #[test]
    fn values_are_bound_never_spliced() {
        let matches = Matches(vec![("email".into(), "a' OR 1=1 --".into()), ("id".into(), "7".into())]);
        let mut statement = Statement::new(Dialect::Postgres);
        statement.push("SELECT 1 WHERE ").filter(&matches);
        assert_eq!(statement.text, "SELECT 1 WHERE (\"email\"::text = $1 OR \"id\"::text = $2)");
        assert_eq!(statement.binds, ["a' OR 1=1 --", "7"]);
    }

    #[test]
    fn binary_types_are_recognised() {
        assert!(is_mysql_binary("varbinary(16)"));
        assert!(is_mysql_binary("LONGBLOB"));
        assert!(!is_mysql_binary("varchar(255)"));
        assert!(!is_mysql_binary("int(11) unsigned"));
    }
}
