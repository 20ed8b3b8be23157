//! The logged-in account's own page: its second factor (TOTP), enrolled and confirmed here.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::json;

use super::Console;
use super::layout::{self, Notice, csrf_field};
use super::session::{Posted, Session};

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/account", get(page))
        .route("/account/totp", post(enroll))
        .route("/account/totp/confirm", post(confirm))
}

fn enrol_form(session: &Session) -> Markup {
    html! {
        form method="post" action="/console/account/totp" {
            (csrf_field(&session.csrf))
            fieldset {
                legend { "Second factor" }
                p { "Add a one-time code (TOTP) app to your logins. Your password again, to begin:" }
                label for="totp-password" { "Password" }
                input #totp-password name="password" type="password" required autocomplete="current-password";
                button type="submit" { "Set up a second factor" }
            }
        }
    }
}

fn respond(session: &Session, status: StatusCode, notice: &Notice, body: Markup) -> Response {
    layout::respond(status, layout::page("Your account", Some(session), notice, body))
}

async fn page(session: Session) -> Response {
    if session.account.is_none() {
        let notice = Notice::Error("This session was opened with a token, not an account".into());
        return respond(&session, StatusCode::OK, &notice, html! {});
    }
    respond(&session, StatusCode::OK, &Notice::None, enrol_form(&session))
}

#[derive(Debug, Default, Deserialize)]
pub struct TotpForm {
    password: Option<String>,
    code: Option<String>,
}

/// Shows the new secret once, with the form that confirms it with a first code.
async fn enroll(State(console): State<Console>, Posted { session, form, .. }: Posted<TotpForm>) -> Response {
    let body = json!({"password": form.password.unwrap_or_default()});
    match console.call(&session.caller(), "AccountTotpEnroll", body).await {
        Ok(answer) => {
            let secret = answer["secret"].as_str().unwrap_or_default();
            let address = answer["otpauthurl"].as_str().unwrap_or_default();
            let body = html! {
                p { "Add this key to your authenticator app (it is shown this once):" }
                p { code { (secret) } }
                p.muted { "Or the address: " code { (address) } }
                form method="post" action="/console/account/totp/confirm" {
                    (csrf_field(&session.csrf))
                    label for="totp-code" { "One-time code" }
                    input #totp-code name="code" type="text" inputmode="numeric" required autocomplete="one-time-code";
                    button type="submit" { "Confirm" }
                }
            };
            respond(&session, StatusCode::OK, &Notice::None, body)
        }
        Err(refusal) => respond(&session, refusal.status, &(&refusal).into(), enrol_form(&session)),
    }
}

async fn confirm(State(console): State<Console>, Posted { session, form, .. }: Posted<TotpForm>) -> Response {
    let body = json!({"code": form.code.unwrap_or_default().trim()});
    match console.call(&session.caller(), "AccountTotpConfirm", body).await {
        Ok(_) => {
            let notice = Notice::Ok("The second factor is on: your next logins need a code".into());
            respond(&session, StatusCode::OK, &notice, html! {})
        }
        Err(refusal) => respond(&session, refusal.status, &(&refusal).into(), enrol_form(&session)),
    }
}
