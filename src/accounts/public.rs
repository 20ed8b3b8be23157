//! The account owners' operations, routed without the authentication middleware:
//! `AccountActivate`, `AccountLogin`, `AccountRequestPasswordReset` and `AccountResetPassword`
//! need no token (the tenant is `X-Bunker-Tenant`, else the main tenant); `AccountLogout`,
//! `AccountTotpEnroll` and `AccountTotpConfirm` take the account's own session token. Each
//! writes its event here: a change with its event in one transaction, a refusal after it.
//! Failures count against the client's address (429 past its allowance).

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::details::{self, Details};
use super::{LOCK_SECS, MAX_FAILURES, OneTimeToken, RESET_SECS, mail, password, totp};
use crate::crypto::secrets::{digests_match, random_uuid_string, token_digest};
use crate::http::auth::{ConsoleCall, TOKEN_HEADER};
use crate::http::lenient::{Text, text};
use crate::http::public_call::{PublicCall as Call, finish as write_event};
use crate::http::rate::ClientAddr;
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, op};
use crate::state::AppState;
use crate::store::accounts::AccountRow;
use crate::store::roles::NewXToken;
use crate::store::{self, StoreError};

/// The owners' operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("AccountActivate", activate),
        op("AccountLogin", login),
        op("AccountLogout", logout),
        op("AccountRequestPasswordReset", request_reset),
        op("AccountResetPassword", reset_password),
        op("AccountTotpEnroll", totp_enroll),
        op("AccountTotpConfirm", totp_confirm),
    ]
}

const INVALID_LOGIN: &str = "Invalid username or password";
const INVALID_TOKEN: &str = "The token is not valid or has expired";
const NEED_CODE: &str = "A valid one-time code is required";

fn invalid_login() -> ApiError {
    ApiError::Forbidden(INVALID_LOGIN.into())
}

fn invalid_token() -> ApiError {
    ApiError::bad_request(INVALID_TOKEN)
}

/// Answers `result`, after writing the call's event when its change did not carry it.
async fn finish(call: Option<Call>, result: ApiResult<Value>) -> Response {
    let response = match result {
        Ok(value) => Reply(value).into_response(),
        Err(err) => err.into_response(),
    };
    write_event(call, response).await
}

/// The account of the session token in `X-Bunker-Token`, and the session's id.
async fn session(
    app: &AppState,
    headers: &HeaderMap,
    call: &mut Option<Call>,
    operation: &'static str,
    client: Option<ClientAddr>,
    console: bool,
) -> ApiResult<(AccountRow, String)> {
    let found = account_of_session(app, headers, call, operation, client, console).await;
    if found.is_err() && call.is_none() {
        // Refused before the session's tenant was known: the event goes to the tenant named,
        // else the main tenant.
        *call = Call::in_tenant(app, operation, headers, client).await.ok();
    }
    found
}

async fn account_of_session(
    app: &AppState,
    headers: &HeaderMap,
    call: &mut Option<Call>,
    operation: &'static str,
    client: Option<ClientAddr>,
    console: bool,
) -> ApiResult<(AccountRow, String)> {
    let token = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or_default();
    let denied = || if app.rates.auth_failed(client) { ApiError::TooManyRequests } else { ApiError::access_denied() };
    if token.is_empty() {
        return Err(denied());
    }
    let digest = token_digest(token);
    let row = store::vault::find_token(&app.db, &digest).await?.ok_or_else(denied)?;
    // A console session is the console's alone: presented by anyone else, it is refused.
    let live = digests_match(&row.digest, &digest)
        && row.expires_at.is_none_or(|at| at > app.clock.now())
        && (row.console_seen_at.is_none() || console);
    let Some(account) = row.account_id.filter(|_| live) else { return Err(denied()) };
    let mut this = Call::new(app, operation, row.tenant, client).await?;
    this.acts_as("account", &account);
    let found = app.db.tenant(row.tenant).accounts().get(&account).await?;
    *call = Some(this);
    let found = found.filter(|a| a.status == "active").ok_or_else(ApiError::access_denied)?;
    Ok((found, row.id))
}

#[derive(Debug, Deserialize)]
struct SetPasswordRequest {
    token: Option<Text>,
    password: Option<Text>,
}

async fn activate(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    body: Result<Body<SetPasswordRequest>, ApiError>,
) -> Response {
    set_password(app, headers, client.map(|c| c.0), body, "AccountActivate", "activate").await
}

async fn reset_password(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    body: Result<Body<SetPasswordRequest>, ApiError>,
) -> Response {
    set_password(app, headers, client.map(|c| c.0), body, "AccountResetPassword", "reset").await
}

/// Redeems an activation or reset token for a new password.
async fn set_password(
    app: AppState,
    headers: HeaderMap,
    client: Option<ClientAddr>,
    body: Result<Body<SetPasswordRequest>, ApiError>,
    operation: &'static str,
    purpose: &'static str,
) -> Response {
    let mut call = None;
    let result = async {
        let this = call.insert(Call::in_tenant(&app, operation, &headers, client).await?);
        this.refuse_if_blocked()?;
        let Body(req) = body?;
        let token = text(req.token).map(|t| t.trim().to_owned()).unwrap_or_default();
        let new_password = text(req.password).unwrap_or_default();
        if token.is_empty() || token.len() > 128 {
            return Err(this.failed(invalid_token()));
        }
        let digest = token_digest(&token);
        let accounts = app.db.tenant(this.tenant).accounts();
        let row =
            accounts.token_owner(&digest, purpose, this.now()).await?.ok_or_else(|| this.failed(invalid_token()))?;
        this.acts_as("account", &row.id);
        let details = Details::open(&this.keys, &row.id, &row.details)?;
        password::acceptable(&new_password, &details.username)?;
        let hash = password::hash(new_password).await?;
        let event = this.event(None, 200, None, None);
        match accounts.redeem(&digest, purpose, &row.id, &hash, &event, this.now_ms).await {
            Ok(()) => this.committed = true,
            Err(StoreError::NotFound) => return Err(invalid_token()),
            Err(err) => return Err(err.into()),
        }
        app.caches.invalidate_tenant_principals(this.tenant);
        Ok(json!({"accountid": row.id}))
    }
    .await;
    finish(call, result).await
}

/// A refused attempt of an account that took one (counted, and locking the account at the
/// maximum, when it was taken): its event, and a failure counted against the client's address.
async fn refuse(call: &mut Call, message: &'static str) -> ApiError {
    let event = call.event(None, 403, Some(message), None);
    match call.app.db.tenant(call.tenant).accounts().login_refused(&event).await {
        Ok(()) => {
            call.committed = true;
            call.failed(ApiError::Forbidden(message.into()))
        }
        Err(err) => err.into(),
    }
}

#[derive(Debug, Deserialize)]
struct LoginRequest {
    username: Option<Text>,
    password: Option<Text>,
    code: Option<Text>,
}

async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    body: Result<Body<LoginRequest>, ApiError>,
) -> Response {
    let client = client.map(|c| c.0);
    let mut call = None;
    let result = async {
        let this = call.insert(Call::in_tenant(&app, "AccountLogin", &headers, client).await?);
        this.refuse_if_blocked()?;
        let Body(req) = body?;
        let username = text(req.username).map(|u| u.trim().to_owned()).unwrap_or_default();
        let given = text(req.password).unwrap_or_default();
        if username.is_empty() || username.len() > 64 || given.is_empty() || given.chars().count() > password::MAX_CHARS
        {
            return Err(this.failed(invalid_login()));
        }
        let accounts = app.db.tenant(this.tenant).accounts();
        let found = accounts.by_username(&details::username_index(&this.keys, &username)).await?;
        let now = this.now();
        // The attempt is counted before the password is checked, so that attempts sent together
        // cannot outrun the lockout; a locked or inactive account takes none (and the decoy
        // hash is checked, so that the answer takes as long).
        let attempt = match &found {
            Some(account) if account.password.is_some() => {
                accounts.take_attempt(&account.id, now, MAX_FAILURES, now + LOCK_SECS).await?
            }
            _ => false,
        };
        let usable = found.filter(|_| attempt);
        let hash = usable.as_ref().and_then(|a| a.password.clone());
        let matches = password::verify(given, hash).await?;
        let Some(account) = usable else { return Err(this.failed(invalid_login())) };
        this.acts_as("account", &account.id);
        if !matches || (!account.admin && account.role_id.is_none()) {
            return Err(refuse(this, INVALID_LOGIN).await);
        }
        let step = if account.totp {
            let details = Details::open(&this.keys, &account.id, &account.details)?;
            let code = text(req.code).unwrap_or_default();
            match totp::step_of(details.totp.as_deref().unwrap_or_default(), &code, now) {
                Some(step) => Some(step),
                None => return Err(refuse(this, NEED_CODE).await),
            }
        } else {
            None
        };
        let xtoken = random_uuid_string();
        let digest = token_digest(&xtoken);
        let id = random_uuid_string();
        let lifetime = i64::try_from(app.settings.accounts.session.as_secs()).unwrap_or(i64::MAX);
        let expiration = now.saturating_add(lifetime.max(1));
        let session = NewXToken {
            id: &id,
            digest: &digest,
            kind: if account.admin { "tenant" } else { "role" },
            role_id: account.role_id,
            user_rid: None,
            created_at: now,
            expires_at: expiration,
        };
        let event = this.event(None, 200, None, Some(&json!({"sessionid": id})));
        match accounts.logged_in(&account, &session, step, &event).await {
            Ok(()) => this.committed = true,
            // Changed meanwhile (disabled, locked, another password or role), or a one-time code
            // used already: the attempt stays counted.
            Err(StoreError::NotFound) => {
                // With the right password, a refusal here is most likely a code used already.
                let message = if step.is_some() { NEED_CODE } else { INVALID_LOGIN };
                return Err(refuse(this, message).await);
            }
            Err(err) => return Err(err.into()),
        }
        Ok(json!({"xtoken": xtoken, "expiration": expiration, "accountid": account.id, "admin": account.admin,
            "roleid": account.role_id}))
    }
    .await;
    finish(call, result).await
}

#[derive(Debug, Deserialize)]
struct NoParameters {}

async fn logout(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    console: Option<Extension<ConsoleCall>>,
    body: Result<Body<NoParameters>, ApiError>,
) -> Response {
    let client = client.map(|c| c.0);
    let mut call = None;
    let result = async {
        let (account, session_id) =
            session(&app, &headers, &mut call, "AccountLogout", client, console.is_some()).await?;
        let Body(NoParameters {}) = body?;
        let this = call.as_mut().ok_or_else(ApiError::access_denied)?;
        let event = this.event(None, 200, None, Some(&json!({"sessionid": session_id})));
        match app.db.tenant(this.tenant).accounts().logout(&account.id, &session_id, &event, this.now_ms).await {
            Ok(()) => this.committed = true,
            Err(StoreError::NotFound) => return Err(ApiError::access_denied()),
            Err(err) => return Err(err.into()),
        }
        app.caches.invalidate_tenant_principals(this.tenant);
        Ok(json!({}))
    }
    .await;
    finish(call, result).await
}

#[derive(Debug, Deserialize)]
struct ResetRequest {
    email: Option<Text>,
}

async fn request_reset(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    body: Result<Body<ResetRequest>, ApiError>,
) -> Response {
    let client = client.map(|c| c.0);
    let mut call = None;
    let result = async {
        let this = call.insert(Call::in_tenant(&app, "AccountRequestPasswordReset", &headers, client).await?);
        let Body(req) = body?;
        let email = details::email(text(req.email))?;
        // The answer does not wait for the lookup: it is the same, and as quick, whether or not
        // an account has the address. The reset itself is made in the background, a few at a
        // time (beyond them a request is dropped, and logged).
        if let Some(settings) = app.settings.accounts.mail.clone() {
            match MAIL_JOBS.clone().try_acquire_owned() {
                Ok(turn) => {
                    let job = this.clone();
                    tokio::spawn(async move {
                        let _turn = turn;
                        if let Err(err) = send_reset(job, settings, email).await {
                            tracing::warn!(error = %err, "a password reset could not be made");
                        }
                    });
                }
                Err(_) => tracing::warn!("password resets are asked for faster than they are sent: one dropped"),
            }
        }
        Ok(json!({}))
    }
    .await;
    finish(call, result).await
}

/// Resets made at once in the background.
static MAIL_JOBS: std::sync::LazyLock<Arc<tokio::sync::Semaphore>> =
    std::sync::LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(4)));

/// Issues a reset token for the active account with `email`, if there is one, and mails it;
/// at most one a minute per account (a mailbox is not flooded).
async fn send_reset(mut call: Call, settings: mail::MailSettings, email: String) -> ApiResult<()> {
    let app = call.app.clone();
    let accounts = app.db.tenant(call.tenant).accounts();
    let found = accounts.by_email(&details::email_index(&call.keys, &email)).await?;
    let Some(account) = found.filter(|a| a.status == "active") else { return Ok(()) };
    call.acts_as("account", &account.id);
    let details = Details::open(&call.keys, &account.id, &account.details)?;
    let token = OneTimeToken::new();
    let event = call.event(None, 200, None, Some(&json!({"resettoken": "issued"})));
    let expires_at = call.now() + RESET_SECS;
    if !accounts.issue(&account.id, &token.stored("reset", expires_at), Some(expires_at - 60), &event).await? {
        return Ok(());
    }
    let tenant = super::tenant_name(&app, call.tenant).await?;
    let letter = mail::reset(&settings, &details.username, &token.secret, &tenant);
    mail::send(&settings, &details.email, letter).await.map_err(|err| ApiError::BadGateway(err.to_string().into()))
}

#[derive(Debug, Deserialize)]
struct EnrollRequest {
    password: Option<Text>,
}

async fn totp_enroll(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    console: Option<Extension<ConsoleCall>>,
    body: Result<Body<EnrollRequest>, ApiError>,
) -> Response {
    let client = client.map(|c| c.0);
    let mut call = None;
    let result = async {
        let (account, _) = session(&app, &headers, &mut call, "AccountTotpEnroll", client, console.is_some()).await?;
        let Body(req) = body?;
        let this = call.as_mut().ok_or_else(ApiError::access_denied)?;
        if account.totp {
            return Err(ApiError::conflict("A second factor is on: an administrator removes it first"));
        }
        // The password again, as at login: the attempt counts towards the lockout.
        let given = text(req.password).unwrap_or_default();
        let accounts = app.db.tenant(this.tenant).accounts();
        let attempt = given.chars().count() <= password::MAX_CHARS
            && accounts.take_attempt(&account.id, this.now(), MAX_FAILURES, this.now() + LOCK_SECS).await?;
        let hash = account.password.clone().filter(|_| attempt);
        if !password::verify(given, hash).await? {
            if !attempt {
                return Err(this.failed(invalid_login()));
            }
            return Err(refuse(this, INVALID_LOGIN).await);
        }
        accounts.clear_failures(&account.id).await?;
        let mut details = Details::open(&this.keys, &account.id, &account.details)?;
        let secret = totp::new_secret();
        details.totp_pending = Some(secret.clone());
        let event = this.event(None, 200, None, None);
        let sealed = details.seal(&this.keys, &account.id);
        match accounts.set_details(&account.id, &account.details, &sealed, false, &event).await {
            Ok(()) => this.committed = true,
            Err(StoreError::NotFound) => return Err(ApiError::access_denied()),
            Err(err) => return Err(err.into()),
        }
        let tenant = super::tenant_name(&app, this.tenant).await?;
        let address = totp::address(&secret, &details.username, &tenant);
        Ok(json!({"secret": secret, "otpauthurl": address}))
    }
    .await;
    finish(call, result).await
}

#[derive(Debug, Deserialize)]
struct ConfirmRequest {
    code: Option<Text>,
}

async fn totp_confirm(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    console: Option<Extension<ConsoleCall>>,
    body: Result<Body<ConfirmRequest>, ApiError>,
) -> Response {
    let client = client.map(|c| c.0);
    let mut call = None;
    let result = async {
        let (account, _) = session(&app, &headers, &mut call, "AccountTotpConfirm", client, console.is_some()).await?;
        let Body(req) = body?;
        let this = call.as_mut().ok_or_else(ApiError::access_denied)?;
        let mut details = Details::open(&this.keys, &account.id, &account.details)?;
        let code = text(req.code).unwrap_or_default();
        let pending =
            details.totp_pending.take().ok_or_else(|| ApiError::bad_request("No second factor is being enrolled"))?;
        if totp::step_of(&pending, &code, this.now()).is_none() {
            return Err(this.failed(ApiError::bad_request("The code is not valid")));
        }
        details.totp = Some(pending);
        let event = this.event(None, 200, None, None);
        let sealed = details.seal(&this.keys, &account.id);
        match app
            .db
            .tenant(this.tenant)
            .accounts()
            .set_details(&account.id, &account.details, &sealed, true, &event)
            .await
        {
            Ok(()) => this.committed = true,
            Err(StoreError::NotFound) => return Err(ApiError::access_denied()),
            Err(err) => return Err(err.into()),
        }
        Ok(json!({}))
    }
    .await;
    finish(call, result).await
}
