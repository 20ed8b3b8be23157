//! The person's consents: each legal basis of the tenant they gave or could give, its status and
//! history, and the buttons to give a consent (`AgreementAccept`) or withdraw one
//! (`AgreementCancelRequest`: a login token may only ask, and an administrator approves).

use axum::Router;
use axum::extract::State;
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
use crate::console::{Console, render, see_other};
use crate::store::legal::LegalBasis;

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/consents", get(consents))
        .route("/consents/accept", post(accept))
        .route("/consents/withdraw", post(withdraw))
}

/// The kind of legal basis a person gives and withdraws themselves; the others (a contract, a
/// legal obligation) are shown but not theirs to withdraw.
const CONSENT: &str = "consent";
/// The latest events of the person searched for the history.
const HISTORY_EVENTS: i64 = 500;
/// The most consents shown.
const MAX_CONSENTS: usize = 200;

async fn consents(State(console): State<Console>, person: Person) -> Response {
    let body = consents_body(&console, &person).await;
    show(&console, &person, "Your consents", &Notice::None, body).await
}

/// One row of the table: a legal basis, and the person's agreement to it.
struct Row {
    brief: String,
    about: String,
    status: &'static str,
    can_give: bool,
    can_withdraw: bool,
    pending: bool,
}

async fn consents_body(console: &Console, person: &Person) -> Result<Markup, Refusal> {
    let caller = person.caller();
    let given = console.call(&caller, "AgreementListUserAgreements", person.me(json!({}))).await?;
    let given: Vec<(String, String)> = given["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|row| (render::text(&row["brief"]), render::text(&row["status"])))
        .collect();
    // The tenant's legal bases are its notice to every person, not anyone's data: read from the
    // store once the vault let this person read their own agreements.
    let bases = console.app.db.tenant(person.tenant).legal().list_bases().await.map_err(|_| unavailable())?;
    let requests =
        console.call(&caller, "UserRequestListUserRequests", person.me(json!({"offset": 0, "limit": 100}))).await?;
    let pending: Vec<String> = requests["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r["status"] == "open" && r["action"] == crate::requests::record::action::AGREEMENT_WITHDRAW)
        .map(|r| render::text(&r["brief"]))
        .collect();
    let rows = rows(&bases, &given, &pending);
    let history = console
        .call(&caller, "AuditListUserEvents", person.me(json!({"offset": 0, "limit": HISTORY_EVENTS})))
        .await
        .map(|answer| {
            answer["rows"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| render::text(&e["title"]).starts_with("Agreement"))
                .map(|mut e| {
                    e["when"] = json!(render::time(&e["timestamp"]));
                    e
                })
                .collect::<Vec<Value>>()
        });
    Ok(html! {
        table {
            caption { "Your consents" }
            thead { tr { th scope="col" { "Consent" } th scope="col" { "Status" } th scope="col" { span.visually-hidden { "Action" } } } }
            tbody {
                @if rows.is_empty() { tr { td colspan="3" { "Nothing to show" } } }
                @for row in &rows {
                    tr {
                        td { strong { (row.brief) } @if !row.about.is_empty() { br; span.muted { (row.about) } } }
                        td { (row.status) @if row.pending { br; span.muted { "withdrawal waiting for approval" } } }
                        td {
                            @if row.can_withdraw && !row.pending {
                                (action_form("/portal/consents/withdraw", &person.csrf, &row.brief, "Withdraw", &format!("Withdraw consent {}", row.brief)))
                            }
                            @if row.can_give {
                                (action_form("/portal/consents/accept", &person.csrf, &row.brief, "Give consent", &format!("Give consent {}", row.brief)))
                            }
                        }
                    }
                }
            }
        }
        h2 { "History" }
        @match &history {
            Ok(events) => (render::rows("What happened to your consents", events, &[("when", "When"), ("title", "What")], None)),
            Err(refusal) => p role="alert" { "The history could not be read: " (refusal.message) },
        }
    })
}

fn rows(bases: &[LegalBasis], given: &[(String, String)], pending: &[String]) -> Vec<Row> {
    let status_of = |brief: &str| given.iter().find(|(b, _)| b == brief).map(|(_, s)| s.as_str());
    let mut rows: Vec<Row> = bases
        .iter()
        .filter(|basis| basis.status == "active" || status_of(&basis.brief).is_some())
        .map(|basis| {
            let status = shown_status(status_of(&basis.brief));
            let consent = basis.basistype == CONSENT;
            Row {
                brief: basis.brief.clone(),
                about: basis.shortdesc.clone(),
                status,
                can_give: consent && basis.status == "active" && status != "active",
                can_withdraw: consent && status == "active",
                pending: pending.contains(&basis.brief),
            }
        })
        .collect();
    // Agreements to a basis since deleted are still the person's.
    for (brief, status) in given {
        if !bases.iter().any(|b| &b.brief == brief) {
            let status = shown_status(Some(status));
            rows.push(Row {
                brief: brief.clone(),
                about: String::new(),
                status,
                can_give: false,
                can_withdraw: status == "active",
                pending: pending.contains(brief),
            });
        }
    }
    rows.truncate(MAX_CONSENTS);
    rows
}

fn shown_status(status: Option<&str>) -> &'static str {
    match status {
        None => "not given",
        Some("active") => "active",
        Some(crate::agreements::service::CANCELED) => "withdrawn",
        Some("pending") => "pending",
        Some("expired") => "expired",
        Some(_) => "other",
    }
}

fn action_form(action: &str, csrf: &str, brief: &str, label: &str, name: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf_field(csrf))
            input type="hidden" name="brief" value=(brief);
            button.secondary type="submit" aria-label=(name) { (label) }
        }
    }
}

fn unavailable() -> Refusal {
    crate::console::session::unavailable()
}

#[derive(Debug, Deserialize)]
pub struct BriefForm {
    brief: Option<String>,
}

async fn accept(State(console): State<Console>, posted: Posted<BriefForm, Person>) -> Response {
    let person = &posted.session;
    let brief = posted.form.brief.as_deref().unwrap_or_default();
    let body = person.me(json!({"brief": brief, "agreementmethod": "portal"}));
    match console.call(&person.caller(), "AgreementAccept", body).await {
        Ok(_) => {
            let notice = Notice::Ok(format!("You gave your consent to {brief}."));
            let body = consents_body(&console, person).await;
            show(&console, person, "Your consents", &notice, body).await
        }
        Err(refusal) => {
            let body = consents_body(&console, person).await;
            show(&console, person, "Your consents", &(&refusal).into(), body).await
        }
    }
}

async fn withdraw(State(console): State<Console>, posted: Posted<BriefForm, Person>) -> Response {
    let person = &posted.session;
    let brief = posted.form.brief.as_deref().unwrap_or_default();
    match console.call(&person.caller(), "AgreementCancelRequest", person.me(json!({"brief": brief}))).await {
        Ok(_) => see_other("/portal/requests?done=withdraw"),
        Err(refusal) => {
            let body = consents_body(&console, person).await;
            show(&console, person, "Your consents", &(&refusal).into(), body).await
        }
    }
}
