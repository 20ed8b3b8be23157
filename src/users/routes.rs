//! HTTP handlers of the user operations.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::bulk;
use super::identity::{Identity, IdentityFields};
use super::service;
use crate::http::lenient::{Int, Text, int};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, ok, op};
use crate::state::AppState;
use crate::store::roles::Ref;

/// The user operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("UserCreate", create),
        op("UserGet", get),
        op("UserUpdate", update),
        op("UserPatch", patch),
        op("UserDelete", delete),
        op("UserListVersions", list_versions),
        op("UserCreateBulk", bulk::create_bulk),
        op("UserDeleteBulk", bulk::delete_bulk),
    ]
}

/// `UserCreate` request.
#[derive(Debug, Deserialize)]
pub struct CreateRequest {
    profile: Option<Value>,
    groupname: Option<Text>,
    groupid: Option<Int>,
    rolename: Option<Text>,
    roleid: Option<Int>,
    slidingtime: Option<Value>,
    finaltime: Option<Value>,
}

/// Optional group and role assignment of a new user (also one record of `UserCreateBulk`).
#[derive(Debug, Deserialize, Default)]
pub struct Assignment {
    groupname: Option<Text>,
    groupid: Option<Int>,
    rolename: Option<Text>,
    roleid: Option<Int>,
}

impl Assignment {
    /// The group and role named, checked for shape only (400 for a role without a group); the
    /// caller looks them up.
    pub fn refs(self) -> ApiResult<Option<(Ref, Option<Ref>)>> {
        let group = crate::access::refs::optional(self.groupid, self.groupname);
        let role = crate::access::refs::optional(self.roleid, self.rolename);
        match group {
            None if role.is_some() => {
                Err(ApiError::bad_request("A role is held in a group: give groupname or groupid"))
            }
            None => Ok(None),
            Some(group) => Ok(Some((group, role))),
        }
    }

    /// The group (and role in it) a new user joins, checked before the user is created: 404 for
    /// a group or role that does not exist, 400 for a role without a group.
    pub async fn resolve(self, app: &AppState, ctx: &RequestContext) -> ApiResult<Option<(i64, Option<i64>)>> {
        let group = crate::access::refs::optional(self.groupid, self.groupname);
        let role = crate::access::groups::role(app, ctx, self.roleid, self.rolename).await?;
        match group {
            None if role.is_some() => {
                Err(ApiError::bad_request("A role is held in a group: give groupname or groupid"))
            }
            None => Ok(None),
            Some(group) => {
                let group = crate::access::groups::find(app, ctx, &group).await?;
                Ok(Some((group.id, role.map(|r| r.id))))
            }
        }
    }
}

/// A required JSON-object profile.
pub fn required_profile(profile: Option<Value>) -> ApiResult<Value> {
    match profile {
        Some(profile @ Value::Object(_)) => Ok(profile),
        Some(_) => Err(ApiError::bad_request("The profile parameter has an incorrect format")),
        None => Err(ApiError::bad_request("Missing API request parameters: profile")),
    }
}

#[derive(Serialize)]
struct TokenReply {
    token: String,
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<TokenReply>> {
    ctx.require(Rule::Granted)?;
    let profile = required_profile(req.profile)?;
    service::check_profile(&profile, app.settings.max_record_size)?;
    let assignment =
        Assignment { groupname: req.groupname, groupid: req.groupid, rolename: req.rolename, roleid: req.roleid };
    let joins = assignment.resolve(&app, &ctx).await?;
    let lifetime = service::lifetime(&app, ctx.now, req.slidingtime.as_ref(), req.finaltime.as_ref())?;
    let subject = service::create(&app, &ctx, &profile, lifetime).await?;
    if let Some((group, role)) = joins {
        // The membership is a change of its own, with its own event (the user's is committed).
        let after = serde_json::json!({"groupid": group, "roleid": role});
        let event = ctx.change_event(Some(&subject), None, Some(&after), Some(&serde_json::json!({"joins": "group"})));
        app.db.tenant(ctx.tenant).groups().add_member(group, &subject.rid, role, ctx.now_ms, &event).await?;
        app.caches.forget_grants(ctx.tenant);
    }
    Ok(Reply(TokenReply { token: subject.token }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct GetRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    version: Option<Int>,
}

#[derive(Serialize)]
struct UserReply {
    token: String,
    profile: Value,
    version: i64,
    finaltime: i64,
    slidingtime: i64,
    expirationtime: i64,
}

async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<GetRequest>,
) -> ApiResult<Reply<UserReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let user = service::load(&app, &ctx, &who).await?;
    let version = int(req.version).filter(|v| *v > 0).unwrap_or(user.row.version);
    let profile = service::version_profile(&app, &ctx, &user, version).await?;
    let lifetime = user.row.lifetime;
    Ok(Reply(UserReply {
        token: user.subject.token.clone(),
        profile,
        version,
        finaltime: lifetime.final_at.unwrap_or(0),
        slidingtime: lifetime.sliding_secs.unwrap_or(0),
        expirationtime: lifetime.expires_at.unwrap_or(0),
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct UpdateRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    profile: Option<Value>,
}

async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let changes = required_profile(req.profile)?;
    // The fields a merge writes: its top-level keys (a nested object replaces or merges into
    // the field, which must be in view whole).
    ctx.set_writes(changes.as_object().map(|c| c.keys().map(|k| vec![k.clone()]).collect()).unwrap_or_default());
    service::change(&app, &ctx, &who, None, |current| Ok(service::merged(current, &changes))).await?;
    Ok(ok())
}

#[derive(Debug, Deserialize)]
pub(crate) struct PatchRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    patch: Option<Value>,
}

async fn patch(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<PatchRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let operations = service::required_patch(req.patch.as_ref(), app.settings.max_patch_operations)?;
    ctx.set_writes(patch_paths(req.patch.as_ref()));
    let max = app.settings.max_record_size;
    service::change(&app, &ctx, &who, None, |current| service::patched(current, &operations, max)).await?;
    Ok(ok())
}

/// Every field a patch touches, as key paths: each operation's `path` and `from` (a `test`
/// reads its field, so it needs it in view too). Called once the patch has been checked.
fn patch_paths(patch: Option<&Value>) -> Vec<Vec<String>> {
    let pointers = patch.and_then(Value::as_array).into_iter().flatten().flat_map(|operation| {
        ["path", "from"].into_iter().filter_map(move |key| operation.get(key).and_then(Value::as_str))
    });
    pointers
        .map(|pointer| {
            // RFC 6901: "" is the whole document; each "/"-separated token unescapes ~1 and ~0.
            pointer.split('/').skip(1).map(|token| token.replace("~1", "/").replace("~0", "~")).collect()
        })
        .collect()
}

async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityFields>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    service::delete(&app, &ctx, &who, None).await?;
    Ok(ok())
}

#[derive(Serialize)]
struct VersionsReply {
    token: String,
    versions: Vec<Value>,
}

async fn list_versions(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<IdentityFields>,
) -> ApiResult<Reply<VersionsReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let user = service::load(&app, &ctx, &who).await?;
    let versions = service::versions(&app, &ctx, &user).await?;
    Ok(Reply(VersionsReply { token: user.subject.token.clone(), versions }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_patch_touches_its_paths_and_sources() {
        let patch = serde_json::json!([
            {"op": "replace", "path": "/name", "value": "x"},
            {"op": "move", "from": "/a~1b", "path": "/c~0d/0"},
            {"op": "test", "path": "", "value": {}},
        ]);
        let paths = super::patch_paths(Some(&patch));
        let want: Vec<Vec<String>> =
            vec![vec!["name".into()], vec!["c~d".into(), "0".into()], vec!["a/b".into()], vec![]];
        assert_eq!(paths, want);
    }
}
