//! The ten `Connector*` operations.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::external::Engine;
use super::service::{self, Identities, Unreached};
use super::spec::{self, ACTIVE, Endpoint, Fields};
use crate::http::lenient::{Int, Text, int, opt_bool, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, op};
use crate::state::AppState;
use crate::store::connectors::ConnectorRow;
use crate::users::Identity;

/// The connector operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("ConnectorListSupportedConnectors", supported),
        op("ConnectorCreate", create),
        op("ConnectorUpdate", update),
        op("ConnectorDelete", delete),
        op("ConnectorListConnectors", list),
        op("ConnectorValidateConnectivity", validate),
        op("ConnectorGetTableMetaData", metadata),
        op("ConnectorGetUserData", user_data),
        op("ConnectorGetUserExtraData", user_extra_data),
        op("ConnectorDeleteUser", delete_user),
    ]
}

fn not_found() -> ApiError {
    ApiError::not_found("The connector was not found")
}

fn disabled() -> ApiError {
    ApiError::conflict("The connector is disabled")
}

fn duplicate() -> ApiError {
    ApiError::conflict("Duplicate connector name")
}

/// A request without parameters.
#[derive(Debug, Deserialize)]
struct NoParameters {}

async fn supported(ctx: RequestContext, Body(NoParameters {}): Body<NoParameters>) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    Ok(Reply(json!({"connectors": [Engine::Postgres.name(), Engine::MySql.name()]})))
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(fields): Body<Fields>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    for (field, given) in [
        ("connectorname", fields.connectorname.is_some()),
        ("connectortype", fields.connectortype.is_some()),
        ("dbhost", fields.dbhost.is_some()),
        ("dbname", fields.dbname.is_some()),
        ("tablename", fields.tablename.is_some()),
        ("username", fields.username.is_some()),
    ] {
        if !given {
            return Err(ApiError::bad_request(format!("{field} is required")));
        }
    }
    let mut row = spec::blank();
    let password = fields.apply(&mut row)?;
    service::seal_password(&ctx.keys, &mut row, password.as_deref().unwrap_or_default());
    let event = |id| {
        let created = ConnectorRow { id, ..row.clone() };
        ctx.change_event(None, None, Some(&spec::view(&created)), None)
    };
    let stored = app.db.tenant(ctx.tenant).connectors().insert(&row, event, ctx.now_ms).await;
    let id = ctx.committed(stored, not_found, duplicate)?;
    Ok(Reply(json!({"connectorid": id})))
}

/// `connectorid` as an integer or numeric string.
#[derive(Debug, Deserialize)]
struct ById {
    connectorid: Option<Int>,
    connectorname: Option<Text>,
}

impl ById {
    /// The connector named by `connectorid`, or by `connectorname` alone; with both, they must
    /// be the same connector's (a check against deleting the wrong one).
    async fn find(&self, app: &AppState, ctx: &RequestContext) -> ApiResult<ConnectorRow> {
        let name = text(self.connectorname.clone());
        let row = match (int(self.connectorid), &name) {
            (Some(id), _) => stored(app, ctx, id).await?,
            (None, Some(name)) => {
                let rows = app.db.tenant(ctx.tenant).connectors().list().await?;
                rows.into_iter().find(|row| row.name == *name).ok_or_else(not_found)?
            }
            (None, None) => return Err(ApiError::bad_request("connectorid is required")),
        };
        if name.is_some_and(|name| name != row.name) {
            return Err(not_found());
        }
        Ok(row)
    }
}

/// A stored connector of the caller's tenant.
async fn stored(app: &AppState, ctx: &RequestContext, id: i64) -> ApiResult<ConnectorRow> {
    app.db.tenant(ctx.tenant).connectors().get(id).await?.ok_or_else(not_found)
}

async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(fields): Body<Fields>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let id = int(fields.connectorid).ok_or_else(|| ApiError::bad_request("connectorid is required"))?;
    let before = stored(&app, &ctx, id).await?;
    let mut row = before.clone();
    match fields.apply(&mut row)? {
        Some(password) => service::seal_password(&ctx.keys, &mut row, &password),
        // The kept password goes back sealed under the active key version (a rotation's job
        // may have sealed it again meanwhile).
        None => {
            if let Some(resealed) =
                ctx.keys.reseal(service::SECRET_TABLE, &row.seal_id, &row.secret).map_err(ApiError::internal)?
            {
                row.secret = resealed;
            }
        }
    }
    let event = ctx.change_event(None, Some(&spec::view(&before)), Some(&spec::view(&row)), None);
    let stored = app.db.tenant(ctx.tenant).connectors().update(&before, &row, &event, ctx.now_ms).await;
    ctx.committed(stored, not_found, duplicate)?;
    Ok(Reply(Map::new()))
}

async fn delete(State(app): State<AppState>, ctx: RequestContext, Body(req): Body<ById>) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    let row = req.find(&app, &ctx).await?;
    let pending = pending_of(&app, &ctx, row.id).await?;
    let event = ctx.change_event(None, Some(&spec::view(&row)), None, Some(&json!({"abandonederasures": pending})));
    let stored = app.db.tenant(ctx.tenant).connectors().delete(row.id, &event).await;
    let abandoned = ctx.committed(stored, not_found, duplicate)?;
    Ok(Reply(json!({"abandonederasures": abandoned})))
}

async fn pending_of(app: &AppState, ctx: &RequestContext, id: i64) -> ApiResult<i64> {
    let pending = app.db.tenant(ctx.tenant).connectors().pending().await?;
    Ok(pending.iter().find(|(of, _)| *of == id).map_or(0, |(_, count)| *count))
}

async fn list(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(NoParameters {}): Body<NoParameters>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    let scope = app.db.tenant(ctx.tenant).connectors();
    let pending: BTreeMap<i64, i64> = scope.pending().await?.into_iter().collect();
    let rows: Vec<Value> = scope
        .list()
        .await?
        .iter()
        .map(|row| {
            let mut view = spec::view(row);
            view["pendingerasures"] = json!(pending.get(&row.id).copied().unwrap_or(0));
            view
        })
        .collect();
    Ok(Reply(json!({"total": rows.len(), "rows": rows})))
}

/// A saved connector (`connectorid`) or the full fields of one not saved.
async fn endpoint(app: &AppState, ctx: &RequestContext, fields: &Fields) -> ApiResult<Endpoint> {
    match int(fields.connectorid) {
        Some(id) => {
            let row = stored(app, ctx, id).await?;
            if row.status != ACTIVE {
                return Err(disabled());
            }
            ctx.set_extra(json!({"connectorid": id}));
            service::endpoint_of(&ctx.keys, &row)
        }
        None => fields.endpoint(),
    }
}

async fn validate(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(fields): Body<Fields>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    let endpoint = endpoint(&app, &ctx, &fields).await?;
    match service::open(&app, &endpoint).await {
        Ok((connection, _)) => {
            connection.close().await;
            Ok(Reply(json!({"connected": true})))
        }
        Err(Unreached::Host(refusal @ super::hosts::Refusal::Malformed)) => {
            Err(ApiError::bad_request(refusal.message()))
        }
        Err(unreached) => {
            let reason = unreached.reason();
            ctx.set_extra(json!({"connected": false, "reason": reason}));
            Ok(Reply(json!({"connected": false, "reason": reason})))
        }
    }
}

async fn metadata(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(fields): Body<Fields>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    let endpoint = endpoint(&app, &ctx, &fields).await?;
    let (connection, table) = service::open(&app, &endpoint).await?;
    connection.close().await;
    Ok(Reply(json!({"metadata": table})))
}

/// `{mode, identity, connectorid}` (and, for `ConnectorDeleteUser`, `dryrun`).
#[derive(Debug, Deserialize)]
struct UserRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    connectorid: Option<Int>,
    connectorname: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    dryrun: Option<bool>,
}

/// What a user operation works on: the connector, the user's matches, and an open connection.
struct Reached {
    row: ConnectorRow,
    connection: super::external::Connection,
    table: super::external::Table,
    matches: super::external::Matches,
    /// The table's columns holding identities (what `nullify` clears).
    columns: Vec<String>,
}

/// The connector and user a request names, and a connection to the connector's database
/// (called after the access check: the user is judged again when loaded).
async fn reach_user(app: &AppState, ctx: &RequestContext, req: &UserRequest) -> ApiResult<Reached> {
    let who = Identity::parse(req.mode.clone(), req.identity.clone())?;
    let id = int(req.connectorid).ok_or_else(|| ApiError::bad_request("connectorid is required"))?;
    let row = stored(app, ctx, id).await?;
    if text(req.connectorname.clone()).is_some_and(|name| name != row.name) {
        return Err(not_found());
    }
    if row.status != ACTIVE {
        return Err(disabled());
    }
    let user = crate::users::service::load(app, ctx, &who).await?;
    let identities = Identities::of(&user.subject.token, &user.profile);
    let endpoint = service::endpoint_of(&ctx.keys, &row)?;
    let (connection, table) = service::open(app, &endpoint).await?;
    match identities.matches(&row, &table) {
        Ok((matches, columns)) => Ok(Reached { row, connection, table, matches, columns }),
        Err(err) => {
            connection.close().await;
            Err(err)
        }
    }
}

async fn user_data(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UserRequest>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    let Reached { row, mut connection, table, matches, .. } = reach_user(&app, &ctx, &req).await?;
    let rows = connection.rows(&table, &matches).await;
    connection.close().await;
    let rows = rows.map_err(|failure| ApiError::from(Unreached::Database(failure)))?;
    ctx.set_extra(json!({"connectorid": row.id, "rows": rows.rows.len(), "truncated": rows.truncated}));
    Ok(Reply(json!({"data": {"table": table.name, "rows": rows.rows, "truncated": rows.truncated}})))
}

async fn user_extra_data(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UserRequest>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    let Reached { row, mut connection, table, matches, .. } = reach_user(&app, &ctx, &req).await?;
    let found = connection.referencing_rows(&table, &matches).await;
    connection.close().await;
    let found = found.map_err(|failure| ApiError::from(Unreached::Database(failure)))?;
    let counts: BTreeMap<&String, usize> = found.iter().map(|(table, rows)| (table, rows.rows.len())).collect();
    ctx.set_extra(json!({"connectorid": row.id, "rows": counts}));
    Ok(Reply(json!({"data": found})))
}

async fn delete_user(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UserRequest>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    let dryrun = req.dryrun.unwrap_or(false);
    let Reached { row, mut connection, table, matches, columns } = reach_user(&app, &ctx, &req).await?;
    let how = service::erase_mode(&row, columns);
    let changed = connection.erase(&table, &matches, &how, dryrun).await;
    connection.close().await;
    let changed = changed.map_err(|failure| {
        ctx.set_extra(json!({"connectorid": row.id, "dryrun": dryrun, "failure": failure.reason()}));
        ApiError::from(Unreached::Database(failure))
    })?;
    let total: u64 = changed.values().sum();
    ctx.set_extra(json!({"connectorid": row.id, "dryrun": dryrun, "changed": changed, "total": total}));
    Ok(Reply(json!({"dryrun": dryrun, "changed": changed, "total": total})))
}
