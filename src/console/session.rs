//! Console sessions: the cookie, the session it names, and the idle and absolute timeouts.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};

use super::api::{Caller, Refusal};
use super::layout::{self, Notice};
use super::{Console, csrf};
use crate::crypto::secrets::{digests_match, token_digest};
use crate::http::rate::ClientAddr;
use crate::store;
use crate::tenants::TenantId;

/// The session cookie.
pub const COOKIE: &str = "bunker_console";
/// A session's last use is written at most this often (seconds): the idle timeout is that much
/// less exact, and a page view costs no write.
const TOUCH_EVERY: i64 = 30;

/// The session of a request, and the browser it came from.
#[derive(Debug, Clone)]
pub struct Session {
    /// The session's secret (its access token).
    pub secret: String,
    /// The session's token id (in events).
    pub id: String,
    /// Its tenant.
    pub tenant: TenantId,
    /// `root`, `tenant` (an administrator's) or `role` (an account acting as a role).
    pub kind: String,
    /// The account whose session this is.
    pub account: Option<String>,
    /// Its forms' token.
    pub csrf: String,
    /// The browser's address.
    pub client: Option<ClientAddr>,
}

impl Session {
    /// How the session calls the vault.
    pub fn caller(&self) -> Caller<'_> {
        Caller { token: Some(&self.secret), tenant: None, client: self.client }
    }

    /// Administers the vault or a tenant (not bound by a role's policies).
    pub fn is_admin(&self) -> bool {
        self.kind != "role"
    }
}

impl FromRequestParts<Console> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Session, Response> {
        let client = parts.extensions.get::<ClientAddr>().copied();
        // Every cookie of that name is tried: another site of the same domain may have planted one
        // with a narrower path, which the browser sends first.
        let secrets: Vec<&str> = cookies(&parts.headers, COOKIE).take(4).collect();
        if secrets.is_empty() {
            return Err(to_login(false));
        }
        for secret in secrets {
            match load(console, secret, client).await {
                Ok(Some(session)) => return Ok(session),
                Ok(None) => {}
                Err(refusal) => return Err(layout::refused(None, &refusal)),
            }
        }
        Err(to_login(true))
    }
}

/// The session named by `secret`, if it is live; ends it when it sat unused too long.
async fn load(console: &Console, secret: &str, client: Option<ClientAddr>) -> Result<Option<Session>, Refusal> {
    let Some(row) = live_token(console, secret).await? else { return Ok(None) };
    let kind = match (row.kind.as_str(), row.account_id.is_some()) {
        ("role", true) => "role",
        ("tenant", _) => "tenant",
        ("root", false) => "root",
        _ => return Ok(None),
    };
    Ok(Some(Session {
        secret: secret.to_owned(),
        id: row.id,
        tenant: row.tenant,
        kind: kind.into(),
        account: row.account_id,
        csrf: csrf::of_session(secret),
        client,
    }))
}

/// The token of a live session (the console's or the portal's: an access token only they may
/// present) named by `secret`. Ends it when it sat unused longer than `BUNKER_CONSOLE_IDLE` or
/// is past its lifetime; records its use every so often.
pub(crate) async fn live_token(console: &Console, secret: &str) -> Result<Option<store::vault::TokenRow>, Refusal> {
    let app = &console.app;
    let digest = token_digest(secret);
    let row = store::vault::find_token(&app.db, &digest).await.map_err(|_| unavailable())?;
    let Some(row) = row.filter(|row| digests_match(&row.digest, &digest)) else { return Ok(None) };
    let Some(seen) = row.console_seen_at else { return Ok(None) };
    let now = app.clock.now();
    let console_store = app.db.tenant(row.tenant).console();
    let idle = i64::try_from(app.settings.accounts.console_idle.as_secs()).unwrap_or(i64::MAX);
    if row.expires_at.is_some_and(|at| at <= now) || now.saturating_sub(seen) > idle {
        console_store.end(&row.id, None, app.clock.now_ms()).await.map_err(|_| unavailable())?;
        return Ok(None);
    }
    if now - seen >= TOUCH_EVERY.min(idle / 2) {
        match console_store.touch(&row.id, now).await {
            Ok(()) => {}
            Err(store::StoreError::NotFound) => return Ok(None),
            Err(_) => return Err(unavailable()),
        }
    }
    Ok(Some(row))
}

pub(crate) fn unavailable() -> Refusal {
    Refusal {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: "The vault is unavailable: try again in a moment".into(),
    }
}

/// The (first) value of cookie `name`.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    cookies(headers, name).next()
}

/// Every value the request gives cookie `name`, in the order sent.
pub fn cookies<'h>(headers: &'h HeaderMap, name: &str) -> impl Iterator<Item = &'h str> {
    let name = name.to_owned();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(key, _)| *key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` for the console: HttpOnly, SameSite=Strict, Secure when the browser reached the
/// vault over TLS (through a proxy that says so); `None` clears it.
pub fn set_cookie(headers: &HeaderMap, name: &str, value: Option<&str>, max_age: i64) -> HeaderValue {
    set_cookie_at(headers, "/console", name, value, max_age)
}

/// A `Set-Cookie` as [`set_cookie`], for the pages under `path` (the console's or the portal's).
pub fn set_cookie_at(headers: &HeaderMap, path: &str, name: &str, value: Option<&str>, max_age: i64) -> HeaderValue {
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    let secure = if secure { "; Secure" } else { "" };
    let cookie = match value {
        Some(value) => format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"),
        None => format!("{name}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&cookie).expect("cookie values are hex")
}

/// The token of the forms shown before a session (login and the like), with the cookie to set
/// when the browser has none yet (double submit): on the pages under `path`, in cookie `name`.
pub fn form_token(headers: &HeaderMap, path: &str, name: &str) -> (String, Option<HeaderValue>) {
    match cookie(headers, name) {
        Some(value) if value.len() == 64 => (value.to_owned(), None),
        _ => {
            let value = csrf::fresh();
            let cookie = set_cookie_at(headers, path, name, Some(&value), 3600);
            (value, Some(cookie))
        }
    }
}

/// The value of form cookie `name` a form's `given` token is to match: any of those sent (a
/// sibling site may have planted one with a narrower path).
pub fn form_cookie<'h>(headers: &'h HeaderMap, name: &str, given: Option<&str>) -> Option<&'h str> {
    let planted = cookies(headers, name).take(4).find(|value| Some(*value) == given);
    planted.or_else(|| cookie(headers, name))
}

/// To the login page; `clear` drops the dead session's cookie.
fn to_login(clear: bool) -> Response {
    let mut response = Redirect::to("/console/login").into_response();
    if clear {
        let cleared = HeaderValue::from_static("bunker_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
        response.headers_mut().insert(header::SET_COOKIE, cleared);
    }
    response
}

/// The refusal of a page that needs an administrator, not a role.
pub fn admins_only(session: &Session) -> Response {
    layout::respond(
        StatusCode::FORBIDDEN,
        layout::page(
            "Refused",
            Some(session),
            &Notice::Error("Only an administrator may use this page".into()),
            maud::html! {},
        ),
    )
}

/// The most of a form the console reads.
const MAX_FORM: usize = 256 * 1024;

/// Who may post forms: a session whose forms carry its own token, and how its pages refuse.
pub trait FormOwner: FromRequestParts<Console, Rejection = Response> + Send + Sized {
    /// The token its forms carry.
    fn csrf(&self) -> &str;
    /// A page refusing the form with `status` and `message`.
    fn refuse(&self, status: StatusCode, message: &str) -> Response;
}

impl FormOwner for Session {
    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn refuse(&self, status: StatusCode, message: &str) -> Response {
        let notice = Notice::Error(message.into());
        layout::respond(status, layout::page("Refused", Some(self), &notice, maud::html! {}))
    }
}

/// A form posted within a session (the console's, or `S`), its token and origin checked first:
/// a handler that changes anything gets its form only through this, so none can forget the check.
pub struct Posted<T, S = Session> {
    /// The session.
    pub session: S,
    /// The form's fields.
    pub form: T,
    /// The request's headers.
    pub headers: HeaderMap,
}

impl<T: serde::de::DeserializeOwned, S: FormOwner> axum::extract::FromRequest<Console> for Posted<T, S> {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, console: &Console) -> Result<Posted<T, S>, Response> {
        #[derive(serde::Deserialize)]
        struct Token {
            csrf: Option<String>,
        }
        let (mut parts, body) = req.into_parts();
        let session = S::from_request_parts(&mut parts, console).await?;
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
            return Err(session.refuse(StatusCode::PAYLOAD_TOO_LARGE, "The form is too large"));
        };
        let token: Option<Token> = serde_urlencoded::from_bytes(&bytes).ok();
        if !csrf::passes(&parts.headers, Some(session.csrf()), token.and_then(|t| t.csrf).as_deref()) {
            return Err(session.refuse(StatusCode::FORBIDDEN, csrf::REFUSED));
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| session.refuse(StatusCode::BAD_REQUEST, "The form's fields are not what this page sends"))?;
        Ok(Posted { session, form, headers: parts.headers })
    }
}
