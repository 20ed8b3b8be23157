//! The one body extractor: tolerant of what the official clients send.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::context::RequestContext;
use super::error::ApiError;

/// A decoded JSON body.
///
/// An empty body is `{}`; top-level `null`s are removed (null means absent); unknown keys are
/// ignored; `request_metadata` is handed to the audit event. Errors never echo request values.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let context = req.extensions().get::<RequestContext>().cloned();
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::bad_request("Failed to decode the request body")
            }
        })?;
        let mut map = parse_object(&bytes)?;
        if let (Some(context), Some(metadata)) = (context, take_metadata(&mut map)?) {
            context.set_request_metadata(metadata);
        }
        decode(map).map(Body)
    }
}

/// Removes `request_metadata` from a decoded body: `None` when absent, 400 when not an object.
pub fn take_metadata(map: &mut Map<String, Value>) -> Result<Option<Value>, ApiError> {
    match map.remove("request_metadata") {
        Some(metadata) if !metadata.is_object() => {
            Err(ApiError::bad_request("The request_metadata parameter has an incorrect format"))
        }
        metadata => Ok(metadata),
    }
}

/// Deepest nesting serde_json reads (its recursion limit): a body, and anything the vault stores
/// and reads back, is at most this many arrays and objects deep.
pub const MAX_DEPTH: usize = 127;

/// How many arrays and objects deep `value` is (0 for a scalar).
pub fn depth(value: &Value) -> usize {
    // Iterative: a value built by the vault (a patched profile) may be deeper than a parsed one.
    let mut deepest = 0;
    let mut stack = vec![(value, 1)];
    while let Some((value, level)) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|child| (child, level + 1))),
            Value::Object(map) => stack.extend(map.values().map(|child| (child, level + 1))),
            _ => continue,
        }
        deepest = deepest.max(level);
    }
    deepest
}

/// Parses the body into a JSON object without its top-level nulls.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(mut map)) => {
            map.retain(|_, value| !value.is_null());
            Ok(map)
        }
        _ => Err(ApiError::bad_request("Failed to decode the request body")),
    }
}

/// Decodes a request struct, naming the offending parameter (never its value) on failure.
pub fn decode<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner().to_string();
        if let Some(field) = inner.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
            ApiError::bad_request(format!("Missing API request parameters: {field}"))
        } else {
            ApiError::bad_request(format!("The {path} parameter has an incorrect format"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Probe {
        #[serde(default)]
        limit: Option<i64>,
        name: String,
    }

    #[test]
    fn empty_body_is_an_empty_object_and_nulls_are_absent() {
        assert!(parse_object(b"").expect("empty").is_empty());
        assert!(parse_object(b"  \n").expect("blank").is_empty());
        let map = parse_object(br#"{"a":null,"b":1}"#).expect("object");
        assert_eq!(map.len(), 1);
        assert!(parse_object(b"[1]").is_err());
        assert!(parse_object(b"{not json").is_err());
    }

    fn nested(levels: usize) -> Vec<u8> {
        format!("{}1{}", "[".repeat(levels), "]".repeat(levels)).into_bytes()
    }

    #[test]
    fn max_depth_is_what_serde_json_reads() {
        let deepest = serde_json::from_slice::<Value>(&nested(MAX_DEPTH)).expect("at the limit");
        assert_eq!(depth(&deepest), MAX_DEPTH);
        assert!(serde_json::from_slice::<Value>(&nested(MAX_DEPTH + 1)).is_err());
        assert_eq!(depth(&serde_json::json!({"a": [1, {"b": {}}], "c": 2})), 4);
        assert_eq!(depth(&serde_json::json!("text")), 0);
    }

    #[test]
    fn errors_name_the_parameter_but_not_the_value() {
        let missing = decode::<Probe>(Map::new()).expect_err("missing");
        assert_eq!(missing.to_string(), "Missing API request parameters: name");
        let wrong = parse_object(br#"{"name":"n","limit":"alice@example.com"}"#).expect("object");
        let err = decode::<Probe>(wrong).expect_err("wrong type").to_string();
        assert_eq!(err, "The limit parameter has an incorrect format");
        let ok = parse_object(br#"{"name":"n","limit":3,"unknown":true}"#).expect("object");
        let probe = decode::<Probe>(ok).expect("unknown keys ignored");
        assert_eq!((probe.name.as_str(), probe.limit), ("n", Some(3)));
    }

    #[test]
    fn numbers_read_back_as_they_were_sealed() {
        // Found by the `patch` fuzz target (fuzz/seeds/patch/float_roundtrip): the vault writes
        // 9.718333333313333e42 and serde_json's default float parser read it back one unit in the
        // last place lower; the float_roundtrip feature parses it exactly.
        for body in [
            &br#"{"om":9718333333313333333333333333333333333333333}"#[..],
            br#"{"om":9.718333333313333e42}"#,
            br#"{"a":0.1,"b":-2.2250738585072014e-308,"c":1.7976931348623157e308,"d":123456.789e-3}"#,
        ] {
            let map = parse_object(body).expect("object");
            let sealed = serde_json::to_vec(&map).expect("serialises");
            let opened: Map<String, Value> = serde_json::from_slice(&sealed).expect("reads back");
            assert_eq!(opened, map, "{}", String::from_utf8_lossy(&sealed));
        }
        assert_eq!(parse_object(br#"{"om":9.718333333313333e42}"#).expect("object")["om"], 9.718333333313333e42);
    }
}
