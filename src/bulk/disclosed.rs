//! Who saw a subject's record through a bulk listing or a search.
//!
//! A call that returns many users' records (`BulkListUsers`, `BulkListAllUsers`, `UserSearch`,
//! `BulkListGroupUsers`) has an event of its own without a subject, with counts only. So that
//! each subject's trail (`AuditListUserEvents`) and report show it too, every returned user also
//! gets an event of the call's operation, principal and time, sealed under that user's data key
//! and naming the call's event (`extra.listing`). Both are written in one transaction (one
//! statement per batch on PostgreSQL), before the answer leaves.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::audit::Subject;
use crate::audit::event::{self, EventBody, EventHeader};
use crate::crypto::keyring::TenantKeys;
use crate::http::{ApiResult, RequestContext};
use crate::state::AppState;
use crate::store::audit::{AuditRecord, insert_batch};
use crate::tenants::TenantId;
use crate::users::LoadedUser;

/// Commits the call's own event (with what it recorded through `set_extra`) and one event per
/// user in `returned`, atomically; the call's event is then committed (none is written after).
/// With no user returned, nothing is written here.
pub async fn record(app: &AppState, ctx: &RequestContext, returned: &[LoadedUser]) -> ApiResult<()> {
    record_across(app, ctx, returned.iter().map(|user| (ctx.tenant, &ctx.keys, &user.subject))).await
}

/// [`record`] for users of any tenant, each told in its own tenant under its tenant's keys (a
/// vault-wide call).
pub async fn record_across<'a>(
    app: &AppState,
    ctx: &RequestContext,
    returned: impl ExactSizeIterator<Item = (TenantId, &'a Arc<TenantKeys>, &'a Subject)>,
) -> ApiResult<()> {
    if returned.len() == 0 {
        // Nobody to tell: the call's event goes through the group commit like any other.
        return Ok(());
    }
    let own = ctx.change_event(None, None, None, None);
    let extra = json!({ "listing": own.uuid });
    let mut records = subject_events(ctx, &extra, returned);
    // Last: listed newest first, the call's own event heads the events it caused.
    records.push(own);
    insert_batch(&app.db, &records, || true).await?;
    ctx.mark_committed();
    Ok(())
}

/// One event of the call per subject, in the subject's tenant and sealed under that tenant's
/// keys (a vault-wide call reaches users of every tenant), each carrying `extra`.
pub fn subject_events<'a>(
    ctx: &RequestContext,
    extra: &Value,
    subjects: impl Iterator<Item = (TenantId, &'a Arc<TenantKeys>, &'a Subject)>,
) -> Vec<AuditRecord> {
    subjects
        .map(|(tenant, keys, subject)| {
            let header = EventHeader {
                tenant,
                principal_kind: ctx.principal.kind.as_str(),
                principal_id: &ctx.principal.id,
                operation: ctx.operation,
                created_ms: ctx.now_ms,
            };
            let body = EventBody { subject: Some(subject), extra: Some(extra), ..EventBody::default() };
            event::seal(&header, &body, 200, keys)
        })
        .collect()
}
