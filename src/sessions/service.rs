//! Session operations, independent of HTTP.
//!
//! A session is a caller-named JSON object. When its data names an existing user (a `token`,
//! `login`, `email`, `phone` or `custom` key, normalised as the user indexes are) it is bound to
//! that user: sealed under the user's data key and erased with the user. Otherwise it stands
//! alone, sealed under the tenant key, with blind indexes of the identities it names: a user
//! created later with one of them, and then erased, takes such sessions with it (see
//! [`erase_naming`]). The caller's uuid is kept only as a blind index in its column (and in
//! clear inside the sealed data, to list it back).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::audit::Subject;
use crate::crypto::keyring::{open_user, seal_user};
use crate::crypto::secrets::is_uuid_shaped;
use crate::crypto::{CryptoError, IndexKind, IndexValue, TenantKeys};
use crate::expiry::{Expiry, Lifetime};
use crate::http::lenient::{Text, text};
use crate::http::limits::check_record_size;
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::store::sessions::{NewSession, SessionRow};
use crate::tenants::TenantId;
use crate::users::{Identity, LoadedUser, service as users};

/// Table name bound into the associated data of sealed sessions.
const TABLE: &str = "sessions";

/// Identity keys that bind a session to a user, in the order they are tried.
const BINDING_KINDS: [IndexKind; 5] =
    [IndexKind::Token, IndexKind::Login, IndexKind::Email, IndexKind::Phone, IndexKind::Custom];

/// A validated session uuid and its blind index.
#[derive(Debug, Clone)]
pub struct SessionId {
    /// The uuid, lower-cased.
    pub uuid: String,
    /// Its blind index: the row key.
    pub idx: IndexValue,
}

impl SessionId {
    /// Validates `sessionuuid`: present and UUID-shaped (any case).
    pub fn parse(ctx: &RequestContext, sessionuuid: Option<Text>) -> ApiResult<SessionId> {
        let uuid = text(sessionuuid)
            .ok_or_else(|| ApiError::bad_request("Missing API request parameters: sessionuuid"))?
            .trim()
            .to_ascii_lowercase();
        if !is_uuid_shaped(&uuid) {
            return Err(ApiError::bad_request("Bad UUID"));
        }
        let idx = ctx.keys.session_index(&uuid);
        Ok(SessionId { uuid, idx })
    }
}

/// The sealed content of a session row.
#[derive(Debug, Serialize, Deserialize)]
struct StoredSession {
    sessionuuid: String,
    /// The bound user's token (sealed under that user's key), for `SessionGet`.
    #[serde(default)]
    token: Option<String>,
    sessiondata: Value,
}

/// A session read and opened.
pub struct LoadedSession {
    /// The session data as the client sent it.
    pub data: Value,
    /// The bound user, if any.
    pub user: Option<Subject>,
    row: SessionRow,
}

/// The lifetime of a session: requested values capped at the maximum; none requested means
/// the maximum as a fixed end, so that no session lives forever.
pub fn lifetime(app: &AppState, now: i64, sliding: Option<&Value>, finaltime: Option<&Value>) -> ApiResult<Lifetime> {
    let max = app.settings.max_session_retention;
    let mut expiry =
        Expiry::from_request(sliding, finaltime, now, max).map_err(|err| ApiError::bad_request(err.to_string()))?;
    if expiry.is_unbounded() {
        expiry.final_at = Some(now.saturating_add(max));
    }
    Ok(expiry.lifetime(now))
}

/// The first existing user that `data` names, if any.
async fn bound_user(app: &AppState, ctx: &RequestContext, data: &Value) -> ApiResult<Option<LoadedUser>> {
    for kind in BINDING_KINDS {
        let Some(normalised) = data.get(kind.name()).and_then(|value| kind.normalise(value)) else { continue };
        match users::find(app, ctx, &Identity { kind, normalised }).await {
            Ok(user) => return Ok(Some(user)),
            Err(ApiError::NotFound(_)) => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(None)
}

/// The blind index of an identity a session names (under the session key; a session uuid never
/// contains a colon, so the two cannot meet).
fn name_index(keys: &TenantKeys, kind: IndexKind, normalised: &str) -> IndexValue {
    keys.session_index(&format!("names:{}:{normalised}", kind.name()))
}

/// The identities of `kinds` that `data` names, as session name indexes.
fn names_in(keys: &TenantKeys, kinds: &[IndexKind], data: &Value) -> Vec<IndexValue> {
    kinds
        .iter()
        .filter_map(|&kind| data.get(kind.name()).and_then(|value| kind.normalise(value)).map(|n| (kind, n)))
        .map(|(kind, normalised)| name_index(keys, kind, &normalised))
        .collect()
}

/// The session name indexes of a user's identities: its token and its profile's (as stored, not
/// as a caller bound by policies sees it).
pub fn names_of(ctx: &RequestContext, user: &LoadedUser) -> ApiResult<Vec<IndexValue>> {
    names_of_in(&ctx.keys, user)
}

/// [`names_of`] with the keys of the user's tenant (a vault-wide call).
pub fn names_of_in(keys: &TenantKeys, user: &LoadedUser) -> ApiResult<Vec<IndexValue>> {
    let stored = crate::users::record::open(&user.subject.key, keys.tenant(), &user.row.rid, &user.row.record)?;
    let mut names = names_in(keys, &IndexKind::PROFILE, &stored.profile);
    names.push(name_index(keys, IndexKind::Token, &stored.token.to_ascii_lowercase()));
    Ok(names)
}

/// Erases the unbound sessions that name any of `names` (identities of users just erased):
/// stored before their user existed, they could not be bound to it. Never fails the erasure,
/// which has committed; a failure is logged (such sessions still end with their lifetime,
/// at most the maximum session retention).
pub async fn erase_naming(app: &AppState, ctx: &RequestContext, names: &[IndexValue]) {
    erase_naming_in(app, ctx.tenant, names).await;
}

/// [`erase_naming`] in `tenant` (a vault-wide call).
pub async fn erase_naming_in(app: &AppState, tenant: TenantId, names: &[IndexValue]) {
    if let Err(err) = app.db.tenant(tenant).sessions().delete_naming(names).await {
        tracing::error!(error = %err, tenant = %tenant, "cannot erase the unbound sessions naming erased users");
    }
}

/// Creates or replaces a session (data, lifetime and binding); returns its expiry time.
pub async fn upsert(
    app: &AppState,
    ctx: &RequestContext,
    id: &SessionId,
    data: Value,
    lifetime: Lifetime,
) -> ApiResult<i64> {
    check_record_size(&data, app.settings.max_record_size, "sessiondata")?;
    let user = bound_user(app, ctx, &data).await?.map(|user| user.subject);
    let stored = StoredSession {
        sessionuuid: id.uuid.clone(),
        token: user.as_ref().map(|u| u.token.clone()),
        sessiondata: data,
    };
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(&stored).map_err(ApiError::internal)?);
    let sealed = match &user {
        Some(user) => seal_user(&user.key, ctx.tenant, TABLE, &id.idx, &plain),
        None => ctx.keys.seal(TABLE, &id.idx, &plain),
    };
    if let Some(user) = &user {
        ctx.set_subject(user);
    }
    let names = if user.is_none() { names_in(&ctx.keys, &BINDING_KINDS, &stored.sessiondata) } else { Vec::new() };
    let session = NewSession {
        sid_idx: id.idx,
        user_rid: user.as_ref().map(|u| u.rid.clone()),
        data: sealed,
        now: ctx.now,
        lifetime,
        names,
    };
    let event = ctx.change_event(user.as_ref(), None, None, None);
    app.db.tenant(ctx.tenant).sessions().upsert(&session, &event).await?;
    ctx.mark_committed();
    // `lifetime` always carries an end: see [`lifetime`].
    Ok(lifetime.expires_at.unwrap_or(ctx.now))
}

/// Finds and opens a live session; its bound user becomes the request's subject.
pub async fn load(app: &AppState, ctx: &RequestContext, id: &SessionId) -> ApiResult<LoadedSession> {
    let row = app.db.tenant(ctx.tenant).sessions().get(&id.idx, ctx.now).await?.ok_or_else(session_not_found)?;
    let (stored, user) = match (&row.user_rid, &row.wrapped_key) {
        (Some(rid), Some(wrapped)) => {
            let key = ctx.keys.unwrap_data_key(rid, wrapped)?;
            let stored = open(open_user(&key, ctx.tenant, TABLE, &id.idx, &row.data)?)?;
            let token = stored.token.clone().ok_or(CryptoError)?;
            let user_ref = ctx.keys.index(IndexKind::Token, &token);
            (stored, Some(Subject { token, user_ref, rid: rid.clone(), key }))
        }
        (None, _) => (open(ctx.keys.open(TABLE, &id.idx, &row.data)?)?, None),
        // The foreign key cascades: a bound session without its user cannot be read back.
        (Some(_), None) => return Err(CryptoError.into()),
    };
    if stored.sessionuuid != id.uuid {
        crate::integrity::index_mismatch(ctx.tenant, "session");
        return Err(session_not_found());
    }
    if let Some(user) = &user {
        ctx.set_subject(user);
    }
    Ok(LoadedSession { data: stored.sessiondata, user, row })
}

/// Judges a caller bound by policies for the session `id` names before it is read, replaced or
/// deleted: as its user's record when it is bound to one, as the operation alone otherwise
/// (also when there is no such session yet). Administrators pass at once.
pub async fn judge(app: &AppState, ctx: &RequestContext, id: &SessionId) -> ApiResult<()> {
    if ctx.grants.is_none() {
        return Ok(());
    }
    match app.db.tenant(ctx.tenant).sessions().get(&id.idx, ctx.now).await?.and_then(|row| row.user_rid) {
        Some(rid) => crate::users::service::load_by_rid(app, ctx, &rid).await.map(drop),
        None => crate::access::judge::admit_unowned(ctx),
    }
}

/// Restarts the sliding window of a session just read (capped by its fixed end), when the
/// move is worth a write (see [`Lifetime::extension`]).
pub async fn touch(app: &AppState, ctx: &RequestContext, id: &SessionId, session: &LoadedSession) -> ApiResult<()> {
    if let Some(expires_at) = session.row.lifetime.extension(ctx.now) {
        // No audit event of its own: the read's event covers it.
        app.db.tenant(ctx.tenant).sessions().extend(&id.idx, ctx.now, expires_at).await?;
    }
    Ok(())
}

/// Deletes a live session.
pub async fn delete(app: &AppState, ctx: &RequestContext, id: &SessionId) -> ApiResult<()> {
    let session = load(app, ctx, id).await?;
    let event = ctx.change_event(session.user.as_ref(), None, None, None);
    if !app.db.tenant(ctx.tenant).sessions().delete(&id.idx, ctx.now, &event).await? {
        return Err(session_not_found());
    }
    ctx.mark_committed();
    Ok(())
}

/// The live sessions bound to a user, as `(sessionuuid, sessiondata)`.
pub async fn list_for_user(app: &AppState, ctx: &RequestContext, user: &LoadedUser) -> ApiResult<Vec<(String, Value)>> {
    let rows = app.db.tenant(ctx.tenant).sessions().list_for_user(&user.row.rid, ctx.now).await?;
    rows.iter()
        .map(|row| {
            let stored = open(open_user(&user.subject.key, ctx.tenant, TABLE, &row.sid_idx, &row.data)?)?;
            Ok((stored.sessionuuid, stored.sessiondata))
        })
        .collect()
}

/// Decodes opened session plaintext, wiping it afterwards.
fn open(plain: Vec<u8>) -> Result<StoredSession, CryptoError> {
    let plain = zeroize::Zeroizing::new(plain);
    serde_json::from_slice(&plain).map_err(|_| CryptoError)
}

/// 404 for an unknown, deleted or expired session.
pub fn session_not_found() -> ApiError {
    ApiError::not_found("The session record was not found")
}
