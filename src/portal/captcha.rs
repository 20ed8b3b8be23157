//! `CaptchaCreate`: a captcha id and its image (PNG, base64). The answer is kept as a keyed
//! digest under the captcha's id, for five minutes; `UserPrelogin` takes it, right or wrong.

use axum::Extension;
use axum::extract::State;
use axum::http::HeaderMap;
use base64::Engine as _;
use serde_json::{Value, json};

use super::{LIFETIME_SECS, MAX_LIVE_CAPTCHAS};
use crate::crypto::TenantKeys;
use crate::crypto::index::IndexValue;
use crate::crypto::secrets::random_uuid_string;
use crate::http::rate::ClientAddr;
use crate::http::{ApiError, ApiResult, Reply};
use crate::state::AppState;

/// Longest captcha id or answer looked at.
pub const MAX_FIELD: usize = 64;

/// The keyed digest of a captcha's answer (case does not matter: some letters look alike).
pub fn answer_digest(keys: &TenantKeys, id: &str, answer: &str) -> IndexValue {
    keys.account_index("portal-captcha", &format!("{id}:{}", answer.trim().to_lowercase()))
}

/// A fresh captcha: its answer and its PNG image.
fn draw() -> Option<(String, Vec<u8>)> {
    ::captcha::generate(::captcha::Difficulty::Easy).as_tuple()
}

/// `CaptchaCreate`: no parameters (a body, if any, is not read).
pub async fn create(
    State(app): State<AppState>,
    headers: HeaderMap,
    client: Option<Extension<ClientAddr>>,
) -> ApiResult<Reply<Value>> {
    app.portal.address(client.map(|c| c.0))?;
    let tenant = crate::shared::routes::tenant(&app, &headers).await?;
    let keys = app.tenant_keys(tenant).await?;
    // Drawing takes a few milliseconds of CPU: off the request threads.
    let (answer, png) = tokio::task::spawn_blocking(draw)
        .await
        .map_err(|_| ApiError::Internal("the captcha could not be drawn".into()))?
        .ok_or_else(|| ApiError::Internal("the captcha could not be drawn".into()))?;
    let id = random_uuid_string();
    let digest = answer_digest(&keys, &id, &answer);
    let now = app.clock.now();
    app.db.tenant(tenant).portal().insert_captcha(&id, &digest, now, now + LIFETIME_SECS, MAX_LIVE_CAPTCHAS).await?;
    let image = base64::engine::general_purpose::STANDARD.encode(png);
    Ok(Reply(json!({"captchaid": id, "image": image, "expiration": now + LIFETIME_SECS})))
}

/// Whether `answer` is the answer of captcha `id`; the captcha is used up either way.
pub async fn check(app: &AppState, keys: &TenantKeys, id: &str, answer: &str) -> ApiResult<bool> {
    if id.is_empty() || id.len() > MAX_FIELD || answer.is_empty() || answer.len() > MAX_FIELD {
        return Ok(false);
    }
    let Some((stored, expires_at)) = app.db.tenant(keys.tenant()).portal().take_captcha(id).await? else {
        return Ok(false);
    };
    let digest = answer_digest(keys, id, answer);
    Ok(crate::crypto::secrets::digests_match(&stored, &digest) && expires_at > app.clock.now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captcha_is_a_png_with_a_short_answer() {
        let (answer, png) = draw().expect("drawn");
        assert!((4..=6).contains(&answer.chars().count()), "{answer}");
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"));
    }
}
