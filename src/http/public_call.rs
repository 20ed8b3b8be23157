//! A call of a public operation (no token: the portal's login, an account's own operations)
//! that writes its own audit event: with its change in one transaction when it makes one, else
//! once answered, with what the client was told.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::error::ErrorMessage;
use super::rate::ClientAddr;
use super::{ApiError, ApiResult};
use crate::audit::event::{self, EventBody, EventHeader, Subject};
use crate::crypto::TenantKeys;
use crate::state::AppState;
use crate::store::audit::AuditRecord;
use crate::tenants::TenantId;

/// One call: where it acts, who acts once known, and whether its event went in with its change.
#[derive(Clone)]
pub struct PublicCall {
    /// The vault.
    pub app: AppState,
    /// The operation's name.
    pub operation: &'static str,
    /// The tenant it acts in.
    pub tenant: TenantId,
    /// That tenant's keys.
    pub keys: Arc<TenantKeys>,
    /// The client's address (rate limits).
    pub client: Option<ClientAddr>,
    /// When it began (unix milliseconds).
    pub now_ms: i64,
    /// `public`, or who acts once known (e.g. `account` and its id).
    actor: (&'static str, String),
    /// Its event was written with its change: [`finish`] writes none.
    pub committed: bool,
}

impl PublicCall {
    /// A call in the tenant `X-Bunker-Tenant` names, else the main tenant.
    pub async fn in_tenant(
        app: &AppState,
        operation: &'static str,
        headers: &HeaderMap,
        client: Option<ClientAddr>,
    ) -> ApiResult<PublicCall> {
        let tenant = crate::shared::routes::tenant(app, headers).await?;
        PublicCall::new(app, operation, tenant, client).await
    }

    /// A call in `tenant`.
    pub async fn new(
        app: &AppState,
        operation: &'static str,
        tenant: TenantId,
        client: Option<ClientAddr>,
    ) -> ApiResult<PublicCall> {
        let keys = app.tenant_keys(tenant).await?;
        Ok(PublicCall {
            app: app.clone(),
            operation,
            tenant,
            keys,
            client,
            now_ms: app.clock.now_ms(),
            actor: ("public", "-".into()),
            committed: false,
        })
    }

    /// When it began (unix seconds).
    pub fn now(&self) -> i64 {
        self.now_ms.div_euclid(1000)
    }

    /// From now on its events name `kind` `id` as who acted.
    pub fn acts_as(&mut self, kind: &'static str, id: &str) {
        self.actor = (kind, id.to_owned());
    }

    /// Its event, concerning `subject` when given, sealed under the tenant's key.
    pub fn event(
        &self,
        subject: Option<&Subject>,
        status: u16,
        message: Option<&str>,
        extra: Option<&Value>,
    ) -> AuditRecord {
        let header = EventHeader {
            tenant: self.tenant,
            principal_kind: self.actor.0,
            principal_id: &self.actor.1,
            operation: self.operation,
            created_ms: self.now_ms,
        };
        let body = EventBody { subject, extra, message, ..EventBody::default() };
        event::seal(&header, &body, status, &self.keys)
    }

    /// Counts a failure against the client's address: 429 once it has spent its allowance.
    pub fn failed(&self, err: ApiError) -> ApiError {
        if self.app.rates.auth_failed(self.client) { ApiError::TooManyRequests } else { err }
    }

    /// 429 while the client's address is blocked for failing.
    pub fn refuse_if_blocked(&self) -> ApiResult<()> {
        if self.app.rates.is_blocked(self.client) { Err(ApiError::TooManyRequests) } else { Ok(()) }
    }
}

/// Answers `response`, after writing the call's event when its change did not carry it (no
/// call: refused before its tenant was known, and not audited).
pub async fn finish(call: Option<PublicCall>, response: Response) -> Response {
    let Some(call) = call.filter(|call| !call.committed) else { return response };
    let message = response.extensions().get::<ErrorMessage>().map(|m| m.0.clone());
    let event = call.event(None, response.status().as_u16(), message.as_deref(), None);
    match call.app.audit.submit(event).await {
        Ok(()) => response,
        Err(err) => ApiError::from(err).into_response(),
    }
}
