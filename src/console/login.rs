//! Logging in (with an account, or with the root or a tenant's token), activating an account,
//! choosing a new password, logging out.

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::api::{Caller, Refusal};
use super::layout::{self, Notice, csrf_field};
use super::session::{self, COOKIE, Posted};
use super::{Console, csrf, see_other};
use crate::audit::event::{self, EventBody, EventHeader};
use crate::crypto::secrets::{digests_match, random_uuid_string, token_digest};
use crate::http::rate::ClientAddr;
use crate::store;
use crate::store::roles::NewXToken;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/login", get(login_page))
        .route("/login/account", axum::routing::post(login_account))
        .route("/login/token", axum::routing::post(login_token))
        .route("/activate", get(activate_page).post(activate))
        .route("/reset", get(reset_page).post(reset))
}

const INVALID_TOKEN: &str = "This access token is not one that can open the console";

/// The forms shown before a session carry a value also set in a cookie (double submit).
fn form_token(headers: &HeaderMap) -> (String, Option<axum::http::HeaderValue>) {
    session::form_token(headers, "/console", csrf::FORM_COOKIE)
}

fn with_cookie(mut response: Response, cookie: Option<axum::http::HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

fn check_form(headers: &HeaderMap, given: Option<&str>) -> Option<Response> {
    let planted = session::form_cookie(headers, csrf::FORM_COOKIE, given);
    csrf::check(headers, planted, given)
}

#[derive(Debug, Default, Deserialize)]
pub struct Shown {
    done: Option<String>,
}

async fn login_page(headers: HeaderMap, Query(shown): Query<Shown>) -> Response {
    let notice = match shown.done.as_deref() {
        Some("activated") => Notice::Ok("Your account is active: log in.".into()),
        Some("reset") => Notice::Ok("Your password is changed: log in.".into()),
        Some("out") => Notice::Ok("You are logged out.".into()),
        _ => Notice::None,
    };
    login_form(&headers, StatusCode::OK, &notice, "", "")
}

fn login_form(headers: &HeaderMap, status: StatusCode, notice: &Notice, tenant: &str, username: &str) -> Response {
    let (token, cookie) = form_token(headers);
    let body = html! {
        div.columns {
            form.login method="post" action="/console/login/account" {
                (csrf_field(&token))
                fieldset {
                    legend { "Log in with an account" }
                    label for="login-tenant" { "Tenant" }
                    input #login-tenant name="tenant" type="text" value=(tenant) autocomplete="organization" aria-describedby="login-tenant-help";
                    p #login-tenant-help .muted { "Leave empty for the main tenant." }
                    label for="login-username" { "Username" }
                    input #login-username name="username" type="text" value=(username) required autocomplete="username";
                    label for="login-password" { "Password" }
                    input #login-password name="password" type="password" required autocomplete="current-password";
                    label for="login-code" { "One-time code" }
                    input #login-code name="code" type="text" inputmode="numeric" autocomplete="one-time-code" aria-describedby="login-code-help";
                    p #login-code-help .muted { "Only when your account has a second factor." }
                    button type="submit" { "Log in" }
                }
            }
            form.login method="post" action="/console/login/token" {
                (csrf_field(&token))
                fieldset {
                    legend { "Log in with an access token" }
                    label for="login-token" { "Access token" }
                    input #login-token name="token" type="password" required autocomplete="off" aria-describedby="login-token-help";
                    p #login-token-help .muted { "The vault's root token, or a tenant's administrator token." }
                    button type="submit" { "Log in with token" }
                }
            }
        }
    };
    with_cookie(layout::respond(status, layout::page("Log in", None, notice, body)), cookie)
}

#[derive(Debug, Default, Deserialize)]
pub struct AccountLogin {
    csrf: Option<String>,
    tenant: Option<String>,
    username: Option<String>,
    password: Option<String>,
    code: Option<String>,
}

async fn login_account(
    State(console): State<Console>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientAddr>>,
    Form(form): Form<AccountLogin>,
) -> Response {
    if let Some(refused) = check_form(&headers, form.csrf.as_deref()) {
        return refused;
    }
    let client = client.map(|c| c.0);
    let tenant = form.tenant.as_deref().map(str::trim).unwrap_or_default();
    let username = form.username.as_deref().unwrap_or_default();
    let mut body = json!({"username": username, "password": form.password.as_deref().unwrap_or_default()});
    if let Some(code) = form.code.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        body["code"] = json!(code);
    }
    let caller = Caller { token: None, tenant: Some(tenant), client };
    let answer = match console.call(&caller, "AccountLogin", body).await {
        Ok(answer) => answer,
        Err(refusal) => return login_form(&headers, refusal.status, &(&refusal).into(), tenant, username),
    };
    let Some(secret) = answer.get("xtoken").and_then(|v| v.as_str()) else {
        return layout::refused(
            None,
            &Refusal { status: StatusCode::BAD_GATEWAY, message: "No session was opened".into() },
        );
    };
    // The session becomes the console's own: the API refuses it from anyone else.
    let digest = token_digest(secret);
    let adopted = match store::vault::find_token(&console.app.db, &digest).await {
        Ok(Some(row)) => {
            console.app.db.tenant(row.tenant).console().adopt(&digest, console.app.clock.now()).await.is_ok()
        }
        _ => false,
    };
    if !adopted {
        return layout::refused(
            None,
            &Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "The vault is unavailable: try again in a moment".into(),
            },
        );
    }
    logged_in(&headers, secret, session_secs(&console))
}

fn session_secs(console: &Console) -> i64 {
    i64::try_from(console.app.settings.accounts.session.as_secs()).unwrap_or(i64::MAX)
}

fn logged_in(headers: &HeaderMap, secret: &str, max_age: i64) -> Response {
    let mut response = see_other("/console/users");
    response.headers_mut().append(header::SET_COOKIE, session::set_cookie(headers, COOKIE, Some(secret), max_age));
    response.headers_mut().append(header::SET_COOKIE, session::set_cookie(headers, csrf::FORM_COOKIE, None, 0));
    response
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenLogin {
    csrf: Option<String>,
    token: Option<String>,
}

/// Opens a session with an administrator's token (root, or a tenant's): a new access token of the
/// same powers, the console's own, with the session's lifetime; the token presented never leaves
/// this request. Its event names the token that opened it.
async fn login_token(
    State(console): State<Console>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientAddr>>,
    Form(form): Form<TokenLogin>,
) -> Response {
    if let Some(refused) = check_form(&headers, form.csrf.as_deref()) {
        return refused;
    }
    let app = &console.app;
    let client = client.map(|c| c.0);
    let too_many = || Refusal {
        status: StatusCode::TOO_MANY_REQUESTS,
        message: "Too many failed attempts: try again later".into(),
    };
    if app.rates.is_blocked(client) {
        return login_form(&headers, StatusCode::TOO_MANY_REQUESTS, &(&too_many()).into(), "", "");
    }
    let presented = form.token.as_deref().map(str::trim).unwrap_or_default();
    let digest = token_digest(presented);
    let found = if presented.is_empty() { Ok(None) } else { store::vault::find_token(&app.db, &digest).await };
    let row = match found {
        Ok(row) => row.filter(|row| {
            digests_match(&row.digest, &digest)
                && row.expires_at.is_none_or(|at| at > app.clock.now())
                && row.console_seen_at.is_none()
                && row.account_id.is_none()
                && matches!(row.kind.as_str(), "root" | "tenant")
        }),
        Err(_) => {
            let refusal = Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "The vault is unavailable: try again in a moment".into(),
            };
            return login_form(&headers, refusal.status, &(&refusal).into(), "", "");
        }
    };
    let Some(row) = row else {
        let refusal = if app.rates.auth_failed(client) {
            too_many()
        } else {
            Refusal { status: StatusCode::FORBIDDEN, message: INVALID_TOKEN.into() }
        };
        return login_form(&headers, refusal.status, &(&refusal).into(), "", "");
    };
    app.rates.auth_succeeded(digest);
    let secret = random_uuid_string();
    let id = random_uuid_string();
    let now = app.clock.now();
    let session_digest = token_digest(&secret);
    let kind = if row.kind == "root" { "root" } else { "tenant" };
    let token = NewXToken {
        id: &id,
        digest: &session_digest,
        kind,
        role_id: None,
        user_rid: None,
        created_at: now,
        expires_at: now.saturating_add(session_secs(&console)),
    };
    let keys = match app.tenant_keys(row.tenant).await {
        Ok(keys) => keys,
        Err(_) => {
            return layout::refused(
                None,
                &Refusal {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: "The vault is unavailable: try again in a moment".into(),
                },
            );
        }
    };
    let header = EventHeader {
        tenant: row.tenant,
        principal_kind: kind,
        principal_id: &row.id,
        operation: "ConsoleLogin",
        created_ms: app.clock.now_ms(),
    };
    let extra = json!({"session": id});
    let event = event::seal(&header, &EventBody { extra: Some(&extra), ..EventBody::default() }, 200, &keys);
    if app.db.tenant(row.tenant).console().open(&token, &event).await.is_err() {
        return layout::refused(
            None,
            &Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "The vault is unavailable: try again in a moment".into(),
            },
        );
    }
    logged_in(&headers, &secret, session_secs(&console))
}

/// A form with no fields of its own (its token is checked by [`Posted`]).
#[derive(Debug, Default, Deserialize)]
pub struct NoFields {}

/// `POST /console/logout`: the session ends at once on every replica (an account's login
/// session too), and the cookie goes.
pub async fn logout(
    State(console): State<Console>,
    Posted { session, form: _, headers }: Posted<NoFields>,
) -> Response {
    let app = &console.app;
    let ended = if session.account.is_some() {
        console.call(&session.caller(), "AccountLogout", json!({})).await.map(|_| ())
    } else {
        let keys = app.tenant_keys(session.tenant).await;
        let header = EventHeader {
            tenant: session.tenant,
            principal_kind: if session.kind == "root" { "root" } else { "tenant" },
            principal_id: &session.id,
            operation: "ConsoleLogout",
            created_ms: app.clock.now_ms(),
        };
        match keys {
            Ok(keys) => {
                let event = event::seal(&header, &EventBody::default(), 200, &keys);
                app.db
                    .tenant(session.tenant)
                    .console()
                    .end(&session.id, Some(&event), app.clock.now_ms())
                    .await
                    .map(|_| ())
                    .map_err(|_| unavailable())
            }
            Err(_) => Err(unavailable()),
        }
    };
    if let Err(refusal) = ended {
        return layout::refused(Some(&session), &refusal);
    }
    let mut response = see_other("/console/login?done=out");
    response.headers_mut().append(header::SET_COOKIE, session::set_cookie(&headers, COOKIE, None, 0));
    response
}

fn unavailable() -> Refusal {
    Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "The vault is unavailable: try again in a moment".into(),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    token: Option<String>,
    tenant: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct NewPassword {
    csrf: Option<String>,
    token: Option<String>,
    tenant: Option<String>,
    password: Option<String>,
    repeat: Option<String>,
}

/// The two pages that set a password with a one-time token.
#[derive(Debug, Clone, Copy)]
struct PasswordPage {
    title: &'static str,
    action: &'static str,
    button: &'static str,
    operation: &'static str,
    done: &'static str,
}

const ACTIVATE: PasswordPage = PasswordPage {
    title: "Activate your account",
    action: "/console/activate",
    button: "Activate",
    operation: "AccountActivate",
    done: "activated",
};
const RESET: PasswordPage = PasswordPage {
    title: "Choose a new password",
    action: "/console/reset",
    button: "Set password",
    operation: "AccountResetPassword",
    done: "reset",
};

async fn activate_page(headers: HeaderMap, Query(query): Query<TokenQuery>) -> Response {
    password_form(
        &headers,
        ACTIVATE,
        StatusCode::OK,
        &Notice::None,
        &query.token.unwrap_or_default(),
        &query.tenant.unwrap_or_default(),
    )
}

async fn reset_page(headers: HeaderMap, Query(query): Query<TokenQuery>) -> Response {
    password_form(
        &headers,
        RESET,
        StatusCode::OK,
        &Notice::None,
        &query.token.unwrap_or_default(),
        &query.tenant.unwrap_or_default(),
    )
}

async fn activate(
    State(console): State<Console>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientAddr>>,
    Form(form): Form<NewPassword>,
) -> Response {
    set_password(console, headers, client.map(|c| c.0), form, ACTIVATE).await
}

async fn reset(
    State(console): State<Console>,
    headers: HeaderMap,
    client: Option<axum::Extension<ClientAddr>>,
    Form(form): Form<NewPassword>,
) -> Response {
    set_password(console, headers, client.map(|c| c.0), form, RESET).await
}

async fn set_password(
    console: Console,
    headers: HeaderMap,
    client: Option<ClientAddr>,
    form: NewPassword,
    page: PasswordPage,
) -> Response {
    if let Some(refused) = check_form(&headers, form.csrf.as_deref()) {
        return refused;
    }
    let token = form.token.as_deref().map(str::trim).unwrap_or_default();
    let tenant = form.tenant.as_deref().map(str::trim).unwrap_or_default();
    let password = form.password.as_deref().unwrap_or_default();
    if form.repeat.as_deref().unwrap_or_default() != password {
        let notice = Notice::Error("The two passwords differ".into());
        return password_form(&headers, page, StatusCode::BAD_REQUEST, &notice, token, tenant);
    }
    let caller = Caller { token: None, tenant: Some(tenant), client };
    match console.call(&caller, page.operation, json!({"token": token, "password": password})).await {
        Ok(_) => see_other(&format!("/console/login?done={}", page.done)),
        Err(refusal) => password_form(&headers, page, refusal.status, &(&refusal).into(), token, tenant),
    }
}

fn password_form(
    headers: &HeaderMap,
    page: PasswordPage,
    status: StatusCode,
    notice: &Notice,
    token: &str,
    tenant: &str,
) -> Response {
    let (csrf_token, cookie) = form_token(headers);
    let body: Markup = html! {
        form.login method="post" action=(page.action) {
            (csrf_field(&csrf_token))
            input type="hidden" name="token" value=(token);
            label for="pw-tenant" { "Tenant" }
            input #pw-tenant name="tenant" type="text" value=(tenant) aria-describedby="pw-tenant-help";
            p #pw-tenant-help .muted { "As in your invitation; empty for the main tenant." }
            label for="pw-new" { "New password" }
            input #pw-new name="password" type="password" required minlength="12" maxlength="128" autocomplete="new-password" aria-describedby="pw-help";
            p #pw-help .muted { "12 to 128 characters, not containing your username." }
            label for="pw-repeat" { "Repeat the password" }
            input #pw-repeat name="repeat" type="password" required autocomplete="new-password";
            button type="submit" { (page.button) }
        }
    };
    let mut response = with_cookie(layout::respond(status, layout::page(page.title, None, notice, body)), cookie);
    // The page's address holds the one-time token: it goes nowhere else, not even as a referrer.
    response.headers_mut().insert(header::REFERRER_POLICY, axum::http::HeaderValue::from_static("no-referrer"));
    response
}
