//! Logging in to the portal: the person gives their email address or phone number (and a
//! captcha's characters, unless `BUNKER_PORTAL_CAPTCHA=off`), receives a code, and exchanges it
//! for a session. Each step is the public operation of the same name (`CaptchaCreate`,
//! `UserPrelogin`, `UserLogin`), with its limits and events. Logging out ends the session.

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout::{self, Notice, Ui, csrf_field};
use super::session::{COOKIE, PATH, Person};
use crate::console::api::{Caller, Refusal};
use crate::console::session::{Posted, form_cookie, form_token, set_cookie_at};
use crate::console::{Console, csrf, render, see_other};
use crate::crypto::secrets::token_digest;
use crate::http::rate::ClientAddr;
use crate::portal::login::CAPTCHA_ERROR;
use crate::store;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/code", post(send_code))
        .route("/logout", post(logout))
}

/// The cookie of the forms shown before a session.
const FORM_COOKIE: &str = "bunker_portal_form";
/// What the person is told once they asked for a code, whether or not the address is known.
const CODE_SENT: &str = "If we know this address, a code is on its way. It works once, within 5 minutes.";

#[derive(Debug, Default, Deserialize)]
pub struct Shown {
    tenant: Option<String>,
    done: Option<String>,
}

/// The tenant a form or address names (empty: the main tenant), bounded.
fn tenant_of(value: Option<&str>) -> String {
    value.map(str::trim).filter(|t| t.len() <= 64).unwrap_or_default().to_owned()
}

async fn login_page(State(console): State<Console>, headers: HeaderMap, Query(shown): Query<Shown>) -> Response {
    let notice = match shown.done.as_deref() {
        Some("out") => Notice::Ok("You are logged out.".into()),
        _ => Notice::None,
    };
    let ui = Ui::named(&console, &tenant_of(shown.tenant.as_deref())).await;
    identity_form(&console, &headers, &ui, StatusCode::OK, &notice, "email", "").await
}

const MODES: [(&str, &str); 2] = [("email", "Email address"), ("phone", "Phone number")];

async fn identity_form(
    console: &Console,
    headers: &HeaderMap,
    ui: &Ui,
    status: StatusCode,
    notice: &Notice,
    mode: &str,
    identity: &str,
) -> Response {
    let (token, cookie) = form_token(headers, PATH, FORM_COOKIE);
    let mut notice = notice.clone();
    // A fresh captcha for every form shown: each is good for one try.
    let captcha = if console.app.settings.portal.captcha {
        let caller = Caller { token: None, tenant: Some(&ui.tenant), client: None };
        match console.call(&caller, "CaptchaCreate", json!({})).await {
            Ok(answer) => Some((render::text(&answer["captchaid"]), render::text(&answer["image"]))),
            Err(refusal) => {
                notice = (&refusal).into();
                None
            }
        }
    } else {
        None
    };
    let body = html! {
        form.login method="post" action="/portal/login/code" {
            (csrf_field(&token))
            input type="hidden" name="tenant" value=(ui.tenant);
            fieldset {
                legend { "We send you a code to log in" }
                label for="portal-mode" { "Sign in with" }
                select #portal-mode name="mode" {
                    @for (value, name) in MODES { option value=(value) selected[value == mode] { (name) } }
                }
                label for="portal-identity" { "Your email address or phone number" }
                input #portal-identity name="identity" type="text" required value=(identity) autocomplete="username" maxlength="256";
                @if let Some((id, image)) = &captcha {
                    input type="hidden" name="captchaid" value=(id);
                    img.captcha src=(format!("data:image/png;base64,{image}")) alt="Characters to type";
                    label for="portal-captcha" { "Type the characters in the picture" }
                    input #portal-captcha name="captcha" type="text" required autocomplete="off" maxlength="64";
                }
                button type="submit" { "Send me a code" }
            }
        }
    };
    with_cookie(layout::respond(status, layout::page_of(ui, "Log in", None, &notice, body)), cookie)
}

fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A form shown before a session: its token checked against the form cookie, and its origin.
fn check_form(headers: &HeaderMap, given: Option<&str>) -> Option<Response> {
    if csrf::passes(headers, form_cookie(headers, FORM_COOKIE, given), given) {
        return None;
    }
    let back = html! { p { a href="/portal/login" { "Back to the login" } } };
    let page = layout::page("Refused", None, &Notice::Error(csrf::REFUSED.into()), back);
    Some(layout::respond(StatusCode::FORBIDDEN, page))
}

#[derive(Debug, Default, Deserialize)]
pub struct IdentityForm {
    csrf: Option<String>,
    tenant: Option<String>,
    mode: Option<String>,
    identity: Option<String>,
    captchaid: Option<String>,
    captcha: Option<String>,
    code: Option<String>,
}

impl IdentityForm {
    fn mode(&self) -> &str {
        match self.mode.as_deref() {
            Some("phone") => "phone",
            _ => "email",
        }
    }

    fn identity(&self) -> &str {
        self.identity.as_deref().map(str::trim).unwrap_or_default()
    }
}

/// A login form, its token (double submit) and origin checked before a handler sees it, with
/// the presentation of the tenant it names and the browser's address.
pub struct Anonymous {
    headers: HeaderMap,
    client: Option<ClientAddr>,
    ui: Ui,
    form: IdentityForm,
}

impl Anonymous {
    /// How the form's operation is called: no token, the form's tenant, the browser's address.
    fn caller(&self) -> Caller<'_> {
        Caller { token: None, tenant: Some(&self.ui.tenant), client: self.client }
    }
}

impl axum::extract::FromRequest<Console> for Anonymous {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, console: &Console) -> Result<Anonymous, Response> {
        let client = req.extensions().get::<ClientAddr>().copied();
        let headers = req.headers().clone();
        let Form(form) = Form::<IdentityForm>::from_request(req, console).await.map_err(|_| {
            let notice = Notice::Error("The form's fields are not what this page sends".into());
            layout::respond(StatusCode::BAD_REQUEST, layout::page("Refused", None, &notice, html! {}))
        })?;
        if let Some(refused) = check_form(&headers, form.csrf.as_deref()) {
            return Err(refused);
        }
        let ui = Ui::named(console, &tenant_of(form.tenant.as_deref())).await;
        Ok(Anonymous { headers, client, ui, form })
    }
}

async fn send_code(State(console): State<Console>, posted: Anonymous) -> Response {
    let Anonymous { headers, ui, form, .. } = &posted;
    let caller = posted.caller();
    let body = json!({
        "mode": form.mode(),
        "identity": form.identity(),
        "code": form.captcha.as_deref().unwrap_or_default(),
        "captchacode": form.captchaid.as_deref().unwrap_or_default(),
    });
    match console.call(&caller, "UserPrelogin", body).await {
        Ok(_) => code_form(headers, ui, StatusCode::OK, &Notice::Ok(CODE_SENT.into()), form),
        Err(refusal) => {
            let (status, notice) = if refusal.message == CAPTCHA_ERROR {
                (StatusCode::BAD_REQUEST, Notice::Error("The characters did not match the picture: try again.".into()))
            } else {
                (refusal.status, (&refusal).into())
            };
            identity_form(&console, headers, ui, status, &notice, form.mode(), form.identity()).await
        }
    }
}

fn code_form(headers: &HeaderMap, ui: &Ui, status: StatusCode, notice: &Notice, form: &IdentityForm) -> Response {
    let (token, cookie) = form_token(headers, PATH, FORM_COOKIE);
    let body = html! {
        form.login method="post" action="/portal/login" {
            (csrf_field(&token))
            input type="hidden" name="tenant" value=(ui.tenant);
            input type="hidden" name="mode" value=(form.mode());
            input type="hidden" name="identity" value=(form.identity());
            fieldset {
                legend { "The code we sent to " (form.identity()) }
                label for="portal-code" { "Code" }
                input #portal-code name="code" type="text" required inputmode="numeric" autocomplete="one-time-code" maxlength="6";
                button type="submit" { "Log in" }
            }
        }
        p { a href=(login_address(&ui.tenant)) { "Ask for another code" } }
    };
    with_cookie(layout::respond(status, layout::page_of(ui, "Enter your code", None, notice, body)), cookie)
}

fn login_address(tenant: &str) -> String {
    if tenant.is_empty() {
        "/portal/login".into()
    } else {
        let query = serde_urlencoded::to_string([("tenant", tenant)]).unwrap_or_default();
        format!("/portal/login?{query}")
    }
}

async fn login(State(console): State<Console>, posted: Anonymous) -> Response {
    let Anonymous { headers, ui, form, .. } = &posted;
    let caller = posted.caller();
    let code = form.code.as_deref().map(str::trim).unwrap_or_default();
    let body = json!({"mode": form.mode(), "identity": form.identity(), "smscode": code});
    let answer = match console.call(&caller, "UserLogin", body).await {
        Ok(answer) => answer,
        Err(refusal) => return code_form(headers, ui, refusal.status, &(&refusal).into(), form),
    };
    let (Some(secret), Some(user)) = (answer["xtoken"].as_str(), answer["token"].as_str()) else {
        return layout::refused(None, &unavailable());
    };
    // The login token becomes the portal's own: the API refuses it from anywhere else.
    let app = &console.app;
    let digest = token_digest(secret);
    let adopted = match store::vault::find_token(&app.db, &digest).await {
        Ok(Some(row)) => app.db.tenant(row.tenant).console().adopt(&digest, app.clock.now()).await.is_ok(),
        _ => false,
    };
    if !adopted {
        return layout::refused(None, &unavailable());
    }
    let max_age = answer["expiration"].as_i64().map_or(600, |at| (at - app.clock.now()).max(1));
    let mut response = see_other("/portal/profile");
    let value = format!("{secret}.{user}");
    let cookies = response.headers_mut();
    cookies.append(header::SET_COOKIE, set_cookie_at(headers, PATH, COOKIE, Some(&value), max_age));
    cookies.append(header::SET_COOKIE, set_cookie_at(headers, PATH, FORM_COOKIE, None, 0));
    response
}

fn unavailable() -> Refusal {
    crate::console::session::unavailable()
}

async fn logout(State(console): State<Console>, posted: Posted<Value, Person>) -> Response {
    let person = &posted.session;
    let ui = Ui::of(&console, person.tenant).await;
    let app = &console.app;
    if app.db.tenant(person.tenant).console().end(&person.id, None, app.clock.now_ms()).await.is_err() {
        return layout::refused(Some(person), &unavailable());
    }
    let to = login_address(&ui.tenant);
    let to = if to.contains('?') { format!("{to}&done=out") } else { format!("{to}?done=out") };
    let mut response = see_other(&to);
    response.headers_mut().append(header::SET_COOKIE, set_cookie_at(&posted.headers, PATH, COOKIE, None, 0));
    response
}
