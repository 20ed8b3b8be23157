//! `PolicySimulate` and `PolicyListEffectivePermissions`: what a role, a user or an access
//! token may do, asked of the same compiled policies the vault judges calls with, without
//! running anything. Administrators only (they show the tenant's whole access design).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::catalogue::{self, ADMIN_ONLY, USER_NEVER, USER_OWN};
use super::grants::{self, Grants, UserGrants, group_tree};
use super::policy::Target;
use super::refs;
use super::{groups, roles};
use crate::crypto::secrets::token_digest;
use crate::http::lenient::{Int, Text, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Page, Reply, RequestContext, Rule, op};
use crate::state::AppState;
use crate::store::vault as tokens;
use crate::users::{Identity, service as users};

/// The simulation operations.
pub fn operations() -> Vec<Operation> {
    vec![op("PolicySimulate", simulate), op("PolicyListEffectivePermissions", effective)]
}

/// Whose access is asked about.
#[derive(Debug, Deserialize)]
struct PrincipalFields {
    roleid: Option<Int>,
    rolename: Option<Text>,
    /// A user, by `mode` and `identity`.
    mode: Option<Text>,
    identity: Option<Text>,
    /// An access token of this tenant (role or user).
    xtoken: Option<Text>,
}

/// The principal named, as grants; and a label for the answer.
async fn principal(app: &AppState, ctx: &RequestContext, fields: PrincipalFields) -> ApiResult<(Arc<Grants>, Value)> {
    if let Some(xtoken) = text(fields.xtoken).filter(|t| !t.trim().is_empty()) {
        let row = tokens::find_token(&app.db, &token_digest(xtoken.trim())).await?;
        let row = row
            .filter(|row| row.tenant == ctx.tenant && row.expires_at.is_none_or(|at| at > ctx.now))
            .ok_or_else(|| ApiError::not_found("The access token was not found"))?;
        return match (row.role_id, row.user_rid) {
            (Some(role), None) => role_principal(app, ctx, role).await,
            (None, Some(rid)) => {
                Ok((grants::user_grants(app, ctx.tenant, &rid).await?, json!({"kind": "user", "tokenid": row.id})))
            }
            _ => Err(ApiError::bad_request("The xtoken is an administrator's: policies do not bind it")),
        };
    }
    if let Some(role) = refs::optional(fields.roleid, fields.rolename) {
        let role = roles::find(app, ctx, &role).await?;
        return role_principal(app, ctx, role.id).await;
    }
    if fields.mode.is_some() || fields.identity.is_some() {
        let who = Identity::parse(fields.mode, fields.identity)?;
        let user = users::find(app, ctx, &who).await?;
        return Ok((
            grants::user_grants(app, ctx.tenant, &user.row.rid).await?,
            json!({"kind": "user", "token": user.subject.token}),
        ));
    }
    Err(ApiError::bad_request("Missing API request parameters: roleid, rolename, mode and identity, or xtoken"))
}

async fn role_principal(app: &AppState, ctx: &RequestContext, role: i64) -> ApiResult<(Arc<Grants>, Value)> {
    let grant = grants::role_grant(app, ctx.tenant, role).await?.ok_or_else(roles::not_found)?;
    let label = json!({"kind": "role", "roleid": grant.id, "rolename": grant.name});
    Ok((Arc::new(Grants::Role(grant)), label))
}

#[derive(Debug, Deserialize)]
struct SimulateRequest {
    #[serde(flatten)]
    principal: PrincipalFields,
    operation: Option<Text>,
    /// The user record the call would concern.
    targetmode: Option<Text>,
    targetidentity: Option<Text>,
    /// The group the call would name.
    groupid: Option<Int>,
    groupname: Option<Text>,
}

#[derive(Serialize)]
struct SimulateReply {
    principal: Value,
    operation: String,
    decision: &'static str,
    reason: &'static str,
    policies: Vec<i64>,
    /// Profile fields that would come back masked (names only).
    masked: Vec<String>,
}

/// `PolicySimulate`: the decision a call would get, the policies that would decide it and the
/// fields that would be masked. `request_metadata` is the simulated call's own.
async fn simulate(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<SimulateRequest>,
) -> ApiResult<Reply<SimulateReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let operation = text(req.operation).map(|o| o.trim().to_owned()).unwrap_or_default();
    let operation = *grants::known_operations()
        .iter()
        .find(|known| known.eq_ignore_ascii_case(&operation))
        .ok_or_else(|| ApiError::bad_request("The operation parameter names no operation"))?;
    let (grants, label) = principal(&app, &ctx, req.principal).await?;
    let group = match refs::optional(req.groupid, req.groupname) {
        Some(group) => Some(groups::find(&app, &ctx, &group).await?.id),
        None => None,
    };
    let target = match (req.targetmode, req.targetidentity) {
        (None, None) => None,
        (mode, identity) => {
            let who = Identity::parse(mode, identity)?;
            // The caller is an administrator: the record is read whole, as the simulated call would.
            Some(users::find(&app, &ctx, &who).await?)
        }
    };
    let metadata = ctx.request_metadata();
    let kind = catalogue::kind(operation);
    let answer = |decision: &'static str, reason: &'static str, policies: Vec<i64>, masked: Vec<String>| {
        Reply(SimulateReply {
            principal: label.clone(),
            operation: operation.to_owned(),
            decision,
            reason,
            policies,
            masked,
        })
    };
    if ADMIN_ONLY.contains(&operation) {
        return Ok(answer("deny", "administrators only", Vec::new(), Vec::new()));
    }
    if let Grants::User(user) = grants.as_ref() {
        if USER_NEVER.contains(&operation) {
            return Ok(answer("deny", "a user must request this change", Vec::new(), Vec::new()));
        }
        if target.as_ref().is_some_and(|t| t.row.rid == user.rid) && USER_OWN.contains(&operation) {
            return Ok(answer("allow", "the user's own record", Vec::new(), Vec::new()));
        }
    }
    let memberships = match &target {
        Some(user) => {
            let rows = app.db.tenant(ctx.tenant).groups().memberships(&[user.row.rid.as_slice()]).await?;
            group_tree(&app, ctx.tenant).await?.expand(&rows)
        }
        None => Vec::new(),
    };
    let facts_target = target.as_ref().map(|user| Target {
        profile: Some(&user.profile),
        memberships: &memberships,
        agreements: None,
    });
    let decision =
        super::judge::decide(&ctx, operation, &grants, kind.part, metadata.as_ref(), facts_target.as_ref(), group);
    if !decision.allowed {
        return Ok(answer("deny", "denied by policy (or no policy grants it)", decision.policies, Vec::new()));
    }
    if (kind.writes || !kind.maskable) && !decision.view.is_all() {
        return Ok(answer("deny", "the operation needs the whole record in view", decision.policies, Vec::new()));
    }
    let masked = target.as_ref().map(|user| decision.view.mask(&user.profile).1).unwrap_or_default();
    Ok(answer("allow", "allowed by policy", decision.policies, masked))
}

#[derive(Debug, Deserialize)]
struct EffectiveRequest {
    #[serde(flatten)]
    principal: PrincipalFields,
}

/// `PolicyListEffectivePermissions`: for a role or a user (after its groups, their parents, its
/// roles and their policies), the operations it may call and, for each, which profile fields it
/// sees (`fields: null` for the whole record) and whether a condition or group decides it.
async fn effective(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<EffectiveRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::TenantAdmin)?;
    let (grants, label) = principal(&app, &ctx, req.principal).await?;
    let operations: Vec<&str> =
        grants::known_operations().iter().copied().filter(|op| !ADMIN_ONLY.contains(op)).collect();
    let part_of = |op: &str| catalogue::kind(op).part;
    let mut merged: BTreeMap<String, Value> = BTreeMap::new();
    let roles: Vec<_> = match grants.as_ref() {
        Grants::Role(role) => vec![(None, role.clone())],
        Grants::User(UserGrants { holdings, .. }) => {
            holdings.iter().map(|(m, role)| (Some(m.group_id), role.clone())).collect()
        }
    };
    if let Grants::User(_) = grants.as_ref() {
        for op in USER_OWN {
            merged.insert((*op).to_owned(), json!({"operation": op, "ownrecord": true, "grants": []}));
        }
    }
    let mut by_role: HashMap<String, Vec<Value>> = HashMap::new();
    for (group, role) in roles {
        for granted in role.compiled.effective(&operations, part_of) {
            if matches!(grants.as_ref(), Grants::User(_)) && USER_NEVER.contains(&granted.operation.as_str()) {
                continue;
            }
            let entry = json!({
                "conditional": granted.conditional,
                "fields": granted.fields,
                "hidden": granted.hidden,
                "rolename": role.name,
                "groupid": group,
            });
            by_role.entry(granted.operation.clone()).or_default().push(entry);
        }
    }
    for (operation, grants) in by_role {
        let row =
            merged.entry(operation.clone()).or_insert_with(|| json!({"operation": operation, "ownrecord": false}));
        row["grants"] = Value::Array(grants);
    }
    let rows: Vec<Value> = merged.into_values().collect();
    ctx.set_extra(json!({"principal": label}));
    Ok(Reply(Page { total: rows.len() as i64, rows }))
}
