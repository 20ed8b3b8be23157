//! `UserCreateBulk` and `UserDeleteBulk`.

use std::collections::{HashMap, HashSet};

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::identity::{Identity, IdentityFields};
use super::routes::Assignment;
use super::service::{self, Prepared};
use crate::app::AppState;
use crate::crypto::IndexKind;
use crate::http::{ApiError, ApiResult, Body, Reply, RequestContext, Rule};
use crate::store::audit::AuditRecord;
use crate::store::users as store;

#[derive(Debug, Deserialize)]
pub(super) struct CreateBulkRequest {
    records: Option<Vec<Value>>,
    slidingtime: Option<Value>,
    finaltime: Option<Value>,
}

#[derive(Serialize)]
pub(super) struct CreateBulkReply {
    created: Vec<Value>,
    errors: Vec<Value>,
}

/// One submitted record: prepared for insertion, or refused with a reason.
enum Outcome {
    Ready(Box<Prepared>),
    Refused(String),
}

pub(super) async fn create_bulk(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateBulkRequest>,
) -> ApiResult<Reply<CreateBulkReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let records = req
        .records
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: records"))?;
    let lifetime = service::lifetime(&app, ctx.now, req.slidingtime.as_ref(), req.finaltime.as_ref())?;
    // Sealing thousands of profiles is CPU work: keep it off the async workers.
    let sealing_ctx = ctx.clone();
    let (records, outcomes, events) = tokio::task::spawn_blocking(move || {
        let outcomes = prepare_all(&sealing_ctx, &records, lifetime);
        let events: Vec<AuditRecord> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Ready(p) => Some(sealing_ctx.change_event(Some(&p.subject), None, None, None)),
                Outcome::Refused(_) => None,
            })
            .collect();
        (records, outcomes, events)
    })
    .await
    .map_err(ApiError::internal)?;
    let ready: Vec<&Prepared> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Ready(p) => Some(p.as_ref()),
            Outcome::Refused(_) => None,
        })
        .collect();
    let rows: Vec<_> = ready.iter().map(|p| p.new.clone()).collect();
    let inserted = store::insert_many(&app.db, ctx.tenant, &rows, &events, &[]).await?;

    let mut created = Vec::with_capacity(inserted.len());
    let mut errors = Vec::new();
    for (record, outcome) in records.iter().zip(&outcomes) {
        let profile = record.get("profile").cloned().unwrap_or(Value::Null);
        match outcome {
            Outcome::Ready(p) if inserted.contains(&p.new.rid) => {
                created.push(json!({"token": p.subject.token, "profile": profile}));
            }
            Outcome::Ready(p) => {
                let kind = store::clash(&app.db, ctx.tenant, &p.new.indexes, None).await?;
                let reason = format!("Duplicate {} value", kind.map_or("token", IndexKind::name));
                errors.push(json!({"profile": profile, "reason": reason}));
            }
            Outcome::Refused(reason) => errors.push(json!({"profile": profile, "reason": reason})),
        }
    }
    ctx.set_extra(json!({"records": records.len(), "created": created.len(), "errors": errors.len()}));
    Ok(Reply(CreateBulkReply { created, errors }))
}

/// Validates, seals and indexes each record; refuses duplicates within the batch.
fn prepare_all(ctx: &RequestContext, records: &[Value], lifetime: store::Lifetime) -> Vec<Outcome> {
    let mut seen: HashMap<(usize, [u8; 32]), ()> = HashMap::new();
    records
        .iter()
        .map(|record| {
            let Some(profile) = record.get("profile").filter(|p| p.is_object()) else {
                return Outcome::Refused("The profile parameter has an incorrect format".to_owned());
            };
            let assignment: Assignment = serde_json::from_value(record.clone()).unwrap_or_default();
            if let Err(err) = assignment.check() {
                return Outcome::Refused(err.to_string());
            }
            let prepared = service::prepare(ctx, profile, lifetime);
            for (position, idx) in prepared.new.indexes.iter().enumerate() {
                if let Some(idx) = idx
                    && seen.insert((position, *idx), ()).is_some()
                {
                    return Outcome::Refused(format!("Duplicate {} value", IndexKind::PROFILE[position].name()));
                }
            }
            Outcome::Ready(Box::new(prepared))
        })
        .collect()
}

#[derive(Debug, Deserialize)]
pub(super) struct DeleteBulkRequest {
    users: Option<Vec<IdentityFields>>,
}

#[derive(Serialize)]
pub(super) struct DeleteBulkReply {
    total: usize,
    deleted: u64,
    deleted_count: u64,
}

pub(super) async fn delete_bulk(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<DeleteBulkRequest>,
) -> ApiResult<Reply<DeleteBulkReply>> {
    ctx.require(Rule::TenantAdmin)?;
    let users = req
        .users
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: users"))?;
    let total = users.len();
    let mut rids = Vec::with_capacity(total);
    let mut events = Vec::with_capacity(total);
    let mut seen = HashSet::with_capacity(total);
    for fields in users {
        let who = Identity::parse(fields)?;
        let user = match service::find(&app, &ctx, &who).await {
            Ok(user) => user,
            Err(ApiError::NotFound(_)) => continue,
            Err(err) => return Err(err),
        };
        if seen.insert(user.row.rid.clone()) {
            events.push(ctx.change_event(Some(&user.subject), None, None, None));
            rids.push(user.row.rid);
        }
    }
    let deleted = store::delete_many(&app.db, ctx.tenant, &rids, &events).await?;
    ctx.set_extra(json!({"users": total, "deleted": deleted}));
    Ok(Reply(DeleteBulkReply { total, deleted, deleted_count: deleted }))
}
