//! The optional second factor: RFC 6238 one-time codes (SHA-1, six digits, 30-second steps, one
//! step of clock skew either way), as authenticator apps make them.

use totp_rs::{Algorithm, Secret, TOTP};

const DIGITS: usize = 6;
const SKEW: u8 = 1;
const STEP: u64 = 30;

/// A new random secret (160 bits), base32 as authenticator apps take it.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    crate::crypto::random::fill(&mut bytes);
    match Secret::Raw(bytes.to_vec()).to_encoded() {
        Secret::Encoded(text) => text,
        Secret::Raw(_) => String::new(),
    }
}

/// The `otpauth://` address an authenticator app scans for `username` of `tenant`.
pub fn address(secret: &str, username: &str, tenant: &str) -> String {
    let label = format!("Bunker {tenant}:{username}");
    format!(
        "otpauth://totp/{}?secret={secret}&issuer=Bunker&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        encode(&label)
    )
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The time step (unix seconds / 30) whose code `code` is, if it is the secret's code at `now`
/// or one step either side. A login records the step, so that a code is used once.
pub fn step_of(secret: &str, code: &str, now: i64) -> Option<i64> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().ok()?;
    let totp = TOTP::new(Algorithm::SHA1, DIGITS, SKEW, STEP, bytes).ok()?;
    let now = u64::try_from(now).ok()?;
    let step = now / STEP;
    let mut found = None;
    for candidate in [step.saturating_sub(1), step, step + 1] {
        let expected = totp.generate(candidate * STEP);
        if bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), code.as_bytes())) {
            found = i64::try_from(candidate).ok();
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_now_and_the_steps_beside_pass_with_their_step_others_do_not() {
        let secret = new_secret();
        assert_eq!(secret.len(), 32);
        let bytes = Secret::Encoded(secret.clone()).to_bytes().expect("base32");
        let totp = TOTP::new(Algorithm::SHA1, DIGITS, SKEW, STEP, bytes).expect("totp");
        let now = 1_800_000_000;
        assert_eq!(step_of(&secret, &totp.generate(now as u64), now), Some(now / 30));
        assert_eq!(step_of(&secret, &totp.generate(now as u64 + 30), now), Some(now / 30 + 1));
        assert_eq!(step_of(&secret, &totp.generate(now as u64 - 30), now), Some(now / 30 - 1));
        assert_eq!(step_of(&secret, &totp.generate(now as u64 + 90), now), None);
        assert_eq!(step_of(&secret, "12345", now), None);
        assert_eq!(step_of(&secret, "abcdef", now), None);
    }

    #[test]
    fn the_address_names_the_account_and_encodes_it() {
        let url = address("ABC", "ann@example.com", "main");
        assert_eq!(
            url,
            "otpauth://totp/Bunker%20main%3Aann%40example.com?secret=ABC&issuer=Bunker&algorithm=SHA1&digits=6&period=30"
        );
    }
}
