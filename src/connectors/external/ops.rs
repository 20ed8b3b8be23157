//! The operations, the same for every engine: statements built in `sql`, run by a `Driver`.

use std::collections::BTreeMap;

use futures::TryStreamExt;
use serde_json::{Map, Value};

use super::Failure;
use super::catalogue::{Erase, ForeignKey, Matches, Rows, Table};
use super::deadline::Deadline;
use super::driver::Driver;
use super::failure::from_sqlx;
use super::sql::Statement;

/// The table named exactly `name`.
pub(super) async fn table<D: Driver>(driver: &mut D, name: &str) -> Result<Table, Failure> {
    // No catalogue holds such a name, and PostgreSQL refuses a NUL even as a bound value.
    if name.is_empty() || name.contains('\0') {
        return Err(Failure::NoSuchTable);
    }
    driver.table(name).await
}

/// The matched rows of `table`.
pub(super) async fn rows<D: Driver>(driver: &mut D, table: &Table, matches: &Matches) -> Result<Rows, Failure> {
    matches.check(table)?;
    if matches.is_empty() {
        return Ok(Rows::default());
    }
    let budget = driver.limits().max_bytes;
    let mut statement = Statement::new(D::DIALECT);
    statement.push("SELECT ");
    capped_row(&mut statement, table, budget);
    statement.push(" FROM ").push(&driver.relation(&table.name)).push(" AS t WHERE ").filter(matches);
    Ok(collect(driver, statement, budget).await?.0)
}

/// Most tables whose rows one call reads or erases through their foreign keys.
pub(super) const MAX_REFERENCING: usize = 32;

/// A row as JSON text, cut by the server past `budget` bytes: a huge row is never sent whole
/// (the cut text is over the budget, so `collect` stops there).
fn capped_row(statement: &mut Statement, table: &Table, budget: usize) {
    statement.push("LEFT(").json_row(table).push(&format!(", {})", budget.saturating_add(1)));
}

/// The rows of other tables that reference the matched rows of `table`, by table.
pub(super) async fn referencing_rows<D: Driver>(
    driver: &mut D,
    table: &Table,
    matches: &Matches,
) -> Result<BTreeMap<String, Rows>, Failure> {
    matches.check(table)?;
    let mut found = BTreeMap::new();
    let parent = driver.relation(&table.name);
    // One budget of bytes for every table's rows together.
    let mut budget = driver.limits().max_bytes;
    for (name, keys) in referencing(table)? {
        if matches.is_empty() {
            found.insert(name.to_owned(), Rows::default());
            continue;
        }
        // Its columns, for engines that build the JSON object column by column.
        let child = driver.table(name).await?;
        let mut statement = Statement::new(D::DIALECT);
        statement.push("SELECT ");
        capped_row(&mut statement, &child, budget);
        statement
            .push(" FROM ")
            .push(&driver.relation(name))
            .push(" AS t WHERE ")
            .any_reference(&keys, &parent, matches);
        let (rows, used) = collect(driver, statement, budget).await?;
        budget = budget.saturating_sub(used);
        found.insert(name.to_owned(), rows);
    }
    Ok(found)
}

/// Erases (or, with `dryrun`, counts) the matched rows of `table`, in one transaction.
pub(super) async fn erase<D: Driver>(
    driver: &mut D,
    table: &Table,
    matches: &Matches,
    how: &Erase,
    dryrun: bool,
) -> Result<BTreeMap<String, u64>, Failure> {
    matches.check(table)?;
    let children = match how {
        Erase::Delete => referencing(table)?,
        Erase::Nullify(columns) => {
            nullable(table, columns)?;
            BTreeMap::new()
        }
    };
    let mut counts: BTreeMap<String, u64> = children.keys().map(|name| (name.to_string(), 0)).collect();
    counts.insert(table.name.clone(), 0);
    let nothing_to_set = matches!(how, Erase::Nullify(columns) if columns.is_empty());
    if matches.is_empty() || nothing_to_set {
        return Ok(counts);
    }
    let parent = driver.relation(&table.name);
    let deadline = driver.deadline();
    let mut statements = Vec::new();
    for (name, keys) in &children {
        let mut statement = Statement::new(D::DIALECT);
        let verb = if dryrun { "SELECT COUNT(*) FROM " } else { "DELETE FROM " };
        statement.push(verb).push(&driver.relation(name)).push(" WHERE ").any_reference(keys, &parent, matches);
        statements.push((name.to_string(), statement));
    }
    let mut statement = Statement::new(D::DIALECT);
    match how {
        _ if dryrun => statement.push("SELECT COUNT(*) FROM ").push(&parent),
        Erase::Delete => statement.push("DELETE FROM ").push(&parent),
        Erase::Nullify(columns) => statement.push("UPDATE ").push(&parent).push(" SET ").set_null(columns),
    };
    statement.push(" WHERE ").filter(matches);
    statements.push((table.name.clone(), statement));

    if dryrun {
        for (name, statement) in &statements {
            *counts.entry(name.clone()).or_default() += deadline.run(driver.count(statement)).await?;
        }
        return Ok(counts);
    }
    deadline.run(driver.simple("BEGIN")).await?;
    let outcome = execute_all(driver, &deadline, &statements, counts).await;
    finish(driver, &deadline, outcome).await
}

/// Runs the statements in order, adding up the rows each changed.
async fn execute_all<D: Driver>(
    driver: &mut D,
    deadline: &Deadline,
    statements: &[(String, Statement)],
    mut counts: BTreeMap<String, u64>,
) -> Result<BTreeMap<String, u64>, Failure> {
    for (name, statement) in statements {
        *counts.entry(name.clone()).or_default() += deadline.run(driver.execute(statement)).await?;
    }
    Ok(counts)
}

/// Ends the transaction: COMMIT after success, ROLLBACK after a failure.
async fn finish<D: Driver, T>(driver: &mut D, deadline: &Deadline, outcome: Result<T, Failure>) -> Result<T, Failure> {
    match outcome {
        Ok(value) => {
            deadline.run(driver.simple("COMMIT")).await?;
            Ok(value)
        }
        Err(failure) => {
            // A connection abandoned mid-statement is dropped, which rolls back on the server.
            if !deadline.ran_out() {
                let _ = deadline.run(driver.simple("ROLLBACK")).await;
            }
            Err(failure)
        }
    }
}

/// Fails unless every column exists and accepts NULL.
fn nullable(table: &Table, columns: &[String]) -> Result<(), Failure> {
    for name in columns {
        let column = table.column(name).ok_or_else(|| Failure::NoSuchColumn(name.clone()))?;
        if !column.nullable {
            return Err(Failure::NotNullable(name.clone()));
        }
    }
    Ok(())
}

/// The foreign keys pointing at `table`, by referencing table; at most [`MAX_REFERENCING`]
/// tables.
fn referencing(table: &Table) -> Result<BTreeMap<&str, Vec<&ForeignKey>>, Failure> {
    let mut by_table: BTreeMap<&str, Vec<&ForeignKey>> = BTreeMap::new();
    for key in &table.referencedby {
        by_table.entry(key.table.as_str()).or_default().push(key);
    }
    if by_table.len() > MAX_REFERENCING {
        return Err(Failure::TooManyReferences);
    }
    Ok(by_table)
}

/// The statement's JSON rows within the limits, and the bytes they took: `max_rows` (one more
/// is fetched, to know), and `budget` bytes of JSON text, a row that would pass it stops the
/// rows (or, alone, is too large).
async fn collect<D: Driver>(driver: &mut D, mut statement: Statement, budget: usize) -> Result<(Rows, usize), Failure> {
    let limits = driver.limits().clone();
    statement.push(&format!(" LIMIT {}", limits.max_rows.saturating_add(1)));
    driver
        .deadline()
        .within(async {
            let mut stream = driver.fetch(&statement);
            let mut rows = Rows::default();
            let mut bytes = 0usize;
            while let Some(text) = stream.try_next().await.map_err(|error| from_sqlx(&error))? {
                if rows.rows.len() == limits.max_rows || bytes.saturating_add(text.len()) > budget {
                    if rows.rows.is_empty() && limits.max_rows > 0 {
                        return Err(Failure::TooLarge);
                    }
                    rows.truncated = true;
                    break;
                }
                bytes = bytes.saturating_add(text.len());
                let row: Map<String, Value> = serde_json::from_str(&text).map_err(|_| Failure::Query)?;
                rows.rows.push(row);
            }
            Ok((rows, bytes))
        })
        .await
}
