//! `BulkListGroupUsers`: the members of a group, a page at a time, each with its token, profile
//! and the role it holds there; judged and masked like any read (a caller bound by policies sees
//! the members its policies allow, with the fields they allow).

use std::collections::HashMap;

use axum::extract::State;
use serde::Deserialize;
use serde_json::json;

use super::groups;
use super::refs;
use crate::bulk::{unlock, view};
use crate::http::lenient::{Int, Text};
use crate::http::{ApiResult, Body, Operation, Page, Reply, RequestContext, Rule, op, page};
use crate::state::AppState;
use crate::users::service as users;

/// The group listing operation.
pub fn operations() -> Vec<Operation> {
    vec![op("BulkListGroupUsers", list_group_users)]
}

#[derive(Debug, Deserialize)]
struct ListRequest {
    unlockuuid: Option<Text>,
    groupid: Option<Int>,
    groupname: Option<Text>,
    offset: Option<Int>,
    limit: Option<Int>,
}

async fn list_group_users(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ListRequest>,
) -> ApiResult<Reply<Page>> {
    ctx.require(Rule::Granted)?;
    unlock::require(&app, &ctx, req.unlockuuid).await?;
    let group = groups::find(&app, &ctx, &refs::required(req.groupid, req.groupname, "groupid or groupname")?).await?;
    let (offset, limit) = page(req.offset, req.limit);
    let scope = app.db.tenant(ctx.tenant);
    let (total, members) = scope.groups().members(group.id, offset, limit).await?;
    let rids: Vec<Vec<u8>> = members.iter().map(|m| m.rid.clone()).collect();
    let mut found: HashMap<Vec<u8>, _> =
        scope.bulk().users_by_rid(&rids, ctx.now).await?.into_iter().map(|row| (row.rid.clone(), row)).collect();
    // In membership order; a member whose record expired (not yet swept) is left out.
    let opened = members
        .iter()
        .filter_map(|member| found.remove(&member.rid))
        .map(|row| users::open(&ctx, row))
        .collect::<ApiResult<Vec<_>>>()?;
    let opened = super::judge::admit_rows(&app, &ctx, opened, Some(group.id)).await?;
    let roles: HashMap<&[u8], Option<&String>> =
        members.iter().map(|m| (m.rid.as_slice(), m.role_name.as_ref())).collect();
    let mut rows = view::users(&app, &ctx, &opened).await?;
    for (row, user) in rows.iter_mut().zip(&opened) {
        row["rolename"] = json!(roles.get(user.row.rid.as_slice()).copied().flatten());
    }
    ctx.set_extra(
        json!({"groupid": group.id, "offset": offset, "limit": limit, "records": rows.len(), "total": total}),
    );
    crate::bulk::disclosed::record(&app, &ctx, &opened).await?;
    Ok(Reply(Page { total, rows }))
}
