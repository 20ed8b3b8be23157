//! Groups, roles and policies: the lists, a policy editor the vault validates on save, and the
//! policy simulator beside it.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api::Refusal;
use super::layout::{self, Notice, csrf_field};
use super::session::{Posted, Session, admins_only};
use super::{Console, render, see_other};

pub fn routes() -> Router<Console> {
    Router::new()
        .route("/access", get(overview))
        .route("/access/roles", post(create_role))
        .route("/access/policies", post(create_policy))
        .route("/access/links", post(link))
        .route("/access/policies/{id}", get(policy).post(save_policy))
        .route("/access/simulate", post(simulate))
}

/// Roles listed on the page.
const MAX_ROLES: i64 = 200;

async fn overview(State(console): State<Console>, session: Session) -> Response {
    overview_page(&console, &session, StatusCode::OK, &Notice::None).await
}

async fn overview_page(console: &Console, session: &Session, status: StatusCode, notice: &Notice) -> Response {
    if !session.is_admin() {
        return admins_only(session);
    }
    let caller = session.caller();
    let listed = async {
        let policies = console.call(&caller, "PolicyListAllPolicies", json!({})).await?;
        let groups = console.call(&caller, "GroupListAllGroups", json!({})).await?;
        Ok::<_, Refusal>((policies, groups))
    }
    .await;
    let (policies, groups) = match listed {
        Ok(lists) => lists,
        Err(refusal) => return layout::refused(Some(session), &refusal),
    };
    // No operation lists roles: the vault's answer to PolicyListAllPolicies above (administrators
    // only, and audited) is what lets this session see the tenant's access design.
    let roles = match roles_of(console, session).await {
        Ok(roles) => roles,
        Err(_) => {
            let refusal = Refusal {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "The vault is unavailable: try again in a moment".into(),
            };
            return layout::refused(Some(session), &refusal);
        }
    };
    let policies = policies["rows"].as_array().cloned().unwrap_or_default();
    let groups = groups["rows"].as_array().cloned().unwrap_or_default();
    let body = html! {
        (render::rows("Policies", &policies, &[("policyid", "Id"), ("policyname", "Name"), ("policydesc", "Description")],
            Some(("policyname", &|p: &Value| format!("/console/access/policies/{}", render::text(&p["policyid"]))))))
        (render::rows("Roles", &roles, &[("roleid", "Id"), ("rolename", "Name"), ("roledesc", "Description"), ("policies", "Policies")], None))
        (render::rows("Groups", &groups, &[("groupid", "Id"), ("groupname", "Name"), ("grouptype", "Type"), ("groupdesc", "Description")], None))
        div.columns {
            form method="post" action="/console/access/policies" {
                (csrf_field(&session.csrf))
                fieldset {
                    legend { "New policy" }
                    label for="new-policy-name" { "Policy name" }
                    input #new-policy-name name="policyname" type="text" required maxlength="128";
                    label for="new-policy-doc" { "Policy document" }
                    textarea #new-policy-doc name="policy" rows="8" required {
                        "{\"Effect\": \"Allow\", \"Action\": [\"UserGet\"], \"Resource\": [\"users.profile.*\"]}"
                    }
                    button type="submit" { "Create policy" }
                }
            }
            form method="post" action="/console/access/roles" {
                (csrf_field(&session.csrf))
                fieldset {
                    legend { "New role" }
                    label for="new-role-name" { "Role name" }
                    input #new-role-name name="rolename" type="text" required maxlength="128";
                    label for="new-role-desc" { "Description" }
                    input #new-role-desc name="roledesc" type="text" maxlength="1000";
                    button type="submit" { "Create role" }
                }
            }
            form method="post" action="/console/access/links" {
                (csrf_field(&session.csrf))
                fieldset {
                    legend { "Link a policy to a role" }
                    label for="link-role" { "Role name" }
                    input #link-role name="rolename" type="text" required;
                    label for="link-policy" { "Policy name" }
                    input #link-policy name="policyname" type="text" required;
                    label for="link-unlink" { input #link-unlink name="unlink" type="checkbox" value="true"; " Unlink instead" }
                    button type="submit" { "Save link" }
                }
            }
        }
    };
    layout::respond(status, layout::page("Groups, roles and policies", Some(session), notice, body))
}

/// The tenant's roles with the names of their policies.
async fn roles_of(console: &Console, session: &Session) -> Result<Vec<Value>, crate::store::StoreError> {
    let roles_store = console.app.db.tenant(session.tenant).roles();
    let mut roles = Vec::new();
    for role in roles_store.roles(MAX_ROLES).await? {
        let names: Vec<String> = roles_store.linked_policies(role.id).await?.into_iter().map(|p| p.name).collect();
        roles.push(json!({"roleid": role.id, "rolename": role.name, "roledesc": role.descr, "policies": names}));
    }
    Ok(roles)
}

#[derive(Debug, Default, Deserialize)]
pub struct AccessForm {
    policyname: Option<String>,
    policydesc: Option<String>,
    policy: Option<String>,
    rolename: Option<String>,
    roledesc: Option<String>,
    unlink: Option<String>,
}

/// Parses a policy document typed in the editor.
fn document(text: Option<&str>) -> Result<Value, Refusal> {
    serde_json::from_str(text.unwrap_or_default()).map_err(|err| Refusal {
        status: StatusCode::BAD_REQUEST,
        message: format!("The policy document is not valid JSON (line {}, column {})", err.line(), err.column()),
    })
}

async fn act(
    console: &Console,
    session: &Session,
    operation: &str,
    body: Result<Value, Refusal>,
    done: &str,
) -> Response {
    let result = match body {
        Ok(body) => console.call(&session.caller(), operation, body).await,
        Err(refusal) => Err(refusal),
    };
    match result {
        Ok(_) => overview_page(console, session, StatusCode::OK, &Notice::Ok(done.into())).await,
        Err(refusal) => overview_page(console, session, refusal.status, &(&refusal).into()).await,
    }
}

async fn create_policy(State(console): State<Console>, Posted { session, form, .. }: Posted<AccessForm>) -> Response {
    let body = document(form.policy.as_deref()).map(|policy| json!({"policyname": form.policyname, "policy": policy}));
    act(&console, &session, "PolicyCreate", body, "Policy created").await
}

async fn create_role(State(console): State<Console>, Posted { session, form, .. }: Posted<AccessForm>) -> Response {
    let body = Ok(json!({"rolename": form.rolename, "roledesc": form.roledesc.unwrap_or_default()}));
    act(&console, &session, "RoleCreate", body, "Role created").await
}

async fn link(State(console): State<Console>, Posted { session, form, .. }: Posted<AccessForm>) -> Response {
    let unlink = form.unlink.as_deref() == Some("true");
    let body = Ok(json!({"rolename": form.rolename, "policyname": form.policyname, "unlink": unlink}));
    act(&console, &session, "RoleLinkPolicy", body, if unlink { "Policy unlinked" } else { "Policy linked" }).await
}

async fn policy(State(console): State<Console>, session: Session, Path(id): Path<i64>) -> Response {
    policy_page(&console, &session, id, None, StatusCode::OK, &Notice::None, None).await
}

/// The editor (with `draft` when a save was refused, so nothing typed is lost) and the simulator.
async fn policy_page(
    console: &Console,
    session: &Session,
    id: i64,
    draft: Option<(&str, &str)>,
    status: StatusCode,
    notice: &Notice,
    simulation: Option<Markup>,
) -> Response {
    if !session.is_admin() {
        return admins_only(session);
    }
    let answer = match console.call(&session.caller(), "PolicyGet", json!({"policyid": id})).await {
        Ok(answer) => answer,
        Err(refusal) => return layout::refused(Some(session), &refusal),
    };
    let name = render::text(&answer["policyname"]);
    let stored = serde_json::to_string_pretty(&answer["policy"]).unwrap_or_default();
    let (text, desc) = draft.unwrap_or((&stored, answer["policydesc"].as_str().unwrap_or_default()));
    let body = html! {
        div.columns {
            form method="post" action=(format!("/console/access/policies/{id}")) {
                (csrf_field(&session.csrf))
                label for="policy-doc" { "Policy document" }
                textarea #policy-doc name="policy" rows="18" spellcheck="false" required aria-describedby="policy-help" { (text) }
                p #policy-help .muted { "JSON: one statement, a list, or {\"Statement\": [...]}. The vault checks it when you save." }
                label for="policy-desc" { "Description" }
                input #policy-desc name="policydesc" type="text" value=(desc) maxlength="1000";
                button type="submit" { "Save" }
            }
            form method="post" action="/console/access/simulate" hx-post="/console/access/simulate" hx-target="#simulation" hx-swap="innerHTML" {
                (csrf_field(&session.csrf))
                input type="hidden" name="policyid" value=(id);
                fieldset {
                    legend { "Simulate" }
                    label for="sim-role" { "Role" }
                    input #sim-role name="rolename" type="text" required;
                    label for="sim-op" { "Operation" }
                    input #sim-op name="operation" type="text" required value="UserGet";
                    label for="sim-mode" { "Find by" }
                    select #sim-mode name="targetmode" {
                        option value="" { "No user" }
                        option value="email" { "Email" }
                        option value="phone" { "Phone" }
                        option value="login" { "Login" }
                        option value="custom" { "Custom id" }
                        option value="token" { "User token" }
                    }
                    label for="sim-identity" { "Identity" }
                    input #sim-identity name="targetidentity" type="text" autocomplete="off";
                    button type="submit" { "Simulate" }
                }
                div #simulation aria-live="polite" { @if let Some(result) = simulation { (result) } }
            }
        }
    };
    layout::respond(status, layout::page(&format!("Policy {name}"), Some(session), notice, body))
}

async fn save_policy(
    State(console): State<Console>,
    Path(id): Path<i64>,
    Posted { session, form, .. }: Posted<AccessForm>,
) -> Response {
    let text = form.policy.as_deref().unwrap_or_default();
    let desc = form.policydesc.as_deref().unwrap_or_default();
    let saved = match document(Some(text)) {
        Ok(policy) => {
            let body = json!({"policyid": id, "policy": policy, "policydesc": desc});
            console.call(&session.caller(), "PolicyUpdate", body).await
        }
        Err(refusal) => Err(refusal),
    };
    match saved {
        Ok(_) => {
            policy_page(&console, &session, id, None, StatusCode::OK, &Notice::Ok("Policy saved".into()), None).await
        }
        Err(refusal) => {
            policy_page(&console, &session, id, Some((text, desc)), refusal.status, &(&refusal).into(), None).await
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct SimulateForm {
    policyid: Option<i64>,
    rolename: Option<String>,
    operation: Option<String>,
    targetmode: Option<String>,
    targetidentity: Option<String>,
}

/// The simulator: the fragment alone for htmx, else the policy page with it.
async fn simulate(State(console): State<Console>, Posted { session, form, headers }: Posted<SimulateForm>) -> Response {
    let mut body = json!({"rolename": form.rolename, "operation": form.operation});
    if let Some(mode) = form.targetmode.as_deref().filter(|m| !m.is_empty()) {
        body["targetmode"] = json!(mode);
        body["targetidentity"] = json!(form.targetidentity.as_deref().unwrap_or_default());
    }
    let (status, result) = match console.call(&session.caller(), "PolicySimulate", body).await {
        Ok(answer) => (StatusCode::OK, outcome(&answer)),
        Err(refusal) => (refusal.status, layout::notice_of(&(&refusal).into())),
    };
    if headers.contains_key("hx-request") {
        // htmx swaps 2xx answers only: the refusal is shown in place too.
        return layout::respond(StatusCode::OK, result);
    }
    match form.policyid {
        Some(id) => policy_page(&console, &session, id, None, status, &Notice::None, Some(result)).await,
        None => see_other("/console/access"),
    }
}

fn outcome(answer: &Value) -> Markup {
    let masked: Vec<String> =
        answer["masked"].as_array().map(|m| m.iter().map(render::text).collect()).unwrap_or_default();
    html! {
        section aria-label="Simulation result" {
            p { strong { (render::text(&answer["decision"])) } " — " (render::text(&answer["reason"])) }
            p { "Deciding policies: " (render::value(&answer["policies"])) }
            p { "Masked fields: " @if masked.is_empty() { "none" } @else { (masked.join(", ")) } }
        }
    }
}
