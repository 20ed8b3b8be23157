//! Tenant names: what `X-Bunker-Tenant` carries and `TenantCreate` accepts.

use crate::http::ApiError;

/// Shortest and longest name.
const LENGTH: std::ops::RangeInclusive<usize> = 2..=64;

/// A tenant name: 2–64 lower-case ASCII letters, digits and hyphens, neither first nor last a
/// hyphen (it is also a host name label, as the vendor's sub-domain selection uses it).
pub fn check(name: &str) -> Result<&str, ApiError> {
    let valid = LENGTH.contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(name)
    } else {
        Err(ApiError::bad_request(
            "The tenant name must be 2 to 64 lower-case letters, digits and hyphens, not starting or ending with a hyphen",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn names() {
        for good in ["acme", "acme-corp", "a1", "subaccount-001", &"x".repeat(64)] {
            assert!(check(good).is_ok(), "{good}");
        }
        for bad in ["", "a", "Acme", "my company", "-acme", "acme-", "ac_me", "ácme", "#5", &"x".repeat(65)] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
