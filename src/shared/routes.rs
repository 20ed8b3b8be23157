//! HTTP handlers of the shared record operations.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::service::{self, Selection};
use crate::appdata::AppName;
use crate::audit::event::{self, EventBody, EventHeader};
use crate::http::auth::TENANT_HEADER;
use crate::http::error::ErrorMessage;
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult, Body, Operation, Reply, RequestContext, Rule, op};
use crate::state::AppState;
use crate::tenants::TenantId;
use crate::users::{Identity, service as users};

/// The authenticated shared record operations.
pub fn operations() -> Vec<Operation> {
    vec![op("SharedRecordCreate", create)]
}

/// The public shared record operations (routed without authentication).
pub fn public_operations() -> Vec<Operation> {
    vec![op("SharedRecordGet", get)]
}

#[derive(Debug, Deserialize)]
pub(crate) struct CreateRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    fields: Option<Text>,
    partner: Option<Text>,
    appname: Option<Text>,
    finaltime: Option<Value>,
}

#[derive(Serialize)]
struct CreateReply {
    recorduuid: String,
}

async fn create(
    State(app): State<AppState>,
    ctx: RequestContext,
    Body(req): Body<CreateRequest>,
) -> ApiResult<Reply<CreateReply>> {
    ctx.require(Rule::Granted)?;
    let who = Identity::parse(req.mode, req.identity)?;
    let appname = req.appname.map(|name| AppName::parse(Some(name))).transpose()?;
    let expires_at = service::expires_at(&app, ctx.now, req.finaltime.as_ref())?;
    let selection = Selection { fields: service::parse_fields(req.fields), appname, partner: text(req.partner) };
    let user = users::load(&app, &ctx, &who).await?;
    let recorduuid = service::create(&app, &ctx, &user, &selection, expires_at).await?;
    Ok(Reply(CreateReply { recorduuid }))
}

#[derive(Debug, Deserialize)]
struct GetRequest {
    recorduuid: Option<Text>,
}

#[derive(Serialize)]
struct GetReply {
    data: Value,
}

/// The tenant named by `X-Bunker-Tenant`, else the main tenant.
pub(crate) async fn tenant(app: &AppState, headers: &HeaderMap) -> ApiResult<TenantId> {
    let name = headers.get(TENANT_HEADER).and_then(|v| v.to_str().ok()).map(str::trim).filter(|n| !n.is_empty());
    match name {
        None => Ok(TenantId::MAIN),
        Some(name) => app.tenant_id(name).await?.ok_or_else(|| ApiError::not_found("The tenant record was not found")),
    }
}

/// Public: no token is required and any `X-Bunker-Token` sent is ignored. The event is written
/// here (there is no authentication middleware) before the answer leaves.
async fn get(State(app): State<AppState>, headers: HeaderMap, body: Result<Body<GetRequest>, ApiError>) -> Response {
    let now_ms = app.clock.now_ms();
    let tenant = match tenant(&app, &headers).await {
        Ok(tenant) => tenant,
        Err(err) => return err.into_response(),
    };
    let keys = match app.tenant_keys(tenant).await {
        Ok(keys) => keys,
        Err(err) => return err.into_response(),
    };
    let mut subject = None;
    let result = async {
        let Body(req) = body?;
        let uuid = service::parse_uuid(req.recorduuid)?;
        service::open(&app, &keys, now_ms.div_euclid(1000), &uuid, &mut subject).await
    }
    .await;
    let response = match result {
        Ok(data) => Reply(GetReply { data }).into_response(),
        Err(err) => err.into_response(),
    };
    let message = response.extensions().get::<ErrorMessage>().map(|m| m.0.clone());
    let header = EventHeader {
        tenant,
        principal_kind: "public",
        principal_id: "-",
        operation: "SharedRecordGet",
        created_ms: now_ms,
    };
    let body = EventBody { subject: subject.as_ref(), message: message.as_deref(), ..EventBody::default() };
    let event = event::seal(&header, &body, response.status().as_u16(), &keys);
    match app.audit.submit(event).await {
        Ok(()) => response,
        Err(err) => ApiError::from(err).into_response(),
    }
}
