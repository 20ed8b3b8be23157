//! The page around every view of the portal: the tenant's presentation, the person's sections,
//! the notice of what just happened. No script: every page works as plain forms and links.

use axum::http::StatusCode;
use axum::response::Response;
use maud::{DOCTYPE, Markup, html};
use serde_json::json;

use super::session::Person;
use crate::console::Console;
use crate::console::api::{Caller, Refusal};
use crate::console::render;
use crate::tenants::TenantId;

pub use crate::console::layout::{Notice, csrf_field, respond};

/// The tenant's presentation (`TenantGetUIConf`): whose portal this is.
#[derive(Debug, Clone, Default)]
pub struct Ui {
    /// The tenant's name (what the login form posts).
    pub tenant: String,
    /// The organisation shown in the header.
    pub org: String,
}

impl Ui {
    /// The presentation of the tenant named `tenant` (empty: the main tenant), as
    /// `TenantGetUIConf` answers it; the bare name when it cannot.
    pub async fn named(console: &Console, tenant: &str) -> Ui {
        let caller = Caller { token: None, tenant: Some(tenant), client: None };
        let answer = console.call(&caller, "TenantGetUIConf", json!({})).await.unwrap_or_default();
        let org = render::text(&answer["ui"]["tenantorg"]);
        let name = render::text(&answer["ui"]["tenantname"]);
        Ui { tenant: tenant.to_owned(), org: if org.is_empty() { name } else { org } }
    }

    /// The presentation of the person's tenant.
    pub async fn of(console: &Console, tenant: TenantId) -> Ui {
        // The main tenant is the one named by no name: nothing to look up.
        let name = if tenant == TenantId::MAIN {
            String::new()
        } else {
            crate::accounts::tenant_name(&console.app, tenant).await.unwrap_or_default()
        };
        Ui::named(console, &name).await
    }
}

const SECTIONS: [(&str, &str); 8] = [
    ("Profile", "/portal/profile"),
    ("Consents", "/portal/consents"),
    ("App data", "/portal/apps"),
    ("Files", "/portal/files"),
    ("Sessions", "/portal/sessions"),
    ("Shared records", "/portal/shared"),
    ("Requests", "/portal/requests"),
    ("Report", "/portal/report"),
];

/// A whole page.
pub fn page(title: &str, person: Option<&Person>, notice: &Notice, body: Markup) -> Markup {
    page_of(&Ui::default(), title, person, notice, body)
}

/// A whole page with the tenant's presentation.
pub fn page_of(ui: &Ui, title: &str, person: Option<&Person>, notice: &Notice, body: Markup) -> Markup {
    let org = if ui.org.is_empty() { "Your data".to_owned() } else { format!("{} · your data", ui.org) };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (org) }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/portal/assets/console.css";
            }
            body.portal {
                a.skip href="#content" { "Skip to the content" }
                header.top {
                    a.brand href="/portal/" { (org) }
                    @if let Some(person) = person {
                        nav aria-label="Your data" {
                            ul { @for (name, href) in SECTIONS { li { a href=(href) { (name) } } } }
                        }
                        div.who {
                            form method="post" action="/portal/logout" {
                                (csrf_field(&person.csrf))
                                button.secondary type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main #content {
                    h1 { (title) }
                    (crate::console::layout::notice_of(notice))
                    (body)
                }
            }
        }
    }
}

/// A page that says what the vault refused, with its status.
pub fn refused(person: Option<&Person>, refusal: &Refusal) -> Response {
    respond(refusal.status, page("Refused", person, &refusal.into(), html! {}))
}

/// The portal's 404.
pub async fn not_found() -> Response {
    respond(
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            None,
            &Notice::Error("There is no such page".into()),
            html! { p { a href="/portal/" { "To your data" } } },
        ),
    )
}
