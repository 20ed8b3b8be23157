//! File operations, independent of HTTP.

use std::collections::HashMap;
use std::io;

use serde::Serialize;
use serde_json::{Value, json};

use super::blobs;
use super::cipher::FileKey;
use super::reader::Content;
use super::record::{self, FileName, Meta, Tag, Tags};
use super::upload::{self, NotBase64, Scanned};
use crate::crypto::secrets::random_uuid_string;
use crate::expiry::Lifetime;
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::store::StoreError;
use crate::store::bulk::Cursor;
use crate::store::files::{FileRow, Lookup, NewFile};
use crate::tenants::TenantId;
use crate::users::LoadedUser;

/// 404 for a file that does not exist, expired, or belongs to someone else.
pub fn file_not_found() -> ApiError {
    ApiError::not_found("The file record was not found")
}

fn not_base64() -> ApiError {
    ApiError::bad_request(NotBase64.to_string())
}

/// An upload whose `filedata` was validated and measured by [`scan`].
pub struct Upload {
    /// The filename.
    pub filename: FileName,
    /// The request's base64 string (the only copy of the content held).
    pub filedata: String,
    /// What the first reading learnt.
    pub scanned: Scanned,
    /// The MIME type sent, if any.
    pub mimetype: Option<String>,
    /// The normalised tags.
    pub tags: Tags,
    /// The lifetime asked for.
    pub lifetime: Lifetime,
}

/// Validates `filedata` as standard base64 within the size limit; measures and hashes it off
/// the async workers. Returns the string (moved, not copied) with what was learnt.
pub async fn scan(app: &AppState, filedata: String) -> ApiResult<(String, Scanned)> {
    let declared = upload::decoded_len(&filedata).ok_or_else(not_base64)?;
    let limit = app.settings.max_file_size;
    if declared > limit {
        return Err(ApiError::too_large(format!("The file is larger than the limit of {limit} bytes")));
    }
    let (filedata, scanned) = tokio::task::spawn_blocking(move || {
        let scanned = upload::scan(&filedata);
        (filedata, scanned)
    })
    .await
    .map_err(ApiError::internal)?;
    Ok((filedata, scanned.map_err(|_| not_base64())?))
}

/// What `FileCreate` answers.
#[derive(Debug, Serialize)]
pub struct Stored {
    /// The file's id (the existing one for a duplicate).
    pub fileuuid: String,
    /// The stored tags.
    pub tags: Vec<String>,
    /// True when the user already had a file with this content: nothing new was stored.
    pub duplicate: bool,
}

fn file_extra(row_uuid: &str, size: i64, more: Value) -> Value {
    let mut extra = json!({ "fileuuid": row_uuid, "size": size });
    if let (Some(extra), Value::Object(more)) = (extra.as_object_mut(), more) {
        extra.extend(more);
    }
    extra
}

/// Stores a file for `user`, or answers the user's existing file with the same content.
pub async fn create(app: &AppState, ctx: &RequestContext, user: &LoadedUser, upload: Upload) -> ApiResult<Stored> {
    let (tenant, subject) = (ctx.tenant, &user.subject);
    let content_idx = record::content_index(&subject.key, &upload.scanned.sha256);
    if let Some(existing) = duplicate(app, ctx, user, &content_idx).await? {
        return Ok(existing);
    }
    let fileuuid = random_uuid_string();
    let size = upload.scanned.size;
    let mimetype = match upload.mimetype {
        Some(mimetype) => mimetype,
        None => upload::detect_mimetype(upload.filename.as_str(), upload.scanned.sniffed),
    };
    let meta = Meta { filename: upload.filename.as_str().to_owned(), mimetype, tags: upload.tags };
    let key = FileKey::random();
    let sealed_meta = record::seal_meta(&subject.key, tenant, &fileuuid, &meta);
    let sealed_key = key.seal(&subject.key, tenant, &fileuuid);
    let name_idx = record::name_index(&subject.key, &meta.filename);
    let tags = meta.tags.indexes(&ctx.keys);
    let stored_size = i64::try_from(size).map_err(|_| ApiError::too_large("The file is too large"))?;
    let extra = file_extra(&fileuuid, stored_size, json!({ "mimetype": meta.mimetype, "duplicate": false }));
    let event = ctx.change_event(Some(subject), None, None, Some(&extra));
    let new = NewFile {
        fileuuid: &fileuuid,
        rid: &subject.rid,
        name_idx: &name_idx,
        content_idx: &content_idx,
        meta: &sealed_meta,
        file_key: &sealed_key,
        size: stored_size,
        in_dir: app.settings.file_dir.is_some(),
        tags: &tags,
        now: ctx.now,
        lifetime: upload.lifetime,
    };
    let mut sealer = key.sealer(tenant, &fileuuid, size);
    let filedata = upload.filedata;
    let inserted = match app.settings.file_dir.clone() {
        None => {
            let chunks = upload::chunks(&filedata).map(|chunk| {
                let mut chunk = chunk.map_err(|_| not_base64())?;
                sealer.seal(&mut chunk)?;
                Ok::<_, ApiError>(chunk)
            });
            app.db.tenant(tenant).files().insert(&new, chunks, &event).await
        }
        Some(dir) => {
            let uuid = fileuuid.clone();
            tokio::task::spawn_blocking(move || {
                let chunks = upload::chunks(&filedata).map(|chunk| {
                    let mut chunk = chunk.map_err(io::Error::other)?;
                    sealer.seal(&mut chunk).map_err(io::Error::other)?;
                    Ok(chunk)
                });
                blobs::write(&dir, tenant, &uuid, chunks)
            })
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
            let inserted =
                app.db.tenant(tenant).files().insert(&new, std::iter::empty::<ApiResult<Vec<u8>>>(), &event).await;
            if !matches!(inserted, Ok(Ok(true))) {
                discard_blob(app, tenant, &fileuuid).await;
            }
            inserted
        }
    };
    match inserted {
        Ok(Ok(true)) => {
            ctx.mark_committed();
            Ok(Stored { fileuuid, tags: meta.tags.as_slice().to_vec(), duplicate: false })
        }
        // The same content arrived concurrently and won: answer it as a duplicate.
        Ok(Ok(false)) => {
            duplicate(app, ctx, user, &content_idx).await?.ok_or_else(|| ApiError::conflict("Duplicate file"))
        }
        Ok(Err(err)) => Err(err),
        Err(StoreError::NotFound) => Err(ApiError::user_not_found()),
        Err(err) => Err(err.into()),
    }
}

/// Removes a blob whose row was never committed.
async fn discard_blob(app: &AppState, tenant: TenantId, fileuuid: &str) {
    let Some(dir) = app.settings.file_dir.as_deref() else {
        return;
    };
    if let Err(err) = blobs::remove(dir, tenant, fileuuid).await {
        // Unreadable anyway: its key was sealed only in the row that was not committed.
        tracing::error!(error = %err, "cannot remove the blob of a file that was not stored");
    }
}

/// The user's live file with this content, as `FileCreate` answers it (a read: no change).
async fn duplicate(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    content_idx: &[u8; 32],
) -> ApiResult<Option<Stored>> {
    let Some(row) = find(app, ctx, user, Lookup::Content(content_idx)).await? else {
        return Ok(None);
    };
    let meta = record::open_meta(&user.subject.key, ctx.tenant, &row.fileuuid, &row.meta)?;
    ctx.set_extra(file_extra(&row.fileuuid, row.size, json!({ "duplicate": true })));
    Ok(Some(Stored { fileuuid: row.fileuuid, tags: meta.tags.as_slice().to_vec(), duplicate: true }))
}

/// A live file of `user`. Finding it is an access: a sliding lifetime is extended.
async fn find(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    lookup: Lookup<'_>,
) -> ApiResult<Option<FileRow>> {
    let Some(mut row) = app.db.tenant(ctx.tenant).files().find(&user.subject.rid, lookup, ctx.now).await? else {
        return Ok(None);
    };
    if let Some(expires_at) = row.lifetime.extension(ctx.now) {
        // No audit event of its own: the event of the operation that read the file covers it.
        app.db.tenant(ctx.tenant).files().extend(row.id, ctx.now, expires_at).await?;
        row.lifetime.expires_at = Some(expires_at);
    }
    Ok(Some(row))
}

/// Which file `FileGet` asks for.
#[derive(Debug, Clone)]
pub enum FileRef {
    /// By id.
    Uuid(String),
    /// The newest file with this exact name.
    Name(String),
}

/// A file found and opened: its row, metadata and key (the content is read separately).
pub struct Found {
    /// The row.
    pub row: FileRow,
    /// The opened metadata.
    pub meta: Meta,
    /// The opened file key.
    pub key: FileKey,
}

/// Finds and opens one of `user`'s files; 404 when there is none.
pub async fn get(app: &AppState, ctx: &RequestContext, user: &LoadedUser, which: &FileRef) -> ApiResult<Found> {
    let owner = &user.subject.key;
    let name_idx;
    let lookup = match which {
        FileRef::Uuid(uuid) => Lookup::Uuid(uuid),
        FileRef::Name(name) => {
            name_idx = record::name_index(owner, name);
            Lookup::Name(&name_idx)
        }
    };
    let row = find(app, ctx, user, lookup).await?.ok_or_else(file_not_found)?;
    let meta = record::open_meta(owner, ctx.tenant, &row.fileuuid, &row.meta)?;
    if matches!(which, FileRef::Name(name) if *name != meta.filename) {
        crate::integrity::index_mismatch(ctx.tenant, "file name");
        return Err(file_not_found());
    }
    let key = FileKey::open(owner, ctx.tenant, &row.fileuuid, &row.file_key)?;
    Ok(Found { row, meta, key })
}

/// A reader of a found file's content.
pub async fn content(app: &AppState, ctx: &RequestContext, found: &Found) -> ApiResult<Content> {
    Content::open(&app.db, app.settings.file_dir.as_ref(), ctx.tenant, &found.row, &found.key)
        .await
        .map_err(ApiError::internal)
}

/// One row of `FileListUserFiles`: metadata only.
#[derive(Debug, Serialize)]
pub struct Listed {
    /// The file's id.
    pub fileuuid: String,
    /// The filename.
    pub filename: String,
    /// The MIME type.
    pub mimetype: String,
    /// Size in bytes.
    pub size: i64,
    /// The tags.
    pub tags: Vec<String>,
    /// The owner-keyed content digest (64 hex): equal for equal content of the same user only.
    pub doublehash: String,
    /// Creation time (unix seconds).
    pub creationtime: i64,
}

/// `user`'s live files in creation order, optionally only those tagged `tag`.
pub async fn list(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    tag: Option<&Tag>,
) -> ApiResult<Vec<Listed>> {
    let tag_idx = tag.map(|tag| tag.index(&ctx.keys));
    let rows = app.db.tenant(ctx.tenant).files().list(&user.subject.rid, tag_idx.as_ref(), ctx.now).await?;
    let mut listed = Vec::with_capacity(rows.len());
    for row in rows {
        let meta = record::open_meta(&user.subject.key, ctx.tenant, &row.fileuuid, &row.meta)?;
        if tag.is_some_and(|tag| !tag.is_in(&meta.tags)) {
            crate::integrity::index_mismatch(ctx.tenant, "file tag");
            continue;
        }
        listed.push(Listed {
            doublehash: hex::encode(&row.content_idx),
            fileuuid: row.fileuuid,
            filename: meta.filename,
            mimetype: meta.mimetype,
            size: row.size,
            tags: meta.tags.as_slice().to_vec(),
            creationtime: row.created_at,
        });
    }
    Ok(listed)
}

/// Replaces the tag set of one of `user`'s files; returns the stored set.
pub async fn replace_tags(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    fileuuid: &str,
    tags: Tags,
) -> ApiResult<Vec<String>> {
    let owner = &user.subject.key;
    let row = find(app, ctx, user, Lookup::Uuid(fileuuid)).await?.ok_or_else(file_not_found)?;
    let mut meta = record::open_meta(owner, ctx.tenant, &row.fileuuid, &row.meta)?;
    meta.tags = tags;
    let sealed = record::seal_meta(owner, ctx.tenant, &row.fileuuid, &meta);
    let extra = file_extra(&row.fileuuid, row.size, json!({ "tags": meta.tags.as_slice().len() }));
    let event = ctx.change_event(Some(&user.subject), None, None, Some(&extra));
    let indexes = meta.tags.indexes(&ctx.keys);
    if !app.db.tenant(ctx.tenant).files().replace_tags(row.id, &sealed, &indexes, ctx.now, &event).await? {
        return Err(file_not_found());
    }
    ctx.mark_committed();
    Ok(meta.tags.as_slice().to_vec())
}

/// Deletes one of `user`'s files with its content.
pub async fn delete(app: &AppState, ctx: &RequestContext, user: &LoadedUser, fileuuid: &str) -> ApiResult<()> {
    let event = ctx.change_event(Some(&user.subject), None, None, Some(&json!({ "fileuuid": fileuuid })));
    if !app.db.tenant(ctx.tenant).files().delete(&user.subject.rid, fileuuid, ctx.now, &event).await? {
        return Err(file_not_found());
    }
    ctx.mark_committed();
    blobs::purge(app).await;
    Ok(())
}

/// One row of a tenant-wide listing by tag.
#[derive(Debug, Serialize)]
pub struct TaggedFile {
    /// The owner's user token.
    pub token: String,
    /// The file's id.
    pub fileuuid: String,
    /// The filename.
    pub filename: String,
    /// The MIME type.
    pub mimetype: String,
    /// Size in bytes.
    pub size: i64,
    /// The tags.
    pub tags: Vec<String>,
    /// Creation time (unix seconds).
    pub creationtime: i64,
}

/// A page of a tenant-wide listing by tag.
#[derive(Debug, Serialize)]
pub struct TaggedPage {
    /// Live files of live users carrying the tag.
    pub total: i64,
    /// This page, in creation order.
    pub rows: Vec<TaggedFile>,
}

/// The tenant's live files carrying `tag`, across users, `limit` from `cursor` in creation
/// order (for `BulkListFilesByTag`, whose handler checks the bulk unlock, keeps the paging
/// bookmarks and audits the call), with the id of the last file listed.
pub async fn list_tenant_files_by_tag(
    app: &AppState,
    ctx: &RequestContext,
    tag: &Tag,
    cursor: &Cursor,
    limit: i64,
) -> ApiResult<(TaggedPage, Option<i64>)> {
    let (total, rows) = app.db.tenant(ctx.tenant).files().by_tag(&tag.index(&ctx.keys), ctx.now, cursor, limit).await?;
    let last = rows.last().map(|owned| owned.file.id);
    let mut owners: HashMap<Vec<u8>, (crate::crypto::DataKey, String)> = HashMap::new();
    let mut out = Vec::with_capacity(rows.len());
    for owned in rows {
        let file = owned.file;
        if !owners.contains_key(&file.rid) {
            let key = ctx.keys.unwrap_data_key(&file.rid, &owned.wrapped_key)?;
            let token = crate::users::record::open(&key, ctx.tenant, &file.rid, &owned.record)?.token;
            owners.insert(file.rid.clone(), (key, token));
        }
        let Some((key, token)) = owners.get(&file.rid) else {
            continue;
        };
        let meta = record::open_meta(key, ctx.tenant, &file.fileuuid, &file.meta)?;
        if !tag.is_in(&meta.tags) {
            crate::integrity::index_mismatch(ctx.tenant, "file tag");
            continue;
        }
        out.push(TaggedFile {
            token: token.clone(),
            fileuuid: file.fileuuid,
            filename: meta.filename,
            mimetype: meta.mimetype,
            size: file.size,
            tags: meta.tags.as_slice().to_vec(),
            creationtime: file.created_at,
        });
    }
    Ok((TaggedPage { total, rows: out }, last))
}
