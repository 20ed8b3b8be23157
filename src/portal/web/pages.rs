//! What the vault holds about the person: profile (with the forms that ask for a change or for
//! erasure), app data, files, sessions, shared records, and their report to download.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::layout::{self, Notice, Ui, csrf_field};
use super::session::Person;
use crate::console::api::Refusal;
use crate::console::session::Posted;
use crate::console::{Console, render, see_other};

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/profile", get(profile))
        .route("/profile/change", post(change))
        .route("/erase", post(erase))
        .route("/apps", get(apps))
        .route("/files", get(files))
        .route("/files/{fileuuid}", get(download))
        .route("/sessions", get(sessions))
        .route("/shared", get(shared))
        .route("/report", get(report))
        .route("/report.json", get(report_json))
        .route("/report.html", get(report_html))
}

/// A page of the person's, or what the vault refused instead.
pub async fn show(
    console: &Console,
    person: &Person,
    title: &str,
    notice: &Notice,
    body: Result<Markup, Refusal>,
) -> Response {
    let ui = Ui::of(console, person.tenant).await;
    match body {
        Ok(body) => layout::respond(StatusCode::OK, layout::page_of(&ui, title, Some(person), notice, body)),
        Err(refusal) => {
            let page = layout::page_of(&ui, title, Some(person), &(&refusal).into(), html! {});
            layout::respond(refusal.status, page)
        }
    }
}

/// The most fields the change form offers (a profile has few; the rest are shown, not edited).
const MAX_EDITABLE: usize = 50;
/// The most characters of a value asked for.
const MAX_VALUE: usize = 1024;

async fn profile(State(console): State<Console>, person: Person) -> Response {
    let answer = console.call(&person.caller(), "UserGet", person.me(json!({}))).await;
    let body = answer.map(|answer| profile_body(&person, answer["profile"].as_object()));
    show(&console, &person, "Your profile", &Notice::None, body).await
}

/// A field the person may ask to change in place: a text or a number.
fn editable(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn profile_body(person: &Person, profile: Option<&Map<String, Value>>) -> Markup {
    let fields: Vec<(&String, String)> =
        profile.into_iter().flatten().filter_map(|(k, v)| editable(v).map(|v| (k, v))).take(MAX_EDITABLE).collect();
    html! {
        (render::fields("Your profile", profile))
        section aria-labelledby="change-heading" {
            h2 #change-heading { "Ask for a change" }
            @if fields.is_empty() {
                p { "Your profile has no field to change here." }
            } @else {
                form method="post" action="/portal/profile/change" {
                    (csrf_field(&person.csrf))
                    p.muted { "Correct what is wrong; an administrator approves the change before it is made." }
                    @for (i, (name, value)) in fields.iter().enumerate() {
                        label for=(format!("field-{i}")) { (name) }
                        input id=(format!("field-{i}")) name=(format!("field.{name}")) type="text" value=(value) maxlength=(MAX_VALUE);
                    }
                    button type="submit" { "Ask for this change" }
                }
            }
        }
        section aria-labelledby="erase-heading" {
            h2 #erase-heading { "Erase my data" }
            form method="post" action="/portal/erase" {
                (csrf_field(&person.csrf))
                p { "An administrator approves the erasure; then everything the vault holds about you is erased and you can no longer log in." }
                div.check {
                    input #portal-erase-confirm name="confirm" type="checkbox" value="on" required;
                    label for="portal-erase-confirm" { "I understand that all my data will be erased once approved" }
                }
                button.danger type="submit" { "Ask to erase my data" }
            }
        }
    }
}

async fn change(State(console): State<Console>, posted: Posted<BTreeMap<String, String>, Person>) -> Response {
    let person = &posted.session;
    let caller = person.caller();
    let current = match console.call(&caller, "UserGet", person.me(json!({}))).await {
        Ok(answer) => answer["profile"].as_object().cloned().unwrap_or_default(),
        Err(refusal) => return show(&console, person, "Your profile", &Notice::None, Err(refusal)).await,
    };
    // Only the fields shown, and only those changed: a number stays a number when it still is one.
    let mut changed = Map::new();
    for (key, value) in &posted.form {
        let Some(name) = key.strip_prefix("field.") else { continue };
        let Some(old) = current.get(name) else { continue };
        let value = value.trim();
        if editable(old).as_deref() == Some(value) || value.chars().count() > MAX_VALUE {
            continue;
        }
        let new = match old {
            Value::Number(_) => value.parse::<serde_json::Number>().map_or_else(|_| json!(value), Value::Number),
            _ => json!(value),
        };
        changed.insert(name.to_owned(), new);
    }
    if changed.is_empty() {
        let notice = Notice::Error("Nothing was changed: edit a field first.".into());
        let body = Ok(profile_body(person, Some(&current)));
        return show(&console, person, "Your profile", &notice, body).await;
    }
    match console.call(&caller, "UserUpdateRequest", person.me(json!({"profile": changed}))).await {
        Ok(_) => see_other("/portal/requests?done=change"),
        Err(refusal) => {
            let body = Ok(profile_body(person, Some(&current)));
            show(&console, person, "Your profile", &(&refusal).into(), body).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct EraseForm {
    confirm: Option<String>,
}

async fn erase(State(console): State<Console>, posted: Posted<EraseForm, Person>) -> Response {
    let person = &posted.session;
    if posted.form.confirm.as_deref() != Some("on") {
        let answer = console.call(&person.caller(), "UserGet", person.me(json!({}))).await;
        let body = answer.map(|answer| profile_body(person, answer["profile"].as_object()));
        let notice = Notice::Error("Tick the box to confirm that you want your data erased.".into());
        return show(&console, person, "Your profile", &notice, body).await;
    }
    match console.call(&person.caller(), "UserDeleteRequest", person.me(json!({}))).await {
        Ok(_) => see_other("/portal/requests?done=erasure"),
        Err(refusal) => show(&console, person, "Your profile", &Notice::None, Err(refusal)).await,
    }
}

/// The most apps shown in full.
const MAX_APPS: usize = 20;

async fn apps(State(console): State<Console>, person: Person) -> Response {
    let caller = person.caller();
    let body = async {
        let answer = console.call(&caller, "AppdataListUserAppNames", person.me(json!({}))).await?;
        let names: Vec<String> = answer["apps"].as_array().into_iter().flatten().map(render::text).collect();
        let mut shown = Vec::new();
        for name in names.iter().take(MAX_APPS) {
            let answer = console.call(&caller, "AppdataGet", person.me(json!({"appname": name}))).await?;
            shown.push((name, answer["appdata"].clone()));
        }
        Ok(html! {
            @if shown.is_empty() { p { "No app holds data about you." } }
            @for (name, data) in &shown {
                (render::fields(&format!("App {name}"), data.as_object()))
            }
            @if names.len() > MAX_APPS { p.muted { "The first " (MAX_APPS) " apps are shown; your report has them all." } }
        })
    }
    .await;
    show(&console, &person, "Your app data", &Notice::None, body).await
}

async fn files(State(console): State<Console>, person: Person) -> Response {
    let answer = console.call(&person.caller(), "FileListUserFiles", person.me(json!({}))).await;
    let body = answer.map(|answer| {
        let files: Vec<Value> = answer["files"].as_array().cloned().unwrap_or_default();
        html! {
            table {
                caption { "Your files" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Type" } th scope="col" { "Bytes" } th scope="col" { "Stored" } } }
                tbody {
                    @if files.is_empty() { tr { td colspan="4" { "Nothing to show" } } }
                    @for file in &files {
                        @let name = render::text(&file["filename"]);
                        tr {
                            td {
                                a href=(format!("/portal/files/{}", render::text(&file["fileuuid"]))) download=(name)
                                    aria-label=(format!("Download {name}")) { (name) }
                            }
                            td { (render::value(&file["mimetype"])) }
                            td { (render::value(&file["size"])) }
                            td { (render::time(&file["creationtime"])) }
                        }
                    }
                }
            }
        }
    });
    show(&console, &person, "Your files", &Notice::None, body).await
}

async fn download(State(console): State<Console>, person: Person, Path(fileuuid): Path<String>) -> Response {
    if fileuuid.len() > 64 {
        return layout::not_found().await;
    }
    let body = person.me(json!({"fileuuid": fileuuid, "raw": true}));
    match console.call_raw(&person.caller(), "FileGet", body).await {
        Ok(response) => response,
        Err(refusal) => show(&console, &person, "Your files", &Notice::None, Err(refusal)).await,
    }
}

async fn sessions(State(console): State<Console>, person: Person) -> Response {
    let answer = console.call(&person.caller(), "SessionListUserSessions", person.me(json!({}))).await;
    let body = answer.map(|answer| {
        let rows = answer["rows"].as_array().cloned().unwrap_or_default();
        render::rows("Your sessions", &rows, &[("sessionuuid", "Session"), ("sessiondata", "Data")], None)
    });
    show(&console, &person, "Your sessions", &Notice::None, body).await
}

async fn shared(State(console): State<Console>, person: Person) -> Response {
    // The report is the one operation that lists a user's shared records.
    let answer = console.call(&person.caller(), "SystemGetUserReport", person.me(json!({}))).await;
    let body = answer.map(|answer| {
        let rows: Vec<Value> = answer["report"]["sharedrecords"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut row| {
                row["created"] = json!(render::time(&row["creationtime"]));
                row["expires"] = json!(render::time(&row["expirationtime"]));
                row
            })
            .collect();
        html! {
            p { "What you or the service shared from your record, and until when." }
            (render::rows("Your shared records", &rows, &[("created", "Shared"), ("expires", "Until"), ("data", "What")], None))
        }
    });
    show(&console, &person, "Your shared records", &Notice::None, body).await
}

async fn report(State(console): State<Console>, person: Person) -> Response {
    let body = html! {
        p { "Everything the vault holds about you, in one file." }
        ul {
            li { a href="/portal/report.json" download="report.json" { "Download as JSON" } }
            li { a href="/portal/report.html" download="report.html" { "Download as HTML" } }
        }
    };
    show(&console, &person, "Your report", &Notice::None, Ok(body)).await
}

async fn report_json(State(console): State<Console>, person: Person) -> Response {
    match console.call(&person.caller(), "SystemGetUserReport", person.me(json!({}))).await {
        Ok(answer) => {
            let text = serde_json::to_string_pretty(&answer["report"]).unwrap_or_default();
            attachment(text, "application/json", "report.json")
        }
        Err(refusal) => show(&console, &person, "Your report", &Notice::None, Err(refusal)).await,
    }
}

async fn report_html(State(console): State<Console>, person: Person) -> Response {
    match console.call(&person.caller(), "SystemGetUserHTMLReport", person.me(json!({}))).await {
        Ok(answer) => attachment(render::text(&answer["html"]), "text/html; charset=utf-8", "report.html"),
        Err(refusal) => show(&console, &person, "Your report", &Notice::None, Err(refusal)).await,
    }
}

/// A file to save, not a page to show.
fn attachment(body: String, content_type: &'static str, name: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    let disposition = format!("attachment; filename=\"{name}\"");
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_str(&disposition).expect("a fixed name"));
    response
}
