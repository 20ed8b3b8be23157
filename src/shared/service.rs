//! Shared record operations, independent of HTTP.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::appdata::{AppName, service as appdata};
use crate::audit::Subject;
use crate::crypto::keyring::{open_user, seal_user};
use crate::crypto::secrets::{is_uuid_shaped, random_uuid_string};
use crate::crypto::{CryptoError, IndexKind, TenantKeys};
use crate::expiry::Expiry;
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::store::shared::NewSharedRecord;
use crate::users::LoadedUser;

/// Table name bound into the associated data of sealed shared records.
const TABLE: &str = "shared_records";

/// What a shared record shows.
pub struct Selection {
    /// Profile (or app data) keys to show; `None` shows them all.
    pub fields: Option<Vec<String>>,
    /// Share this app's data instead of the profile.
    pub appname: Option<AppName>,
    /// Audit label naming who the record is for (not enforced).
    pub partner: Option<String>,
}

/// The `fields` parameter: comma-separated keys; absent or empty means every key.
pub fn parse_fields(fields: Option<Text>) -> Option<Vec<String>> {
    let list: Vec<String> =
        text(fields)?.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect();
    if list.is_empty() { None } else { Some(list) }
}

/// The sealed content of a shared record.
#[derive(Serialize, Deserialize)]
struct StoredShare {
    /// The owner's token, to name the subject of the audit event of a public read.
    token: String,
    data: Value,
}

/// When a new record stops resolving: the requested `finaltime` capped at the maximum; the
/// maximum when none is requested, so that no shared record lives forever.
pub fn expires_at(app: &AppState, now: i64, finaltime: Option<&Value>) -> ApiResult<i64> {
    let max = app.settings.max_shared_record_retention;
    let expiry =
        Expiry::from_request(None, finaltime, now, max).map_err(|err| ApiError::bad_request(err.to_string()))?;
    Ok(expiry.final_at.unwrap_or_else(|| now.saturating_add(max)))
}

/// Keeps only the selected keys of an object.
fn select(source: Value, fields: Option<&[String]>) -> Value {
    let Value::Object(map) = source else { return Value::Object(Map::new()) };
    match fields {
        None => Value::Object(map),
        Some(fields) => Value::Object(map.into_iter().filter(|(key, _)| fields.iter().any(|f| f == key)).collect()),
    }
}

/// Takes the snapshot and stores it with its audit event; returns the new record uuid.
pub async fn create(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    selection: &Selection,
    expires_at: i64,
) -> ApiResult<String> {
    let source = match &selection.appname {
        Some(name) => appdata::current(app, ctx, user, name).await?.1,
        None => user.profile.clone(),
    };
    let data = select(source, selection.fields.as_deref());
    let subject = &user.subject;
    let uuid = random_uuid_string();
    let idx = ctx.keys.shared_record_index(&uuid);
    let stored = StoredShare { token: subject.token.clone(), data };
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(&stored).map_err(ApiError::internal)?);
    let record = NewSharedRecord {
        rec_idx: idx,
        user_rid: subject.rid.clone(),
        data: seal_user(&subject.key, ctx.tenant, TABLE, &idx, &plain),
        now: ctx.now,
        expires_at,
    };
    let fields = stored.data.as_object().map_or(0, Map::len);
    let extra = json!({
        "partner": selection.partner,
        "fields": fields,
        "appname": selection.appname.as_ref().map(AppName::as_str),
    });
    let event = ctx.change_event(Some(subject), None, None, Some(&extra));
    app.db.tenant(ctx.tenant).shared().insert(&record, &event).await?;
    ctx.mark_committed();
    Ok(uuid)
}

/// Validates `recorduuid`: present and UUID-shaped (any case); returns it lower-cased.
pub fn parse_uuid(recorduuid: Option<Text>) -> ApiResult<String> {
    let uuid = text(recorduuid)
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: recorduuid"))?
        .trim()
        .to_ascii_lowercase();
    if is_uuid_shaped(&uuid) { Ok(uuid) } else { Err(ApiError::bad_request("Bad UUID")) }
}

/// Opens a live shared record; `subject` is set to its owner once known (for the audit event).
pub async fn open(
    app: &AppState,
    keys: &Arc<TenantKeys>,
    now: i64,
    uuid: &str,
    subject: &mut Option<Subject>,
) -> ApiResult<Value> {
    let tenant = keys.tenant();
    let idx = keys.shared_record_index(uuid);
    let row = app.db.tenant(tenant).shared().get(&idx, now).await?.ok_or_else(shared_record_not_found)?;
    let key = keys.unwrap_data_key(&row.user_rid, &row.wrapped_key)?;
    let plain = zeroize::Zeroizing::new(open_user(&key, tenant, TABLE, &idx, &row.data)?);
    let stored: StoredShare = serde_json::from_slice(&plain).map_err(|_| CryptoError)?;
    let user_ref = keys.index(IndexKind::Token, &stored.token);
    *subject = Some(Subject { token: stored.token, user_ref, rid: row.user_rid, key });
    Ok(stored.data)
}

/// The live shared records of a user: `{creationtime, expirationtime, data}`, oldest first.
pub async fn list_for_user(app: &AppState, ctx: &RequestContext, user: &LoadedUser) -> ApiResult<Vec<Value>> {
    let rows = app.db.tenant(ctx.tenant).shared().list_for_user(&user.subject.rid, ctx.now).await?;
    rows.iter()
        .map(|row| {
            let plain =
                zeroize::Zeroizing::new(open_user(&user.subject.key, ctx.tenant, TABLE, &row.rec_idx, &row.data)?);
            let stored: StoredShare = serde_json::from_slice(&plain).map_err(|_| CryptoError)?;
            Ok(json!({"creationtime": row.created_at, "expirationtime": row.expires_at, "data": stored.data}))
        })
        .collect()
}

/// 404 for an unknown or expired shared record.
pub fn shared_record_not_found() -> ApiError {
    ApiError::not_found("The shared record was not found")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_trimmed_and_empty_means_all() {
        assert_eq!(parse_fields(Some(Text(" email , name,,".into()))), Some(vec!["email".into(), "name".into()]));
        assert_eq!(parse_fields(Some(Text(" , ".into()))), None);
        assert_eq!(parse_fields(None), None);
    }

    #[test]
    fn select_keeps_only_listed_keys() {
        let profile = json!({"email": "a@b.c", "name": "A", "phone": "1"});
        let fields = vec!["name".to_owned(), "missing".to_owned()];
        assert_eq!(select(profile.clone(), Some(&fields)), json!({"name": "A"}));
        assert_eq!(select(profile.clone(), None), profile);
    }
}
