//! `LegalBasisCreate`, `LegalBasisUpdate`, `LegalBasisDelete`, `LegalBasisListAgreements`.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::name;
use crate::http::lenient::{Text, opt_bool, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, ok, op};
use crate::store::Db;
use crate::store::legal::LegalBasis;

/// The legal basis operations.
pub fn operations() -> Vec<Operation> {
    vec![
        op("LegalBasisCreate", create),
        op("LegalBasisUpdate", update),
        op("LegalBasisDelete", delete),
        op("LegalBasisListAgreements", list),
    ]
}

/// `basistype` when none is given.
const DEFAULT_BASIS_TYPE: &str = "consent";

fn not_found() -> ApiError {
    ApiError::not_found("The legal basis record was not found")
}

fn duplicate() -> ApiError {
    ApiError::conflict("Duplicate legal basis")
}

/// A legal basis as answered and as recorded in audit events.
pub fn view(basis: &LegalBasis) -> Value {
    json!({
        "brief": basis.brief,
        "status": basis.status,
        "module": basis.module,
        "fulldesc": basis.fulldesc,
        "shortdesc": basis.shortdesc,
        "basistype": basis.basistype,
        "requiredmsg": basis.requiredmsg,
        "requiredflag": basis.requiredflag,
        "creationtime": basis.created_at,
    })
}

/// The descriptive fields shared by create and update; `None` leaves a field as it is.
#[derive(Debug, Deserialize)]
struct Fields {
    status: Option<Text>,
    module: Option<Text>,
    fulldesc: Option<Text>,
    shortdesc: Option<Text>,
    basistype: Option<Text>,
    requiredmsg: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    requiredflag: Option<bool>,
}

/// `Fields` checked: the status is valid, a blank basis type means the default.
struct Changes {
    status: Option<String>,
    module: Option<String>,
    fulldesc: Option<String>,
    shortdesc: Option<String>,
    basistype: Option<String>,
    requiredmsg: Option<String>,
    requiredflag: Option<bool>,
}

impl Fields {
    fn check(self) -> ApiResult<Changes> {
        Ok(Changes {
            status: name::status(self.status)?,
            module: text(self.module),
            fulldesc: text(self.fulldesc),
            shortdesc: text(self.shortdesc),
            basistype: text(self.basistype)
                .map(|t| if t.trim().is_empty() { DEFAULT_BASIS_TYPE.to_owned() } else { t }),
            requiredmsg: text(self.requiredmsg),
            requiredflag: self.requiredflag,
        })
    }
}

impl Changes {
    fn apply(self, basis: &mut LegalBasis) {
        let set = |field: &mut String, value: Option<String>| {
            if let Some(value) = value {
                *field = value;
            }
        };
        set(&mut basis.status, self.status);
        set(&mut basis.module, self.module);
        set(&mut basis.fulldesc, self.fulldesc);
        set(&mut basis.shortdesc, self.shortdesc);
        set(&mut basis.basistype, self.basistype);
        set(&mut basis.requiredmsg, self.requiredmsg);
        if let Some(flag) = self.requiredflag {
            basis.requiredflag = flag;
        }
    }
}

#[derive(Debug, Deserialize)]
struct CreateRequest {
    brief: Option<Text>,
    status: Option<Text>,
    module: Option<Text>,
    fulldesc: Option<Text>,
    shortdesc: Option<Text>,
    basistype: Option<Text>,
    requiredmsg: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    requiredflag: Option<bool>,
}

async fn create(
    State(db): State<Db>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let brief = name::required("brief", req.brief)?;
    let changes = Fields {
        status: req.status,
        module: req.module,
        fulldesc: req.fulldesc,
        shortdesc: req.shortdesc,
        basistype: req.basistype,
        requiredmsg: req.requiredmsg,
        requiredflag: req.requiredflag,
    }
    .check()?;
    let mut basis = LegalBasis {
        brief,
        status: "active".to_owned(),
        module: String::new(),
        fulldesc: String::new(),
        shortdesc: String::new(),
        basistype: DEFAULT_BASIS_TYPE.to_owned(),
        requiredmsg: String::new(),
        requiredflag: false,
        created_at: ctx.now,
    };
    changes.apply(&mut basis);
    let event = ctx.change_event(None, None, Some(&view(&basis)), None);
    let stored = db.tenant(ctx.tenant).legal().insert_basis(&basis, &event).await;
    ctx.committed(stored, not_found, duplicate).map(|()| ok())
}

#[derive(Debug, Deserialize)]
struct UpdateRequest {
    brief: Option<Text>,
    newbrief: Option<Text>,
    status: Option<Text>,
    module: Option<Text>,
    fulldesc: Option<Text>,
    shortdesc: Option<Text>,
    basistype: Option<Text>,
    requiredmsg: Option<Text>,
    #[serde(default, deserialize_with = "opt_bool")]
    requiredflag: Option<bool>,
}

async fn update(
    State(db): State<Db>,
    ctx: RequestContext,
    Body(req): Body<UpdateRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let brief = name::required("brief", req.brief)?;
    let newbrief = name::optional("newbrief", req.newbrief)?;
    let changes = Fields {
        status: req.status,
        module: req.module,
        fulldesc: req.fulldesc,
        shortdesc: req.shortdesc,
        basistype: req.basistype,
        requiredmsg: req.requiredmsg,
        requiredflag: req.requiredflag,
    }
    .check()?;
    let result = db
        .tenant(ctx.tenant)
        .legal()
        .update_basis(&brief, ctx.now, |current| {
            let mut next = current.clone();
            changes.apply(&mut next);
            if let Some(newbrief) = newbrief {
                next.brief = newbrief;
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
struct BriefRequest {
    brief: Option<Text>,
}

/// Deletes the legal basis; its links to processing activities go with it.
async fn delete(
    State(db): State<Db>,
    ctx: RequestContext,
    Body(req): Body<BriefRequest>,
) -> ApiResult<Reply<Map<String, Value>>> {
    ctx.require(Rule::Granted)?;
    let brief = name::required("brief", req.brief)?;
    let deleted = db
        .tenant(ctx.tenant)
        .legal()
        .delete_basis(&brief, |current| ctx.change_event(None, Some(&view(current)), None, None))
        .await;
    ctx.committed(deleted, not_found, duplicate).map(|()| ok())
}

#[derive(Debug, Deserialize)]
struct NoRequest {}

#[derive(Serialize)]
struct RowsReply {
    rows: Vec<Value>,
}

/// Every legal basis of the tenant (the full set, in creation order).
async fn list(State(db): State<Db>, ctx: RequestContext, Body(_): Body<NoRequest>) -> ApiResult<Reply<RowsReply>> {
    ctx.require(Rule::Granted)?;
    let bases = db.tenant(ctx.tenant).legal().list_bases().await?;
    Ok(Reply(RowsReply { rows: bases.iter().map(view).collect() }))
}
