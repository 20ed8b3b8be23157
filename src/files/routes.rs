//! HTTP handlers of the file operations.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::download::{self, FileFields};
use super::record::{self, FileName, Tag, Tags};
use super::service::{self, FileRef, Listed, Upload};
use crate::http::body::{Small, small};
use crate::http::lenient::{Text, opt_bool, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, op};
use crate::state::AppState;
use crate::users::{Identity, service as users};

/// The file operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("FileCreate", create),
        op("FileGet", get),
        op("FileListUserFiles", list_user_files),
        op("FileReplaceTags", replace_tags),
        op("FileDelete", delete),
    ]
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    filename: Option<Text>,
    filedata: Option<FileData>,
    mimetype: Option<Text>,
    tags: Option<Small>,
    slidingtime: Option<Small>,
    finaltime: Option<Small>,
}

/// `filedata`: a string, or anything else refused without being read into memory.
#[derive(Debug)]
enum FileData {
    Text(String),
    Other,
}

impl<'de> Deserialize<'de> for FileData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<FileData, D::Error> {
        struct FileDataVisitor;
        impl<'de> serde::de::Visitor<'de> for FileDataVisitor {
            type Value = FileData;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FileData, E> {
                Ok(FileData::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<FileData, E> {
                Ok(FileData::Text(v))
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<FileData, E> {
                Ok(FileData::Other)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<FileData, E> {
                Ok(FileData::Other)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<FileData, E> {
                Ok(FileData::Other)
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<FileData, E> {
                Ok(FileData::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<FileData, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(FileData::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<FileData, A::Error> {
                while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
                Ok(FileData::Other)
            }
        }
        deserializer.deserialize_any(FileDataVisitor)
    }
}

#[derive(Serialize)]
struct CreateReply {
    fileuuid: String,
    tags: Vec<String>,
    token: String,
    duplicate: bool,
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<CreateReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let filename = FileName::parse(req.filename)?;
    let filedata = match req.filedata {
        Some(FileData::Text(filedata)) => filedata,
        Some(_) => return Err(ApiError::bad_request(super::upload::NotBase64.to_string())),
        None => return Err(ApiError::bad_request("Missing API request parameters: filedata")),
    };
    let mimetype = record::parse_mimetype(req.mimetype)?;
    let tags = Tags::parse(req.tags.map(|tags| tags.0))?;
    let lifetime = users::lifetime(&app, ctx.now, small(req.slidingtime.as_ref()), small(req.finaltime.as_ref()))?;
    let (filedata, scanned) = service::scan(&app, filedata).await?;
    let user = users::load(&app, &ctx, &who).await?;
    let upload = Upload { filename, filedata, scanned, mimetype, tags, lifetime };
    let stored = service::create(&app, &ctx, &user, upload).await?;
    Ok(Reply(CreateReply {
        fileuuid: stored.fileuuid,
        tags: stored.tags,
        token: user.subject.token.clone(),
        duplicate: stored.duplicate,
    }))
}

#[derive(Debug, Deserialize)]
struct GetRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    fileuuid: Option<Text>,
    filename: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    raw: Option<bool>,
}

async fn get(State(app): State<AppState>, ctx: RequestContext, Body(req): Body<GetRequest>) -> ApiResult<Response> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let which = match (text(req.fileuuid).filter(|u| !u.trim().is_empty()), text(req.filename)) {
        (Some(uuid), _) => FileRef::Uuid(record::parse_fileuuid(Some(Text(uuid)))?),
        (None, Some(name)) if !name.is_empty() => FileRef::Name(name),
        _ => return Err(ApiError::bad_request("Missing API request parameters: fileuuid or filename")),
    };
    let raw = req.raw.unwrap_or(false);
    let user = users::load(&app, &ctx, &who).await?;
    let found = service::get(&app, &ctx, &user, &which).await?;
    let size = u64::try_from(found.row.size).unwrap_or(0);
    ctx.set_extra(json!({ "fileuuid": found.row.fileuuid, "size": size, "raw": raw }));
    let content = service::content(&app, &ctx, &found).await?;
    if raw {
        return Ok(download::raw(content, &found.meta.filename, &found.meta.mimetype, size));
    }
    let fields = FileFields {
        status: "ok",
        fileuuid: &found.row.fileuuid,
        filename: &found.meta.filename,
        mimetype: &found.meta.mimetype,
        size,
        tags: found.meta.tags.as_slice(),
        token: &user.subject.token,
    };
    download::json(content, &fields).await.map_err(ApiError::internal)
}

#[derive(Debug, Deserialize)]
struct ListRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    tag: Option<Text>,
}

#[derive(Serialize)]
struct ListReply {
    token: String,
    files: Vec<Listed>,
}

async fn list_user_files(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ListRequest>,
) -> ApiResult<Reply<ListReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let tag = Tag::parse(req.tag)?;
    let user = users::load(&app, &ctx, &who).await?;
    let files = service::list(&app, &ctx, &user, tag.as_ref()).await?;
    ctx.set_extra(json!({ "files": files.len() }));
    Ok(Reply(ListReply { token: user.subject.token.clone(), files }))
}

#[derive(Debug, Deserialize)]
struct ReplaceTagsRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    fileuuid: Option<Text>,
    tags: Option<Value>,
}

#[derive(Serialize)]
struct TagsReply {
    fileuuid: String,
    tags: Vec<String>,
    token: String,
}

async fn replace_tags(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<ReplaceTagsRequest>,
) -> ApiResult<Reply<TagsReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let fileuuid = record::parse_fileuuid(req.fileuuid)?;
    let tags = Tags::required(req.tags)?;
    let user = users::load(&app, &ctx, &who).await?;
    let tags = service::replace_tags(&app, &ctx, &user, &fileuuid, tags).await?;
    Ok(Reply(TagsReply { fileuuid, tags, token: user.subject.token.clone() }))
}

#[derive(Debug, Deserialize)]
struct FileRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    fileuuid: Option<Text>,
}

#[derive(Serialize)]
struct TokenReply {
    token: String,
}

async fn delete(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<FileRequest>,
) -> ApiResult<Reply<TokenReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let fileuuid = record::parse_fileuuid(req.fileuuid)?;
    let user = users::load(&app, &ctx, &who).await?;
    service::delete(&app, &ctx, &user, &fileuuid).await?;
    Ok(Reply(TokenReply { token: user.subject.token.clone() }))
}
