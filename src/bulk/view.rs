//! How a user appears in bulk listings and search results.

use serde_json::{Value, json};

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
