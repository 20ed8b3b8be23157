//! The person's requests (a change, an erasure, a consent withdrawn) with their status, and the
//! button that cancels one still open.

use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout::{Notice, csrf_field};
use super::pages::show;
use super::session::Person;
use crate::console::api::Refusal;
use crate::console::session::Posted;
use crate::console::{Console, render};
use crate::requests::record::action;

pub fn routes() -> Router<Console> {
    Router::new().route("/requests", get(requests)).route("/requests/cancel", post(cancel))
}

#[derive(Debug, Default, Deserialize)]
pub struct Shown {
    done: Option<String>,
}

async fn requests(State(console): State<Console>, person: Person, Query(shown): Query<Shown>) -> Response {
    let notice = match shown.done.as_deref() {
        Some("erasure") => Notice::Ok("Your request to erase your data is waiting for approval.".into()),
        Some("withdraw") => Notice::Ok("Your withdrawal is waiting for approval.".into()),
        Some("change") => Notice::Ok("Your change is waiting for approval.".into()),
        _ => Notice::None,
    };
    let body = requests_body(&console, &person).await;
    show(&console, &person, "Your requests", &notice, body).await
}

/// The most requests listed (the latest).
const MAX_REQUESTS: i64 = 100;

async fn requests_body(console: &Console, person: &Person) -> Result<Markup, Refusal> {
    let caller = person.caller();
    let first =
        console.call(&caller, "UserRequestListUserRequests", person.me(json!({"offset": 0, "limit": 1}))).await?;
    let total = first["total"].as_i64().unwrap_or(0);
    // Oldest first in the vault: the latest page, shown newest first.
    let offset = (total - MAX_REQUESTS).max(0);
    let answer = console
        .call(&caller, "UserRequestListUserRequests", person.me(json!({"offset": offset, "limit": MAX_REQUESTS})))
        .await?;
    let mut rows: Vec<Value> = answer["rows"].as_array().cloned().unwrap_or_default();
    rows.reverse();
    Ok(html! {
        table {
            caption { "Your requests" }
            thead { tr { th scope="col" { "Request" } th scope="col" { "Status" } th scope="col" { "Filed" } th scope="col" { span.visually-hidden { "Action" } } } }
            tbody {
                @if rows.is_empty() { tr { td colspan="4" { "Nothing to show" } } }
                @for row in &rows {
                    @let what = describe(row);
                    tr {
                        td { (what) }
                        td { (render::text(&row["status"])) }
                        td { (render::time(&row["creationtime"])) }
                        td {
                            @if row["status"] == "open" {
                                form.inline method="post" action="/portal/requests/cancel" {
                                    (csrf_field(&person.csrf))
                                    input type="hidden" name="requestuuid" value=(render::text(&row["requestuuid"]));
                                    button.secondary type="submit" aria-label=(format!("Cancel the request: {what}")) { "Cancel" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if total > MAX_REQUESTS { p.muted { "Your latest " (MAX_REQUESTS) " of " (total) " requests." } }
    })
}

/// What a request asks, in the person's words.
fn describe(row: &Value) -> String {
    match row["action"].as_str().unwrap_or_default() {
        action::FORGET_ME => "Erase my data".into(),
        action::CHANGE_PROFILE | action::PATCH_PROFILE => "Change my profile".into(),
        action::AGREEMENT_WITHDRAW => format!("Withdraw consent {}", render::text(&row["brief"])),
        action::CHANGE_APP_DATA => format!("Change app data {}", render::text(&row["app"])),
        other => other.to_owned(),
    }
}

#[derive(Debug, Deserialize)]
pub struct CancelForm {
    requestuuid: Option<String>,
}

async fn cancel(State(console): State<Console>, posted: Posted<CancelForm, Person>) -> Response {
    let person = &posted.session;
    let uuid = posted.form.requestuuid.as_deref().unwrap_or_default();
    let body = json!({"requestuuid": uuid, "reason": "canceled by the person in the portal"});
    let notice = match console.call(&person.caller(), "UserRequestCancel", body).await {
        Ok(_) => Notice::Ok("Your request is canceled.".into()),
        Err(refusal) => (&refusal).into(),
    };
    let body = requests_body(&console, person).await;
    show(&console, person, "Your requests", &notice, body).await
}
