//! Tolerant field decoders: clients send numbers as strings and strings as numbers.
//!
//! Use the [`Text`] and [`Int`] types as `Option<Text>` / `Option<Int>` request fields (absent
//! and `null` are `None`), or the `opt_*` functions with `deserialize_with`.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A string that may arrive as a JSON number or boolean (e.g. a phone `4471234`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        opt_string(deserializer)?.map(Text).ok_or_else(|| serde::de::Error::custom("expected a string"))
    }
}

/// An integer that may arrive as a numeric string (`"12"`) or an integral float.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(pub i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        opt_i64(deserializer)?.map(Int).ok_or_else(|| serde::de::Error::custom("expected an integer"))
    }
}

/// The inner string of an optional [`Text`].
pub fn text(value: Option<Text>) -> Option<String> {
    value.map(|t| t.0)
}

/// The inner value of an optional [`Int`].
pub fn int(value: Option<Int>) -> Option<i64> {
    value.map(|i| i.0)
}

/// Decodes an optional string that may arrive as a JSON number (e.g. a phone `4471234`).
pub fn opt_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(b.to_string())),
        Some(_) => Err(serde::de::Error::custom("expected a string")),
    }
}

/// Decodes an optional integer that may arrive as a numeric string (`"12"`) or an integral float.
pub fn opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| serde::de::Error::custom("expected an integer")),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| serde::de::Error::custom("expected an integer"))
        }
        Some(_) => Err(serde::de::Error::custom("expected an integer")),
    }
}

/// Decodes an optional boolean that may arrive as `"true"`, `"false"`, `1` or `0`.
pub fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    match Option::<Value>::deserialize(deserializer)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(Value::Number(n)) => Ok(Some(n.as_f64().is_some_and(|f| f != 0.0))),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" | "" => Ok(Some(false)),
            _ => Err(serde::de::Error::custom("expected a boolean")),
        },
        Some(_) => Err(serde::de::Error::custom("expected a boolean")),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Deserialize, Debug)]
    struct Probe {
        #[serde(default, deserialize_with = "super::opt_string")]
        s: Option<String>,
        #[serde(default, deserialize_with = "super::opt_i64")]
        i: Option<i64>,
        #[serde(default, deserialize_with = "super::opt_bool")]
        b: Option<bool>,
    }

    fn probe(v: serde_json::Value) -> Probe {
        serde_json::from_value(v).expect("decodes")
    }

    #[derive(Deserialize, Debug)]
    struct Typed {
        t: Option<super::Text>,
        i: Option<super::Int>,
    }

    #[test]
    fn newtypes_accept_the_same_shapes() {
        let typed: Typed = serde_json::from_value(json!({"t": 5, "i": "7"})).expect("decodes");
        assert_eq!((super::text(typed.t).as_deref(), super::int(typed.i)), (Some("5"), Some(7)));
        let typed: Typed = serde_json::from_value(json!({"t": null})).expect("null is absent");
        assert_eq!((typed.t, typed.i), (None, None));
        assert!(serde_json::from_value::<Typed>(json!({"i": "x"})).is_err());
    }

    #[test]
    fn accepts_the_shapes_clients_send() {
        let p = probe(json!({"s": 4471234, "i": "12", "b": "true"}));
        assert_eq!((p.s.as_deref(), p.i, p.b), (Some("4471234"), Some(12), Some(true)));
        let p = probe(json!({"s": null, "i": 3.0}));
        assert_eq!((p.s, p.i, p.b), (None, Some(3), None));
        assert!(serde_json::from_value::<Probe>(json!({"i": "twelve"})).is_err());
        assert!(serde_json::from_value::<Probe>(json!({"s": {"a": 1}})).is_err());
    }
}
