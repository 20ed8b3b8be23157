//! Codes for phone numbers, through the SMS webhook the vault is configured with
//! (`BUNKER_SMS_WEBHOOK_URL`): an HTTP POST of `{"to": number, "text": message}` as JSON, which
//! any SMS gateway can be fronted with. The URL is the operator's, not a caller's: it is not
//! held to the connectors' host policy.

use std::time::Duration;

/// Longest wait for the webhook to answer.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a message was not sent (never the number or the text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SmsFailed {
    /// The webhook could not be reached, took too long or did not answer 2xx.
    #[error("the SMS webhook did not take the message")]
    Webhook,
}

/// Posts `text` for `to` to the webhook at `url`.
pub async fn send(url: &str, to: &str, text: &str) -> Result<(), SmsFailed> {
    let client = reqwest::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|_| SmsFailed::Webhook)?;
    let body = serde_json::to_vec(&serde_json::json!({"to": to, "text": text})).map_err(|_| SmsFailed::Webhook)?;
    let answer = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .map_err(|_| SmsFailed::Webhook)?;
    if answer.status().is_success() {
        Ok(())
    } else {
        tracing::warn!(status = answer.status().as_u16(), "the SMS webhook refused a message");
        Err(SmsFailed::Webhook)
    }
}
