//! Gathers a user's report from every domain that holds personal data.

use serde::Serialize;
use serde_json::{Value, json};

use crate::appdata::{AppName, service as appdata};
use crate::audit::event::rfc3339;
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::users::LoadedUser;
use crate::{agreements, files, requests, sessions, shared};

/// Everything the vault holds about one user, opened.
#[derive(Debug, Serialize)]
pub struct Report {
    /// When the report was made (unix seconds).
    pub generated: i64,
    /// The user's token.
    pub token: String,
    /// The current profile.
    pub profile: Value,
    /// The profile's version number.
    pub version: i64,
    /// When the profile last changed (unix seconds).
    pub updated: i64,
    /// Fixed end of the record's life (0: none).
    pub finaltime: i64,
    /// Sliding lifetime in seconds (0: none).
    pub slidingtime: i64,
    /// When the record expires unless accessed (0: never).
    pub expirationtime: i64,
    /// App records: `{appname, appdata, version}`.
    pub appdata: Vec<Value>,
    /// Agreements, each with its history.
    pub agreements: Vec<Value>,
    /// Live sessions bound to the user: `{sessionuuid, sessiondata}`.
    pub sessions: Vec<Value>,
    /// Live shared records: `{creationtime, expirationtime, data}`.
    pub sharedrecords: Vec<Value>,
    /// Approval requests with their changes.
    pub requests: Vec<Value>,
    /// Files, metadata only: `{fileuuid, filename, mimetype, size, tags, doublehash, creationtime}`.
    pub files: Vec<Value>,
    /// What was done with the record: counts per operation.
    pub audit: AuditSummary,
    /// The user's rows in connected databases marked for reports:
    /// `{connectorid, connectorname, tablename, rows, truncated}` (or `error` instead of rows).
    pub connectors: Vec<Value>,
}

/// Per-operation counts of the events concerning the user.
#[derive(Debug, Serialize)]
pub struct AuditSummary {
    /// Events in all.
    pub total: i64,
    /// `{operation, count, first, last}` by operation name; times in RFC 3339.
    pub operations: Vec<Value>,
}

/// Builds the report of a loaded user.
pub async fn build(app: &AppState, ctx: &RequestContext, user: &LoadedUser) -> ApiResult<Report> {
    let mut apps = Vec::new();
    for name in appdata::user_app_names(app, ctx, user).await? {
        let name = AppName::parse(Some(crate::http::lenient::Text(name)))?;
        match appdata::current(app, ctx, user, &name).await {
            Ok((row, data)) => apps.push(json!({"appname": name.as_str(), "appdata": data, "version": row.version})),
            // Expired between listing and reading: not part of the record any more.
            Err(ApiError::NotFound(_)) => {}
            Err(err) => return Err(err),
        }
    }
    let mut consents = Vec::new();
    for row in agreements::service::list(app, ctx, user).await? {
        let brief = row["brief"].as_str().unwrap_or_default();
        consents.push(agreements::service::get(app, ctx, user, brief).await?);
    }
    let sessions = sessions::service::list_for_user(app, ctx, user)
        .await?
        .into_iter()
        .map(|(sessionuuid, sessiondata)| json!({"sessionuuid": sessionuuid, "sessiondata": sessiondata}))
        .collect();
    let counts = app.db.tenant(ctx.tenant).audit().counts_for_user(&user.subject.user_ref).await?;
    let audit = AuditSummary {
        total: counts.iter().map(|c| c.count).sum(),
        operations: counts
            .iter()
            .map(|c| {
                json!({"operation": c.operation, "count": c.count,
                       "first": rfc3339(c.first_ms), "last": rfc3339(c.last_ms)})
            })
            .collect(),
    };
    let lifetime = user.row.lifetime;
    Ok(Report {
        generated: ctx.now,
        token: user.subject.token.clone(),
        profile: user.profile.clone(),
        version: user.row.version,
        updated: user.row.updated_at,
        finaltime: lifetime.final_at.unwrap_or(0),
        slidingtime: lifetime.sliding_secs.unwrap_or(0),
        expirationtime: lifetime.expires_at.unwrap_or(0),
        appdata: apps,
        agreements: consents,
        sessions,
        sharedrecords: shared::service::list_for_user(app, ctx, user).await?,
        requests: requests::service::all_for_user(app, ctx, user).await?,
        files: files::service::list(app, ctx, user, None)
            .await?
            .iter()
            .map(|file| serde_json::to_value(file).map_err(ApiError::internal))
            .collect::<ApiResult<_>>()?,
        audit,
        connectors: crate::connectors::report::for_user(app, ctx, user).await?,
    })
}
