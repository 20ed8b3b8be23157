//! Authentication of `/v2` calls and the audit event written after each one.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::FutureExt;
use tracing::Instrument;

use super::context::{Principal, PrincipalKind, RequestContext};
use super::cutoff::{self, Cut, Deadlines};
use super::error::{ApiError, ErrorMessage};
use super::rate::ClientAddr;
use crate::audit::writer::AuditFailed;
use crate::crypto::secrets::{digests_match, token_digest};
use crate::state::AppState;
use crate::store;
use crate::tenants::TenantId;

/// Header carrying the access token.
pub const TOKEN_HEADER: &str = "x-bunker-token";
/// Header naming the tenant.
pub const TENANT_HEADER: &str = "x-bunker-tenant";

/// Marks a call the web console makes in-process on a session's behalf (an extension: it
/// cannot come from the network).
#[derive(Debug, Clone, Copy)]
pub struct ConsoleCall;

/// The state of [`authenticate`]: the vault and the operations it guards, by route path.
#[derive(Clone)]
pub struct Authenticator {
    app: AppState,
    operations: Arc<HashMap<String, &'static str>>,
}

impl Authenticator {
    /// Guards the operations routed at these `(path, name)` pairs.
    pub fn new(app: AppState, operations: impl IntoIterator<Item = (String, &'static str)>) -> Authenticator {
        Authenticator { app, operations: Arc::new(operations.into_iter().collect()) }
    }
}

/// Authenticates the caller, resolves the tenant, runs the handler and then makes sure the
/// request's audit event is durable before the answer leaves (fail closed). While the database
/// is away the answer is 503 at once; a request cut short (deadline, database gone) is
/// answered 503 and its event says so (see [`cutoff`]); a handler that panics is answered 500,
/// and its event says so too.
pub async fn authenticate(State(guard): State<Authenticator>, mut req: Request, next: Next) -> Response {
    let Authenticator { app, operations } = guard;
    let Some(operation) = req.extensions().get::<MatchedPath>().and_then(|path| operations.get(path.as_str()).copied())
    else {
        return ApiError::not_found("The API request was not found").into_response();
    };
    let client = req.extensions().get::<ClientAddr>().copied();
    if !app.health.is_up() {
        return ApiError::Unavailable.into_response();
    }
    let deadlines = Deadlines::start(app.settings.request_timeout);
    let resolving = resolve(&app, req.headers(), operation, client);
    let context = match cutoff::within(&app.health, deadlines.handler, resolving).await {
        // A console session is the console's alone: presented by anyone else, it is refused.
        Ok(Ok(context)) if context.principal.console && req.extensions().get::<ConsoleCall>().is_none() => {
            return ApiError::access_denied().into_response();
        }
        Ok(Ok(context)) => context,
        Ok(Err(err)) => return err.into_response(),
        Err(cut) => return cut.error().into_response(),
    };
    req.extensions_mut().insert(context.clone());
    let span = tracing::info_span!(
        "request",
        operation,
        tenant = context.tenant.get(),
        principal = %context.principal.id,
    );
    async move {
        // The licence in force may refuse the operation (expired, or at its maximum of
        // records) before the handler runs; the refusal is audited like any other.
        let handled = async {
            match crate::licence::admit(&app, operation).await {
                Ok(()) => next.run(req).await,
                Err(refused) => refused.into_response(),
            }
        };
        // A handler that panics is answered 500 here rather than by the router's outer panic
        // layer, so that its event is written like any other: the trail says what the client
        // was told, even after a change the handler had committed (that event stays).
        let handled = std::panic::AssertUnwindSafe(handled).catch_unwind();
        let (response, panicked) = match cutoff::within(&app.health, deadlines.handler, handled).await {
            Ok(Ok(response)) => (response, false),
            Ok(Err(_)) => {
                (ApiError::Internal(format!("the {operation} handler panicked").into()).into_response(), true)
            }
            Err(cut) => return cutoff::answer_cut(&app, &context, cut, deadlines.event).await,
        };
        if context.is_committed() && !panicked {
            return response;
        }
        // A caller bound by policies reached an operation on a user record that judged no
        // record (a path that loads none): refuse rather than answer unjudged.
        let response = if context.grants.is_some()
            && response.status().is_success()
            && crate::access::catalogue::kind(operation).per_record
            && !context.judged()
        {
            tracing::error!(operation, "an operation on a user record answered without judging one");
            ApiError::Forbidden("API access denied".into()).into_response()
        } else {
            response
        };
        let message = response.extensions().get::<ErrorMessage>().map(|m| m.0.clone());
        let event = context.final_event(response.status().as_u16(), message.as_deref());
        match cutoff::within(&app.health, deadlines.event, app.audit.submit(event)).await {
            Ok(Ok(())) => response,
            Ok(Err(AuditFailed::Unavailable)) => {
                cutoff::answer_cut(&app, &context, Cut::DatabaseAway, deadlines.event).await
            }
            Ok(Err(err)) => ApiError::from(err).into_response(),
            Err(cut) => cutoff::answer_cut(&app, &context, cut, deadlines.event).await,
        }
    }
    .instrument(span)
    .await
}

async fn resolve(
    app: &AppState,
    headers: &HeaderMap,
    operation: &'static str,
    client: Option<ClientAddr>,
) -> Result<RequestContext, ApiError> {
    let principal = principal(app, headers, client).await?;
    let tenant = tenant(app, headers, &principal).await?;
    let keys = app.tenant_keys(tenant).await?;
    let mut context = RequestContext::new(tenant, principal, operation, keys, app.clock.now_ms());
    context.client = client.map(|c| c.0);
    if !context.principal.kind.is_admin() {
        context.grants = Some(crate::access::grants::of(app, &context.principal).await?);
    }
    Ok(context)
}

async fn principal(
    app: &AppState,
    headers: &HeaderMap,
    client: Option<ClientAddr>,
) -> Result<Arc<Principal>, ApiError> {
    // A failed authentication counts against the client's address; past its allowance the
    // answer is 429, and tokens the vault has not verified recently are no longer looked up.
    let denied = || if app.rates.auth_failed(client) { ApiError::TooManyRequests } else { ApiError::access_denied() };
    let token = headers
        .get(TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(denied)?;
    let digest = token_digest(token);
    if let Some(principal) = app.caches.principal(&digest) {
        // A cached access token still expires on time.
        if principal.expires_at.is_some_and(|at| at <= app.clock.now()) {
            app.caches.invalidate_principal(&digest);
            return Err(denied());
        }
        return Ok(principal);
    }
    if app.rates.auth_blocked(client, &digest) {
        return Err(ApiError::TooManyRequests);
    }
    // The lookup is by digest, so its timing says nothing about the secret; the stored digest
    // is compared again in constant time before it is trusted.
    let row = store::vault::find_token(&app.db, &digest).await?.ok_or_else(denied)?;
    if !digests_match(&row.digest, &digest) || row.expires_at.is_some_and(|at| at <= app.clock.now()) {
        return Err(denied());
    }
    let kind = match (row.kind.as_str(), row.role_id, row.user_rid.is_some()) {
        ("root", None, false) => PrincipalKind::Root,
        ("tenant", None, false) => PrincipalKind::TenantAdmin,
        ("role", Some(_), false) => PrincipalKind::Role,
        ("user", None, true) => PrincipalKind::User,
        _ => return Err(denied()),
    };
    let principal = Arc::new(Principal {
        id: row.id,
        kind,
        tenant: row.tenant,
        role: row.role_id,
        user: row.user_rid,
        account: row.account_id,
        expires_at: row.expires_at,
        console: row.console_seen_at.is_some(),
    });
    app.rates.auth_succeeded(digest);
    app.caches.insert_principal(digest, principal.clone());
    Ok(principal)
}

/// The tenant named by `X-Bunker-Tenant`, or the credential's own tenant when absent.
async fn tenant(app: &AppState, headers: &HeaderMap, principal: &Principal) -> Result<TenantId, ApiError> {
    let Some(header) = headers.get(TENANT_HEADER) else {
        return Ok(principal.tenant);
    };
    // A header that is present names a tenant: empty or non-ASCII is a mistake to report, not
    // a silent fall back to the credential's own tenant.
    let name = header.to_str().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(ApiError::bad_request("The X-Bunker-Tenant header has an incorrect format"));
    }
    let vault_admin = principal.kind == PrincipalKind::Root && principal.tenant == TenantId::MAIN;
    match app.tenant_id(name).await? {
        Some(id) if id == principal.tenant || vault_admin => Ok(id),
        None if vault_admin => Err(ApiError::not_found("The tenant record was not found")),
        _ => Err(ApiError::access_denied()),
    }
}
