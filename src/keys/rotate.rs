//! `SystemRotateMasterKey`: a new version of a tenant's master key.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::crypto::Key256;
use crate::crypto::keyring::{kek_check, wrap_master, wrap_master_for_main};
use crate::http::lenient::{Int, Text, text};
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext, Rule};
use crate::state::AppState;
use crate::store::key_rotation::{self, NewVersion};
use crate::tenants::TenantId;

#[derive(Debug, Deserialize)]
pub(super) struct RotateRequest {
    tenantid: Option<Int>,
    tenantname: Option<Text>,
}

#[derive(Serialize)]
pub(super) struct RotateReply {
    tenantid: i64,
    version: u32,
}

pub(super) fn not_found() -> ApiError {
    ApiError::not_found("The tenant record was not found")
}

fn conflict() -> ApiError {
    ApiError::conflict("The master key changed meanwhile: retry")
}

/// Adds the next master key version of the caller's tenant (or, for the main tenant's admin,
/// of the tenant named by `tenantid` or `tenantname`): new data seals under it from this commit
/// on, on every replica; the job then seals the older blobs again and retires older versions.
pub(super) async fn rotate(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<RotateRequest>,
) -> ApiResult<Reply<RotateReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let tenant = crate::tenants::target(&app, &ctx, req.tenantid, text(req.tenantname)).await?;
    // Read afresh: a rotation through another replica may not have reached this one yet.
    app.keys.forget(tenant);
    let keys = app.tenant_keys(tenant).await?;
    // The main tenant's too: the recovery wrapping must be under its latest version.
    let main = if tenant.is_main() {
        keys.clone()
    } else {
        app.keys.forget(TenantId::MAIN);
        app.tenant_keys(TenantId::MAIN).await?
    };
    let master = Key256::random();
    let kek = app.keys.kek();
    let stored = key_rotation::add_version(&app.db, tenant, ctx.tenant, &kek_check(&kek), ctx.now_ms, |version| {
        let details = json!({"tenantid": tenant, "version": version});
        NewVersion {
            wrapped: wrap_master(&kek, tenant, version, &master),
            // The recovery path: the main tenant's later versions under its root (which the
            // recovery key opens), every other tenant's under the main tenant's keys.
            recovery_wrapped: if tenant.is_main() {
                keys.wrap_own_version_for_recovery(version, &master)
            } else {
                wrap_master_for_main(&main, tenant, version, &master)
            },
            main_version: main.active_version(),
            event: ctx.change_event(None, None, None, Some(&details)),
        }
    })
    .await;
    let version = ctx.committed(stored, not_found, conflict)?;
    app.keys.forget(tenant);
    tracing::info!(
        tenant = tenant.get(),
        version,
        "master key rotated: older blobs are sealed again in the background"
    );
    Ok(Reply(RotateReply { tenantid: tenant.get(), version }))
}
