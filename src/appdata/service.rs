//! App data operations, independent of HTTP.

use serde_json::{Value, json};

use super::record::{self, AppName};
use crate::expiry::Lifetime;
use crate::http::limits::check_record_size;
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::appdata::{AppChange, AppRow, NewApp};
use crate::store::requests::Resolution;
use crate::store::users::VersionRow;
use crate::users::LoadedUser;
use crate::users::record::md5_hex;

/// 404 for a user without a record for the app.
pub fn app_not_found() -> ApiError {
    ApiError::not_found("The app record was not found")
}

/// The audit details naming the app (app names are not personal data).
pub fn app_extra(app: &AppName) -> Value {
    json!({ "appname": app.as_str() })
}

/// Creates version 1 of a user's app record; 409 when the user already has a live one.
pub async fn create(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    name: &AppName,
    data: &Value,
    lifetime: Lifetime,
) -> ApiResult<()> {
    check_record_size(data, app.settings.max_record_size, "appdata")?;
    let subject = &user.subject;
    let sealed = record::seal_current(&subject.key, ctx.tenant, &subject.rid, name, data);
    let event = ctx.change_event(Some(subject), None, Some(data), Some(&app_extra(name)));
    let new = NewApp { rid: &subject.rid, appname: name.as_str(), data: &sealed, now: ctx.now, lifetime };
    let stored = app.db.tenant(ctx.tenant).appdata().insert(&new, &event).await;
    ctx.committed(stored, ApiError::user_not_found, || ApiError::conflict("Duplicate app record"))
}

/// The current live record of a user's app, opened; 404 when there is none or it expired.
/// Reading it is an access: a sliding lifetime is extended (see [`Lifetime::extension`]).
pub async fn current(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    name: &AppName,
) -> ApiResult<(AppRow, Value)> {
    let rid = &user.subject.rid;
    let mut row =
        app.db.tenant(ctx.tenant).appdata().get(rid, name.as_str(), ctx.now).await?.ok_or_else(app_not_found)?;
    let data = record::open_current(&user.subject.key, ctx.tenant, rid, name, &row.data)?;
    if let Some(expires_at) = row.lifetime.extension(ctx.now) {
        // No audit event of its own: the event of the operation that read the record covers it.
        app.db.tenant(ctx.tenant).appdata().extend(rid, name.as_str(), ctx.now, expires_at).await?;
        row.lifetime.expires_at = Some(expires_at);
    }
    Ok((row, data))
}

/// One version of an app record, with the record's lifetime.
pub struct AppVersion {
    /// The version number.
    pub version: i64,
    /// Its app data.
    pub data: Value,
    /// The record's lifetime (after this access).
    pub lifetime: Lifetime,
}

/// The app data of one version (current or superseded).
pub async fn version_data(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    name: &AppName,
    version: Option<i64>,
) -> ApiResult<AppVersion> {
    let (row, data) = current(app, ctx, user, name).await?;
    let version = version.filter(|v| *v > 0).unwrap_or(row.version);
    if version == row.version {
        return Ok(AppVersion { version, data, lifetime: row.lifetime });
    }
    let old = app
        .db
        .tenant(ctx.tenant)
        .appdata()
        .version(&user.subject.rid, name.as_str(), version)
        .await?
        .ok_or_else(|| ApiError::not_found("The app version was not found"))?;
    let data = record::open_version(&user.subject.key, ctx.tenant, &user.subject.rid, name, old.version, &old.data)?;
    Ok(AppVersion { version, data, lifetime: row.lifetime })
}

/// Applies `change` (a function of the current app data) under a row lock, keeping the
/// superseded data as a version; concurrent changes apply one after the other. The lifetime
/// set at creation stays; as an access, a change restarts a sliding period (in the same write).
/// With `resolves`, the approval request that asked for the change closes with it.
pub async fn change<F>(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    name: &AppName,
    resolves: Option<&Resolution>,
    change: F,
) -> ApiResult<()>
where
    F: FnOnce(&Value) -> ApiResult<Value>,
{
    let subject = &user.subject;
    let (tenant, rid) = (ctx.tenant, &subject.rid);
    let result = app
        .db
        .tenant(tenant)
        .appdata()
        .modify(rid, name.as_str(), ctx.now, resolves, |row: &AppRow| {
            let current = record::open_current(&subject.key, tenant, rid, name, &row.data)?;
            let data = change(&current)?;
            if !data.is_object() {
                return Err(ApiError::bad_request("The appdata must remain a JSON object"));
            }
            check_record_size(&data, app.settings.max_record_size, "appdata")?;
            let previous = VersionRow {
                version: row.version,
                created_at: row.updated_at,
                data: record::seal_version(&subject.key, tenant, rid, name, row.version, &current),
            };
            let event = ctx.change_event(Some(subject), Some(&current), Some(&data), Some(&app_extra(name)));
            let update = AppChange {
                data: record::seal_current(&subject.key, tenant, rid, name, &data),
                previous,
                now: ctx.now,
                expires_at: row.lifetime.expiry().expires_at(ctx.now),
                keep_versions: app.settings.keep_versions,
            };
            Ok((update, event))
        })
        .await;
    match result {
        Ok(Ok(())) => {
            ctx.mark_committed();
            Ok(())
        }
        Ok(Err(err)) => Err(err),
        Err(StoreError::NotFound) => Err(app_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// Deletes a user's app record and its versions.
pub async fn delete(app: &AppState, ctx: &RequestContext, user: &LoadedUser, name: &AppName) -> ApiResult<()> {
    let event = ctx.change_event(Some(&user.subject), None, None, Some(&app_extra(name)));
    if !app.db.tenant(ctx.tenant).appdata().delete(&user.subject.rid, name.as_str(), ctx.now, &event).await? {
        return Err(app_not_found());
    }
    ctx.mark_committed();
    Ok(())
}

/// The app names a user has live records for, sorted.
pub async fn user_app_names(app: &AppState, ctx: &RequestContext, user: &LoadedUser) -> ApiResult<Vec<String>> {
    Ok(app.db.tenant(ctx.tenant).appdata().user_app_names(&user.subject.rid, ctx.now).await?)
}

/// The app names used by the tenant's live users, sorted.
pub async fn app_names(app: &AppState, ctx: &RequestContext) -> ApiResult<Vec<String>> {
    Ok(app.db.tenant(ctx.tenant).appdata().app_names(ctx.now).await?)
}

/// `{version, optime, md5}` for every kept version, oldest first, the current one last.
pub async fn versions(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    name: &AppName,
) -> ApiResult<Vec<Value>> {
    let (row, data) = current(app, ctx, user, name).await?;
    let (key, rid) = (&user.subject.key, &user.subject.rid);
    let kept = app.db.tenant(ctx.tenant).appdata().versions(rid, name.as_str()).await?;
    let mut out = Vec::with_capacity(kept.len() + 1);
    for old in kept {
        let data = record::open_version(key, ctx.tenant, rid, name, old.version, &old.data)?;
        out.push(json!({"version": old.version, "optime": old.created_at, "md5": md5_hex(&data)}));
    }
    out.push(json!({"version": row.version, "optime": row.updated_at, "md5": md5_hex(&data)}));
    Ok(out)
}
