//! The user's rows in connectors marked for reports, for `SystemGetUserReport` and its HTML page.

use serde_json::{Value, json};

use super::service::{self, Identities};
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::users::LoadedUser;

/// One entry per active connector marked for reports: the user's rows in its table, or why
/// they could not be read (a connected database being down does not fail the report).
pub async fn for_user(app: &AppState, ctx: &RequestContext, user: &LoadedUser) -> ApiResult<Vec<Value>> {
    let identities = Identities::of(&user.subject.token, &user.profile);
    let mut entries = Vec::new();
    for row in app.db.tenant(ctx.tenant).connectors().list().await? {
        if !row.in_reports || row.status != super::spec::ACTIVE {
            continue;
        }
        let head = json!({"connectorid": row.id, "connectorname": row.name, "tablename": row.tablename});
        let found = rows_of(app, ctx, &row, &identities).await;
        entries.push(match found {
            Ok((rows, truncated)) => merge(head, json!({"rows": rows, "truncated": truncated})),
            Err(reason) => merge(head, json!({"rows": [], "error": reason})),
        });
    }
    Ok(entries)
}

async fn rows_of(
    app: &AppState,
    ctx: &RequestContext,
    row: &crate::store::connectors::ConnectorRow,
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
