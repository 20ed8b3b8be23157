//! The approval queue: the requests users (or roles) made to change or erase data, approved or
//! cancelled with a reason.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout::{self, Notice, csrf_field};
use super::session::{Posted, Session};
use super::users::pager;
use super::{Console, render, see_other};

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/requests", get(queue))
        .route("/requests/{uuid}", get(request))
        .route("/requests/{uuid}/decide", post(decide))
}

const PAGE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    offset: Option<i64>,
    done: Option<String>,
}

fn done_notice(done: Option<&str>) -> Notice {
    match done {
        Some("approved") => Notice::Ok("Request approved".into()),
        Some("cancelled") => Notice::Ok("Request cancelled".into()),
        _ => Notice::None,
    }
}

/// The decision form of one request.
fn decision(session: &Session, uuid: &str) -> Markup {
    html! {
        form.inline method="post" action=(format!("/console/requests/{uuid}/decide")) {
            (csrf_field(&session.csrf))
            div {
                label for=(format!("reason-{uuid}")) { "Reason" }
                input id=(format!("reason-{uuid}")) name="reason" type="text" maxlength="1000";
            }
            button type="submit" name="decision" value="approve" { "Approve" }
            button.danger type="submit" name="decision" value="cancel" { "Cancel" }
        }
    }
}

async fn queue(State(console): State<Console>, session: Session, Query(query): Query<QueueQuery>) -> Response {
    let offset = query.offset.unwrap_or(0).clamp(0, super::users::MAX_OFFSET);
    let caller = session.caller();
    let listed = async {
        let unlock = console.call(&caller, "BulkListUnlock", json!({})).await?;
        let body = json!({"unlockuuid": unlock["unlockuuid"], "offset": offset, "limit": PAGE});
        console.call(&caller, "BulkListAllUserRequests", body).await
    }
    .await;
    let answer = match listed {
        Ok(answer) => answer,
        Err(refusal) => return layout::refused(Some(&session), &refusal),
    };
    let rows = answer["rows"].as_array().cloned().unwrap_or_default();
    let total = answer["total"].as_i64().unwrap_or(0);
    let open: Vec<&Value> = rows.iter().filter(|r| r["status"] == "open").collect();
    let body = html! {
        table {
            caption { "Open requests" }
            thead { tr { th scope="col" { "Request" } th scope="col" { "Kind" } th scope="col" { "Made" } th scope="col" { "Decision" } } }
            tbody {
                @if open.is_empty() { tr { td colspan="4" { "No open request on this page" } } }
                @for row in &open {
                    @let uuid = render::text(&row["requestuuid"]);
                    tr {
                        td { a href=(format!("/console/requests/{uuid}")) { (uuid) } }
                        td { (render::text(&row["requesttype"])) }
                        td { (render::time(&row["creationtime"])) }
                        td { (decision(&session, &uuid)) }
                    }
                }
            }
        }
        p.muted { (rows.len() - open.len()) " closed request(s) on this page are not shown." }
        (pager("/console/requests", offset, total))
    };
    layout::respond(
        StatusCode::OK,
        layout::page("Approval queue", Some(&session), &done_notice(query.done.as_deref()), body),
    )
}

async fn request(State(console): State<Console>, session: Session, Path(uuid): Path<String>) -> Response {
    match console.call(&session.caller(), "UserRequestGet", json!({"requestuuid": uuid})).await {
        Ok(answer) => {
            let request = answer.get("request").cloned().unwrap_or(Value::Null);
            let body = html! {
                (render::fields("Request", request.as_object()))
                @if request["status"] == "open" { h2 { "Decide" } (decision(&session, &uuid)) }
                @if let Some(token) = request.get("token").and_then(Value::as_str) {
                    p { a href=(format!("/console/users/{token}")) { "The user's profile" } }
                }
            };
            layout::respond(StatusCode::OK, layout::page("Request", Some(&session), &Notice::None, body))
        }
        Err(refusal) => layout::refused(Some(&session), &refusal),
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Decision {
    reason: Option<String>,
    decision: Option<String>,
}

async fn decide(
    State(console): State<Console>,
    Path(uuid): Path<String>,
    Posted { session, form, .. }: Posted<Decision>,
) -> Response {
    let (operation, done) = match form.decision.as_deref() {
        Some("approve") => ("UserRequestApprove", "approved"),
        Some("cancel") => ("UserRequestCancel", "cancelled"),
        _ => {
            return layout::refused(
                Some(&session),
                &super::api::Refusal { status: StatusCode::BAD_REQUEST, message: "Approve or cancel".into() },
            );
        }
    };
    let mut body = json!({"requestuuid": uuid});
    if let Some(reason) = form.reason.as_deref().map(str::trim).filter(|r| !r.is_empty()) {
        body["reason"] = json!(reason);
    }
    match console.call(&session.caller(), operation, body).await {
        Ok(_) => see_other(&format!("/console/requests?done={done}")),
        Err(refusal) => layout::refused(Some(&session), &refusal),
    }
}
