//! The administrators' operations: `AccountCreate`, `AccountGet`, `AccountList`,
//! `AccountUpdate`, `AccountDelete`. A tenant's administrators only (its admin token, root acting
//! in it, or an administrator account's session); never through a policy.

use std::collections::HashMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::details::{self, Details};
use super::{INVITATION_SECS, OneTimeToken, RESET_SECS, mail};
use crate::access::refs;
use crate::http::lenient::{Int, Text, opt_bool, text};
use crate::http::paging::page;
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, op};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::accounts::AccountRow;
use crate::store::roles::Ref;

/// The administrator operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("AccountCreate", create),
        op("AccountGet", get),
        op("AccountList", list),
        op("AccountUpdate", update),
        op("AccountDelete", delete),
    ]
}

pub(super) fn not_found() -> ApiError {
    ApiError::not_found("The account record was not found")
}

fn role_not_found() -> ApiError {
    ApiError::not_found("The role record was not found")
}

/// An account as answered: never its password, tokens or second factor's secret.
#[derive(Debug, Serialize)]
pub struct AccountView {
    accountid: String,
    username: String,
    email: String,
    firstname: String,
    lastname: String,
    roleid: Option<i64>,
    rolename: Option<String>,
    admin: bool,
    status: String,
    totp: bool,
    locked: bool,
    lastlogin: Option<i64>,
    created: i64,
}

/// Role names by id, looked up once each.
struct RoleNames<'a> {
    app: &'a AppState,
    ctx: &'a RequestContext,
    known: HashMap<i64, Option<String>>,
}

impl RoleNames<'_> {
    async fn name(&mut self, id: i64) -> ApiResult<Option<String>> {
        if let Some(name) = self.known.get(&id) {
            return Ok(name.clone());
        }
        let role = self.app.db.tenant(self.ctx.tenant).roles().role(&Ref::Id(id)).await?;
        let name = role.map(|r| r.name);
        self.known.insert(id, name.clone());
        Ok(name)
    }
}

async fn view(names: &mut RoleNames<'_>, row: &AccountRow) -> ApiResult<AccountView> {
    let details = Details::open(&names.ctx.keys, &row.id, &row.details)?;
    let rolename = match row.role_id {
        Some(id) => names.name(id).await?,
        None => None,
    };
    Ok(AccountView {
        accountid: row.id.clone(),
        username: details.username,
        email: details.email,
        firstname: details.firstname,
        lastname: details.lastname,
        roleid: row.role_id,
        rolename,
        admin: row.admin,
        status: row.status.clone(),
        totp: row.totp,
        locked: row.locked_until.is_some_and(|until| until > names.ctx.now),
        lastlogin: row.last_login,
        created: row.created_at,
    })
}

fn names<'a>(app: &'a AppState, ctx: &'a RequestContext) -> RoleNames<'a> {
    RoleNames { app, ctx, known: HashMap::new() }
}

/// The account named by `accountid` or `username`.
async fn find(app: &AppState, ctx: &RequestContext, id: Option<Text>, username: Option<Text>) -> ApiResult<AccountRow> {
    let accounts = app.db.tenant(ctx.tenant).accounts();
    let found = match (text(id), text(username)) {
        (Some(id), _) => accounts.get(id.trim()).await?,
        (None, Some(name)) => accounts.by_username(&details::username_index(&ctx.keys, name.trim())).await?,
        (None, None) => return Err(ApiError::bad_request("accountid or username is required")),
    };
    found.ok_or_else(not_found)
}

/// What an account acts as: a role of the tenant, or its administrator.
async fn acts_as(
    app: &AppState,
    ctx: &RequestContext,
    roleid: Option<Int>,
    rolename: Option<Text>,
    admin: Option<bool>,
) -> ApiResult<Option<(Option<i64>, bool)>> {
    let role = refs::optional(roleid, rolename);
    match (role, admin.unwrap_or(false)) {
        (Some(_), true) => Err(ApiError::bad_request("An account acts as a role or as administrator, not both")),
        (Some(role), false) => {
            let role = app.db.tenant(ctx.tenant).roles().role(&role).await?.ok_or_else(role_not_found)?;
            Ok(Some((Some(role.id), false)))
        }
        (None, true) => Ok(Some((None, true))),
        (None, false) => Ok(None),
    }
}

fn duplicate(field: Option<&'static str>) -> ApiError {
    ApiError::conflict(format!("Duplicate index: {}", field.unwrap_or("username")))
}

/// Mails `letter` (given the mail settings and the tenant's name) to `to` when the vault has a
/// mail server: whether it went. When it did not (no server, the tenant's name unreadable, or
/// the server did not take it), the token is answered to the administrator, who hands it over:
/// an invitation is never lost to a mail failure.
async fn mailed(
    app: &AppState,
    ctx: &RequestContext,
    to: &str,
    letter: impl FnOnce(&mail::MailSettings, &str) -> mail::Letter,
) -> bool {
    let Some(settings) = &app.settings.accounts.mail else { return false };
    let Ok(tenant) = super::tenant_name(app, ctx.tenant).await else { return false };
    mail::send(settings, to, letter(settings, &tenant)).await.is_ok()
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    username: Option<Text>,
    email: Option<Text>,
    firstname: Option<Text>,
    lastname: Option<Text>,
    roleid: Option<Int>,
    rolename: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    admin: Option<bool>,
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::TenantAdmin)?;
    let details = Details {
        username: details::username(text(req.username))?,
        email: details::email(text(req.email))?,
        firstname: details::name("firstname", text(req.firstname))?,
        lastname: details::name("lastname", text(req.lastname))?,
        ..Details::default()
    };
    let (role_id, admin) = acts_as(&app, &ctx, req.roleid, req.rolename, req.admin)
        .await?
        .ok_or_else(|| ApiError::bad_request("roleid, rolename or admin is required"))?;
    let id = crate::crypto::secrets::random_uuid_string();
    let row = AccountRow {
        username_idx: details::username_index(&ctx.keys, &details.username),
        email_idx: details::email_index(&ctx.keys, &details.email),
        details: details.seal(&ctx.keys, &id),
        id,
        role_id,
        admin,
        status: "invited".into(),
        password: None,
        totp: false,
        failures: 0,
        locked_until: None,
        last_login: None,
        created_at: ctx.now,
    };
    let accounts = app.db.tenant(ctx.tenant).accounts();
    if let Some(field) = accounts.taken(&row.username_idx, &row.email_idx, "").await? {
        return Err(duplicate(Some(field)));
    }
    let token = OneTimeToken::new();
    let expiration = ctx.now + INVITATION_SECS;
    let summary = json!({"accountid": row.id, "roleid": role_id, "admin": admin});
    let event = ctx.change_event(None, None, Some(&summary), None);
    match accounts.insert(&row, &token.stored("activate", expiration), &event).await {
        Ok(()) => ctx.mark_committed(),
        Err(StoreError::Conflict) => {
            return Err(duplicate(accounts.taken(&row.username_idx, &row.email_idx, "").await?));
        }
        Err(err) => return Err(err.into()),
    }
    let sent = mailed(&app, &ctx, &details.email, |mail, tenant| {
        mail::invitation(mail, &details.username, &token.secret, tenant)
    })
    .await;
    let mut answer = json!({"accountid": row.id, "mailed": sent, "expiration": expiration});
    if !sent {
        answer["activationtoken"] = json!(token.secret);
    }
    Ok(Reply(answer))
}

#[derive(Debug, Deserialize)]
struct FindRequest {
    accountid: Option<Text>,
    username: Option<Text>,
}

async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<FindRequest>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::TenantAdmin)?;
    let row = find(&app, &ctx, req.accountid, req.username).await?;
    let account = view(&mut names(&app, &ctx), &row).await?;
    Ok(Reply(json!({"account": account})))
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
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::TenantAdmin)?;
    let (offset, limit) = page(req.offset, req.limit);
    let (total, rows) = app.db.tenant(ctx.tenant).accounts().list(offset, limit).await?;
    let mut names = names(&app, &ctx);
    let mut views = Vec::with_capacity(rows.len());
    for row in &rows {
        views.push(view(&mut names, row).await?);
    }
    Ok(Reply(json!({"total": total, "rows": views})))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    accountid: Option<Text>,
    username: Option<Text>,
    email: Option<Text>,
    firstname: Option<Text>,
    lastname: Option<Text>,
    roleid: Option<Int>,
    rolename: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    admin: Option<bool>,
    status: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    totp: Option<bool>,
    #[serde(default, deserialize_with = "opt_bool")]
    resetpassword: Option<bool>,
}

async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::TenantAdmin)?;
    let before = find(&app, &ctx, req.accountid, req.username).await?;
    let mut row = before.clone();
    let mut details = Details::open(&ctx.keys, &row.id, &row.details)?;
    let mut end_sessions = false;
    if let Some(email) = text(req.email) {
        details.email = details::email(Some(email))?;
        row.email_idx = details::email_index(&ctx.keys, &details.email);
    }
    if let Some(first) = text(req.firstname) {
        details.firstname = details::name("firstname", Some(first))?;
    }
    if let Some(last) = text(req.lastname) {
        details.lastname = details::name("lastname", Some(last))?;
    }
    if let Some((role_id, admin)) = acts_as(&app, &ctx, req.roleid, req.rolename, req.admin).await? {
        end_sessions |= (role_id, admin) != (row.role_id, row.admin);
        (row.role_id, row.admin) = (role_id, admin);
    }
    match text(req.status).as_deref().map(str::trim) {
        None => {}
        Some("disabled") => {
            end_sessions |= row.status != "disabled";
            if row.status == "active" {
                row.status = "disabled".into();
            } else if row.status == "invited" {
                return Err(ApiError::bad_request("The account has not been activated"));
            }
        }
        Some("active") => match row.status.as_str() {
            "invited" => return Err(ApiError::bad_request("The account has not been activated")),
            _ => row.status = "active".into(),
        },
        Some(_) => return Err(ApiError::bad_request("The status must be active or disabled")),
    }
    if req.totp == Some(false) && (row.totp || details.totp_pending.is_some()) {
        row.totp = false;
        details.totp = None;
        details.totp_pending = None;
    } else if req.totp == Some(true) && !row.totp {
        return Err(ApiError::bad_request("A second factor is enrolled by the account's owner (AccountTotpEnroll)"));
    }
    let reset = req.resetpassword == Some(true);
    if reset && row.status != "active" {
        return Err(ApiError::bad_request("Only an active account's password can be reset"));
    }
    let accounts = app.db.tenant(ctx.tenant).accounts();
    if let Some(field) = accounts.taken(&row.username_idx, &row.email_idx, &row.id).await? {
        return Err(duplicate(Some(field)));
    }
    row.details = details.seal(&ctx.keys, &row.id);
    let token = reset.then(OneTimeToken::new);
    let expiration = ctx.now + RESET_SECS;
    let summary = json!({"accountid": row.id, "roleid": row.role_id, "admin": row.admin, "status": row.status,
        "totp": row.totp, "resetpassword": reset});
    let event = ctx.change_event(None, None, Some(&summary), None);
    let stored = token.as_ref().map(|t| t.stored("reset", expiration));
    match accounts.update(&before, &row, end_sessions, stored.as_ref(), &event, ctx.now_ms).await {
        Ok(()) => ctx.mark_committed(),
        Err(StoreError::NotFound) => return Err(not_found()),
        Err(StoreError::Conflict) => return Err(duplicate(Some("email"))),
        Err(err) => return Err(err.into()),
    }
    if end_sessions {
        app.caches.invalidate_tenant_principals(ctx.tenant);
    }
    let account = view(&mut names(&app, &ctx), &row).await?;
    let mut answer = json!({"account": account});
    if let Some(token) = token {
        let sent = mailed(&app, &ctx, &details.email, |mail, tenant| {
            mail::reset(mail, &details.username, &token.secret, tenant)
        })
        .await;
        answer["mailed"] = json!(sent);
        if !sent {
            answer["resettoken"] = json!(token.secret);
            answer["expiration"] = json!(expiration);
        }
    }
    Ok(Reply(answer))
}

async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<FindRequest>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::TenantAdmin)?;
    let row = find(&app, &ctx, req.accountid, req.username).await?;
    let event = ctx.change_event(None, Some(&json!({"accountid": row.id})), None, None);
    ctx.committed(app.db.tenant(ctx.tenant).accounts().delete(&row.id, &event, ctx.now_ms).await, not_found, || {
        duplicate(None)
    })?;
    app.caches.invalidate_tenant_principals(ctx.tenant);
    Ok(Reply(json!({})))
}
