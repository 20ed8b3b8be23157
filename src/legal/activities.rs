//! `ProcessingActivity*`: create, update, delete, link to and unlink from legal bases, list.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::name;
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, ok, op};
use crate::store::Db;
use crate::store::legal::{Activity, LinkOutcome};

/// The processing activity operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("ProcessingActivityCreate", create),
        op("ProcessingActivityUpdate", update),
        op("ProcessingActivityDelete", delete),
        op("ProcessingActivityLinkLegalBasis", link),
        op("ProcessingActivityUnlinkLegalBasis", unlink),
        op("ProcessingActivityListActivities", list),
    ]
}

fn not_found() -> ApiError {
    ApiError::not_found("The processing activity record was not found")
}

fn duplicate() -> ApiError {
    ApiError::conflict("Duplicate processing activity")
}

/// A processing activity as recorded in audit events (the list adds `legalbases`).
fn view(activity: &Activity) -> Value {
    json!({
        "activity": activity.activity,
        "title": activity.title,
        "script": activity.script,
        "fulldesc": activity.fulldesc,
        "applicableto": activity.applicableto,
        "creationtime": activity.created_at,
    })
}

/// The descriptive fields; `None` leaves a field as it is.
#[derive(Debug, Deserialize)]
struct Fields {
    title: Option<Text>,
    script: Option<Text>,
    fulldesc: Option<Text>,
    applicableto: Option<Text>,
}

impl Fields {
    fn apply(self, activity: &mut Activity) {
        let set = |field: &mut String, value: Option<Text>| {
            if let Some(value) = text(value) {
                *field = value;
            }
        };
        set(&mut activity.title, self.title);
        set(&mut activity.script, self.script);
        set(&mut activity.fulldesc, self.fulldesc);
        set(&mut activity.applicableto, self.applicableto);
    }
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    activity: Option<Text>,
    title: Option<Text>,
    script: Option<Text>,
    fulldesc: Option<Text>,
    applicableto: Option<Text>,
}

async fn create(
    State(db): State<Db>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let name = name::required("activity", req.activity)?;
    let mut activity = Activity {
        activity: name,
        title: String::new(),
        script: String::new(),
        fulldesc: String::new(),
        applicableto: String::new(),
        created_at: ctx.now,
    };
    Fields { title: req.title, script: req.script, fulldesc: req.fulldesc, applicableto: req.applicableto }
        .apply(&mut activity);
    let event = ctx.change_event(None, None, Some(&view(&activity)), None);
    let stored = db.tenant(ctx.tenant).legal().insert_activity(&activity, &event).await;
    ctx.committed(stored, not_found, duplicate).map(|()| ok())
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    activity: Option<Text>,
    newactivity: Option<Text>,
    title: Option<Text>,
    script: Option<Text>,
    fulldesc: Option<Text>,
    applicableto: Option<Text>,
}

async fn update(
    State(db): State<Db>,
    ctx: RequestContext,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let name = name::required("activity", req.activity)?;
    let rename = name::optional("newactivity", req.newactivity)?;
    let fields =
        Fields { title: req.title, script: req.script, fulldesc: req.fulldesc, applicableto: req.applicableto };
    let result = db
        .tenant(ctx.tenant)
        .legal()
        .update_activity(&name, ctx.now, |current| {
            let mut next = current.clone();
            fields.apply(&mut next);
            if let Some(rename) = rename {
                next.activity = rename;
            }
            let event = ctx.change_event(None, Some(&view(current)), Some(&view(&next)), None);
            Ok::<_, ApiError>((next, event))
        })
        .await;
    // The closure's own error ends the call; the store's outcome is answered as for any write.
    let stored = match result {
        Ok(inner) => inner.map(Ok)?,
        Err(err) => Err(err),
    };
    ctx.committed(stored, not_found, duplicate).map(|()| ok())
}

#[derive(Debug, Deserialize)]
struct ActivityRequest {
    activity: Option<Text>,
}

/// Deletes the activity and its links (the legal bases stay).
async fn delete(
    State(db): State<Db>,
    ctx: RequestContext,
    Body(req): Body<ActivityRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let name = name::required("activity", req.activity)?;
    let deleted = db
        .tenant(ctx.tenant)
        .legal()
        .delete_activity(&name, |current| ctx.change_event(None, Some(&view(current)), None, None))
        .await;
    ctx.committed(deleted, not_found, duplicate).map(|()| ok())
}

#[derive(Debug, Deserialize)]
struct LinkRequest {
    activity: Option<Text>,
    brief: Option<Text>,
}

async fn link(
    State(db): State<Db>,
    ctx: RequestContext,
    Body(req): Body<LinkRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    set_link(&db, &ctx, req, true).await
}

async fn unlink(
    State(db): State<Db>,
    ctx: RequestContext,
    Body(req): Body<LinkRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    set_link(&db, &ctx, req, false).await
}

/// Links or unlinks; idempotent either way. An unknown activity is reported before an
/// unknown legal basis.
async fn set_link(
    db: &Db,
    ctx: &RequestContext,
    req: LinkRequest,
    linked: bool,
) -> ApiResult<Reply<Map<String, Value>>> {
    let (activity, brief) = match (name::optional("activity", req.activity)?, name::optional("brief", req.brief)?) {
        (Some(activity), Some(brief)) => (activity, brief),
        (None, None) => return Err(ApiError::bad_request("Missing API request parameters: activity, brief")),
        (None, _) => return Err(ApiError::bad_request("Missing API request parameters: activity")),
        (_, None) => return Err(ApiError::bad_request("Missing API request parameters: brief")),
    };
    let event = ctx.change_event(None, None, None, Some(&json!({"activity": activity, "brief": brief})));
    match db.tenant(ctx.tenant).legal().set_link(&activity, &brief, linked, &event).await? {
        LinkOutcome::Done => {
            ctx.mark_committed();
            Ok(ok())
        }
        LinkOutcome::NoActivity => Err(not_found()),
        LinkOutcome::NoBasis => Err(ApiError::not_found("The legal basis record was not found")),
    }
}

#[derive(Debug, Deserialize)]
struct NoRequest {}

#[derive(Serialize)]
struct RowsReply {
    rows: Vec<Value>,
}

/// Every processing activity of the tenant (the full set, in creation order) with the briefs
/// of its legal bases.
async fn list(State(db): State<Db>, ctx: RequestContext, Body(_): Body<NoRequest>) -> ApiResult<Reply<RowsReply>> {
    ctx.require(Rule::Granted)?;
    let activities = db.tenant(ctx.tenant).legal().list_activities().await?;
    let rows = activities
        .iter()
        .map(|(a, briefs)| {
            json!({
                "activity": a.activity,
                "title": a.title,
                "script": a.script,
                "fulldesc": a.fulldesc,
                "applicableto": a.applicableto,
                "legalbases": briefs,
                "creationtime": a.created_at,
            })
        })
        .collect();
    Ok(Reply(RowsReply { rows }))
}
