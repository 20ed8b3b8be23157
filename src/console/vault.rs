//! The vault's own pages: tokens, tenants, administrator accounts, keys and statistics.

use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::Refusal;
use super::layout::{self, Notice, csrf_field};
use super::session::{Posted, Session, admins_only};
use super::users::pager;
use super::{Console, chart, render};

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/tokens", get(tokens_page).post(token_action))
        .route("/tenants", get(tenants_page).post(create_tenant))
        .route("/accounts", get(accounts_page).post(account_action))
        .route("/keys", get(keys_page).post(rotate))
        .route("/stats", get(stats_page))
        .route("/stats/verify", post(verify))
}

fn page(session: &Session, title: &str, status: StatusCode, notice: &Notice, body: Markup) -> Response {
    layout::respond(status, layout::page(title, Some(session), notice, body))
}

fn outcome<T>(result: Result<T, Refusal>, done: &str) -> (StatusCode, Notice) {
    match result {
        Ok(_) => (StatusCode::OK, Notice::Ok(done.into())),
        Err(refusal) => (refusal.status, (&refusal).into()),
    }
}

// ---- Tokens ------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    token: Option<String>,
    action: Option<String>,
}

fn token_form(session: &Session, token: &str) -> Markup {
    html! {
        form method="post" action="/console/tokens" {
            (csrf_field(&session.csrf))
            label for="token-value" { "Token" }
            input #token-value name="token" type="text" required value=(token) autocomplete="off" aria-describedby="token-help";
            p #token-help .muted { "A token's uuid or its format-preserving value." }
            button type="submit" name="action" value="lookup" { "Look up" }
        }
    }
}

async fn tokens_page(session: Session) -> Response {
    page(&session, "Tokens", StatusCode::OK, &Notice::None, token_form(&session, ""))
}

/// Looking a token up or deleting it: by POST, so that the value never sits in an address.
async fn token_action(State(console): State<Console>, Posted { session, form, .. }: Posted<TokenForm>) -> Response {
    let token = form.token.as_deref().map(str::trim).unwrap_or_default();
    if form.action.as_deref() == Some("delete") {
        let (status, notice) =
            outcome(console.call(&session.caller(), "TokenDelete", json!({"token": token})).await, "Token deleted");
        return page(&session, "Tokens", status, &notice, token_form(&session, ""));
    }
    match console.call(&session.caller(), "TokenGet", json!({"token": token})).await {
        Ok(mut answer) => {
            if let Some(map) = answer.as_object_mut() {
                map.remove("status");
            }
            let body = html! {
                (token_form(&session, token))
                (render::fields("Token", answer.as_object()))
                form method="post" action="/console/tokens" {
                    (csrf_field(&session.csrf))
                    input type="hidden" name="token" value=(token);
                    button.danger type="submit" name="action" value="delete" { "Delete token" }
                }
            };
            page(&session, "Tokens", StatusCode::OK, &Notice::None, body)
        }
        Err(refusal) => page(&session, "Tokens", refusal.status, &(&refusal).into(), token_form(&session, token)),
    }
}

// ---- Tenants -----------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    offset: Option<i64>,
}

async fn tenants_page(State(console): State<Console>, session: Session, Query(query): Query<ListQuery>) -> Response {
    tenants(&console, &session, query.offset.unwrap_or(0), StatusCode::OK, &Notice::None).await
}

async fn tenants(console: &Console, session: &Session, offset: i64, status: StatusCode, notice: &Notice) -> Response {
    let offset = offset.clamp(0, super::users::MAX_OFFSET);
    let answer =
        match console.call(&session.caller(), "TenantListTenants", json!({"offset": offset, "limit": 50})).await {
            Ok(answer) => answer,
            Err(refusal) => return layout::refused(Some(session), &refusal),
        };
    let rows = answer["rows"].as_array().cloned().unwrap_or_default();
    let body = html! {
        (render::rows("Tenants", &rows, &[("tenantid", "Id"), ("tenantname", "Name"), ("tenantorg", "Organisation")], None))
        (pager("/console/tenants", offset, answer["total"].as_i64().unwrap_or(0)))
        form method="post" action="/console/tenants" {
            (csrf_field(&session.csrf))
            fieldset {
                legend { "New tenant" }
                label for="tenant-name" { "Tenant name" }
                input #tenant-name name="tenantname" type="text" required pattern="[a-z0-9][a-z0-9-]*[a-z0-9]" aria-describedby="tenant-help";
                p #tenant-help .muted { "2 to 64 lower-case letters, digits and hyphens." }
                label for="tenant-org" { "Organisation" }
                input #tenant-org name="tenantorg" type="text";
                button type="submit" { "Create tenant" }
            }
        }
    };
    page(session, "Tenants", status, notice, body)
}

#[derive(Debug, Default, Deserialize)]
pub struct TenantForm {
    tenantname: Option<String>,
    tenantorg: Option<String>,
}

/// A new tenant: its administrator token is shown once, here.
async fn create_tenant(State(console): State<Console>, Posted { session, form, .. }: Posted<TenantForm>) -> Response {
    let body = json!({"tenantname": form.tenantname, "tenantorg": form.tenantorg.unwrap_or_default()});
    match console.call(&session.caller(), "TenantCreate", body).await {
        Ok(answer) => {
            let notice = Notice::Ok(format!(
                "Tenant created. Its administrator token, shown this once: {}",
                render::text(&answer["xtoken"])
            ));
            tenants(&console, &session, 0, StatusCode::OK, &notice).await
        }
        Err(refusal) => tenants(&console, &session, 0, refusal.status, &(&refusal).into()).await,
    }
}

// ---- Accounts ----------------------------------------------------------------------------

async fn accounts_page(State(console): State<Console>, session: Session, Query(query): Query<ListQuery>) -> Response {
    accounts(&console, &session, query.offset.unwrap_or(0), StatusCode::OK, &Notice::None).await
}

async fn accounts(console: &Console, session: &Session, offset: i64, status: StatusCode, notice: &Notice) -> Response {
    if !session.is_admin() {
        return admins_only(session);
    }
    let offset = offset.clamp(0, super::users::MAX_OFFSET);
    let answer = match console.call(&session.caller(), "AccountList", json!({"offset": offset, "limit": 50})).await {
        Ok(answer) => answer,
        Err(refusal) => return layout::refused(Some(session), &refusal),
    };
    let rows: Vec<Value> = answer["rows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut row| {
            row["lastlogin"] = json!(render::time(&row["lastlogin"]));
            row
        })
        .collect();
    let body = html! {
        table {
            caption { "Accounts" }
            thead { tr {
                th scope="col" { "Username" } th scope="col" { "Email" } th scope="col" { "Role" }
                th scope="col" { "Status" } th scope="col" { "Last login" } th scope="col" { "Change" }
            } }
            tbody {
                @if rows.is_empty() { tr { td colspan="6" { "No account yet" } } }
                @for row in &rows {
                    @let id = render::text(&row["accountid"]);
                    tr {
                        td { (render::text(&row["username"])) }
                        td { (render::text(&row["email"])) }
                        td { @if row["admin"] == true { "administrator" } @else { (render::text(&row["rolename"])) } }
                        td { (render::text(&row["status"])) }
                        td { (render::text(&row["lastlogin"])) }
                        td {
                            form.inline method="post" action="/console/accounts" {
                                (csrf_field(&session.csrf))
                                input type="hidden" name="accountid" value=(id);
                                @if row["status"] == "disabled" {
                                    button.secondary type="submit" name="action" value="enable" aria-label=(format!("Enable {}", render::text(&row["username"]))) { "Enable" }
                                } @else {
                                    button.secondary type="submit" name="action" value="disable" aria-label=(format!("Disable {}", render::text(&row["username"]))) { "Disable" }
                                }
                                button.secondary type="submit" name="action" value="reset" aria-label=(format!("Reset the password of {}", render::text(&row["username"]))) { "Reset password" }
                                button.danger type="submit" name="action" value="delete" aria-label=(format!("Delete {}", render::text(&row["username"]))) { "Delete" }
                            }
                        }
                    }
                }
            }
        }
        (pager("/console/accounts", offset, answer["total"].as_i64().unwrap_or(0)))
        form method="post" action="/console/accounts" {
            (csrf_field(&session.csrf))
            input type="hidden" name="action" value="invite";
            fieldset {
                legend { "Invite an administrator" }
                label for="acc-username" { "Username" }
                input #acc-username name="username" type="text" required autocomplete="off";
                label for="acc-email" { "Email" }
                input #acc-email name="email" type="email" required autocomplete="off";
                label for="acc-first" { "First name" }
                input #acc-first name="firstname" type="text";
                label for="acc-last" { "Last name" }
                input #acc-last name="lastname" type="text";
                label for="acc-role" { "Role" }
                input #acc-role name="rolename" type="text" aria-describedby="acc-role-help";
                p #acc-role-help .muted { "The role the account acts as; leave empty and tick the box below for a tenant administrator." }
                label for="acc-admin" { input #acc-admin name="admin" type="checkbox" value="true"; " Tenant administrator" }
                button type="submit" { "Invite" }
            }
        }
    };
    page(session, "Administrator accounts", status, notice, body)
}

#[derive(Debug, Default, Deserialize)]
pub struct AccountForm {
    action: Option<String>,
    accountid: Option<String>,
    username: Option<String>,
    email: Option<String>,
    firstname: Option<String>,
    lastname: Option<String>,
    rolename: Option<String>,
    admin: Option<String>,
}

async fn account_action(State(console): State<Console>, Posted { session, form, .. }: Posted<AccountForm>) -> Response {
    let caller = session.caller();
    let id = form.accountid.as_deref().unwrap_or_default();
    let (status, notice) = match form.action.as_deref().unwrap_or_default() {
        "invite" => {
            let mut body = json!({
                "username": form.username, "email": form.email,
                "firstname": form.firstname.unwrap_or_default(), "lastname": form.lastname.unwrap_or_default(),
            });
            if form.admin.as_deref() == Some("true") {
                body["admin"] = json!(true);
            } else {
                body["rolename"] = json!(form.rolename.unwrap_or_default());
            }
            match console.call(&caller, "AccountCreate", body).await {
                Ok(answer) if answer["mailed"] == true => (StatusCode::OK, Notice::Ok("Invitation mailed".into())),
                Ok(answer) => (
                    StatusCode::OK,
                    Notice::Ok(format!(
                        "Account created. No mail server is set: hand over this activation token, shown this once: {}",
                        render::text(&answer["activationtoken"])
                    )),
                ),
                Err(refusal) => (refusal.status, (&refusal).into()),
            }
        }
        "disable" => outcome(
            console.call(&caller, "AccountUpdate", json!({"accountid": id, "status": "disabled"})).await,
            "Account disabled",
        ),
        "enable" => outcome(
            console.call(&caller, "AccountUpdate", json!({"accountid": id, "status": "active"})).await,
            "Account enabled",
        ),
        "delete" => outcome(console.call(&caller, "AccountDelete", json!({"accountid": id})).await, "Account deleted"),
        "reset" => {
            match console.call(&caller, "AccountUpdate", json!({"accountid": id, "resetpassword": true})).await {
                Ok(answer) if answer["mailed"] == true => (StatusCode::OK, Notice::Ok("Password reset mailed".into())),
                Ok(answer) => (
                    StatusCode::OK,
                    Notice::Ok(format!(
                        "No mail server is set: hand over this reset token, shown this once: {}",
                        render::text(&answer["resettoken"])
                    )),
                ),
                Err(refusal) => (refusal.status, (&refusal).into()),
            }
        }
        _ => (StatusCode::BAD_REQUEST, Notice::Error("Unknown action".into())),
    };
    accounts(&console, &session, 0, status, &notice).await
}

// ---- Keys --------------------------------------------------------------------------------

async fn keys_page(State(console): State<Console>, session: Session) -> Response {
    keys(&console, &session, StatusCode::OK, &Notice::None).await
}

async fn keys(console: &Console, session: &Session, status: StatusCode, notice: &Notice) -> Response {
    let answer = match console.call(&session.caller(), "SystemGetMasterKeyStatus", json!({})).await {
        Ok(mut answer) => {
            if let Some(map) = answer.as_object_mut() {
                map.remove("status");
            }
            answer
        }
        Err(refusal) => return layout::refused(Some(session), &refusal),
    };
    let body = html! {
        (render::fields("Master key", answer.as_object()))
        form method="post" action="/console/keys" {
            (csrf_field(&session.csrf))
            p { "Rotation adds a new master key version and reseals every record under it, in the background; reads go on meanwhile." }
            button type="submit" { "Rotate the master key" }
        }
    };
    page(session, "Keys", status, notice, body)
}

/// A form with no fields of its own (its token is checked by [`Posted`]).
#[derive(Debug, Default, Deserialize)]
pub struct NoFields {}

async fn rotate(State(console): State<Console>, Posted { session, .. }: Posted<NoFields>) -> Response {
    let (status, notice) =
        outcome(console.call(&session.caller(), "SystemRotateMasterKey", json!({})).await, "Rotation started");
    keys(&console, &session, status, &notice).await
}

// ---- Statistics --------------------------------------------------------------------------

/// Days the chart shows.
const CHART_DAYS: i64 = 30;

async fn stats_page(State(console): State<Console>, session: Session) -> Response {
    stats(&console, &session, StatusCode::OK, &Notice::None, None).await
}

async fn stats(
    console: &Console,
    session: &Session,
    status: StatusCode,
    notice: &Notice,
    verified: Option<Value>,
) -> Response {
    let answer = match console.call(&session.caller(), "SystemGetSystemStats", json!({})).await {
        Ok(answer) => answer,
        Err(refusal) => return layout::refused(Some(session), &refusal),
    };
    // The chart counts events only (no content): shown to whoever may read the statistics.
    let today = console.app.clock.now_ms().div_euclid(86_400_000);
    let since = (today - CHART_DAYS + 1) * 86_400_000;
    let counted = console.app.db.tenant(session.tenant).console().events_per_day(since).await;
    let days: Option<Vec<(String, i64)>> = counted.ok().map(|counts| {
        (today - CHART_DAYS + 1..=today)
            .map(|day| {
                let count = counts.iter().find(|(d, _)| *d == day).map_or(0, |(_, n)| *n);
                let date = crate::audit::event::rfc3339(day * 86_400_000);
                (date.get(..10).unwrap_or(&date).to_owned(), count)
            })
            .collect()
    });
    let stats = answer.get("stats").and_then(Value::as_object).cloned().unwrap_or_default();
    let body = html! {
        dl.stats {
            @for (name, value) in &stats {
                div { dt { (name) } dd { (render::text(value)) } }
            }
        }
        h2 { "Activity" }
        @match &days {
            Some(days) => (chart::bars("Audit events per day", days)),
            None => p role="alert" { "The activity could not be counted just now." },
        }
        h2 { "Audit trail integrity" }
        @if let Some(verified) = &verified {
            (render::fields("Verification", verified.as_object()))
        }
        form method="post" action="/console/stats/verify" {
            (csrf_field(&session.csrf))
            button type="submit" { "Verify the audit trail" }
        }
    };
    page(session, "Statistics", status, notice, body)
}

async fn verify(State(console): State<Console>, Posted { session, .. }: Posted<NoFields>) -> Response {
    match console.call(&session.caller(), "AuditVerify", json!({})).await {
        Ok(mut answer) => {
            if let Some(map) = answer.as_object_mut() {
                map.remove("status");
            }
            let notice = if answer["intact"] != true {
                Notice::Error("The audit trail does not verify".into())
            } else {
                Notice::Ok("The audit trail verifies".into())
            };
            stats(&console, &session, StatusCode::OK, &notice, Some(answer)).await
        }
        Err(refusal) => stats(&console, &session, refusal.status, &(&refusal).into(), None).await,
    }
}
