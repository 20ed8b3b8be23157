//! `UserPrelogin` and `UserLogin`: a one-time code by mail or SMS, exchanged for a user login
//! access token. Each writes its event here: the code's issue and the login with their change,
//! in the user's trail; a refusal after it (in the user's trail when a code was found).

use std::sync::{Arc, LazyLock};

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{LIFETIME_SECS, MAX_ATTEMPTS, captcha};
use crate::crypto::index::IndexValue;
use crate::crypto::secrets::{digests_match, random_uuid_string, token_digest};
use crate::crypto::{IndexKind, TenantKeys};
use crate::http::error::ErrorMessage;
use crate::http::lenient::{Text, text};
use crate::http::public_call::{PublicCall as Call, finish as write_event};
use crate::http::rate::ClientAddr;
use crate::http::{ApiError, ApiResult, Body, Reply};
use crate::state::{AppState, XTOKEN_DEFAULT_SECS};
use crate::store::StoreError;
use crate::store::portal::NewCode;
use crate::store::roles::NewXToken;
use crate::users::service::{LoadedUser, open_in};

/// The answer to a captcha that is wrong, used or expired (HTTP 200, as Databunker answers it).
pub const CAPTCHA_ERROR: &str = "captcha-error";
/// The answer to a code that is wrong, used, expired or out of attempts.
pub const INVALID_CODE: &str = "The code is not valid or has expired";
/// Longest identity looked at.
const MAX_IDENTITY: usize = 256;

/// What a call answers: a value, the captcha error (HTTP 200), or an error.
enum Outcome {
    Done(Value),
    Captcha,
}

/// Answers `result`, after writing the call's event when its change did not carry it.
async fn finish(call: Option<Call>, result: ApiResult<Outcome>) -> Response {
    let response = match result {
        Ok(Outcome::Done(value)) => Reply(value).into_response(),
        Ok(Outcome::Captcha) => {
            let mut response =
                (StatusCode::OK, axum::Json(json!({"status": "error", "message": CAPTCHA_ERROR}))).into_response();
            response.extensions_mut().insert(ErrorMessage(CAPTCHA_ERROR.into()));
            response
        }
        Err(err) => err.into_response(),
    };
    write_event(call, response).await
}

/// A portal identity: an email address or a phone number, normalised as the user index is.
struct PortalIdentity {
    kind: IndexKind,
    normalised: String,
}

impl PortalIdentity {
    fn parse(mode: Option<Text>, identity: Option<Text>) -> ApiResult<PortalIdentity> {
        let mode = text(mode).map(|m| m.trim().to_owned()).unwrap_or_default();
        let kind = match mode.as_str() {
            "email" => IndexKind::Email,
            "phone" => IndexKind::Phone,
            "" => return Err(ApiError::bad_request("Missing API request parameters: mode")),
            _ => return Err(ApiError::bad_request("The mode parameter has an incorrect format")),
        };
        let identity = text(identity).unwrap_or_default();
        if identity.trim().is_empty() {
            return Err(ApiError::bad_request("Missing API request parameters: identity"));
        }
        let normalised = Some(identity)
            .filter(|i| i.len() <= MAX_IDENTITY)
            .and_then(|i| kind.normalise(&Value::String(i)))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::bad_request("The identity parameter has an incorrect format"))?;
        Ok(PortalIdentity { kind, normalised })
    }

    /// The keyed digest that names this identity in the portal's table and rate limits (never
    /// the identity itself).
    fn digest(&self, keys: &TenantKeys) -> IndexValue {
        keys.account_index("portal-identity", &format!("{}:{}", self.kind.name(), self.normalised))
    }
}

/// The keyed digest of a code sent for `identity`.
fn code_digest(keys: &TenantKeys, identity: &IndexValue, code: &str) -> IndexValue {
    keys.account_index("portal-code", &format!("{}:{code}", hex::encode(identity)))
}

/// A fresh six-digit code, uniform over 000000..=999999.
fn new_code() -> String {
    loop {
        let mut bytes = [0u8; 4];
        crate::crypto::random::fill(&mut bytes);
        let value = u32::from_le_bytes(bytes);
        // Rejection sampling: the last partial range of 10^6 would favour low codes.
        if value < u32::MAX - u32::MAX % 1_000_000 {
            return format!("{:06}", value % 1_000_000);
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct PreloginRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    /// The captcha's answer, as the person read it.
    code: Option<Text>,
    /// The captcha's id (`captchaid` of `CaptchaCreate`).
    captchacode: Option<Text>,
}

/// `UserPrelogin {mode, identity, code, captchacode}`.
pub(super) async fn prelogin(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    body: Result<Body<PreloginRequest>, ApiError>,
) -> Response {
    let client = client.map(|c| c.0);
    let mut call = None;
    let result = async {
        app.portal.address(client)?;
        let this = call.insert(Call::in_tenant(&app, "UserPrelogin", &headers, client).await?);
        this.refuse_if_blocked()?;
        let Body(req) = body?;
        let who = PortalIdentity::parse(req.mode, req.identity)?;
        let answer = text(req.code).unwrap_or_default();
        let captcha_id = text(req.captchacode).map(|c| c.trim().to_owned()).unwrap_or_default();
        if app.settings.portal.captcha && !captcha::check(&app, &this.keys, &captcha_id, &answer).await? {
            // A wrong captcha counts as a failed authentication of the address.
            if app.rates.auth_failed(client) {
                return Err(ApiError::TooManyRequests);
            }
            return Ok(Outcome::Captcha);
        }
        let identity = who.digest(&this.keys);
        app.portal.identity(&identity)?;
        // The answer does not wait for the lookup: it is the same, and as quick, whether or not
        // a user has the identity. The code is made and sent in the background, a few at a time
        // (beyond them a request is dropped, and logged).
        match SEND_JOBS.clone().try_acquire_owned() {
            Ok(turn) => {
                let mut job = this.clone();
                job.committed = false;
                tokio::spawn(async move {
                    let _turn = turn;
                    if let Err(err) = send_code(job, who, identity).await {
                        tracing::warn!(error = %err, "a portal login code could not be sent");
                    }
                });
            }
            Err(_) => tracing::warn!("portal login codes are asked for faster than they are sent: one dropped"),
        }
        Ok(Outcome::Done(json!({"result": "done"})))
    }
    .await;
    finish(call, result).await
}

/// Codes made and sent at once in the background.
static SEND_JOBS: LazyLock<Arc<tokio::sync::Semaphore>> = LazyLock::new(|| Arc::new(tokio::sync::Semaphore::new(8)));

/// The live user `who` names, opened, if there is one.
async fn find_user(call: &Call, who: &PortalIdentity) -> ApiResult<Option<LoadedUser>> {
    let idx = call.keys.index(who.kind, &who.normalised);
    let Some(row) = call.app.db.tenant(call.tenant).users().find(who.kind, &idx, call.now()).await? else {
        return Ok(None);
    };
    let user = open_in(&call.keys, row)?;
    let carried = user
        .profile
        .get(who.kind.name())
        .and_then(|value| who.kind.normalise(value))
        .is_some_and(|value| value == who.normalised);
    if !carried {
        crate::integrity::index_mismatch(call.tenant, who.kind.name());
        return Ok(None);
    }
    Ok(Some(user))
}

/// Issues a code for the user `who` names, if there is one, and sends it to the address or
/// number of their record.
async fn send_code(call: Call, who: PortalIdentity, identity: IndexValue) -> ApiResult<()> {
    let app = call.app.clone();
    let mail = app.settings.accounts.mail.clone();
    let webhook = app.settings.portal.sms_webhook.clone();
    let channel_ready = match who.kind {
        IndexKind::Email => mail.is_some(),
        _ => webhook.is_some(),
    };
    if !channel_ready {
        tracing::warn!(mode = who.kind.name(), "a portal login code was asked for, but none can be sent that way");
        return Ok(());
    }
    let Some(user) = find_user(&call, &who).await? else { return Ok(()) };
    let to = user.profile.get(who.kind.name()).and_then(|v| match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    });
    let Some(to) = to else { return Ok(()) };
    let code = new_code();
    let digest = code_digest(&call.keys, &identity, &code);
    let event =
        call.event(Some(&user.subject), 200, None, Some(&json!({"code": "issued", "channel": who.kind.name()})));
    let stored = NewCode {
        identity_idx: &identity,
        user_rid: &user.row.rid,
        digest: &digest,
        expires_at: call.now() + LIFETIME_SECS,
    };
    app.db.tenant(call.tenant).portal().issue_code(&stored, &event).await?;
    let tenant = crate::accounts::tenant_name(&app, call.tenant).await?;
    match (who.kind, mail, webhook) {
        (IndexKind::Email, Some(mail), _) => {
            let letter = crate::accounts::mail::login_code(&code, &tenant);
            crate::accounts::mail::send(&mail, &to, letter)
                .await
                .map_err(|err| ApiError::BadGateway(err.to_string().into()))
        }
        (IndexKind::Phone, _, Some(url)) => {
            let text = format!("Your login code: {code}. It can be used once, within 5 minutes.");
            super::sms::send(&url, &to, &text).await.map_err(|err| ApiError::BadGateway(err.to_string().into()))
        }
        _ => Ok(()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct LoginRequest {
    mode: Option<Text>,
    identity: Option<Text>,
    /// The code received (by mail or SMS alike).
    smscode: Option<Text>,
    /// Accepted for `smscode`.
    code: Option<Text>,
}

/// `UserLogin {mode, identity, smscode}` → `{xtoken, token, expiration}`.
pub(super) async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
    body: Result<Body<LoginRequest>, ApiError>,
) -> Response {
    let client = client.map(|c| c.0);
    let mut call = None;
    let result = async {
        app.portal.address(client)?;
        let this = call.insert(Call::in_tenant(&app, "UserLogin", &headers, client).await?);
        this.refuse_if_blocked()?;
        let Body(req) = body?;
        let who = PortalIdentity::parse(req.mode, req.identity)?;
        let given = text(req.smscode).or_else(|| text(req.code)).map(|c| c.trim().to_owned()).unwrap_or_default();
        if given.is_empty() {
            return Err(ApiError::bad_request("Missing API request parameters: smscode"));
        }
        let identity = who.digest(&this.keys);
        let well_formed = given.len() == 6 && given.bytes().all(|b| b.is_ascii_digit());
        let portal = app.db.tenant(this.tenant).portal();
        // The attempt is counted before the code is compared, so that attempts sent together
        // cannot outrun the limit; a malformed code is an attempt like any other.
        let Some(code) = portal.attempt_code(&identity, this.now(), MAX_ATTEMPTS).await? else {
            return Err(this.failed(ApiError::Forbidden(INVALID_CODE.into())));
        };
        let matches = well_formed && digests_match(&code.digest, &code_digest(&this.keys, &identity, &given));
        let user = match app.db.tenant(this.tenant).users().find_by_rid(&code.user_rid, this.now()).await? {
            Some(row) => open_in(&this.keys, row)?,
            None => return Err(this.failed(ApiError::Forbidden(INVALID_CODE.into()))),
        };
        if !matches {
            let event = this.event(Some(&user.subject), 403, Some(INVALID_CODE), None);
            app.audit.submit(event).await?;
            this.committed = true;
            return Err(this.failed(ApiError::Forbidden(INVALID_CODE.into())));
        }
        let max = app.settings.max_xtoken_retention;
        let expires_at = this.now() + XTOKEN_DEFAULT_SECS.min(max);
        let xtoken = random_uuid_string();
        let id = random_uuid_string();
        let secret_digest = token_digest(&xtoken);
        let token = NewXToken {
            id: &id,
            digest: &secret_digest,
            kind: "user",
            role_id: None,
            user_rid: Some(&user.row.rid),
            created_at: this.now(),
            expires_at,
        };
        let event = this.event(Some(&user.subject), 200, None, Some(&json!({"tokenid": id, "expiration": expires_at})));
        match portal.redeem_code(&identity, &code.digest, &token, &event).await {
            Ok(()) => this.committed = true,
            // Taken by a login sent together with this one, or the user went meanwhile.
            Err(StoreError::NotFound) => return Err(this.failed(ApiError::Forbidden(INVALID_CODE.into()))),
            Err(err) => return Err(err.into()),
        }
        Ok(Outcome::Done(json!({"xtoken": xtoken, "token": user.subject.token, "expiration": expires_at})))
    }
    .await;
    finish(call, result).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..1000 {
            let code = new_code();
            assert_eq!(code.len(), 6);
            assert!(code.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn only_email_and_phone_are_modes() {
        let parse = |mode: &str, identity: &str| {
            PortalIdentity::parse(Some(Text(mode.into())), Some(Text(identity.into()))).map(|i| i.normalised)
        };
        assert_eq!(parse("email", " A@Example.COM ").ok().as_deref(), Some("a@example.com"));
        assert!(parse("phone", "+44 20 7946 0000").is_ok());
        for mode in ["login", "token", "custom", "EMAIL", "x"] {
            assert!(parse(mode, "a@example.com").is_err(), "{mode}");
        }
        assert!(parse("email", &"a".repeat(MAX_IDENTITY + 1)).is_err());
    }
}
