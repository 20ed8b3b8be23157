//! The one body extractor: tolerant of what the official clients send, and never a tree first.
//!
//! A body is read into bytes (within the operation's limit, see [`super::limits`]) and decoded
//! straight into the operation's request struct: the top-level object is split into its members,
//! each kept as its raw text, and each member is decoded into its field. A member the struct
//! does not name is skipped without being built; nothing becomes a `serde_json::Value` unless the
//! struct's field is one. So a request costs its bytes plus what its fields hold.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::{DeserializeOwned, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::context::RequestContext;
use super::error::ApiError;
use super::limits::Admission;

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
        let bytes = match req.extensions().get::<Admission>().cloned() {
            Some(admission) => admission.read(req.into_body()).await?,
            None => Bytes::from_request(req, state).await.map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge
                } else {
                    ApiError::bad_request("Failed to decode the request body")
                }
            })?,
        };
        let (request, metadata) = decode_body(&bytes)?;
        if let (Some(context), Some(metadata)) = (context, metadata) {
            context.set_request_metadata(metadata);
        }
        Ok(Body(request))
    }
}

/// Decodes a body into a request struct and its `request_metadata` (if any), as [`Body`] does.
pub fn decode_body<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, Option<Value>), ApiError> {
    let mut members = Members::parse(bytes)?;
    let metadata = members.take("request_metadata").map(metadata).transpose()?;
    Ok((members.decode()?, metadata))
}

/// `request_metadata`: an object, kept for the audit event.
fn metadata(raw: &RawValue) -> Result<Value, ApiError> {
    match serde_json::from_str::<Value>(raw.get()) {
        Ok(metadata @ Value::Object(_)) => Ok(metadata),
        _ => Err(ApiError::bad_request("The request_metadata parameter has an incorrect format")),
    }
}

/// The members of a top-level JSON object, each as its raw text: the last of duplicate keys
/// wins and `null` members are absent, as when the object is read as a map.
#[derive(Debug)]
pub struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'a> Members<'a> {
    /// Splits a body into its members; an empty or blank body has none. Anything but a JSON
    /// object is a 400.
    pub fn parse(bytes: &'a [u8]) -> Result<Members<'a>, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Members(Vec::new()));
        }
        let Ok(MembersSeed(mut members)) = serde_json::from_slice::<MembersSeed<'a>>(bytes) else {
            return Err(ApiError::bad_request("Failed to decode the request body"));
        };
        // Last occurrence wins: keep each key's last member, in order of those last members.
        let mut seen = HashSet::with_capacity(members.len());
        members.reverse();
        members.retain(|(key, _)| seen.insert(key.clone()));
        members.reverse();
        members.retain(|(_, raw)| raw.get() != "null");
        Ok(Members(members))
    }

    /// Removes a member, answering its raw text.
    pub fn take(&mut self, key: &str) -> Option<&'a RawValue> {
        let position = self.0.iter().position(|(name, _)| name == key)?;
        Some(self.0.remove(position).1)
    }

    /// Decodes the members into a request struct, naming the offending parameter (never its
    /// value) on failure.
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, ApiError> {
        let members = serde::de::value::MapDeserializer::<_, serde_json::Error>::new(self.0.into_iter());
        serde_path_to_error::deserialize(members).map_err(parameter_error)
    }
}

/// The members of one record of a bulk call, if it is a JSON object.
pub fn record_object(record: &RawValue) -> Option<Members<'_>> {
    record.get().starts_with('{').then(|| Members::parse(record.get().as_bytes()).ok()).flatten()
}

/// The elements of an array parameter of a bulk call (`records`, `users`), each as its own raw
/// text: at most `max` of them, counted while the array is read, so that a body of millions of
/// tiny elements (`[0,0,…]`) is refused before the vault holds millions of anything. 400 when
/// the parameter is not an array or has more than `max` elements.
pub fn elements(array: &RawValue, max: usize, name: &str) -> Result<Vec<Box<RawValue>>, ApiError> {
    let too_many = Cell::new(false);
    let mut deserializer = serde_json::Deserializer::from_str(array.get());
    let borrowed = deserializer
        .deserialize_seq(Elements { max, too_many: &too_many })
        .and_then(|elements| deserializer.end().map(|()| elements));
    match borrowed {
        Ok(elements) => Ok(elements.into_iter().map(RawValue::to_owned).collect()),
        Err(_) if too_many.get() => {
            Err(ApiError::bad_request(format!("The {name} parameter has more than {max} entries")))
        }
        Err(_) => Err(ApiError::bad_request(format!("The {name} parameter has an incorrect format"))),
    }
}

/// Decodes element `index` of the array parameter `name` (see [`elements`]), naming the
/// offending parameter as `name[index].field` (never its value) on failure.
pub fn decode_element<T: DeserializeOwned>(element: &RawValue, name: &str, index: usize) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_str(element.get());
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        match path.as_str() {
            "." => ApiError::bad_request(format!("The {name}[{index}] parameter has an incorrect format")),
            field => ApiError::bad_request(format!("The {name}[{index}].{field} parameter has an incorrect format")),
        }
    })
}

/// Reads an array as its elements' raw texts, borrowing from it, stopping after `max`.
struct Elements<'c> {
    max: usize,
    too_many: &'c Cell<bool>,
}

impl<'de> Visitor<'de> for Elements<'_> {
    type Value = Vec<&'de RawValue>;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut elements = Vec::new();
        while let Some(element) = seq.next_element::<&'de RawValue>()? {
            if elements.len() == self.max {
                self.too_many.set(true);
                return Err(serde::de::Error::custom("too many elements"));
            }
            elements.push(element);
        }
        Ok(elements)
    }
}

/// Reads a top-level object as (key, raw value) pairs, borrowing from the body.
struct MembersSeed<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

#[derive(Deserialize)]
struct Key<'a>(#[serde(borrow)] Cow<'a, str>);

impl<'de> Deserialize<'de> for MembersSeed<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = MembersSeed<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(Key(key)) = map.next_key()? {
                    members.push((key, map.next_value::<&'de RawValue>()?));
                }
                Ok(MembersSeed(members))
            }
        }
        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// The 400 for a request struct that does not decode: the parameter, never its value.
fn parameter_error<E: std::fmt::Display>(err: serde_path_to_error::Error<E>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner().to_string();
    if let Some(field) = inner.strip_prefix("missing field `").and_then(|rest| rest.split('`').next()) {
        ApiError::bad_request(format!("Missing API request parameters: {field}"))
    } else {
        ApiError::bad_request(format!("The {path} parameter has an incorrect format"))
    }
}

/// Largest text of a [`Small`] value.
pub const SMALL: usize = 64 * 1024;

/// A side parameter of a large operation (a lifetime, tags) as a JSON value: at most [`SMALL`]
/// bytes of text, refused before it becomes a tree, since a large body could otherwise carry a
/// tree of many times its size there.
#[derive(Debug, Clone)]
pub struct Small(pub Value);

impl<'de> Deserialize<'de> for Small {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Small, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        if raw.get().len() > SMALL {
            return Err(serde::de::Error::custom("value too large"));
        }
        serde_json::from_str(raw.get()).map(Small).map_err(serde::de::Error::custom)
    }
}

/// The inner value of an optional [`Small`].
pub fn small(value: Option<&Small>) -> Option<&Value> {
    value.map(|small| &small.0)
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

/// Parses the body into a JSON object without its top-level nulls (a tree: for tests and tools;
/// requests go through [`decode_body`]).
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

/// Decodes a request struct from an object already read as a tree (one record of a bulk call),
/// naming the offending parameter (never its value) on failure.
pub fn decode<T: DeserializeOwned>(map: Map<String, Value>) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(parameter_error)
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
    fn bodies_decode_straight_into_their_struct() {
        let (probe, metadata) =
            decode_body::<Probe>(br#"{"name":"n","limit":4,"unknown":[1,{"x":[]}],"request_metadata":{"ip":"1"}}"#)
                .expect("decodes");
        assert_eq!((probe.name.as_str(), probe.limit), ("n", Some(4)));
        assert_eq!(metadata, Some(serde_json::json!({"ip": "1"})));
        // Null is absent, the last of duplicate keys wins, an empty body is `{}`.
        let (probe, _) = decode_body::<Probe>(br#"{"name":"a","limit":null,"name":"b"}"#).expect("decodes");
        assert_eq!((probe.name.as_str(), probe.limit), ("b", None));
        let missing = decode_body::<Probe>(b" ").expect_err("empty");
        assert_eq!(missing.to_string(), "Missing API request parameters: name");
        let missing = decode_body::<Probe>(br#"{"name":null}"#).expect_err("null");
        assert_eq!(missing.to_string(), "Missing API request parameters: name");
        let wrong = decode_body::<Probe>(br#"{"name":"n","limit":"alice@example.com"}"#).expect_err("wrong type");
        assert_eq!(wrong.to_string(), "The limit parameter has an incorrect format");
        let metadata = decode_body::<Probe>(br#"{"name":"n","request_metadata":[1]}"#).expect_err("metadata");
        assert_eq!(metadata.to_string(), "The request_metadata parameter has an incorrect format");
        for body in [&b"[1]"[..], b"{not json", b"{\"name\":\"n\"} x", b"\"text\"", b"{\"a\":1,}"] {
            let err = decode_body::<Probe>(body).expect_err("not an object");
            assert_eq!(err.to_string(), "Failed to decode the request body", "{}", String::from_utf8_lossy(body));
        }
        // An escaped key still names its field.
        let (probe, _) = decode_body::<Probe>(br#"{"n\u0061me":"e"}"#).expect("escaped key");
        assert_eq!(probe.name, "e");
    }

    #[test]
    fn unknown_members_are_skipped_whatever_their_depth() {
        // Skipping is iterative in serde_json: no stack, no tree, however deep.
        let nest = |levels: usize| format!("{}1{}", "[".repeat(levels), "]".repeat(levels));
        let deep = format!(r#"{{"name":"n","skip":{}}}"#, nest(10 * MAX_DEPTH));
        assert!(decode_body::<Probe>(deep.as_bytes()).is_ok());
        // A member that is decoded stops at serde_json's recursion limit, as a 400.
        let deep = format!(r#"{{"name":{}}}"#, nest(10 * MAX_DEPTH));
        let err = decode_body::<Probe>(deep.as_bytes()).expect_err("too deep");
        assert_eq!(err.to_string(), "The name parameter has an incorrect format");
    }

    #[test]
    fn array_parameters_are_counted_while_they_are_read() {
        let array = |text: &str| RawValue::from_string(text.to_owned()).expect("raw");
        let split = elements(&array(r#"[{"a":1}, 2 ,"x",[]]"#), 4, "records").expect("four");
        let texts: Vec<&str> = split.iter().map(|element| element.get()).collect();
        assert_eq!(texts, [r#"{"a":1}"#, "2", r#""x""#, "[]"]);
        assert!(elements(&array("[]"), 4, "records").expect("empty").is_empty());
        let err = elements(&array("[0,0,0,0,0]"), 4, "records").expect_err("five");
        assert_eq!(err.to_string(), "The records parameter has more than 4 entries");
        for text in [r#"{"a":1}"#, "0", r#""[0]""#] {
            let err = elements(&array(text), 4, "users").expect_err("not an array");
            assert_eq!(err.to_string(), "The users parameter has an incorrect format");
        }
        let err = decode_element::<Probe>(&array(r#"{"name":"n","limit":"x"}"#), "users", 3).expect_err("field");
        assert_eq!(err.to_string(), "The users[3].limit parameter has an incorrect format");
        let err = decode_element::<Probe>(&array("7"), "users", 0).expect_err("not an object");
        assert_eq!(err.to_string(), "The users[0] parameter has an incorrect format");
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
