//! Invitations and password resets by mail, through the SMTP server the vault is configured
//! with (`BUNKER_SMTP_URL`). Without one, the administrator hands the tokens over.

use std::time::Duration;

use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// Longest wait for the mail server to take a message.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Where mail goes out.
#[derive(Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// The SMTP server, as a lettre URL: `smtp://host:25`, `smtps://user:password@host`,
    /// `smtp://host:587?tls=required`.
    pub url: String,
    /// The sender address.
    pub from: String,
    /// The console's address, for the links in messages.
    pub console_url: String,
}

impl std::fmt::Debug for MailSettings {
    // The URL may carry the server's password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MailSettings")
            .field("url", &"[redacted]")
            .field("from", &self.from)
            .field("console_url", &self.console_url)
            .finish()
    }
}

/// Why a message was not sent (never the address or the token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MailFailed {
    /// The recipient or sender is not an address lettre takes.
    #[error("the address is not one mail can be sent to")]
    Address,
    /// The server could not be reached, refused the message, or took too long.
    #[error("the mail server did not take the message")]
    Server,
}

/// One message: its subject and text.
#[derive(Debug, Clone)]
pub struct Letter {
    /// Subject line.
    pub subject: String,
    /// Plain text body.
    pub text: String,
}

/// The invitation of `username` to activate an account with `token`.
pub fn invitation(settings: &MailSettings, username: &str, token: &str, tenant: &str) -> Letter {
    let base = settings.console_url.trim_end_matches('/');
    Letter {
        subject: "Your Bunker administrator account".into(),
        text: format!(
            "An administrator account was created for you ({username}, tenant {tenant}).\r\n\r\n\
             Activate it within 72 hours and choose your password at:\r\n{base}/console/activate?token={token}&tenant={tenant}\r\n\r\n\
             Activation token: {token}\r\n"
        ),
    }
}

/// A password reset link for `username`.
pub fn reset(settings: &MailSettings, username: &str, token: &str, tenant: &str) -> Letter {
    let base = settings.console_url.trim_end_matches('/');
    Letter {
        subject: "Reset your Bunker password".into(),
        text: format!(
            "A password reset was asked for your administrator account ({username}, tenant {tenant}).\r\n\r\n\
             Choose a new password within an hour at:\r\n{base}/console/reset?token={token}&tenant={tenant}\r\n\r\n\
             Reset token: {token}\r\n\r\nIf you did not ask for it, ignore this message.\r\n"
        ),
    }
}

/// Sends `letter` to `to`.
pub async fn send(settings: &MailSettings, to: &str, letter: Letter) -> Result<(), MailFailed> {
    let from: Mailbox = settings.from.parse().map_err(|_| MailFailed::Address)?;
    let to: Mailbox = to.parse().map_err(|_| MailFailed::Address)?;
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(letter.subject)
        .body(letter.text)
        .map_err(|_| MailFailed::Address)?;
    let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&settings.url)
        .map_err(|_| MailFailed::Server)?
        .timeout(Some(TIMEOUT))
        .build();
    match tokio::time::timeout(TIMEOUT, transport.send(message)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => {
            tracing::warn!(permanent = err.is_permanent(), "the mail server did not take a message");
            Err(MailFailed::Server)
        }
        Err(_) => {
            tracing::warn!("the mail server did not answer in time");
            Err(MailFailed::Server)
        }
    }
}

/// A data subject's one-time portal login code (short lines: the code stays readable as is).
pub fn login_code(code: &str, tenant: &str) -> Letter {
    Letter {
        subject: "Your login code".into(),
        text: format!(
            "Your one-time code to see your personal data\r\n(tenant {tenant}):\r\n\r\n{code}\r\n\r\n\
             It can be used once, within 5 minutes.\r\n\
             If you did not ask for it, ignore this message.\r\n"
        ),
    }
}
