//! Profile changes: RFC 6902 patches (`UserPatch`, `UserPatchRequest`) and RFC 7386 merges
//! (`UserUpdate`) applied to stored profiles, then indexed as the vault indexes them.
//!
//! Input: the profile as JSON on the first line, the patch (or merge document) as JSON after it.
//! Nothing may panic; a change the vault accepts leaves a JSON object that it can seal and read
//! back; a refused one answers 400 with a message that names no value.

#![no_main]

use bunker::crypto::IndexKind;
use bunker::search::grams;
use bunker::users::record::{StoredUser, md5_hex};
use bunker::users::service;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The vault's default limits.
static LIMITS: std::sync::LazyLock<bunker::state::Settings> = std::sync::LazyLock::new(Default::default);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let (Ok(profile), Ok(patch)) = (serde_json::from_str::<Value>(first), serde_json::from_str::<Value>(rest)) else {
        return;
    };

    // UserUpdate: a merge of an object into an object is an object.
    if profile.is_object() && patch.is_object() {
        let merged = service::merged(&profile, &patch);
        assert!(merged.is_object());
        stored(merged);
    }

    let operations = match service::required_patch(Some(&patch), LIMITS.max_patch_operations) {
        Ok(operations) => operations,
        Err(err) => {
            assert_eq!(err.status().as_u16(), 400);
            assert_eq!(err.to_string(), "The patch parameter has an incorrect format");
            return;
        }
    };
    match service::patched(&profile, &operations, LIMITS.max_record_size) {
        Ok(result) => match service::check_changed(&result, LIMITS.max_record_size) {
            // What `users::service::change` then seals.
            Ok(()) => stored(result),
            Err(err) => {
                assert!(!result.is_object());
                assert_eq!(err.status().as_u16(), 400);
            }
        },
        Err(err) => {
            assert_eq!(err.status().as_u16(), 400);
            let message = err.to_string();
            let index =
                message.strip_prefix("Failed to apply the patch: operation ").and_then(|r| r.strip_suffix(" failed"));
            assert!(index.is_some_and(|i| i.parse::<usize>().is_ok_and(|i| i < operations.0.len())), "{message}");
        }
    }
});

/// A profile the vault accepted: indexed, searchable, and readable again once sealed.
fn stored(profile: Value) {
    for kind in IndexKind::PROFILE {
        if let Some(normalised) = profile.get(kind.name()).and_then(|value| kind.normalise(value)) {
            for (_, part) in grams::parts(kind, &normalised) {
                let _ = grams::trigrams(&part);
            }
        }
    }
    let _ = md5_hex(&profile);
    let user = StoredUser { token: "00000000-0000-4000-8000-000000000000".to_owned(), profile };
    let plain = serde_json::to_vec(&user).expect("a profile serialises");
    let back: StoredUser = serde_json::from_slice(&plain).expect("a stored profile reads back");
    assert_eq!(back.profile, user.profile);
}
