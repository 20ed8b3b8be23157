//! `TenantCreate`, `TenantGet`, `TenantUpdate`, `TenantDelete`, `TenantListTenants` and the public
//! `TenantGetUIConf`.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::{TenantId, name};
use crate::crypto::Key256;
use crate::crypto::keyring::{TenantKeys, kek_check, wrap_master, wrap_master_for_main};
use crate::crypto::secrets::{random_uuid_string, token_digest};
use crate::http::auth::TENANT_HEADER;
use crate::http::lenient::{Int, Text, int, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Page, Reply, RequestContext, Rule, ok, op, page};
use crate::state::AppState;
use crate::store::tenants::{self as store, NewTenant, Sealed, TenantChange, TenantRow};

/// The authenticated tenant operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("TenantCreate", create),
        op("TenantGet", get),
        op("TenantUpdate", update),
        op("TenantDelete", delete),
        op("TenantListTenants", list),
    ]
}

/// The public tenant operations (routed without authentication).
pub fn public_operations() -> Vec<Operation> {
    vec![op("TenantGetUIConf", ui_conf)]
}

/// Table and record labels the admin email is sealed under (in the tenant's own keys).
const EMAIL_TABLE: &str = "tenants";
const EMAIL_RECORD: &[u8] = b"email";
/// Longest organisation name and email kept.
const MAX_FIELD: usize = 256;

fn not_found() -> ApiError {
    ApiError::not_found("The tenant record was not found")
}

fn duplicate() -> ApiError {
    ApiError::conflict("Duplicate tenant name")
}

fn field(name: &str, value: Option<Text>) -> ApiResult<Option<String>> {
    let value = text(value).map(|v| v.trim().to_owned());
    match value {
        Some(v) if v.len() > MAX_FIELD => Err(ApiError::bad_request(format!("The {name} is too long"))),
        other => Ok(other),
    }
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    tenantname: Option<Text>,
    tenantorg: Option<Text>,
    email: Option<Text>,
}

#[derive(Serialize)]
struct CreateReply {
    tenantid: i64,
    xtoken: String,
}

/// Creates a tenant with its own master key and answers its admin token, once: only its digest
/// is stored.
async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<CreateReply>> {
    ctx.require(Rule::MainTenantAdmin)?;
    let tenantname = field("tenantname", req.tenantname)?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: tenantname"))?;
    name::check(&tenantname)?;
    let org = field("tenantorg", req.tenantorg)?.unwrap_or_default();
    let email = field("email", req.email)?.filter(|e| !e.is_empty());
    let xtoken = random_uuid_string();
    let token_id = random_uuid_string();
    let master = Key256::random();
    let kek = app.keys.kek();
    let new = NewTenant {
        name: &tenantname,
        org: &org,
        now: ctx.now,
        token_id: &token_id,
        token_digest: token_digest(&xtoken),
        kek_check: kek_check(&kek),
        actor: ctx.tenant,
    };
    // The main tenant's keys read afresh: the recovery wrapping must be under its latest version.
    app.keys.forget(TenantId::MAIN);
    let main = app.tenant_keys(TenantId::MAIN).await?;
    let stored = store::create(&app.db, &new, |id| {
        // Nothing is cached here: the transaction may still fail, and the id with it.
        let own = TenantKeys::from_master(id, 1, master.clone());
        let details = json!({"tenantid": id, "tenantname": tenantname, "tenantorg": org});
        Sealed {
            master_wrapped: wrap_master(&kek, id, 1, &master),
            recovery_wrapped: wrap_master_for_main(&main, id, 1, &master),
            email: email.as_ref().map(|e| own.seal(EMAIL_TABLE, EMAIL_RECORD, e.as_bytes())),
            event: ctx.change_event(None, None, None, Some(&details)),
            main_version: main.active_version(),
        }
    })
    .await;
    let tenantid = ctx.committed(stored, not_found, duplicate)?;
    Ok(Reply(CreateReply { tenantid: tenantid.get(), xtoken }))
}

/// Names a tenant by `tenantid` (a number or numeric string) or `tenantname`.
#[derive(Debug, Deserialize)]
struct Target {
    tenantid: Option<Int>,
    tenantname: Option<Text>,
}

/// The tenant a call is about: the one named, else the request's own. A caller other than the
/// vault's root may only name its own: another is 403, whether or not it exists.
pub(crate) async fn target(
    app: &AppState,
    ctx: &RequestContext,
    id: Option<Int>,
    name: Option<String>,
) -> ApiResult<TenantId> {
    let named = named(app, id, name).await;
    if !ctx.principal.is_vault_admin() {
        return match named {
            Ok(None) => Ok(ctx.tenant),
            Ok(Some(id)) if id == ctx.principal.tenant => Ok(id),
            _ => Err(ApiError::access_denied()),
        };
    }
    Ok(named?.unwrap_or(ctx.tenant))
}

/// The tenant named by `tenantid` (first) or `tenantname`, if either is given; 404 for an
/// unknown name.
async fn named(app: &AppState, id: Option<Int>, name: Option<String>) -> ApiResult<Option<TenantId>> {
    match (int(id), name.filter(|n| !n.trim().is_empty())) {
        (Some(id), _) => Ok(Some(TenantId::new(id))),
        (None, Some(name)) => app.tenant_id(name.trim()).await?.ok_or_else(not_found).map(Some),
        (None, None) => Ok(None),
    }
}

#[derive(Serialize)]
struct GetReply {
    tenantid: i64,
    tenantname: String,
    tenantorg: String,
    email: String,
}

async fn get(State(app): State<AppState>, ctx: RequestContext, Body(req): Body<Target>) -> ApiResult<Reply<GetReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let id = target(&app, &ctx, req.tenantid, text(req.tenantname)).await?;
    let row = store::get(&app.db, id).await?.ok_or_else(not_found)?;
    ctx.set_extra(json!({"tenantid": id}));
    let email = open_email(&app, &row).await?;
    Ok(Reply(GetReply {
        tenantid: id.get(),
        tenantname: row.name,
        tenantorg: row.org,
        email: email.unwrap_or_default(),
    }))
}

async fn open_email(app: &AppState, row: &TenantRow) -> ApiResult<Option<String>> {
    let Some(sealed) = &row.email else { return Ok(None) };
    let keys = app.tenant_keys(row.id).await?;
    let plain = keys.open(EMAIL_TABLE, EMAIL_RECORD, sealed)?;
    Ok(Some(String::from_utf8_lossy(&plain).into_owned()))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    tenantid: Option<Int>,
    tenantname: Option<Text>,
    tenantorg: Option<Text>,
    email: Option<Text>,
}

/// Renames a tenant or changes its organisation or email. With a tenant's own token the tenant
/// is implied, so `tenantname` is the new name; a main-tenant caller names the tenant by
/// `tenantid` (or acts in the tenant of its `X-Bunker-Tenant`).
async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::TenantAdmin)?;
    let id = target(&app, &ctx, req.tenantid, None).await?;
    let rename = field("tenantname", req.tenantname)?.filter(|n| !n.is_empty());
    if let Some(new_name) = &rename {
        name::check(new_name)?;
        // Callers and the vendor's clients name the main tenant `main` in X-Bunker-Tenant.
        if id.is_main() && new_name != crate::vault::MAIN_TENANT_NAME {
            return Err(ApiError::Forbidden("The main tenant cannot be renamed".into()));
        }
    }
    let before = store::get(&app.db, id).await?.ok_or_else(not_found)?;
    let email = match field("email", req.email)?.filter(|e| !e.is_empty()) {
        Some(email) => Some(app.tenant_keys(id).await?.seal(EMAIL_TABLE, EMAIL_RECORD, email.as_bytes())),
        None => None,
    };
    let change = TenantChange { name: rename.clone(), org: field("tenantorg", req.tenantorg)?, email };
    let details =
        json!({"tenantid": id, "tenantname": rename.as_deref().unwrap_or(&before.name), "renamed": rename.is_some()});
    let event = ctx.change_event(None, None, None, Some(&details));
    let stored = store::update(&app.db, id, &change, ctx.now_ms, &event).await;
    ctx.committed(stored, not_found, duplicate)?;
    if rename.is_some() {
        app.caches.invalidate_tenant_name(&before.name);
    }
    Ok(ok())
}

/// Deletes a tenant: its master key first (crypto-shredding: every record of it is unreadable
/// from that commit on, backups included), its tokens with it on every replica, then its rows.
async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<Target>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::MainTenantAdmin)?;
    let named = named(&app, req.tenantid, text(req.tenantname))
        .await?
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: tenantid"))?;
    if named.is_main() {
        return Err(ApiError::Forbidden("The main tenant cannot be deleted".into()));
    }
    let row = store::get(&app.db, named).await?.ok_or_else(not_found)?;
    let event = ctx.change_event(None, None, None, Some(&json!({"tenantid": named, "tenantname": row.name})));
    let stored = store::delete(&app.db, named, ctx.now_ms, &event).await;
    ctx.committed(stored, not_found, duplicate)?;
    app.forget_tenant(named);
    // The rows go now; if this fails or the process stops, the sweeper finishes the purge.
    if let Err(err) = store::purge(&app.db, named, ctx.now).await {
        tracing::warn!(error = %err, tenant = named.get(), "tenant rows not purged yet; the sweeper will retry");
    }
    app.checkpoints.after_erasure();
    Ok(ok())
}

#[derive(Debug, Deserialize)]
struct ListRequest {
    offset: Option<Int>,
    limit: Option<Int>,
}

async fn list(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ListRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::MainTenantAdmin)?;
    let (offset, limit) = page(req.offset, req.limit);
    let (total, rows) = store::list(&app.db, offset, limit).await?;
    let rows =
        rows.into_iter().map(|row| json!({"tenantid": row.id, "tenantname": row.name, "tenantorg": row.org})).collect();
    Ok(Reply(Page { total, rows }))
}

/// Public, not audited: the presentation settings of the tenant named by `X-Bunker-Tenant` (the
/// main tenant without one). An unknown tenant gets the same shape, empty, as one without
/// settings, so the answer says nothing more than a sub-domain would.
async fn ui_conf(State(app): State<AppState>, headers: HeaderMap) -> Response {
    // A header that is present names a tenant: empty or not a valid name is an unknown tenant,
    // not a fall back to the main one.
    let name = headers.get(TENANT_HEADER).map(|v| v.to_str().map(str::trim).unwrap_or_default());
    let found = match name {
        None => Ok(Some(TenantId::MAIN)),
        Some(name) if name::check(name).is_err() => Ok(None),
        Some(name) => app.tenant_id(name).await,
    };
    let row = match found {
        Ok(Some(id)) => store::get(&app.db, id).await.map_err(ApiError::from),
        Ok(None) => Ok(None),
        Err(err) => Err(err),
    };
    match row {
        Ok(row) => {
            let (tenantname, tenantorg) = row.map(|r| (r.name, r.org)).unwrap_or_default();
            Reply(json!({"ui": {"tenantname": tenantname, "tenantorg": tenantorg}})).into_response()
        }
        Err(err) => err.into_response(),
    }
}
