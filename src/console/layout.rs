//! The page around every view: landmarks, navigation, the notice of what just happened.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::api::Refusal;
use super::csrf;
use super::session::Session;

/// What the page tells first: nothing, a success, or an error (the vault's message).
#[derive(Debug, Clone, Default)]
pub enum Notice {
    /// Nothing to tell.
    #[default]
    None,
    /// It worked.
    Ok(String),
    /// It did not: why.
    Error(String),
}

impl From<&Refusal> for Notice {
    fn from(refusal: &Refusal) -> Notice {
        Notice::Error(refusal.message.clone())
    }
}

const SECTIONS: [(&str, &str); 8] = [
    ("Users", "/console/users"),
    ("Requests", "/console/requests"),
    ("Tokens", "/console/tokens"),
    ("Access", "/console/access"),
    ("Accounts", "/console/accounts"),
    ("Tenants", "/console/tenants"),
    ("Keys", "/console/keys"),
    ("Statistics", "/console/stats"),
];

/// A whole page.
pub fn page(title: &str, session: Option<&Session>, notice: &Notice, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"selfRequestsOnly":true}"#;
                title { (title) " · Bunker console" }
                link rel="stylesheet" href="/console/assets/console.css";
                script src="/console/assets/htmx.min.js" defer {}
            }
            body {
                a.skip href="#content" { "Skip to the content" }
                header.top {
                    a.brand href="/console/" { "Bunker" }
                    @if let Some(session) = session {
                        nav aria-label="Console" {
                            ul { @for (name, href) in SECTIONS { li { a href=(href) { (name) } } } }
                        }
                        div.who {
                            span { (who(session)) }
                            form method="post" action="/console/logout" {
                                (csrf_field(&session.csrf))
                                button.secondary type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main #content {
                    h1 { (title) }
                    (notice_of(notice))
                    (body)
                }
            }
        }
    }
}

/// The notice alone (also what htmx swaps in).
pub fn notice_of(notice: &Notice) -> Markup {
    html! {
        @match notice {
            Notice::None => {},
            Notice::Ok(text) => div.notice.ok role="status" { (text) },
            Notice::Error(text) => div.notice.error role="alert" { (text) },
        }
    }
}

fn who(session: &Session) -> String {
    match (session.kind.as_str(), &session.account) {
        ("root", _) => "Vault administrator (root token)".into(),
        ("tenant", None) => "Tenant administrator (token)".into(),
        ("tenant", Some(_)) => "Tenant administrator account".into(),
        _ => "Account acting as its role".into(),
    }
}

/// The hidden field every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(token); }
}

/// An HTML answer with `status`.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup.into_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, "text/html; charset=utf-8".parse().expect("static"));
    response
}

/// A page that says what the vault refused, with its status.
pub fn refused(session: Option<&Session>, refusal: &Refusal) -> Response {
    respond(refusal.status, page("Refused", session, &refusal.into(), html! {}))
}

/// The console's 404.
pub async fn not_found() -> Response {
    respond(
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            None,
            &Notice::Error("There is no such page in the console".into()),
            html! {
                p { a href="/console/" { "To the console" } }
            },
        ),
    )
}
