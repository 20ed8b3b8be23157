//! The authenticated request context and authorisation rules.

use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde_json::Value;

use super::error::ApiError;
use crate::access::Grants;
use crate::audit::event::{self, EventBody, EventHeader};
use crate::audit::{Draft, Subject};
use crate::crypto::TenantKeys;
use crate::store::audit::AuditRecord;
use crate::store::{StoreError, StoreResult};
use crate::tenants::TenantId;

/// Kinds of principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The vault's root token: every operation in every tenant.
    Root,
    /// A tenant's admin token (from `TenantCreate`): every tenant-scoped operation, in its own
    /// tenant only.
    TenantAdmin,
    /// A role's access token (`XTokenCreateForRole`): what the role's policies grant, in its
    /// tenant.
    Role,
    /// A user's access token (`XTokenCreateForUser`): its own record, and what the roles it
    /// holds in its groups grant.
    User,
}

impl PrincipalKind {
    /// Name recorded in audit events.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Root => "root",
            PrincipalKind::TenantAdmin => "tenant",
            PrincipalKind::Role => "role",
            PrincipalKind::User => "user",
        }
    }

    /// True for the administrators, whom policies do not bind.
    pub fn is_admin(self) -> bool {
        matches!(self, PrincipalKind::Root | PrincipalKind::TenantAdmin)
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
    /// The role a role token acts as.
    pub role: Option<i64>,
    /// The record id of a user token's user.
    pub user: Option<Vec<u8>>,
    /// The administrator account whose login session this is: its events name the account.
    pub account: Option<String>,
    /// When the credential stops working (unix seconds), if ever.
    pub expires_at: Option<i64>,
    /// A web console session: only the console may present it.
    pub console: bool,
}

impl Principal {
    /// The vault's root token: the only credential with powers over other tenants and the
    /// vault as a whole (an administrator account of the main tenant administers that tenant
    /// only).
    pub fn is_vault_admin(&self) -> bool {
        self.kind == PrincipalKind::Root && self.tenant.is_main()
    }

    /// An administrator's principal (root or tenant admin), which never expires.
    pub fn admin(id: String, kind: PrincipalKind, tenant: TenantId) -> Principal {
        Principal { id, kind, tenant, role: None, user: None, account: None, expires_at: None, console: false }
    }
}

/// An authorisation rule, stated in one line at the top of each handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// An administrator of the request's tenant: its own admin, or the main tenant's root acting
    /// in it (authentication has already refused any other tenant's credential).
    TenantAdmin,
    /// The vault's root acting in the main tenant (vault-wide operations).
    MainTenantAdmin,
    /// An administrator of the request's tenant, or a role or user token of that tenant whose
    /// grants allow the operation. A caller bound by policies is judged here for the operation;
    /// an operation on a user record is judged again for that record when the handler loads it
    /// ([`crate::access::judge`]).
    Granted,
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
    /// What a caller bound by policies may do (none for administrators).
    pub grants: Option<Arc<Grants>>,
    /// The client's address, when known (the `${source_ip}` of policy conditions).
    pub client: Option<IpAddr>,
    /// Request time, unix seconds (from the application clock).
    pub now: i64,
    /// Request time, unix milliseconds.
    pub now_ms: i64,
    draft: Arc<Mutex<Draft>>,
}

/// Decisions kept in one event (a bulk listing judges each row; the event keeps the first ones).
const MAX_DECISIONS: usize = 100;

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
            grants: None,
            client: None,
            now: now_ms.div_euclid(1000),
            now_ms,
            draft: Arc::new(Mutex::new(Draft::default())),
        }
    }

    /// Checks the caller against a rule; 403 "Access denied" otherwise ("API access denied"
    /// when policies refused it).
    pub fn require(&self, rule: Rule) -> Result<(), ApiError> {
        let principal = &self.principal;
        let admin = match principal.kind {
            PrincipalKind::Root => principal.tenant.is_main() || principal.tenant == self.tenant,
            PrincipalKind::TenantAdmin => principal.tenant == self.tenant,
            PrincipalKind::Role | PrincipalKind::User => false,
        };
        let allowed = match rule {
            Rule::TenantAdmin => admin,
            Rule::MainTenantAdmin => principal.is_vault_admin() && self.tenant.is_main(),
            Rule::Granted if admin => true,
            Rule::Granted => {
                return match &self.grants {
                    Some(grants) if principal.tenant == self.tenant => crate::access::judge::operation(self, grants),
                    _ => Err(ApiError::access_denied()),
                };
            }
        };
        if allowed { Ok(()) } else { Err(ApiError::access_denied()) }
    }

    /// The caller's `request_metadata`, if it sent one.
    pub fn request_metadata(&self) -> Option<Value> {
        self.draft().request_metadata.clone()
    }

    /// Records an access decision made for a caller bound by policies (the deciding policy
    /// ids, the masked field names: never values) in the request's event.
    pub fn record_decision(&self, decision: Value) {
        let mut draft = self.draft();
        draft.judged = true;
        match &mut draft.access {
            Some(Value::Array(decisions)) if decisions.len() < MAX_DECISIONS => decisions.push(decision),
            Some(_) => {}
            None => draft.access = Some(Value::Array(vec![decision])),
        }
    }

    /// Declares the profile fields the request's change writes (key paths from the top), so a
    /// caller that sees only some fields may change those: set before the user is loaded.
    pub fn set_writes(&self, paths: Vec<Vec<String>>) {
        self.draft().writes = Some(paths);
    }

    /// The profile fields the request's change writes, if declared.
    pub fn writes(&self) -> Option<Vec<Vec<String>>> {
        self.draft().writes.clone()
    }

    /// True once a record was judged for this request (see [`Rule::Granted`]).
    pub fn judged(&self) -> bool {
        self.draft().judged
    }

    fn draft(&self) -> MutexGuard<'_, Draft> {
        self.draft.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records which user the request concerns (for the event written after the handler).
    pub fn set_subject(&self, subject: &Subject) {
        self.draft().subject = Some(subject.clone());
    }

    /// Forgets the subject recorded: the request certainly left no record of that user.
    pub fn clear_subject(&self) {
        self.draft().subject = None;
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
        let (metadata, recorded, access) = {
            let draft = self.draft();
            (draft.request_metadata.clone(), draft.extra.clone(), draft.access.clone())
        };
        let extra = match (extra, recorded) {
            (Some(Value::Object(own)), Some(Value::Object(mut merged))) => {
                merged.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
                Some(Value::Object(merged))
            }
            (Some(own), _) => Some(own.clone()),
            (None, recorded) => recorded,
        };
        let extra = with_access(extra, access);
        let extra = extra.as_ref();
        let body = EventBody { subject, request_metadata: metadata.as_ref(), before, after, extra, message: None };
        event::seal(&self.header(), &body, 200, &self.keys)
    }

    /// The event for a request whose handler did not commit one: built from the draft.
    pub fn final_event(&self, http_status: u16, message: Option<&str>) -> AuditRecord {
        let draft = self.draft();
        let extra = with_access(draft.extra.clone(), draft.access.clone());
        let body = EventBody {
            subject: draft.subject.as_ref(),
            request_metadata: draft.request_metadata.as_ref(),
            extra: extra.as_ref(),
            message,
            ..EventBody::default()
        };
        event::seal(&self.header(), &body, http_status, &self.keys)
    }

    fn header(&self) -> EventHeader<'_> {
        EventHeader {
            tenant: self.tenant,
            principal_kind: if self.principal.account.is_some() { "account" } else { self.principal.kind.as_str() },
            principal_id: self.principal.account.as_deref().unwrap_or(&self.principal.id),
            operation: self.operation,
            created_ms: self.now_ms,
        }
    }
}

/// An event's details with the access decisions made for the request under `access`.
fn with_access(extra: Option<Value>, access: Option<Value>) -> Option<Value> {
    let Some(access) = access else { return extra };
    let mut merged = match extra {
        Some(Value::Object(extra)) => extra,
        Some(other) => serde_json::Map::from_iter([("details".to_owned(), other)]),
        None => serde_json::Map::new(),
    };
    merged.insert("access".to_owned(), access);
    Some(Value::Object(merged))
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
