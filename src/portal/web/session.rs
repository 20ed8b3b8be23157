//! The portal's session: the person's login token, in the `bunker_portal` cookie with their
//! user token (`<secret>.<user token>`: the token names the record in calls; the vault refuses
//! any other record to this login, whatever the cookie says).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::layout;
use crate::console::Console;
use crate::console::api::Caller;
use crate::console::csrf;
use crate::console::session::{FormOwner, cookies, live_token};
use crate::http::rate::ClientAddr;
use crate::tenants::TenantId;

/// The session cookie.
pub const COOKIE: &str = "bunker_portal";
/// Where the portal's cookies go.
pub const PATH: &str = "/portal";

/// The person logged in, and the browser they use.
#[derive(Debug, Clone)]
pub struct Person {
    /// The login token's secret.
    pub secret: String,
    /// The login token's id.
    pub id: String,
    /// The person's user token.
    pub user: String,
    /// Their tenant.
    pub tenant: TenantId,
    /// Their forms' token.
    pub csrf: String,
    /// The browser's address.
    pub client: Option<ClientAddr>,
}

impl Person {
    /// How the portal calls the vault for them.
    pub fn caller(&self) -> Caller<'_> {
        Caller { token: Some(&self.secret), tenant: None, client: self.client }
    }

    /// Their record, as the operations name it, with `more` fields.
    pub fn me(&self, more: Value) -> Value {
        let mut body = json!({"mode": "token", "identity": self.user});
        if let (Some(body), Value::Object(more)) = (body.as_object_mut(), more) {
            body.extend(more);
        }
        body
    }
}

impl FromRequestParts<Console> for Person {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, console: &Console) -> Result<Person, Response> {
        let client = parts.extensions.get::<ClientAddr>().copied();
        let values: Vec<&str> = cookies(&parts.headers, COOKIE).take(4).collect();
        if values.is_empty() {
            return Err(to_login(false));
        }
        for value in values {
            let Some((secret, user)) = value.split_once('.') else { continue };
            match live_token(console, secret).await {
                Ok(Some(row)) if row.kind == "user" && row.user_rid.is_some() => {
                    return Ok(Person {
                        secret: secret.to_owned(),
                        id: row.id,
                        user: user.to_owned(),
                        tenant: row.tenant,
                        csrf: csrf::of_session(secret),
                        client,
                    });
                }
                Ok(_) => {}
                Err(refusal) => return Err(layout::refused(None, &refusal)),
            }
        }
        Err(to_login(true))
    }
}

impl FormOwner for Person {
    fn csrf(&self) -> &str {
        &self.csrf
    }

    fn refuse(&self, status: StatusCode, message: &str) -> Response {
        layout::respond(
            status,
            layout::page("Refused", Some(self), &layout::Notice::Error(message.into()), maud::html! {}),
        )
    }
}

/// To the login page; `clear` drops the dead session's cookie.
fn to_login(clear: bool) -> Response {
    let mut response = Redirect::to("/portal/login").into_response();
    if clear {
        let cleared = HeaderValue::from_static("bunker_portal=; Path=/portal; HttpOnly; SameSite=Strict; Max-Age=0");
        response.headers_mut().insert(header::SET_COOKIE, cleared);
    }
    response
}
