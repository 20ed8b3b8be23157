//! The authenticated request context and authorisation rules.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::Value;

use super::error::ApiError;
use crate::audit::event::{self, EventBody, EventHeader};
use crate::audit::{Draft, Subject};
use crate::crypto::TenantKeys;
use crate::store::audit::AuditRecord;
use crate::store::{StoreError, StoreResult};
use crate::tenants::TenantId;

/// Kinds of principal. Role and user tokens arrive with access control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The vault's root token: every operation in every tenant.
    Root,
    /// A tenant's admin token (from `TenantCreate`): every tenant-scoped operation, in its own
    /// tenant only.
    TenantAdmin,
}

impl PrincipalKind {
    /// Name recorded in audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Root => "root",
            PrincipalKind::TenantAdmin => "tenant",
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Access token id (not the secret).
    pub id: String,
    /// Kind of principal.
    pub kind: PrincipalKind,
    /// Tenant the credential belongs to.
    pub tenant: TenantId,
}

/// An authorisation rule, stated in one line at the top of each handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// An administrator of the request's tenant: its own admin, or the main tenant's root acting
    /// in it (authentication has already refused any other tenant's credential).
    TenantAdmin,
    /// An administrator of the main tenant acting in the main tenant (vault-wide operations).
    MainTenantAdmin,
}

/// Everything a handler knows about its caller; inserted by the authentication middleware.
#[derive(Clone)]
pub struct RequestContext {
    /// Tenant the request acts in.
    pub tenant: TenantId,
    /// Caller.
    pub principal: Arc<Principal>,
    /// Operation name, e.g. `UserGet`.
    pub operation: &'static str,
    /// The tenant's keys.
    pub keys: Arc<TenantKeys>,
    /// Request time, unix seconds (from the application clock).
    pub now: i64,
    /// Request time, unix milliseconds.
    pub now_ms: i64,
    draft: Arc<Mutex<Draft>>,
}

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("tenant", &self.tenant)
            .field("principal", &self.principal.id)
            .field("operation", &self.operation)
            .finish()
    }
}

impl RequestContext {
    /// Builds a context (the middleware does this once per request).
    pub fn new(
        tenant: TenantId,
        principal: Arc<Principal>,
        operation: &'static str,
        keys: Arc<TenantKeys>,
        now_ms: i64,
    ) -> Self {
        RequestContext {
            tenant,
            principal,
            operation,
            keys,
            now: now_ms.div_euclid(1000),
            now_ms,
            draft: Arc::new(Mutex::new(Draft::default())),
        }
    }

    /// Checks the caller against a rule; 403 "Access denied" otherwise.
    pub fn require(&self, rule: Rule) -> Result<(), ApiError> {
        let principal = &self.principal;
        let allowed = match rule {
            Rule::TenantAdmin => match principal.kind {
                PrincipalKind::Root => principal.tenant.is_main() || principal.tenant == self.tenant,
                PrincipalKind::TenantAdmin => principal.tenant == self.tenant,
            },
            Rule::MainTenantAdmin => principal.tenant.is_main() && self.tenant.is_main(),
        };
        if allowed { Ok(()) } else { Err(ApiError::access_denied()) }
    }

    fn draft(&self) -> MutexGuard<'_, Draft> {
        self.draft.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records which user the request concerns (for the event written after the handler).
    pub fn set_subject(&self, subject: &Subject) {
        self.draft().subject = Some(subject.clone());
    }

    /// Adds non-identifying details (counts and the like) to the request's event.
    pub fn set_extra(&self, extra: Value) {
        self.draft().extra = Some(extra);
    }

    /// Keeps the caller's `request_metadata` for the event.
    pub fn set_request_metadata(&self, metadata: Value) {
        self.draft().request_metadata = Some(metadata);
    }

    /// Marks the request's event as committed with its change, so none is written afterwards.
    pub fn mark_committed(&self) {
        self.draft().committed = true;
    }

    /// The outcome of a write that carried the request's event in its transaction: on success
    /// the event is marked committed; the store's `NotFound` and `Conflict` become the record
    /// kind's own errors.
    pub fn committed<T>(
        &self,
        stored: StoreResult<T>,
        not_found: fn() -> ApiError,
        conflict: fn() -> ApiError,
    ) -> Result<T, ApiError> {
        match stored {
            Ok(done) => {
                self.mark_committed();
                Ok(done)
            }
            Err(StoreError::NotFound) => Err(not_found()),
            Err(StoreError::Conflict) => Err(conflict()),
            Err(err) => Err(err.into()),
        }
    }

    /// True once the handler committed its own event.
    pub fn is_committed(&self) -> bool {
        self.draft().committed
    }

    /// A successful event for a change, to commit in the change's transaction. It also carries
    /// what [`set_extra`](Self::set_extra) recorded (an approval names its request that way,
    /// whatever change it applies).
    pub fn change_event(
        &self,
        subject: Option<&Subject>,
        before: Option<&Value>,
        after: Option<&Value>,
        extra: Option<&Value>,
    ) -> AuditRecord {
        let (metadata, recorded) = {
            let draft = self.draft();
            (draft.request_metadata.clone(), draft.extra.clone())
        };
        let extra = match (extra, recorded) {
            (Some(Value::Object(own)), Some(Value::Object(mut merged))) => {
                merged.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
                Some(Value::Object(merged))
            }
            (Some(own), _) => Some(own.clone()),
            (None, recorded) => recorded,
        };
        let extra = extra.as_ref();
        let body = EventBody { subject, request_metadata: metadata.as_ref(), before, after, extra, message: None };
        event::seal(&self.header(), &body, 200, &self.keys)
    }

    /// The event for a request whose handler did not commit one: built from the draft.
    pub fn final_event(&self, http_status: u16, message: Option<&str>) -> AuditRecord {
        let draft = self.draft();
        let body = EventBody {
            subject: draft.subject.as_ref(),
            request_metadata: draft.request_metadata.as_ref(),
            extra: draft.extra.as_ref(),
            message,
            ..EventBody::default()
        };
        event::seal(&self.header(), &body, http_status, &self.keys)
    }

    fn header(&self) -> EventHeader<'_> {
        EventHeader {
            tenant: self.tenant,
            principal_kind: self.principal.kind.as_str(),
            principal_id: &self.principal.id,
            operation: self.operation,
            created_ms: self.now_ms,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // Present on every authenticated route; absence is a routing mistake, not a client error.
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("request context missing: route is not behind authentication".into()))
    }
}
