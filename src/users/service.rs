//! User operations, independent of HTTP.

use json_patch::Patch;
use serde::Deserialize;
use serde_json::{Value, json};

use super::identity::Identity;
use super::inserts::PendingUser;
use super::record::{self, StoredUser};
use crate::audit::Subject;
use crate::crypto::secrets::random_uuid_string;
use crate::crypto::{IndexKind, Key256};
use crate::expiry::{Expiry, Lifetime};
use crate::http::limits::check_record_size;
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::requests::Resolution;
use crate::store::users::{NewUser, ProfileIndexes, UserChange, UserRow, VersionRow};

/// A user read and opened.
pub struct LoadedUser {
    /// The stored row.
    pub row: UserRow,
    /// The user as subject of audit events (token, key).
    pub subject: Subject,
    /// Current profile (masked to what the caller may see, for a caller bound by policies).
    pub profile: Value,
    /// What of the profile the caller may see, when policies restrict it (versions are masked
    /// the same way).
    pub view: Option<std::sync::Arc<crate::access::policy::View>>,
}

/// Finds and opens a user; records it as the subject of the request's event. A caller bound by
/// policies is judged for it (403, or the profile masked).
pub async fn load(app: &AppState, ctx: &RequestContext, who: &Identity) -> ApiResult<LoadedUser> {
    open_judged(app, ctx, find_opened(app, ctx, who).await?, true).await
}

/// Finds and opens a user without making it the request's subject (bulk calls), judged like
/// [`load`]. Finding a user is an access: a sliding lifetime is extended (see
/// [`Lifetime::extension`]).
pub async fn find(app: &AppState, ctx: &RequestContext, who: &Identity) -> ApiResult<LoadedUser> {
    open_judged(app, ctx, find_opened(app, ctx, who).await?, false).await
}

/// The user `who` names, opened and checked to carry `who` (see [`open_found`]).
async fn find_opened(app: &AppState, ctx: &RequestContext, who: &Identity) -> ApiResult<LoadedUser> {
    let idx = ctx.keys.index(who.kind, &who.normalised);
    let row =
        app.db.tenant(ctx.tenant).users().find(who.kind, &idx, ctx.now).await?.ok_or_else(ApiError::user_not_found)?;
    open_found(ctx, row, who)?.ok_or_else(ApiError::user_not_found)
}

/// Opens a row found through `who`'s blind index, as [`open`]; `None` (logged as an integrity
/// warning) when the opened record does not carry `who`: a tampered index must not redirect
/// a lookup to another user's record.
pub fn open_found(ctx: &RequestContext, row: UserRow, who: &Identity) -> ApiResult<Option<LoadedUser>> {
    let user = open(ctx, row)?;
    if who.is_carried_by(&user.subject.token, &user.profile) {
        Ok(Some(user))
    } else {
        crate::integrity::index_mismatch(ctx.tenant, who.kind.name());
        Ok(None)
    }
}

async fn open_judged(app: &AppState, ctx: &RequestContext, user: LoadedUser, subject: bool) -> ApiResult<LoadedUser> {
    let mut user = extend(app, ctx, user).await?;
    if subject {
        ctx.set_subject(&user.subject);
    }
    crate::access::judge::admit(app, ctx, &mut user).await?;
    Ok(user)
}

/// Finds and opens a user by record id (for records that point at their owner) and records it
/// as the subject of the request's event, judged like [`load`].
pub async fn load_by_rid(app: &AppState, ctx: &RequestContext, rid: &[u8]) -> ApiResult<LoadedUser> {
    let row =
        app.db.tenant(ctx.tenant).users().find_by_rid(rid, ctx.now).await?.ok_or_else(ApiError::user_not_found)?;
    open_judged(app, ctx, open(ctx, row)?, true).await
}

/// A user just found and opened; finding a user is an access, so a sliding lifetime is extended.
async fn extend(app: &AppState, ctx: &RequestContext, mut user: LoadedUser) -> ApiResult<LoadedUser> {
    if let Some(expires_at) = user.row.lifetime.extension(ctx.now) {
        // No audit event of its own: the event of the operation that read the user covers it.
        app.db.tenant(ctx.tenant).users().extend(&user.row.rid, ctx.now, expires_at).await?;
        user.row.lifetime.expires_at = Some(expires_at);
    }
    Ok(user)
}

/// Opens a user row as it is, without extending its lifetime (bulk reads: an operator's
/// export is not the subject's access, and must not keep every sliding record alive).
pub fn open(ctx: &RequestContext, row: UserRow) -> ApiResult<LoadedUser> {
    open_in(&ctx.keys, row)
}

/// [`open`] with the keys of the row's tenant (a vault-wide call opens rows of every tenant).
pub fn open_in(keys: &crate::crypto::keyring::TenantKeys, row: UserRow) -> ApiResult<LoadedUser> {
    let key = keys.unwrap_data_key(&row.rid, &row.wrapped_key)?;
    let stored = record::open(&key, keys.tenant(), &row.rid, &row.record)?;
    let user_ref = keys.index(IndexKind::Token, &stored.token);
    let subject = Subject { token: stored.token, user_ref, rid: row.rid.clone(), key };
    Ok(LoadedUser { row, subject, profile: stored.profile, view: None })
}

/// The lifetime columns for optional `slidingtime` / `finaltime` request values (users and
/// app data alike: both are capped at the maximum user retention).
pub fn lifetime(app: &AppState, now: i64, sliding: Option<&Value>, finaltime: Option<&Value>) -> ApiResult<Lifetime> {
    let expiry = Expiry::from_request(sliding, finaltime, now, app.settings.max_user_retention)
        .map_err(|err| ApiError::bad_request(err.to_string()))?;
    Ok(expiry.lifetime(now))
}

/// `current` with `changes` merged in (RFC 7386: `null` removes a key).
pub fn merged(current: &Value, changes: &Value) -> Value {
    let mut merged = current.clone();
    json_patch::merge(&mut merged, changes);
    merged
}

/// A required RFC 6902 `patch` parameter of at most `max_operations` operations.
pub fn required_patch(patch: Option<&Value>, max_operations: usize) -> ApiResult<json_patch::Patch> {
    let patch = patch.ok_or_else(|| ApiError::bad_request("Missing API request parameters: patch"))?;
    if patch.as_array().is_some_and(|operations| operations.len() > max_operations) {
        return Err(ApiError::bad_request(format!("The patch has more than {max_operations} operations")));
    }
    Patch::deserialize(patch).map_err(|_| ApiError::bad_request("The patch parameter has an incorrect format"))
}

/// `current` with `operations` applied (RFC 6902); 400 naming the failed operation. The
/// profile is measured after every operation, so a patch that would grow it past
/// `max_record_size` (a `copy` of the whole document doubles it) stops there, before the next
/// operation can double it again.
pub fn patched(current: &Value, operations: &json_patch::Patch, max_record_size: usize) -> ApiResult<Value> {
    // On a copy: a failing operation (a `test` included) leaves the stored profile untouched.
    let mut patched = current.clone();
    for (index, operation) in operations.iter().enumerate() {
        json_patch::patch_unsafe(&mut patched, std::slice::from_ref(operation))
            .map_err(|_| ApiError::bad_request(format!("Failed to apply the patch: operation {index} failed")))?;
        check_record_size(&patched, max_record_size, "profile")?;
    }
    Ok(patched)
}

/// Deepest nesting of a stored profile: the deepest a `UserCreate` body can carry. The sealed
/// record wraps the profile once more, and serde_json reads at most [`crate::http::body::MAX_DEPTH`]
/// levels, so a deeper profile (which only a patch can build) could never be read back.
pub const MAX_PROFILE_DEPTH: usize = crate::http::body::MAX_DEPTH - 1;

/// A changed profile must still be a JSON object (a patch may replace the whole document) that
/// the vault can read back once sealed, within the record size, with well-formed identities.
pub fn check_changed(profile: &Value, max_record_size: usize) -> ApiResult<()> {
    if !profile.is_object() {
        return Err(ApiError::bad_request("The profile must remain a JSON object"));
    }
    check_profile(profile, max_record_size)
}

/// A profile the vault will store: nested at most [`MAX_PROFILE_DEPTH`] levels, at most
/// `max_record_size` bytes of JSON, and its identities of the right shape: `email` a string
/// with an `@`, `phone` a string or number with digits, `login` and `custom` strings. An empty
/// string or `null` is no identity. Refusals name the field and the limit, never a value.
pub fn check_profile(profile: &Value, max_record_size: usize) -> ApiResult<()> {
    if crate::http::body::depth(profile) > MAX_PROFILE_DEPTH {
        return Err(ApiError::bad_request("The profile is nested too deeply"));
    }
    check_record_size(profile, max_record_size, "profile")?;
    for kind in IndexKind::PROFILE {
        let Some(value) = profile.get(kind.name()) else { continue };
        let well_formed = match (kind, value) {
            (_, Value::Null) => true,
            (_, Value::String(text)) if text.trim().is_empty() => true,
            (IndexKind::Email, Value::String(text)) => text.contains('@'),
            (IndexKind::Phone, Value::String(text)) => text.chars().any(|c| c.is_ascii_digit()),
            (IndexKind::Phone, Value::Number(_)) => true,
            (_, Value::String(_)) => true,
            _ => false,
        };
        if !well_formed {
            return Err(ApiError::bad_request(format!("The profile {} has an incorrect format", kind.name())));
        }
    }
    Ok(())
}

/// A new user, sealed and indexed, ready to insert.
pub struct Prepared {
    /// The row.
    pub new: NewUser,
    /// The user as audit subject.
    pub subject: Subject,
}

/// Seals and indexes a new user. `profile` must be an object.
pub fn prepare(ctx: &RequestContext, profile: &Value, lifetime: Lifetime) -> Prepared {
    let rid = uuid::Uuid::now_v7().as_bytes().to_vec();
    let token = random_uuid_string();
    let key = Key256::random();
    let token_idx = ctx.keys.index(IndexKind::Token, &token);
    let indexes = record::indexes(&ctx.keys, profile);
    let grams = crate::search::grams::of_profile(&ctx.keys, profile);
    let stored = StoredUser { token, profile: profile.clone() };
    let sealed = record::seal(&key, ctx.tenant, &rid, &stored);
    let wrapped_key = ctx.keys.wrap_data_key(&rid, &key);
    let subject = Subject { token: stored.token, user_ref: token_idx, rid: rid.clone(), key };
    let new = NewUser { rid, token_idx, indexes, wrapped_key, record: sealed, grams, now: ctx.now, lifetime };
    Prepared { new, subject }
}

/// The message for a new user refused because one of `indexes` is held by another user.
pub async fn clash_message(app: &AppState, ctx: &RequestContext, indexes: &ProfileIndexes) -> ApiResult<String> {
    let kind = app.db.tenant(ctx.tenant).users().clash(indexes, None).await?;
    Ok(format!("Duplicate index: {}", kind.map_or("token", IndexKind::name)))
}

/// Creates one user with its audit event (in a group commit with concurrent creations);
/// returns the new user as audit subject (its token, record id and key).
pub async fn create(app: &AppState, ctx: &RequestContext, profile: &Value, lifetime: Lifetime) -> ApiResult<Subject> {
    let Prepared { new, subject } = prepare(ctx, profile, lifetime);
    let event = ctx.change_event(Some(&subject), None, Some(profile), None);
    let indexes = new.indexes;
    // The new user is the request's subject from before its insertion: a request cut short
    // while the insertion's outcome is in doubt (the database went away during its COMMIT)
    // writes its 503 event with the subject, so that a user created after all has that event
    // in its trail (and one never created reads as an erased user's event).
    ctx.set_subject(&subject);
    let inserted = app.user_inserts.insert(PendingUser { tenant: ctx.tenant, user: new, event }).await;
    // A refused creation is certain: its event is sealed under the tenant key without a
    // subject, not under a key thrown away at once.
    if !inserted? {
        ctx.clear_subject();
        return Err(ApiError::conflict(clash_message(app, ctx, &indexes).await?));
    }
    ctx.mark_committed();
    Ok(subject)
}

/// Applies `change` (a function of the current profile) to a user under a row lock, so that
/// concurrent changes apply one after the other and none is lost. With `resolves`, the approval
/// request that asked for the change closes with it.
pub async fn change<F>(
    app: &AppState,
    ctx: &RequestContext,
    who: &Identity,
    resolves: Option<&Resolution>,
    change: F,
) -> ApiResult<()>
where
    F: FnOnce(&Value) -> ApiResult<Value>,
{
    let user = load(app, ctx, who).await?;
    let subject = &user.subject;
    let rid = &user.row.rid;
    let tenant = ctx.tenant;
    let mut indexes = None;
    let result = app
        .db
        .tenant(tenant)
        .users()
        .modify(rid, resolves, |row: &UserRow| {
            // The row may have moved on since `load`: work from the locked one.
            let current = record::open(&subject.key, tenant, rid, &row.record)?;
            let profile = change(&current.profile)?;
            check_changed(&profile, app.settings.max_record_size)?;
            let previous = VersionRow {
                version: row.version,
                created_at: row.updated_at,
                data: record::seal_version(&subject.key, tenant, rid, row.version, &current.profile),
            };
            let event = ctx.change_event(Some(subject), Some(&current.profile), Some(&profile), None);
            let stored = StoredUser { token: current.token, profile };
            let update = UserChange {
                indexes: record::indexes(&ctx.keys, &stored.profile),
                grams: crate::search::grams::of_profile(&ctx.keys, &stored.profile),
                record: record::seal(&subject.key, tenant, rid, &stored),
                previous,
                now: ctx.now,
                keep_versions: app.settings.keep_versions,
            };
            indexes = Some(update.indexes);
            Ok((update, event))
        })
        .await;
    match result {
        Ok(Ok(())) => {
            ctx.mark_committed();
            Ok(())
        }
        Ok(Err(err)) => Err(err),
        Err(StoreError::Conflict) => {
            let taken = match &indexes {
                Some(indexes) => app.db.tenant(tenant).users().clash(indexes, Some(rid)).await?,
                None => None,
            };
            Err(ApiError::conflict(format!("Duplicate index: {}", taken.map_or("token", IndexKind::name))))
        }
        Err(StoreError::NotFound) => Err(ApiError::user_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// Deletes a user: the row with its wrapped data key goes, so every ciphertext sealed under
/// that key (versions, audit details) becomes unreadable, and the user's audit events lose
/// their links to it. With `resolves`, the approval request
/// that asked for the deletion closes with it.
pub async fn delete(
    app: &AppState,
    ctx: &RequestContext,
    who: &Identity,
    resolves: Option<&Resolution>,
) -> ApiResult<()> {
    let user = load(app, ctx, who).await?;
    let session_names = crate::sessions::service::names_of(ctx, &user)?;
    let event = ctx.change_event(Some(&user.subject), None, None, None);
    // The user's rows in connected databases are erased after the commit (queued with it).
    let erasure =
        crate::connectors::erasure::queued(&ctx.keys, &event.uuid, &user.subject.token, &user.profile, ctx.now_ms);
    let (deleted, tokens) = app
        .db
        .tenant(ctx.tenant)
        .users()
        .delete_many(std::slice::from_ref(&user.row.rid), &[event], resolves, &[erasure], ctx.now_ms, &erased_tag(ctx))
        .await?;
    if deleted == 0 {
        return Err(ApiError::user_not_found());
    }
    ctx.mark_committed();
    // Sessions that named it before it existed were stored unbound: they go with it too.
    crate::sessions::service::erase_naming(app, ctx, &session_names).await;
    app.checkpoints.after_erasure();
    // Its access tokens went with it: this replica forgets them now (the others within the
    // change feed's bound).
    if tokens {
        app.caches.forget_users(ctx.tenant, std::slice::from_ref(&user.row.rid));
    }
    // The user's files went with it (cascade); their blobs, if any, go now.
    crate::files::blobs::purge(app).await;
    Ok(())
}

/// The profile of one version (current or superseded).
pub async fn version_profile(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    version: i64,
) -> ApiResult<Value> {
    if version == user.row.version {
        return Ok(user.profile.clone());
    }
    let row = app
        .db
        .tenant(ctx.tenant)
        .users()
        .version(&user.row.rid, version)
        .await?
        .ok_or_else(|| ApiError::not_found("The user version was not found"))?;
    let profile = record::open_version(&user.subject.key, ctx.tenant, &user.row.rid, row.version, &row.data)?;
    Ok(masked(user, profile))
}

/// A profile of `user` as the caller may see it (the view its policies gave when it was loaded).
fn masked(user: &LoadedUser, profile: Value) -> Value {
    match &user.view {
        Some(view) => view.mask(&profile).0,
        None => profile,
    }
}

/// `{version, optime, md5}` for every kept version, oldest first, the current one last.
pub async fn versions(app: &AppState, ctx: &RequestContext, user: &LoadedUser) -> ApiResult<Vec<Value>> {
    let rows = app.db.tenant(ctx.tenant).users().versions(&user.row.rid).await?;
    let mut out = Vec::with_capacity(rows.len() + 1);
    for row in rows {
        let profile = record::open_version(&user.subject.key, ctx.tenant, &user.row.rid, row.version, &row.data)?;
        // A caller shown a masked profile gets the digests of masked profiles: a digest of
        // hidden values would let it test guesses of them.
        let profile = masked(user, profile);
        out.push(json!({"version": row.version, "optime": row.created_at, "md5": record::md5_hex(&profile)}));
    }
    out.push(json!({
        "version": user.row.version,
        "optime": user.row.updated_at,
        "md5": record::md5_hex(&user.profile),
    }));
    Ok(out)
}

/// The tag that marks an erased user's audit events (see [`crate::audit::chain`]).
pub fn erased_tag(ctx: &RequestContext) -> impl Fn(&str) -> [u8; 32] + Sync + use<> {
    let keys = ctx.keys.clone();
    move |uuid| crate::audit::chain::erased_tag(keys.audit_chain_key(), uuid)
}
