//! The user's rows in connectors marked for reports, for `SystemGetUserReport` and its HTML page.

use serde_json::{Value, json};

use super::service::{self, Identities};
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::store::connectors::ConnectorRow;
use crate::users::LoadedUser;

/// Connected databases a report reads at once.
const CONCURRENT: usize = 4;
/// Longest one connected database may take.
const ENTRY_TIME: std::time::Duration = std::time::Duration::from_secs(15);
/// Longest the connected databases of one report may take together.
const TOTAL_TIME: std::time::Duration = std::time::Duration::from_secs(30);

/// One entry per active connector marked for reports: the user's rows in its table, or why
/// they could not be read (a connected database being down does not fail the report).
pub async fn for_user(app: &AppState, ctx: &RequestContext, user: &LoadedUser) -> ApiResult<Vec<Value>> {
    let identities = &Identities::of(&user.subject.token, &user.profile);
    let rows = app.db.tenant(ctx.tenant).connectors().list().await?;
    let sources: Vec<ConnectorRow> =
        rows.into_iter().filter(|row| row.in_reports && row.status == super::spec::ACTIVE).collect();
    // A few databases at a time, in the connectors' order: one slow database does not hold up
    // the others, and a report does not open a connection to every database at once.
    // Within a budget of time of its own, well inside the request's: a database that does not
    // answer in time is named as such, the rest of the report still comes.
    let deadline = tokio::time::Instant::now() + TOTAL_TIME;
    let mut entries = Vec::with_capacity(sources.len());
    for group in sources.chunks(CONCURRENT) {
        let within = deadline.saturating_duration_since(tokio::time::Instant::now()).min(ENTRY_TIME);
        let reads = group.iter().map(|row| async move {
            match tokio::time::timeout(within, entry(app, ctx, row, identities)).await {
                Ok(found) => found,
                Err(_) => merge(head(row), json!({"rows": [], "error": "the database did not answer in time"})),
            }
        });
        entries.extend(futures::future::join_all(reads).await);
    }
    Ok(entries)
}

fn head(row: &ConnectorRow) -> Value {
    json!({"connectorid": row.id, "connectorname": row.name, "tablename": row.tablename})
}

/// One connector's entry: the user's rows, or why they could not be read.
async fn entry(app: &AppState, ctx: &RequestContext, row: &ConnectorRow, identities: &Identities) -> Value {
    match rows_of(app, ctx, row, identities).await {
        Ok((rows, truncated)) => merge(head(row), json!({"rows": rows, "truncated": truncated})),
        Err(reason) => merge(head(row), json!({"rows": [], "error": reason})),
    }
}

async fn rows_of(
    app: &AppState,
    ctx: &RequestContext,
    row: &ConnectorRow,
    identities: &Identities,
) -> Result<(Vec<serde_json::Map<String, Value>>, bool), String> {
    let endpoint = service::endpoint_of(&ctx.keys, row).map_err(|_| "Internal error".to_owned())?;
    let (mut connection, table) = service::open(app, &endpoint).await.map_err(|unreached| unreached.reason())?;
    let found = match identities.matches(row, &table) {
        Ok((matches, _)) => connection.rows(&table, &matches).await.map_err(|failure| failure.reason()),
        Err(ApiError::Conflict(message)) => Err(message.into_owned()),
        Err(_) => Err("Internal error".to_owned()),
    };
    connection.close().await;
    found.map(|rows| (rows.rows, rows.truncated))
}

fn merge(mut head: Value, tail: Value) -> Value {
    if let (Some(head), Value::Object(tail)) = (head.as_object_mut(), tail) {
        head.extend(tail);
    }
    head
}
