//! Access decisions for callers bound by policies (role and user tokens): once for the operation
//! ([`operation`], from `Rule::Granted`), and for each user record the operation loads
//! ([`admit`], [`admit_rows`]). Administrators never reach here.
//!
//! Every decision goes into the request's audit event: the deciding policy ids and the masked
//! field names, never values. Denials answer 403 "API access denied".

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::catalogue::{self, ADMIN_ONLY, USER_NEVER, USER_OWN};
use super::grants::{Grants, group_tree};
use super::policy::{Decision, Facts, Membership, Part, Reach, Target};
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::users::service::LoadedUser;

/// The refusal of a caller its policies do not allow.
pub fn denied() -> ApiError {
    ApiError::Forbidden("API access denied".into())
}

/// Judges the operation itself: an operation on no user record is decided here whole; one on a
/// user record is let through when some grant may allow it, and judged again per record.
pub fn operation(ctx: &RequestContext, grants: &Grants) -> ApiResult<()> {
    let op = ctx.operation;
    let kind = catalogue::kind(op);
    if ADMIN_ONLY.contains(&op) {
        // The answer an administrator's rule gives anyone else.
        ctx.record_decision(json!({"decision": "deny", "reason": "administrators only"}));
        return Err(ApiError::access_denied());
    }
    if let Grants::User(_) = grants
        && USER_NEVER.contains(&op)
    {
        return refuse(ctx, "a user must request this change", &[]);
    }
    if kind.per_record {
        let reachable = match grants {
            Grants::Role(role) => role.compiled.reach(op) == Reach::Maybe,
            Grants::User(user) => {
                USER_OWN.contains(&op) || user.holdings.iter().any(|(_, role)| role.compiled.reach(op) == Reach::Maybe)
            }
        };
        return if reachable { Ok(()) } else { refuse(ctx, "no policy grants the operation", &[]) };
    }
    let metadata = ctx.request_metadata();
    let decision = decide(ctx, op, grants, kind.part, metadata.as_ref(), None, None);
    if decision.allowed && !decision.view.is_all() && (kind.writes || !kind.maskable) {
        return refuse(ctx, "the operation needs the whole record in view", &decision.policies);
    }
    if decision.allowed {
        ctx.record_decision(json!({"decision": "allow", "policies": decision.policies}));
        Ok(())
    } else {
        refuse(ctx, "denied by policy", &decision.policies)
    }
}

/// Judges the one user record an operation loaded: 403 when the caller may not act on it; for a
/// read, the profile is masked to what the caller may see (a write needs the whole part).
pub async fn admit(app: &AppState, ctx: &RequestContext, user: &mut LoadedUser) -> ApiResult<()> {
    let Some(grants) = ctx.grants.clone() else { return Ok(()) };
    let memberships = target_memberships(app, ctx, &grants, &[user.row.rid.as_slice()]).await?;
    let empty = Vec::new();
    let own = memberships.get(&user.row.rid).unwrap_or(&empty);
    let agreements = target_agreements(app, ctx, &grants, &user.row.rid).await?;
    judge_one(ctx, &grants, user, own, agreements.as_ref(), None)
}

/// Judges an operation on a record that belongs to no user (a session bound to none): decided
/// as the operation alone, on the record's part.
pub fn admit_unowned(ctx: &RequestContext) -> ApiResult<()> {
    let Some(grants) = ctx.grants.clone() else { return Ok(()) };
    let kind = catalogue::kind(ctx.operation);
    let metadata = ctx.request_metadata();
    let decision = decide(ctx, ctx.operation, &grants, kind.part, metadata.as_ref(), None, None);
    if decision.allowed {
        ctx.record_decision(json!({"decision": "allow", "policies": decision.policies, "unowned": true}));
        Ok(())
    } else {
        refuse(ctx, "denied by policy", &decision.policies)
    }
}

/// Judges the records of a listing (of the members of `group`, if the listing names one):
/// those the caller may not see are left out, the others masked. The listing is judged even
/// when it is empty.
pub async fn admit_rows(
    app: &AppState,
    ctx: &RequestContext,
    users: Vec<LoadedUser>,
    group: Option<i64>,
) -> ApiResult<Vec<LoadedUser>> {
    let Some(grants) = ctx.grants.clone() else { return Ok(users) };
    ctx.record_decision(json!({"decision": "listing", "rows": users.len()}));
    let rids: Vec<&[u8]> = users.iter().map(|user| user.row.rid.as_slice()).collect();
    let memberships = target_memberships(app, ctx, &grants, &rids).await?;
    let empty = Vec::new();
    let mut admitted = Vec::with_capacity(users.len());
    for mut user in users {
        let own = memberships.get(&user.row.rid).unwrap_or(&empty);
        let agreements = target_agreements(app, ctx, &grants, &user.row.rid).await?;
        if judge_one(ctx, &grants, &mut user, own, agreements.as_ref(), group).is_ok() {
            admitted.push(user);
        }
    }
    Ok(admitted)
}

fn judge_one(
    ctx: &RequestContext,
    grants: &Grants,
    user: &mut LoadedUser,
    memberships: &[Membership],
    agreements: Option<&HashMap<String, String>>,
    group: Option<i64>,
) -> ApiResult<()> {
    let op = ctx.operation;
    let kind = catalogue::kind(op);
    if let Grants::User(own) = grants
        && own.rid == user.row.rid
        && USER_OWN.contains(&op)
    {
        ctx.record_decision(json!({"decision": "allow", "own_record": true}));
        return Ok(());
    }
    let metadata = ctx.request_metadata();
    let target = Target { profile: Some(&user.profile), memberships, agreements };
    let decision = decide(ctx, op, grants, kind.part, metadata.as_ref(), Some(&target), group);
    if !decision.allowed {
        return refuse(ctx, "denied by policy", &decision.policies);
    }
    if decision.view.is_all() {
        ctx.record_decision(json!({"decision": "allow", "policies": decision.policies}));
        return Ok(());
    }
    if kind.writes && kind.part == Part::Profile {
        // A change of the fields the caller sees (and only of those) is what its policies allow;
        // the change applies to the stored record, so the hidden fields stay as they are.
        let writes = ctx.writes().unwrap_or_default();
        let covered = |path: &Vec<String>| decision.view.covers(&path.iter().map(String::as_str).collect::<Vec<_>>());
        if !writes.is_empty() && writes.iter().all(covered) {
            let fields: Vec<String> = writes.iter().map(|path| path.join(".")).collect();
            ctx.record_decision(json!({"decision": "allow", "policies": decision.policies, "writes": fields}));
            return Ok(());
        }
    }
    if kind.writes || !kind.maskable {
        return refuse(ctx, "the operation needs the whole record in view", &decision.policies);
    }
    let (masked, fields) = decision.view.mask(&user.profile);
    user.profile = masked;
    ctx.record_decision(json!({"decision": "allow", "policies": decision.policies, "masked": fields}));
    user.view = Some(Arc::new(decision.view));
    Ok(())
}

/// The decision of the caller's grants on these facts (a user token: each role it holds,
/// judged in the group it holds it in, combined).
pub fn decide(
    ctx: &RequestContext,
    operation: &str,
    grants: &Grants,
    part: Part,
    metadata: Option<&Value>,
    target: Option<&Target<'_>>,
    group: Option<i64>,
) -> Decision {
    let facts = |principal_groups| Facts {
        operation,
        part,
        principal_groups,
        group,
        target,
        metadata,
        source_ip: ctx.client,
        now: ctx.now,
    };
    match grants {
        Grants::Role(role) => role.compiled.decide(&facts(&[])),
        Grants::User(user) => Decision::combine(
            user.holdings
                .iter()
                .map(|(membership, role)| role.compiled.decide(&facts(std::slice::from_ref(membership)))),
        ),
    }
}

/// The memberships of these users (with the groups above them), when the caller's policies
/// read group facts; none otherwise.
async fn target_memberships(
    app: &AppState,
    ctx: &RequestContext,
    grants: &Grants,
    rids: &[&[u8]],
) -> ApiResult<HashMap<Vec<u8>, Vec<Membership>>> {
    if !grants.needs().memberships || rids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = app.db.tenant(ctx.tenant).groups().memberships(rids).await?;
    let tree = group_tree(app, ctx.tenant).await?;
    let mut by_user: HashMap<Vec<u8>, Vec<_>> = HashMap::new();
    for row in rows {
        by_user.entry(row.rid.clone()).or_default().push(row);
    }
    Ok(by_user.into_iter().map(|(rid, rows)| (rid, tree.expand(&rows))).collect())
}

/// The target's agreements, brief to `yes` (active) or `no` (anything else), when the caller's
/// policies read `${agreement:…}`; none otherwise.
async fn target_agreements(
    app: &AppState,
    ctx: &RequestContext,
    grants: &Grants,
    rid: &[u8],
) -> ApiResult<Option<HashMap<String, String>>> {
    if !grants.needs().agreements {
        return Ok(None);
    }
    let rows = app.db.tenant(ctx.tenant).agreements().list(rid).await?;
    let yes_no = |status: &str| if status == "active" { "yes" } else { "no" };
    Ok(Some(rows.into_iter().map(|row| (row.brief, yes_no(&row.status).to_owned())).collect()))
}

fn refuse(ctx: &RequestContext, reason: &str, policies: &[i64]) -> ApiResult<()> {
    ctx.record_decision(json!({"decision": "deny", "reason": reason, "policies": policies}));
    Err(denied())
}
