//! Finding a user (by identity, or fuzzy search) and everything about them: profile (masked as
//! the caller's policies say), versions and their differences, app data, files, consents with
//! their history, sessions, requests and the audit trail.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::layout::{self, Notice, csrf_field};
use super::render;
use super::session::{Posted, Session};
use super::{Console, see_other};

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/users", get(find_page))
        .route("/users/find", post(find))
        .route("/users/search", post(search))
        .route("/users/{token}", get(profile))
        .route("/users/{token}/versions", get(versions))
        .route("/users/{token}/appdata", get(appdata))
        .route("/users/{token}/files", get(files))
        .route("/users/{token}/consents", get(consents))
        .route("/users/{token}/sessions", get(sessions))
        .route("/users/{token}/requests", get(requests))
        .route("/users/{token}/audit", get(audit))
        .route("/audit/{event}", get(event))
}

const MODES: [(&str, &str); 5] =
    [("email", "Email"), ("phone", "Phone"), ("login", "Login"), ("custom", "Custom id"), ("token", "User token")];

fn find_forms(session: &Session, mode: &str, identity: &str, query: &str) -> Markup {
    html! {
        div.columns {
            form method="post" action="/console/users/find" {
                (csrf_field(&session.csrf))
                fieldset {
                    legend { "Find by identity" }
                    label for="find-mode" { "Find by" }
                    select #find-mode name="mode" {
                        @for (value, name) in MODES { option value=(value) selected[value == mode] { (name) } }
                    }
                    label for="find-identity" { "Identity" }
                    input #find-identity name="identity" type="text" required value=(identity) autocomplete="off";
                    button type="submit" { "Find" }
                }
            }
            form method="post" action="/console/users/search" {
                (csrf_field(&session.csrf))
                fieldset {
                    legend { "Fuzzy search" }
                    label for="search-q" { "Search" }
                    input #search-q name="q" type="search" required value=(query) autocomplete="off" aria-describedby="search-help";
                    p #search-help .muted { "Part of an email, a login or a phone number; small typos are forgiven." }
                    button type="submit" { "Search" }
                }
            }
        }
    }
}

async fn find_page(session: Session) -> Response {
    let body = find_forms(&session, "email", "", "");
    layout::respond(axum::http::StatusCode::OK, layout::page("Find a user", Some(&session), &Notice::None, body))
}

#[derive(Debug, Default, Deserialize)]
pub struct FindForm {
    mode: Option<String>,
    identity: Option<String>,
    q: Option<String>,
}

/// Identities go in the form's body, never in an address (they would land in histories and logs).
async fn find(State(console): State<Console>, Posted { session, form, .. }: Posted<FindForm>) -> Response {
    let mode = form.mode.as_deref().unwrap_or("email");
    let identity = form.identity.as_deref().map(str::trim).unwrap_or_default();
    match console.call(&session.caller(), "UserGet", json!({"mode": mode, "identity": identity})).await {
        Ok(answer) => see_other(&format!("/console/users/{}", render::text(&answer["token"]))),
        Err(refusal) => layout::respond(
            refusal.status,
            layout::page("Find a user", Some(&session), &(&refusal).into(), find_forms(&session, mode, identity, "")),
        ),
    }
}

async fn search(State(console): State<Console>, Posted { session, form, .. }: Posted<FindForm>) -> Response {
    let query = form.q.as_deref().map(str::trim).unwrap_or_default();
    let caller = session.caller();
    let found = match console.call(&caller, "BulkListUnlock", json!({})).await {
        Ok(unlock) => {
            console.call(&caller, "UserSearch", json!({"identity": query, "unlockuuid": unlock["unlockuuid"]})).await
        }
        Err(refusal) => Err(refusal),
    };
    let (status, notice, rows) = match found {
        Ok(answer) => {
            (axum::http::StatusCode::OK, Notice::None, answer["rows"].as_array().cloned().unwrap_or_default())
        }
        Err(refusal) => (refusal.status, (&refusal).into(), Vec::new()),
    };
    let body = html! {
        (find_forms(&session, "email", "", query))
        h2 { "Results" }
        @if rows.is_empty() { p { "No user matches." } }
        ul {
            @for row in &rows {
                li {
                    a href=(format!("/console/users/{}", render::text(&row["token"]))) { (summary(&row["profile"])) }
                }
            }
        }
    };
    layout::respond(status, layout::page("Find a user", Some(&session), &notice, body))
}

/// A line naming a profile: its email, login, name or phone, as the caller may see them.
fn summary(profile: &Value) -> String {
    let parts: Vec<String> = ["name", "email", "login", "phone"]
        .iter()
        .filter_map(|key| profile.get(*key))
        .map(render::text)
        .filter(|text| !text.is_empty())
        .collect();
    if parts.is_empty() { "(no name, email, login or phone to show)".into() } else { parts.join(" · ") }
}

const TABS: [(&str, &str); 8] = [
    ("", "Profile"),
    ("versions", "Versions"),
    ("appdata", "App data"),
    ("files", "Files"),
    ("consents", "Consents"),
    ("sessions", "Sessions"),
    ("requests", "Requests"),
    ("audit", "Audit trail"),
];

fn tabs(token: &str, current: &str) -> Markup {
    html! {
        nav aria-label="User" {
            ul.tabs {
                @for (path, name) in TABS {
                    @let href = if path.is_empty() { format!("/console/users/{token}") } else { format!("/console/users/{token}/{path}") };
                    li { a href=(href) aria-current=[(path == current).then_some("page")] { (name) } }
                }
            }
        }
    }
}

fn user(token: &str) -> Value {
    json!({"mode": "token", "identity": token})
}

fn with(mut body: Value, extra: Value) -> Value {
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

/// A user's page: its tabs, then `content` or the vault's refusal.
fn user_page(
    session: &Session,
    title: &str,
    token: &str,
    tab: &str,
    result: Result<Markup, super::api::Refusal>,
) -> Response {
    let (status, notice, content) = match result {
        Ok(content) => (axum::http::StatusCode::OK, Notice::None, content),
        Err(refusal) => (refusal.status, Notice::from(&refusal), html! {}),
    };
    let body = html! {
        p.muted { "User token " code { (token) } }
        (tabs(token, tab))
        (content)
    };
    layout::respond(status, layout::page(title, Some(session), &notice, body))
}

async fn profile(State(console): State<Console>, session: Session, Path(token): Path<String>) -> Response {
    let result = console.call(&session.caller(), "UserGet", user(&token)).await.map(|answer| {
        html! {
            (render::fields("Profile", answer["profile"].as_object()))
            @if let Some(roles) = answer.get("grouproles").filter(|r| r.as_array().is_some_and(|a| !a.is_empty())) {
                h2 { "Groups and roles" }
                (render::value(roles))
            }
            dl {
                dt { "Version" } dd { (render::text(&answer["version"])) }
                @if answer.get("expirationtime").is_some_and(|v| v.as_i64().unwrap_or(0) > 0) {
                    dt { "Expires" } dd { (render::time(&answer["expirationtime"])) }
                }
            }
        }
    });
    user_page(&session, "User profile", &token, "", result)
}

#[derive(Debug, Default, Deserialize)]
pub struct VersionQuery {
    v: Option<i64>,
}

/// The versions, and what changed in one of them (each field before and after).
async fn versions(
    State(console): State<Console>,
    session: Session,
    Path(token): Path<String>,
    Query(query): Query<VersionQuery>,
) -> Response {
    let caller = session.caller();
    let result = async {
        let answer = console.call(&caller, "UserListVersions", user(&token)).await?;
        let list = answer["versions"].as_array().cloned().unwrap_or_default();
        let diff = match query.v.filter(|v| *v > 1) {
            Some(v) => {
                let after = console.call(&caller, "UserGet", with(user(&token), json!({"version": v}))).await?;
                let before = console.call(&caller, "UserGet", with(user(&token), json!({"version": v - 1}))).await?;
                Some((v, difference(&before["profile"], &after["profile"])))
            }
            None => None,
        };
        Ok(html! {
            table {
                caption { "Versions" }
                thead { tr { th scope="col" { "Version" } th scope="col" { "Saved" } th scope="col" { "Changes" } } }
                tbody {
                    @if list.is_empty() { tr { td colspan="3" { "No earlier versions are kept" } } }
                    @for row in &list {
                        @let v = row["version"].as_i64().unwrap_or(0);
                        tr {
                            td { (v) }
                            td { (render::time(&row["optime"])) }
                            td { @if v > 1 { a href=(format!("/console/users/{token}/versions?v={v}")) { "What changed in version " (v) } } }
                        }
                    }
                }
            }
            @if let Some((v, changes)) = diff {
                table {
                    caption { "What changed in version " (v) }
                    thead { tr { th scope="col" { "Field" } th scope="col" { "Before" } th scope="col" { "After" } } }
                    tbody {
                        @if changes.is_empty() { tr { td colspan="3" { "Nothing you may see changed" } } }
                        @for (field, before, after) in &changes {
                            tr { th scope="row" { (field) } td { (render::value(before)) } td { (render::value(after)) } }
                        }
                    }
                }
            }
        })
    }
    .await;
    user_page(&session, "Versions", &token, "versions", result)
}

/// The top-level fields that differ between two profiles.
fn difference(before: &Value, after: &Value) -> Vec<(String, Value, Value)> {
    let empty = serde_json::Map::new();
    let before = before.as_object().unwrap_or(&empty);
    let after = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|key| before.get(*key) != after.get(*key))
        .map(|key| {
            (
                key.clone(),
                before.get(key).cloned().unwrap_or(Value::Null),
                after.get(key).cloned().unwrap_or(Value::Null),
            )
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
pub struct AppQuery {
    app: Option<String>,
}

async fn appdata(
    State(console): State<Console>,
    session: Session,
    Path(token): Path<String>,
    Query(query): Query<AppQuery>,
) -> Response {
    let caller = session.caller();
    let result = async {
        let answer = console.call(&caller, "AppdataListUserAppNames", user(&token)).await?;
        let apps = answer["apps"].as_array().cloned().unwrap_or_default();
        let shown = match query.app.as_deref().filter(|a| !a.is_empty()) {
            Some(app) => Some((
                app.to_owned(),
                console.call(&caller, "AppdataGet", with(user(&token), json!({"appname": app}))).await?,
            )),
            None => None,
        };
        Ok(html! {
            h2 { "Apps" }
            @if apps.is_empty() { p { "No app data." } }
            ul {
                @for app in &apps {
                    @let name = render::text(app);
                    li { a href=(format!("/console/users/{token}/appdata?app={}", urlencode(&name))) { (name) } }
                }
            }
            @if let Some((app, answer)) = shown {
                (render::fields(&format!("App data of {app}"), answer["appdata"].as_object()))
            }
        })
    }
    .await;
    user_page(&session, "App data", &token, "appdata", result)
}

async fn files(State(console): State<Console>, session: Session, Path(token): Path<String>) -> Response {
    let result = console.call(&session.caller(), "FileListUserFiles", user(&token)).await.map(|answer| {
        let files = answer["files"].as_array().cloned().unwrap_or_default();
        let files: Vec<Value> = files
            .into_iter()
            .map(|mut f| {
                f["created"] = json!(render::time(&f["creationtime"]));
                f
            })
            .collect();
        render::rows(
            "Files",
            &files,
            &[("filename", "Name"), ("mimetype", "Type"), ("size", "Bytes"), ("tags", "Tags"), ("created", "Stored")],
            None,
        )
    });
    user_page(&session, "Files", &token, "files", result)
}

async fn consents(State(console): State<Console>, session: Session, Path(token): Path<String>) -> Response {
    let caller = session.caller();
    let result = async {
        let answer = console.call(&caller, "AgreementListUserAgreements", user(&token)).await?;
        let rows = answer["rows"].as_array().cloned().unwrap_or_default();
        let mut details = Vec::new();
        for row in rows.iter().take(MAX_CONSENTS) {
            let brief = render::text(&row["brief"]);
            let found = console.call(&caller, "AgreementGet", with(user(&token), json!({"brief": brief}))).await?;
            details.push((brief, found["agreement"].clone()));
        }
        // The history: the consent events among the user's latest events (a refusal is shown as
        // such, never as an empty history).
        let history = console
            .call(&caller, "AuditListUserEvents", with(user(&token), json!({"offset": 0, "limit": HISTORY_EVENTS})))
            .await
            .map(|a| {
                let total = a["total"].as_i64().unwrap_or(0);
                let rows: Vec<Value> = a["rows"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|e| render::text(&e["title"]).starts_with("Agreement"))
                    .map(event_row)
                    .collect();
                (rows, total)
            });
        Ok(html! {
            (render::rows("Consents", &rows, &[("brief", "Legal basis"), ("status", "Status")], None))
            @if rows.len() > MAX_CONSENTS { p.muted { "The first " (MAX_CONSENTS) " consents are shown in full." } }
            @for (brief, agreement) in &details {
                (render::fields(&format!("Consent {brief}"), agreement.as_object()))
            }
            @match &history {
                Ok((events, total)) => {
                    (render::rows("History", events, &[("title", "What"), ("when", "When"), ("auditeventuuid", "Event")],
                        Some(("auditeventuuid", &|e: &Value| format!("/console/audit/{}", render::text(&e["auditeventuuid"]))))))
                    @if *total > HISTORY_EVENTS {
                        p.muted { "From the user's latest " (HISTORY_EVENTS) " of " (total) " events; "
                            a href=(format!("/console/users/{token}/audit")) { "the whole audit trail" } " has the rest." }
                    }
                }
                Err(refusal) => p role="alert" { "The history could not be read: " (refusal.message) },
            }
        })
    }
    .await;
    user_page(&session, "Consents", &token, "consents", result)
}

/// Consents shown in full on the page.
const MAX_CONSENTS: usize = 50;
/// The latest events of a user searched for consent history.
const HISTORY_EVENTS: i64 = 500;

fn event_row(mut e: Value) -> Value {
    e["when"] = json!(render::time(&e["timestamp"]));
    e
}

async fn sessions(State(console): State<Console>, session: Session, Path(token): Path<String>) -> Response {
    let result = console.call(&session.caller(), "SessionListUserSessions", user(&token)).await.map(|answer| {
        let rows = answer["rows"].as_array().cloned().unwrap_or_default();
        render::rows("Sessions", &rows, &[("sessionuuid", "Session"), ("sessiondata", "Data")], None)
    });
    user_page(&session, "Sessions", &token, "sessions", result)
}

async fn requests(State(console): State<Console>, session: Session, Path(token): Path<String>) -> Response {
    let body = with(user(&token), json!({"offset": 0, "limit": 100}));
    let result = console.call(&session.caller(), "UserRequestListUserRequests", body).await.map(|answer| {
        let rows = answer["rows"].as_array().cloned().unwrap_or_default();
        render::rows(
            "Requests",
            &rows,
            &[("requestuuid", "Request"), ("requesttype", "Kind"), ("status", "Status")],
            Some(("requestuuid", &|r: &Value| format!("/console/requests/{}", render::text(&r["requestuuid"])))),
        )
    });
    user_page(&session, "Requests", &token, "requests", result)
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    offset: Option<i64>,
}

const PAGE: i64 = 50;
/// The furthest a list is paged (an address cannot ask for more).
pub const MAX_OFFSET: i64 = 1_000_000_000;

async fn audit(
    State(console): State<Console>,
    session: Session,
    Path(token): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let offset = query.offset.unwrap_or(0).clamp(0, MAX_OFFSET);
    let body = with(user(&token), json!({"offset": offset, "limit": PAGE}));
    let result = console.call(&session.caller(), "AuditListUserEvents", body).await.map(|answer| {
        let rows: Vec<Value> = answer["rows"].as_array().cloned().unwrap_or_default().into_iter().map(event_row).collect();
        let total = answer["total"].as_i64().unwrap_or(0);
        html! {
            (render::rows("Audit trail", &rows, &[("when", "When"), ("title", "What"), ("eventtype", "Kind"), ("auditeventuuid", "Event")],
                Some(("auditeventuuid", &|e: &Value| format!("/console/audit/{}", render::text(&e["auditeventuuid"]))))))
            (pager(&format!("/console/users/{token}/audit"), offset, total))
        }
    });
    user_page(&session, "Audit trail", &token, "audit", result)
}

/// Links to the previous and next pages of a list.
pub fn pager(base: &str, offset: i64, total: i64) -> Markup {
    let offset = offset.clamp(0, MAX_OFFSET);
    html! {
        nav aria-label="Pages" {
            p {
                "Showing " (offset.min(total) + i64::from(total > 0)) "–" ((offset + PAGE).min(total)) " of " (total) ". "
                @if offset > 0 { a href=(format!("{base}?offset={}", (offset - PAGE).max(0))) { "Previous page" } " " }
                @if offset + PAGE < total { a href=(format!("{base}?offset={}", offset + PAGE)) { "Next page" } }
            }
        }
    }
}

async fn event(State(console): State<Console>, session: Session, Path(event): Path<String>) -> Response {
    match console.call(&session.caller(), "AuditGetEvent", json!({"auditeventuuid": event})).await {
        Ok(mut answer) => {
            if let Some(map) = answer.as_object_mut() {
                map.remove("status");
            }
            let when = render::time(&answer["timestamp"]);
            let body = html! {
                p { "Recorded " (when) }
                (render::fields("Event", answer.as_object()))
            };
            layout::respond(
                axum::http::StatusCode::OK,
                layout::page("Audit event", Some(&session), &Notice::None, body),
            )
        }
        Err(refusal) => layout::refused(Some(&session), &refusal),
    }
}

/// A query parameter's value, percent-encoded.
pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_difference_names_each_changed_field_with_both_values() {
        let before = json!({"name": "Ann", "email": "a@x", "phone": "1"});
        let after = json!({"name": "Anne", "email": "a@x", "city": "Oslo"});
        let changes = difference(&before, &after);
        let fields: Vec<&str> = changes.iter().map(|(f, _, _)| f.as_str()).collect();
        assert_eq!(fields, ["city", "name", "phone"]);
        assert_eq!(changes[1], ("name".into(), json!("Ann"), json!("Anne")));
        assert_eq!(changes[2].2, Value::Null);
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(urlencode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
