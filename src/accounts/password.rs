//! Passwords: what a new one must be, and argon2id hashing (OWASP's minimum: m = 19 MiB, t = 2,
//! p = 1), computed off the async runtime, a few at a time.

use std::sync::LazyLock;
use std::time::Duration;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::http::{ApiError, ApiResult};

/// Shortest and longest password, in characters.
pub const MIN_CHARS: usize = 12;
/// See [`MIN_CHARS`].
pub const MAX_CHARS: usize = 128;

/// Hashes computed at once: each holds 19 MiB, so this bounds their memory (and CPU).
const AT_ONCE: usize = 4;
/// How long a request waits for its turn before it is refused (503).
const WAIT: Duration = Duration::from_secs(5);

static TURNS: Semaphore = Semaphore::const_new(AT_ONCE);

/// A hash verified when no account matched, so that an unknown username costs as much time as
/// a wrong password.
static DECOY: LazyLock<String> = LazyLock::new(|| hash_now("decoy password of no account"));

const REFUSED: &str = "The password must be 12 to 128 characters and not contain the username";

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks a new password: 12 to 128 characters, not containing the username.
pub fn acceptable(password: &str, username: &str) -> ApiResult<()> {
    let chars = password.chars().count();
    let contains = !username.is_empty() && password.to_lowercase().contains(&username.to_lowercase());
    if !(MIN_CHARS..=MAX_CHARS).contains(&chars) || contains {
        return Err(ApiError::bad_request(REFUSED));
    }
    Ok(())
}

fn hash_now(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2().hash_password(password.as_bytes(), &salt).map(|hash| hash.to_string()).unwrap_or_default()
}

fn verify_now(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// Runs `work` on the blocking pool once a turn is free; 503 when none frees up in time.
async fn in_turn<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> ApiResult<T> {
    let _turn = tokio::time::timeout(WAIT, TURNS.acquire())
        .await
        .map_err(|_| ApiError::Overloaded)?
        .map_err(|_| ApiError::Overloaded)?;
    tokio::task::spawn_blocking(work).await.map_err(|_| ApiError::Internal("password hashing failed".into()))
}

/// The argon2id hash (PHC string) of a new password.
pub async fn hash(password: String) -> ApiResult<String> {
    let hashed = in_turn(move || hash_now(&password)).await?;
    if hashed.is_empty() {
        return Err(ApiError::Internal("password hashing failed".into()));
    }
    Ok(hashed)
}

/// True when `password` matches `hash`; with no hash (no such account, or not activated) a
/// decoy is verified so that the answer takes as long, and it is false.
pub async fn verify(password: String, hash: Option<String>) -> ApiResult<bool> {
    in_turn(move || match hash {
        Some(hash) => verify_now(&password, &hash),
        None => {
            verify_now(&password, &DECOY);
            false
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_owasps_parameters_and_verify() {
        let hash = hash_now("correct horse battery");
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(verify_now("correct horse battery", &hash));
        assert!(!verify_now("correct horse batterY", &hash));
        assert!(!verify_now("anything", "not a hash"));
    }

    #[test]
    fn new_passwords_have_a_length_and_leave_out_the_username() {
        assert!(acceptable("twelve chars", "alice").is_ok());
        assert!(acceptable("eleven char", "alice").is_err());
        assert!(acceptable(&"é".repeat(128), "alice").is_ok());
        assert!(acceptable(&"é".repeat(129), "alice").is_err());
        assert!(acceptable("my name is ALICE!", "alice").is_err());
    }
}
