//! Approval requests, independent of HTTP.

use serde_json::{Map, Value, json};

use super::record::{self, Ask};
use crate::crypto::IndexKind;
use crate::crypto::secrets::random_uuid_string;
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::requests::{Created, NewRequest, OPEN, RequestRow, Resolution};
use crate::users::{self, Identity, LoadedUser};
use crate::{agreements, appdata};

/// Status of an approved request.
pub const APPROVED: &str = "approved";
/// Status of a cancelled request (Databunker's spelling).
pub const CANCELED: &str = "canceled";

/// 404 for an unknown request (or one of another tenant).
pub fn request_not_found() -> ApiError {
    ApiError::not_found("The user request was not found")
}

fn request_closed() -> ApiError {
    ApiError::conflict("This user request is closed")
}

/// Non-identifying facts naming a request in audit events.
fn request_extra(uuid: &str, action: &str) -> Value {
    json!({ "requestuuid": uuid, "action": action })
}

/// Files a request for `user`; answers the uuid of an identical open request instead of
/// filing a duplicate.
pub async fn submit(app: &AppState, ctx: &RequestContext, user: &LoadedUser, ask: &Ask) -> ApiResult<String> {
    let (subject, tenant) = (&user.subject, ctx.tenant);
    let uuid = random_uuid_string();
    let change = ask.change();
    let new = NewRequest {
        uuid: uuid.clone(),
        rid: subject.rid.clone(),
        action: ask.action(),
        target: ask.target().to_owned(),
        change: change.map(|change| record::seal_change(&subject.key, tenant, &uuid, change)),
        now: ctx.now,
    };
    let event = ctx.change_event(Some(subject), None, change, Some(&request_extra(&uuid, ask.action())));
    let created = app
        .db
        .tenant(tenant)
        .requests()
        .create(&new, &event, |open: &[RequestRow]| {
            for row in open {
                let theirs = row.change.as_ref().map(|blob| record::open_change(&subject.key, tenant, &row.uuid, blob));
                if theirs.transpose()?.as_ref() == change {
                    return Ok::<_, ApiError>(Some(row.uuid.clone()));
                }
            }
            Ok(None)
        })
        .await;
    match created {
        Ok(Ok(Created::New)) => {
            ctx.mark_committed();
            Ok(uuid)
        }
        Ok(Ok(Created::Existing(existing))) => {
            ctx.set_extra(json!({ "requestuuid": existing, "action": ask.action(), "existing": true }));
            Ok(existing)
        }
        Ok(Err(err)) => Err(err),
        Err(StoreError::NotFound) => Err(ApiError::user_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// A request with its user, opened.
pub struct Loaded {
    /// The stored row.
    pub row: RequestRow,
    /// The user it is about (the request's audit subject).
    pub user: LoadedUser,
}

/// Finds a request of the tenant and opens its user; 404 when either is gone.
pub async fn load(app: &AppState, ctx: &RequestContext, uuid: &str) -> ApiResult<Loaded> {
    let row = app.db.tenant(ctx.tenant).requests().get(uuid).await?.ok_or_else(request_not_found)?;
    let user = match users::service::load_by_rid(app, ctx, &row.rid).await {
        Err(ApiError::NotFound(_)) => return Err(request_not_found()),
        other => other?,
    };
    Ok(Loaded { row, user })
}

/// The whole request, its change and reason opened.
pub fn view(ctx: &RequestContext, row: &RequestRow, user: &LoadedUser) -> ApiResult<Value> {
    let key = &user.subject.key;
    let mut out = summary(row);
    out.insert("token".into(), json!(user.subject.token));
    if let Some(blob) = &row.change {
        out.insert("change".into(), record::open_change(key, ctx.tenant, &row.uuid, blob)?);
    }
    if let Some(blob) = &row.reason {
        out.insert("reason".into(), json!(record::open_reason(key, ctx.tenant, &row.uuid, blob)?));
    }
    Ok(Value::Object(out))
}

/// The clear facts of a request: what, about which app or agreement, status and times.
pub fn summary(row: &RequestRow) -> Map<String, Value> {
    let mut out = Map::new();
    out.insert("requestuuid".into(), json!(row.uuid));
    out.insert("requesttype".into(), json!(row.action));
    out.insert("action".into(), json!(row.action));
    out.insert("status".into(), json!(row.status));
    match row.action.as_str() {
        record::action::CHANGE_APP_DATA => _ = out.insert("app".into(), json!(row.target)),
        record::action::AGREEMENT_WITHDRAW => _ = out.insert("brief".into(), json!(row.target)),
        _ => {}
    }
    out.insert("creationtime".into(), json!(row.created_at));
    out.insert("when".into(), json!(row.updated_at));
    out
}

/// A page of a user's requests, oldest first, with the total.
pub async fn list(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    offset: i64,
    limit: i64,
) -> ApiResult<(Vec<Value>, i64)> {
    let (rows, total) = app.db.tenant(ctx.tenant).requests().list(&user.subject.rid, offset, limit).await?;
    Ok((rows.iter().map(|row| Value::Object(summary(row))).collect(), total))
}

fn resolution(ctx: &RequestContext, loaded: &Loaded, status: &'static str, reason: Option<&str>) -> Resolution {
    let (key, uuid) = (&loaded.user.subject.key, &loaded.row.uuid);
    Resolution {
        uuid: uuid.clone(),
        status,
        reason: reason.map(|reason| record::seal_reason(key, ctx.tenant, uuid, reason)),
        now: ctx.now,
    }
}

/// Every request of a user, oldest first, opened.
pub async fn all_for_user(app: &AppState, ctx: &RequestContext, user: &LoadedUser) -> ApiResult<Vec<Value>> {
    let (rows, _) = app.db.tenant(ctx.tenant).requests().list(&user.subject.rid, 0, i64::MAX).await?;
    rows.iter().map(|row| view(ctx, row, user)).collect()
}

/// Applies what an open request asks for and closes it, in one transaction. When applying
/// fails (the change is no longer possible, e.g. a clashing email), the request stays open.
pub async fn approve(app: &AppState, ctx: &RequestContext, uuid: &str, reason: Option<&str>) -> ApiResult<()> {
    let loaded = load(app, ctx, uuid).await?;
    let row = &loaded.row;
    if row.status != OPEN {
        return Err(request_closed());
    }
    ctx.set_extra(request_extra(&row.uuid, &row.action));
    let (key, tenant) = (&loaded.user.subject.key, ctx.tenant);
    let change = row.change.as_ref().map(|blob| record::open_change(key, tenant, &row.uuid, blob)).transpose()?;
    let ask = Ask::from_stored(&row.action, &row.target, change)
        .ok_or_else(|| ApiError::Internal(format!("stored request with unknown action {:?}", row.action).into()))?;
    let resolves = resolution(ctx, &loaded, APPROVED, reason);
    let user = &loaded.user;
    let who = Identity { kind: IndexKind::Token, normalised: user.subject.token.clone() };
    match ask {
        Ask::ChangeProfile(changes) => {
            users::service::change(app, ctx, &who, Some(&resolves), |current| {
                Ok(users::service::merged(current, &changes))
            })
            .await
        }
        Ask::PatchProfile(patch) => {
            let operations = users::service::required_patch(Some(&patch), app.settings.max_patch_operations)?;
            let max = app.settings.max_record_size;
            users::service::change(app, ctx, &who, Some(&resolves), |current| {
                users::service::patched(current, &operations, max)
            })
            .await
        }
        Ask::ForgetMe => users::service::delete(app, ctx, &who, Some(&resolves)).await,
        Ask::ChangeAppData(name, changes) => {
            appdata::service::change(app, ctx, user, &name, Some(&resolves), |current| {
                Ok(users::service::merged(current, &changes))
            })
            .await
        }
        Ask::AgreementWithdraw(brief) => agreements::service::cancel(app, ctx, user, &brief, Some(&resolves)).await,
    }
}

/// Closes an open request without applying it.
pub async fn cancel(app: &AppState, ctx: &RequestContext, uuid: &str, reason: Option<&str>) -> ApiResult<()> {
    let loaded = load(app, ctx, uuid).await?;
    if loaded.row.status != OPEN {
        return Err(request_closed());
    }
    let resolves = resolution(ctx, &loaded, CANCELED, reason);
    let extra = request_extra(&loaded.row.uuid, &loaded.row.action);
    let event = ctx.change_event(Some(&loaded.user.subject), None, None, Some(&extra));
    app.db.tenant(ctx.tenant).requests().close(&resolves, &event).await?;
    ctx.mark_committed();
    Ok(())
}
