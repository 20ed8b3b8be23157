//! `SystemGetMasterKeyStatus`: a tenant's master key versions and its rotation job.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::http::lenient::{Int, Text, text};
use crate::http::{ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;
use crate::store::key_rotation;

#[derive(Debug, Deserialize)]
pub(super) struct StatusRequest {
    tenantid: Option<Int>,
    tenantname: Option<Text>,
}

#[derive(Serialize)]
pub(super) struct StatusReply {
    tenantid: i64,
    /// The version new data seals under.
    active: u32,
    /// Every stored version, oldest first.
    versions: Vec<Value>,
    /// The last rotation's job, if the tenant was ever rotated.
    job: Option<Value>,
}

/// The versions of the caller's tenant's master key (or, for the main tenant's admin, of the
/// tenant named), and how far the last rotation's job got.
pub(super) async fn status(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<StatusRequest>,
) -> ApiResult<Reply<StatusReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let tenant = crate::tenants::target(&app, &ctx, req.tenantid, text(req.tenantname)).await?;
    ctx.set_extra(json!({"tenantid": tenant}));
    // The job first: its end and the versions it retires are one transaction, so a job read as
    // done is never shown beside versions read before it ended.
    let job = key_rotation::job(&app.db, tenant).await?;
    let stored = key_rotation::versions(&app.db, tenant).await?;
    let active = stored
        .iter()
        .filter(|v| v.retired_at.is_none())
        .map(|v| v.version)
        .max()
        .ok_or_else(super::rotate::not_found)?;
    let versions = stored
        .iter()
        .map(|v| {
            let state = match v.retired_at {
                Some(_) => "retired",
                None if v.version == active => "active",
                None => "retiring",
            };
            json!({"version": v.version, "state": state, "created": v.created_at, "retired": v.retired_at})
        })
        .collect();
    let job = job.map(|job| {
        json!({
            "version": job.version,
            "stage": job.stage,
            "resealed": job.resealed,
            "passes": job.passes,
            "rotated": job.rotated_ms.div_euclid(1000),
            "finished": job.finished_ms.map(|ms| ms.div_euclid(1000)),
        })
    });
    Ok(Reply(StatusReply { tenantid: tenant.get(), active, versions, job }))
}
