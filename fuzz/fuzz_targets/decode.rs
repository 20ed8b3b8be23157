//! Request bodies: the `Body` extractor's steps (`parse_object`, `request_metadata`) and the
//! decoding into the request structs of several operations, with the lenient `Text`, `Int` and
//! boolean fields that clients fill with numbers, strings and `null`s.
//!
//! Input: the raw body. Nothing may panic; a refused body is a 400 (404 for an identity that
//! names no one) whose message names a parameter, never a value.

#![no_main]

use bunker::fuzzing::{OPERATIONS, decode_request};
use bunker::http::ApiError;
use bunker::http::body::{parse_object, take_metadata};
use bunker::http::lenient::{Int, Text, opt_bool, opt_i64, opt_string};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let mut map = match parse_object(data) {
        Ok(map) => map,
        Err(err) => {
            assert_eq!((err.status().as_u16(), err.to_string().as_str()), (400, "Failed to decode the request body"));
            return;
        }
    };
    assert!(map.values().all(|value| !value.is_null()), "top-level nulls are absent");
    match take_metadata(&mut map) {
        Ok(metadata) => assert!(metadata.is_none_or(|m| m.is_object())),
        Err(err) => {
            assert_eq!(err.to_string(), "The request_metadata parameter has an incorrect format");
            return;
        }
    }
    assert!(!map.contains_key("request_metadata"));

    for value in map.values() {
        lenient(value);
    }
    for operation in OPERATIONS {
        if let Err(err) = decode_request(operation, data) {
            check_error(operation, &err);
        }
    }
});

/// The lenient decoders agree with each other on every value.
fn lenient(value: &Value) {
    let text = serde_json::from_value::<Text>(value.clone()).ok();
    let string = opt_string(value.clone()).ok().flatten();
    assert_eq!(text.map(|t| t.0), string);
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => assert!(string.is_some()),
        _ => assert!(string.is_none()),
    }

    let int = serde_json::from_value::<Int>(value.clone()).ok();
    let i = opt_i64(value.clone());
    match (&int, &i) {
        (Some(Int(a)), Ok(Some(b))) => assert_eq!(a, b),
        // A blank string is an absent integer.
        (None, Ok(None)) => assert!(value.as_str().is_some_and(|s| s.trim().is_empty())),
        (None, Err(_)) => {}
        _ => panic!("Int and opt_i64 disagree on {value}: {int:?} / {i:?}"),
    }
    if let Value::String(s) = value
        && let Ok(n) = s.trim().parse::<i64>()
    {
        assert_eq!(int, Some(Int(n)));
    }

    let _ = opt_bool(value.clone());
}

/// Refusals are 400 (404 for an address that cannot name a user) and name only parameters.
fn check_error(operation: &str, err: &ApiError) {
    let message = err.to_string();
    let status = err.status().as_u16();
    if status == 404 {
        assert_eq!(message, "The user record was not found", "{operation}");
        return;
    }
    assert_eq!(status, 400, "{operation}: {message}");
    let named = message
        .strip_prefix("Missing API request parameters: ")
        .or_else(|| message.strip_prefix("The ").and_then(|m| m.strip_suffix(" parameter has an incorrect format")));
    match named {
        Some(path) => assert!(
            !path.is_empty()
                && path.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | ',' | ' ')),
            "{operation}: {message}"
        ),
        None => assert_eq!(message, "Bad UUID", "{operation}"),
    }
}
