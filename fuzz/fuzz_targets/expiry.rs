//! Time values: `slidingtime` / `finaltime` request values ("30d", "90 min", timestamps, ISO
//! dates, RFC 3339) and the configured maxima ("10y").
//!
//! The input is read as text: as a configuration maximum, as a JSON string value, and as a JSON
//! value of its own when it parses as one. Nothing may panic; accepted values keep the promises
//! the rest of the vault relies on (positive periods, capped at the maximum, a future end).

#![no_main]

use bunker::expiry::{self, Expiry, ExpiryError, TimeSpec};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// 2026-01-01T00:00:00Z: a fixed "now" keeps runs reproducible.
const NOW: i64 = 1_767_225_600;

/// Maxima as configured: a second, an hour, the 10-year default and the largest possible.
const MAXIMA: [i64; 4] = [1, 3_600, 3_650 * 86_400, i64::MAX];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match expiry::parse_max(text) {
        Ok(secs) => assert!(secs > 0, "parse_max({text:?}) = {secs}"),
        Err(err) => assert_eq!(err, ExpiryError::Format("max_expiration")),
    }
    check(&Value::String(text.to_owned()));
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        check(&value);
    }
});

fn check(value: &Value) {
    match expiry::parse("finaltime", value, NOW) {
        Ok(Some(TimeSpec::Relative(secs))) => assert!(secs > 0, "{value}: relative {secs}"),
        Ok(Some(TimeSpec::Absolute(_))) | Ok(None) => {}
        Err(err) => assert_eq!(err, ExpiryError::Format("finaltime"), "{value}"),
    }
    for max in MAXIMA {
        let expiry = match Expiry::from_request(Some(value), Some(value), NOW, max) {
            Ok(expiry) => expiry,
            Err(err) => {
                // Errors name the field, never the value.
                let message = err.to_string();
                assert!(
                    [
                        "The slidingtime parameter has an incorrect format",
                        "The finaltime parameter has an incorrect format",
                        "The finaltime parameter is in the past",
                    ]
                    .contains(&message.as_str()),
                    "{message}"
                );
                continue;
            }
        };
        if let Some(sliding) = expiry.sliding {
            assert!(sliding > 0 && sliding <= max, "{value}: sliding {sliding} with max {max}");
        }
        if let Some(final_at) = expiry.final_at {
            assert!(final_at > NOW && final_at <= NOW.saturating_add(max), "{value}: final {final_at} with max {max}");
        }
        let lifetime = expiry.lifetime(NOW);
        if let Some(expires_at) = lifetime.expires_at {
            assert!(expires_at > NOW, "{value}: expires at {expires_at}");
        }
        // Accesses later on, up to and past the end, extend without overflow and never backwards.
        for later in [NOW, NOW + 61, NOW.saturating_add(max / 2), NOW.saturating_add(max), i64::MAX] {
            if let (Some(moved), Some(current)) = (lifetime.extension(later), lifetime.expires_at) {
                assert!(moved > current, "{value}: extension at {later} moves {current} to {moved}");
                if let Some(final_at) = expiry.final_at {
                    assert!(moved <= final_at, "{value}: extension past the final time");
                }
            }
        }
    }
}
