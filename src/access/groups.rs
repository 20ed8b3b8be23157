//! `GroupCreate`, `GroupGet`, `GroupUpdate`, `GroupDelete`, `GroupListAllGroups`,
//! `GroupListUserGroups`, `GroupAddUser`, `GroupDeleteUser`.
//!
//! Groups belong to a tenant; a group may sit below a parent (`parentgroupid` or
//! `parentgroupname`) and carry custom attributes (a JSON object of at most [`MAX_ATTRIBUTES`]
//! string, number or boolean values) that policy conditions can read.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::refs::{self, MAX_DESCRIPTION};
use crate::http::lenient::{Int, Text, int, opt_bool, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Page, Reply, RequestContext, Rule, ok, op};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::groups::{Deletion, Group};
use crate::store::roles::{Ref, Role};
use crate::users::{self, Identity};

/// The group operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("GroupCreate", create),
        op("GroupGet", get),
        op("GroupUpdate", update),
        op("GroupDelete", delete),
        op("GroupListAllGroups", list_all),
        op("GroupListUserGroups", list_user_groups),
        op("GroupAddUser", add_user),
        op("GroupDeleteUser", delete_user),
    ]
}

/// `grouptype` when none is given.
const DEFAULT_TYPE: &str = "users";
/// Longest `grouptype` (the contract's).
const MAX_TYPE: usize = 30;
/// Most custom attributes of a group.
pub const MAX_ATTRIBUTES: usize = 32;
/// Longest attribute value (as text).
const MAX_ATTRIBUTE_VALUE: usize = 256;

/// 404 for a group.
pub fn not_found() -> ApiError {
    ApiError::not_found("The group record was not found")
}

fn duplicate() -> ApiError {
    ApiError::conflict("The group record already exists")
}

/// A group as answered (and recorded in events).
fn view(group: &Group) -> Value {
    json!({
        "groupid": group.id,
        "groupname": group.name,
        "groupdesc": group.descr,
        "grouptype": group.gtype,
        "parentgroupid": group.parent_id,
        "attributes": serde_json::from_str::<Value>(&group.attributes).unwrap_or_else(|_| json!({})),
        "creationtime": group.created_at,
    })
}

/// Custom attributes: an object of at most [`MAX_ATTRIBUTES`] scalar values.
fn attributes(value: Option<Value>) -> ApiResult<Option<String>> {
    let Some(value) = value else { return Ok(None) };
    let bad = || ApiError::bad_request("The attributes parameter must be an object of strings, numbers or booleans");
    let Value::Object(map) = value else { return Err(bad()) };
    if map.len() > MAX_ATTRIBUTES {
        return Err(ApiError::bad_request(format!("A group has at most {MAX_ATTRIBUTES} attributes")));
    }
    for (key, value) in &map {
        let scalar = matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_));
        let text = value.to_string();
        if !scalar || key.chars().count() > refs::MAX_NAME || text.len() > MAX_ATTRIBUTE_VALUE || key.contains('\0') {
            return Err(bad());
        }
    }
    Ok(Some(Value::Object(map).to_string()))
}

fn group_type(value: Option<Text>) -> ApiResult<Option<String>> {
    match text(value).map(|t| t.trim().to_owned()) {
        Some(t) if t.is_empty() => Ok(Some(DEFAULT_TYPE.to_owned())),
        Some(t) if t.chars().count() > MAX_TYPE => Err(ApiError::bad_request("The grouptype is too long")),
        Some(t) if t.chars().any(char::is_control) => {
            Err(ApiError::bad_request("The grouptype parameter has an incorrect format"))
        }
        other => Ok(other),
    }
}

/// The group a request names; 404 when there is none.
pub async fn find(app: &AppState, ctx: &RequestContext, group: &Ref) -> ApiResult<Group> {
    app.db.tenant(ctx.tenant).groups().get(group).await?.ok_or_else(not_found)
}

async fn parent(app: &AppState, ctx: &RequestContext, id: Option<Int>, name: Option<Text>) -> ApiResult<Option<i64>> {
    match refs::optional(id, name) {
        None => Ok(None),
        Some(parent) => Ok(Some(find(app, ctx, &parent).await?.id)),
    }
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    groupname: Option<Text>,
    groupdesc: Option<Text>,
    /// The vendor's sub-accounts page sends `description`.
    description: Option<Text>,
    grouptype: Option<Text>,
    parentgroupid: Option<Int>,
    parentgroupname: Option<Text>,
    attributes: Option<Value>,
}

#[derive(Serialize)]
struct CreateReply {
    groupid: i64,
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<CreateReply>> {
    ctx.require(Rule::Granted)?;
    let name = refs::name("groupname", req.groupname)?;
    let descr = refs::description("groupdesc", req.groupdesc.or(req.description), MAX_DESCRIPTION)?;
    let gtype = group_type(req.grouptype)?;
    let attributes = attributes(req.attributes)?;
    let parent_id = parent(&app, &ctx, req.parentgroupid, req.parentgroupname).await?;
    let mut group = Group {
        id: 0,
        name,
        descr: descr.unwrap_or_default(),
        gtype: gtype.unwrap_or_else(|| DEFAULT_TYPE.to_owned()),
        parent_id,
        attributes: attributes.unwrap_or_else(|| "{}".to_owned()),
        created_at: ctx.now,
        updated_at: ctx.now,
    };
    let event = ctx.change_event(None, None, Some(&view(&group)), None);
    group.id = ctx.committed(
        app.db.tenant(ctx.tenant).groups().insert(&group, ctx.now_ms, &event).await,
        not_found,
        duplicate,
    )?;
    app.caches.forget_grants(ctx.tenant);
    Ok(Reply(CreateReply { groupid: group.id }))
}

#[derive(Debug, Deserialize)]
struct GroupRequest {
    groupid: Option<Int>,
    groupname: Option<Text>,
}

async fn get(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<GroupRequest>,
) -> ApiResult<Reply<Value>> {
    ctx.require(Rule::Granted)?;
    let group = find(&app, &ctx, &refs::required(req.groupid, req.groupname, "groupid or groupname")?).await?;
    Ok(Reply(view(&group)))
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    groupid: Option<Int>,
    groupname: Option<Text>,
    groupdesc: Option<Text>,
    description: Option<Text>,
    grouptype: Option<Text>,
    parentgroupid: Option<Int>,
    parentgroupname: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    noparent: Option<bool>,
    attributes: Option<Value>,
}

/// `GroupUpdate`: by `groupid` (the contract's); `groupname` renames it. A client that names
/// the group only by `groupname` changes the other fields of that group.
async fn update(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let (target, rename) = match refs::optional(req.groupid, None) {
        Some(id) => (id, req.groupname),
        None => (refs::required(None, req.groupname, "groupid")?, None),
    };
    let current = find(&app, &ctx, &target).await?;
    let mut next = current.clone();
    if let Some(name) = rename {
        next.name = refs::name("groupname", Some(name))?;
    }
    if let Some(descr) = refs::description("groupdesc", req.groupdesc.or(req.description), MAX_DESCRIPTION)? {
        next.descr = descr;
    }
    if let Some(gtype) = group_type(req.grouptype)? {
        next.gtype = gtype;
    }
    if let Some(attributes) = attributes(req.attributes)? {
        next.attributes = attributes;
    }
    if req.noparent == Some(true) {
        next.parent_id = None;
    } else if let Some(parent) = parent(&app, &ctx, req.parentgroupid, req.parentgroupname).await? {
        next.parent_id = Some(parent);
    }
    next.updated_at = ctx.now;
    let event = ctx.change_event(None, Some(&view(&current)), Some(&view(&next)), None);
    let stored = app.db.tenant(ctx.tenant).groups().update(&next, ctx.now_ms, &event).await;
    ctx.committed(stored, not_found, duplicate)?;
    app.caches.forget_grants(ctx.tenant);
    Ok(ok())
}

#[derive(Debug, Deserialize)]
struct DeleteRequest {
    groupid: Option<Int>,
    groupname: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    cascade: Option<bool>,
}

#[derive(Serialize)]
struct DeleteReply {
    /// Groups removed below it.
    groups: i64,
    /// Memberships removed.
    members: i64,
}

/// `GroupDelete`: a group with groups below it or members is refused (409, with the counts)
/// unless `cascade` is true.
async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<DeleteRequest>,
) -> ApiResult<Reply<DeleteReply>> {
    ctx.require(Rule::Granted)?;
    let group = find(&app, &ctx, &refs::required(req.groupid, req.groupname, "groupid or groupname")?).await?;
    let cascade = req.cascade.unwrap_or(false);
    let event = ctx.change_event(None, Some(&view(&group)), None, Some(&json!({"cascade": cascade})));
    let stored = app.db.tenant(ctx.tenant).groups().delete(group.id, cascade, ctx.now_ms, &event).await;
    match stored {
        Ok(Deletion::Deleted { groups, members }) => {
            ctx.mark_committed();
            app.caches.forget_grants(ctx.tenant);
            Ok(Reply(DeleteReply { groups, members }))
        }
        Err(StoreError::NotFound) => Err(not_found()),
        Err(err) => Err(err.into()),
        Ok(Deletion::Refused { children, members }) => {
            // Nothing was written: the request's own event records the refusal.
            ctx.set_extra(json!({"children": children, "members": members}));
            Err(ApiError::conflict(format!(
                "The group has {children} groups below it and {members} members: delete with cascade to remove them"
            )))
        }
    }
}

/// Most rows of one group or policy listing (the clients call them without paging).
pub const MAX_LIST: i64 = 1000;

/// `offset` and `limit` of a catalogue listing: everything up to [`MAX_LIST`] unless told.
pub fn listing(offset: Option<Int>, limit: Option<Int>) -> (i64, i64) {
    let offset = int(offset).unwrap_or(0).max(0);
    (offset, int(limit).filter(|l| (1..=MAX_LIST).contains(l)).unwrap_or(MAX_LIST))
}

#[derive(Debug, Deserialize)]
struct ListRequest {
    offset: Option<Int>,
    limit: Option<Int>,
}

async fn list_all(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ListRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    let (offset, limit) = listing(req.offset, req.limit);
    let scope = app.db.tenant(ctx.tenant);
    let rows: Vec<Value> = scope.groups().list(offset, limit).await?.iter().map(view).collect();
    Ok(Reply(Page { total: scope.groups().count().await?, rows }))
}

#[derive(Debug, Deserialize)]
struct UserRequest {
    mode: Option<Text>,
    identity: Option<Text>,
}

async fn list_user_groups(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<UserRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let user = users::service::load(&app, &ctx, &who).await?;
    let scope = app.db.tenant(ctx.tenant);
    let memberships = scope.groups().memberships(&[user.row.rid.as_slice()]).await?;
    let mut rows = Vec::with_capacity(memberships.len());
    for membership in memberships {
        let Some(group) = scope.groups().get(&Ref::Id(membership.group_id)).await? else { continue };
        let mut row = view(&group);
        row["roleid"] = json!(membership.role_id);
        row["rolename"] = json!(membership.role_name);
        rows.push(row);
    }
    Ok(Reply(Page { total: rows.len() as i64, rows }))
}

#[derive(Debug, Deserialize)]
struct MemberRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    groupid: Option<Int>,
    groupname: Option<Text>,
    roleid: Option<Int>,
    rolename: Option<Text>,
    /// The vendor's sub-accounts page sends `role`.
    role: Option<Text>,
}

/// The role a request names, if any; 404 when it names one that does not exist.
pub async fn role(
    app: &AppState,
    ctx: &RequestContext,
    id: Option<Int>,
    name: Option<Text>,
) -> ApiResult<Option<Role>> {
    match refs::optional(id, name) {
        None => Ok(None),
        Some(reference) => Ok(Some(
            app.db
                .tenant(ctx.tenant)
                .roles()
                .role(&reference)
                .await?
                .ok_or_else(|| ApiError::not_found("The role record was not found"))?,
        )),
    }
}

/// `GroupAddUser`: puts the user in the group with the role named (`roleid`, `rolename` or
/// `role`), or changes the role it holds there.
async fn add_user(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<MemberRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let group = find(&app, &ctx, &refs::required(req.groupid, req.groupname, "groupid or groupname")?).await?;
    let role = role(&app, &ctx, req.roleid, req.rolename.or(req.role)).await?;
    let user = users::service::load(&app, &ctx, &who).await?;
    let after = json!({"groupid": group.id, "roleid": role.as_ref().map(|r| r.id)});
    let event = ctx.change_event(Some(&user.subject), None, Some(&after), None);
    let stored = app
        .db
        .tenant(ctx.tenant)
        .groups()
        .add_member(group.id, &user.row.rid, role.map(|r| r.id), ctx.now_ms, &event)
        .await;
    ctx.committed(stored, not_found, duplicate)?;
    app.caches.forget_grants(ctx.tenant);
    Ok(ok())
}

/// `GroupDeleteUser`: takes the user out of the group (404 when it was not in it).
async fn delete_user(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<MemberRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let group = find(&app, &ctx, &refs::required(req.groupid, req.groupname, "groupid or groupname")?).await?;
    let user = users::service::load(&app, &ctx, &who).await?;
    let before = json!({"groupid": group.id});
    let event = ctx.change_event(Some(&user.subject), Some(&before), None, None);
    let stored = app.db.tenant(ctx.tenant).groups().remove_member(group.id, &user.row.rid, ctx.now_ms, &event).await;
    ctx.committed(stored, || ApiError::not_found("The user is not a member of the group"), duplicate)?;
    app.caches.forget_grants(ctx.tenant);
    Ok(ok())
}
