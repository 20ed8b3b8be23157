//! How a user appears in bulk listings and search results.

use std::collections::HashMap;

use serde_json::{Value, json};

use crate::http::{ApiResult, RequestContext};
use crate::state::AppState;
use crate::users::LoadedUser;

/// A user row: token, full profile, version and lifetime, as `UserGet` answers them.
pub fn user(user: &LoadedUser) -> Value {
    let lifetime = user.row.lifetime;
    json!({
        "token": user.subject.token,
        "profile": user.profile,
        "version": user.row.version,
        "finaltime": lifetime.final_at.unwrap_or(0),
        "slidingtime": lifetime.sliding_secs.unwrap_or(0),
        "expirationtime": lifetime.expires_at.unwrap_or(0),
    })
}

/// User rows as [`user`] makes them, each with `grouproles`: the groups the user is in and the
/// role held in each (one query for the whole page).
pub async fn users(app: &AppState, ctx: &RequestContext, users: &[LoadedUser]) -> ApiResult<Vec<Value>> {
    let rids: Vec<&[u8]> = users.iter().map(|user| user.row.rid.as_slice()).collect();
    let mut roles: HashMap<&[u8], Vec<Value>> = HashMap::new();
    let memberships = app.db.tenant(ctx.tenant).groups().memberships(&rids).await?;
    for membership in &memberships {
        roles.entry(membership.rid.as_slice()).or_default().push(json!({
            "groupid": membership.group_id,
            "groupname": membership.group_name,
            "roleid": membership.role_id,
            "rolename": membership.role_name,
        }));
    }
    Ok(users
        .iter()
        .map(|loaded| {
            let mut row = user(loaded);
            row["grouproles"] = Value::Array(roles.remove(loaded.row.rid.as_slice()).unwrap_or_default());
            row
        })
        .collect())
}
