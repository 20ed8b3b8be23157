//! Licences: operators who resell Bunker limit a vault by a signed statement of customer,
//! maximum records and expiry (Ed25519, verified against `BUNKER_LICENSE_PUBLIC_KEY`).
//!
//! With no licence installed there is no limit at all. With one in force:
//! - at its maximum of records (user profiles not held by a system deletion, plus tokens, over
//!   the whole vault), `UserCreate` and `TokenCreate` answer 403 "Record limit reached", and
//!   the bulk creates keep only as many records as there is room for (the first ones that are
//!   valid; the rest are reported as refused, in each bulk's own per-record errors, so the
//!   answer keeps its shape; a `TokenCreateBulk` record answered with an existing token under
//!   `unique` takes a place too, as it cannot be told apart before the write);
//! - after its expiry the writes the contract lists answer 403 "License expired"; reads,
//!   exports, deletes and `SystemSetLicenseKey` keep working.
//!
//! Both are decided in one place, [`admit`], which the authentication middleware calls with
//! the operation's name before the handler runs, so the refusal is audited like any other. The
//! count is read before the write, not under a lock: concurrent creates may each see the last
//! free places and overshoot the maximum by a few records (the contract allows a bulk to).

pub mod cli;
pub mod format;
mod in_force;
mod routes;

use serde_json::json;

pub use format::{Invalid, PrivateKey, PublicKey, Terms};
pub use in_force::InForce;

use crate::audit::event::{self, EventBody, EventHeader};
use crate::http::{ApiError, ApiResult, Operation};
use crate::state::AppState;
use crate::store::licence::Install;
use crate::tenants::TenantId;

/// The contract's answer to a licence that cannot be installed.
pub const INVALID: &str = "License key is invalid";
/// The answer to a create at the maximum of records.
pub const LIMIT_REACHED: &str = "Record limit reached";
/// The answer to a write after the licence expired.
pub const EXPIRED: &str = "License expired";

/// The writes refused once the licence has expired (the contract's list).
pub const EXPIRY_BOUND: [&str; 19] = [
    "UserCreate",
    "UserCreateBulk",
    "UserUpdate",
    "UserPatch",
    "UserUpdateRequest",
    "UserPatchRequest",
    "AppdataCreate",
    "AppdataUpdate",
    "AppdataUpdateRequest",
    "FileCreate",
    "TokenCreate",
    "TokenCreateBulk",
    "SessionUpsert",
    "AgreementAccept",
    "AgreementCancel",
    "AgreementRevokeAll",
    "SharedRecordCreate",
    "TenantCreate",
    "TenantUpdate",
];

/// The operations that add records, refused at the maximum.
pub const RECORD_CREATING: [&str; 4] = ["UserCreate", "UserCreateBulk", "TokenCreate", "TokenCreateBulk"];

/// The licence operation.
pub fn operations() -> Vec<Operation> {
    vec![crate::http::op("SystemSetLicenseKey", routes::set_license_key)]
}

/// What the statistics report of the licence in force (all `None` without one).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicenceStatus {
    /// Most records allowed.
    pub max_records: Option<i64>,
    /// When it expires (unix seconds).
    pub expires: Option<i64>,
    /// Who it is for.
    pub customer: Option<String>,
}

/// The licence in force, as the statistics report it.
pub async fn status(app: &AppState) -> ApiResult<LicenceStatus> {
    Ok(app.licence.terms(&app.db).await?.map_or_else(LicenceStatus::default, |terms| LicenceStatus {
        max_records: Some(terms.max_records),
        expires: Some(terms.expires),
        customer: Some(terms.customer),
    }))
}

/// Refuses `operation` when the licence in force forbids it now: 403 "License expired" for the
/// writes of [`EXPIRY_BOUND`] after the expiry, 403 "Record limit reached" for the creates of
/// [`RECORD_CREATING`] at the maximum. Any other operation passes without a look.
pub async fn admit(app: &AppState, operation: &str) -> ApiResult<()> {
    if !EXPIRY_BOUND.contains(&operation) {
        return Ok(());
    }
    let Some(terms) = app.licence.terms(&app.db).await? else { return Ok(()) };
    if terms.expired(app.clock.now()) {
        return Err(ApiError::Forbidden(EXPIRED.into()));
    }
    if RECORD_CREATING.contains(&operation) && room_under(app, &terms).await? == 0 {
        return Err(ApiError::Forbidden(LIMIT_REACHED.into()));
    }
    Ok(())
}

/// How many more records the licence in force allows (`None`: no limit). A bulk create keeps
/// this many of its records and refuses the rest.
pub async fn room(app: &AppState) -> ApiResult<Option<usize>> {
    match app.licence.terms(&app.db).await? {
        None => Ok(None),
        Some(terms) => Ok(Some(room_under(app, &terms).await?)),
    }
}

async fn room_under(app: &AppState, terms: &Terms) -> ApiResult<usize> {
    let records = crate::store::counts::vault_records(&app.db).await?;
    Ok(usize::try_from(terms.max_records.saturating_sub(records)).unwrap_or(0))
}

/// The licence text and its terms, once checked against the configured key and the clock.
fn verify(app: &AppState, text: &str) -> Result<Terms, ApiError> {
    let invalid = || ApiError::bad_request(INVALID);
    let key = app.settings.licence_key.as_ref().ok_or_else(invalid)?;
    let terms = key.verify(text).map_err(|err| {
        tracing::info!(reason = %err, "a licence was refused");
        invalid()
    })?;
    if terms.expired(app.clock.now()) {
        tracing::info!(expires = terms.expires, "an expired licence was refused");
        return Err(invalid());
    }
    Ok(terms)
}

/// What the audit event of an installation records: the terms, never the text.
fn audit_details(terms: &Terms, source: &str) -> serde_json::Value {
    json!({
        "licence": {"customer": terms.customer, "maxrecords": terms.max_records, "expires": terms.expires,
                    "issued": terms.issued},
        "source": source,
    })
}

/// Installs the licence given at start (`DATABUNKER_LICENSEKEY`) when none is stored yet; one
/// already stored is kept (a later licence comes through `SystemSetLicenseKey`). A licence that
/// cannot be verified is a start-up error.
pub async fn preload(app: &AppState, text: &str) -> Result<(), crate::config::ConfigError> {
    use crate::config::ConfigError;
    // The variable is for the first setup and usually stays set: once a licence is stored (maybe
    // a renewal installed since), it is not looked at, so its expiry cannot stop a restart.
    let stored = app
        .licence
        .terms(&app.db)
        .await
        .map_err(|err| ConfigError::Invalid(format!("cannot read the licence in force: {err}")))?;
    if stored.is_some() {
        tracing::info!("a licence is already installed: DATABUNKER_LICENSEKEY is ignored");
        return Ok(());
    }
    if app.settings.licence_key.is_none() {
        return Err(ConfigError::Invalid(
            "DATABUNKER_LICENSEKEY is set but BUNKER_LICENSE_PUBLIC_KEY is not: the licence cannot be verified".into(),
        ));
    }
    let terms = verify(app, text).map_err(|_| {
        ConfigError::Invalid(
            "DATABUNKER_LICENSEKEY is not a valid licence for BUNKER_LICENSE_PUBLIC_KEY (malformed, signed by \
             another key, or expired)"
                .into(),
        )
    })?;
    let failed = |err: &dyn std::fmt::Display| ConfigError::Invalid(format!("cannot install the licence: {err}"));
    let keys = app.tenant_keys(TenantId::MAIN).await.map_err(|err| failed(&err))?;
    let now_ms = app.clock.now_ms();
    let header = EventHeader {
        tenant: TenantId::MAIN,
        principal_kind: "system",
        principal_id: "startup",
        operation: "SystemSetLicenseKey",
        created_ms: now_ms,
    };
    let extra = audit_details(&terms, "DATABUNKER_LICENSEKEY");
    let event = event::seal(&header, &EventBody { extra: Some(&extra), ..EventBody::default() }, 200, &keys);
    let installed = crate::store::licence::install(&app.db, text, &terms, Install::IfAbsent, now_ms, &event)
        .await
        .map_err(|err| failed(&err))?;
    if installed {
        tracing::info!(customer = %terms.customer, max_records = terms.max_records, expires = terms.expires,
            "the licence given at start is installed");
        app.licence.set(terms);
    } else {
        tracing::info!("a licence is already installed: DATABUNKER_LICENSEKEY is ignored");
    }
    Ok(())
}
