//! Agreement operations, independent of HTTP.

use serde_json::{Value, json};

use super::record::{self, ChangedBy, Entry, State};
use crate::audit::Subject;
use crate::http::{ApiError, ApiResult, RequestContext};
use crate::state::AppState;
use crate::store::agreements::{AgreementRow, AgreementWrite, Changing, Outcome};
use crate::store::requests::Resolution;
use crate::users::LoadedUser;

/// Status of an agreement that was canceled or revoked.
pub const CANCELED: &str = "canceled";
/// Status of a given agreement.
pub const ACTIVE: &str = "active";

fn basis_not_found() -> ApiError {
    ApiError::not_found("The legal basis record was not found")
}

fn agreement_not_found() -> ApiError {
    ApiError::not_found("The agreement record was not found")
}

/// The audit details naming the legal basis (a catalogue name, not personal data).
fn brief_extra(brief: &str) -> Value {
    json!({ "brief": brief })
}

/// What `AgreementAccept` asks for; absent values keep the current ones.
#[derive(Debug, Clone, Default)]
pub struct Acceptance {
    /// `pending`, `active` or `expired`.
    pub status: String,
    /// How the agreement was given.
    pub agreementmethod: Option<String>,
    /// The client's reference.
    pub referencecode: Option<String>,
    /// Start (unix seconds).
    pub starttime: Option<i64>,
    /// End (unix seconds), already capped.
    pub finaltime: Option<i64>,
    /// Who made the change, as the client names it.
    pub lastmodifiedby: Option<String>,
}

/// The principal making the change, for the history.
fn changed_by(ctx: &RequestContext) -> ChangedBy {
    ChangedBy { id: ctx.principal.id.clone(), kind: ctx.principal.kind.as_str().to_owned() }
}

/// The state as the audit event's before/after shows it.
fn audited(status: &str, state: &State) -> Value {
    let mut value = serde_json::to_value(state).unwrap_or_default();
    value["status"] = json!(status);
    value
}

/// Seals a new state and the history entry (number `version + 1`) recording it.
fn write(
    ctx: &RequestContext,
    subject: &Subject,
    row: Option<&AgreementRow>,
    basis: i64,
    status: &str,
    state: State,
) -> AgreementWrite {
    let version = row.map_or(0, |r| r.version) + 1;
    let (key, rid, tenant) = (&subject.key, &subject.rid, ctx.tenant);
    let entry = Entry { time: ctx.now, status: status.to_owned(), state: state.clone(), principal: changed_by(ctx) };
    AgreementWrite {
        status: status.to_owned(),
        data: record::seal_state(key, tenant, rid, basis, &state),
        entry: record::seal_entry(key, tenant, rid, basis, version, &entry),
    }
}

/// Maps a change's outcome, marking the event committed on success.
fn finish(ctx: &RequestContext, outcome: Result<Outcome, ApiError>) -> ApiResult<()> {
    match outcome? {
        Outcome::Done => {
            ctx.mark_committed();
            Ok(())
        }
        Outcome::NoBasis => Err(basis_not_found()),
        Outcome::NoAgreement => Err(agreement_not_found()),
    }
}

/// Gives or changes a user's agreement to a legal basis, appending to its history.
pub async fn accept(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    brief: &str,
    asked: Acceptance,
) -> ApiResult<()> {
    let subject = &user.subject;
    let outcome = app
        .db
        .tenant(ctx.tenant)
        .agreements()
        .change(&subject.rid, brief, ctx.now, Changing::OrGive, |basis, row| {
            let (before, mut state) = match row {
                Some(row) => {
                    let state = record::open_state(&subject.key, ctx.tenant, &subject.rid, basis, &row.data)?;
                    (Some(audited(&row.status, &state)), state)
                }
                None => (None, State { starttime: ctx.now, ..State::default() }),
            };
            state.agreementmethod = asked.agreementmethod.unwrap_or(state.agreementmethod);
            state.referencecode = asked.referencecode.unwrap_or(state.referencecode);
            state.starttime = asked.starttime.unwrap_or(state.starttime);
            state.finaltime = asked.finaltime.unwrap_or(state.finaltime);
            state.lastmodifiedby = asked.lastmodifiedby.unwrap_or_else(|| ctx.principal.kind.as_str().to_owned());
            let after = audited(&asked.status, &state);
            let event = ctx.change_event(Some(subject), before.as_ref(), Some(&after), Some(&brief_extra(brief)));
            Ok::<_, ApiError>((write(ctx, subject, row, basis, &asked.status, state), event))
        })
        .await?;
    finish(ctx, outcome)
}

/// Cancels a user's agreement, appending to its history; 404 when there is none. With
/// `resolves`, the approval request that asked for the cancellation closes with it.
pub async fn cancel(
    app: &AppState,
    ctx: &RequestContext,
    user: &LoadedUser,
    brief: &str,
    resolves: Option<&Resolution>,
) -> ApiResult<()> {
    let subject = &user.subject;
    let outcome = app
        .db
        .tenant(ctx.tenant)
        .agreements()
        .change(&subject.rid, brief, ctx.now, Changing::Existing(resolves), |basis, row| {
            let row = row.ok_or_else(agreement_not_found)?;
            let mut state = record::open_state(&subject.key, ctx.tenant, &subject.rid, basis, &row.data)?;
            let before = audited(&row.status, &state);
            state.lastmodifiedby = ctx.principal.kind.as_str().to_owned();
            let after = audited(CANCELED, &state);
            let event = ctx.change_event(Some(subject), Some(&before), Some(&after), Some(&brief_extra(brief)));
            Ok::<_, ApiError>((write(ctx, subject, Some(row), basis, CANCELED, state), event))
        })
        .await?;
    finish(ctx, outcome)
}

/// Cancels every active agreement to a legal basis in the tenant; returns how many.
pub async fn revoke_all(app: &AppState, ctx: &RequestContext, brief: &str) -> ApiResult<i64> {
    let by = changed_by(ctx);
    let outcome = app
        .db
        .tenant(ctx.tenant)
        .agreements()
        .revoke_all(
            brief,
            ctx.now,
            |rid, wrapped, row| {
                let key = ctx.keys.unwrap_data_key(rid, wrapped)?;
                let mut state = record::open_state(&key, ctx.tenant, rid, row.basis_id, &row.data)?;
                state.lastmodifiedby = by.kind.clone();
                let version = row.version + 1;
                let entry =
                    Entry { time: ctx.now, status: CANCELED.to_owned(), state: state.clone(), principal: by.clone() };
                Ok::<_, ApiError>(AgreementWrite {
                    status: CANCELED.to_owned(),
                    data: record::seal_state(&key, ctx.tenant, rid, row.basis_id, &state),
                    entry: record::seal_entry(&key, ctx.tenant, rid, row.basis_id, version, &entry),
                })
            },
            |revoked| ctx.change_event(None, None, None, Some(&json!({ "brief": brief, "revoked": revoked }))),
        )
        .await??;
    let revoked = outcome.ok_or_else(basis_not_found)?;
    ctx.mark_committed();
    Ok(revoked)
}

/// The status clients see: an active agreement past its final time reads as `expired`.
fn effective_status(ctx: &RequestContext, status: &str, state: &State) -> String {
    if status == ACTIVE && state.finaltime > 0 && state.finaltime <= ctx.now {
        "expired".to_owned()
    } else {
        status.to_owned()
    }
}

fn summary(ctx: &RequestContext, row: &AgreementRow, state: &State) -> Value {
    json!({
        "brief": row.brief,
        "status": effective_status(ctx, &row.status, state),
        "agreementmethod": state.agreementmethod,
        "referencecode": state.referencecode,
        "starttime": state.starttime,
        "finaltime": state.finaltime,
        "lastmodifiedby": state.lastmodifiedby,
    })
}

/// One agreement with its history, oldest entry first; 404 when the user has none for the basis.
pub async fn get(app: &AppState, ctx: &RequestContext, user: &LoadedUser, brief: &str) -> ApiResult<Value> {
    let (key, rid) = (&user.subject.key, &user.subject.rid);
    let (row, history) =
        app.db.tenant(ctx.tenant).agreements().get(rid, brief).await?.ok_or_else(agreement_not_found)?;
    let state = record::open_state(key, ctx.tenant, rid, row.basis_id, &row.data)?;
    let mut agreement = summary(ctx, &row, &state);
    let mut entries = Vec::with_capacity(history.len());
    for old in history {
        let entry = record::open_entry(key, ctx.tenant, rid, row.basis_id, old.version, &old.data)?;
        entries.push(json!({
            "version": old.version,
            "time": entry.time,
            "status": entry.status,
            "agreementmethod": entry.state.agreementmethod,
            "referencecode": entry.state.referencecode,
            "starttime": entry.state.starttime,
            "finaltime": entry.state.finaltime,
            "lastmodifiedby": entry.state.lastmodifiedby,
            "principal": {"id": entry.principal.id, "kind": entry.principal.kind},
        }));
    }
    agreement["creationtime"] = json!(row.created_at);
    agreement["history"] = Value::Array(entries);
    Ok(agreement)
}

/// Every agreement of a user, by brief.
pub async fn list(app: &AppState, ctx: &RequestContext, user: &LoadedUser) -> ApiResult<Vec<Value>> {
    let (key, rid) = (&user.subject.key, &user.subject.rid);
    let rows = app.db.tenant(ctx.tenant).agreements().list(rid).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let state = record::open_state(key, ctx.tenant, rid, row.basis_id, &row.data)?;
        out.push(summary(ctx, &row, &state));
    }
    Ok(out)
}
