//! Tolerant field decoders: clients send numbers as strings and strings as numbers.
//!
//! Use the [`Text`] and [`Int`] types as `Option<Text>` / `Option<Int>` request fields (absent
//! and `null` are `None`), or the `opt_*` functions with `deserialize_with`.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer};

/// A string that may arrive as a JSON number or boolean (e.g. a phone `4471234`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Text, D::Error> {
        opt_string(deserializer)?.map(Text).ok_or_else(|| serde::de::Error::custom("expected a string"))
    }
}

/// An integer that may arrive as a numeric string (`"12"`) or an integral float; an empty string
/// is absent, like `null` (read it with [`int`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Int(Option<i64>);

impl Int {
    /// An integer given.
    pub const fn of(value: i64) -> Int {
        Int(Some(value))
    }
}

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        opt_i64(deserializer).map(Int)
    }
}

/// The inner string of an optional [`Text`].
pub fn text(value: Option<Text>) -> Option<String> {
    value.map(|t| t.0)
}

/// The inner value of an optional [`Int`] (`None` for absent, `null` or `""`).
pub fn int(value: Option<Int>) -> Option<i64> {
    value.and_then(|i| i.0)
}

/// One JSON scalar as a lenient field sees it. Arrays and objects are refused without being
/// built: a field that expects text must not make the vault hold a tree.
enum Scalar<'de> {
    Absent,
    Text(std::borrow::Cow<'de, str>),
    Int(i64),
    Uint(u64),
    Float(f64),
    Bool(bool),
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Scalar<'de>, D::Error> {
        struct ScalarVisitor;
        impl<'de> Visitor<'de> for ScalarVisitor {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Absent)
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Absent)
            }
            fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Scalar<'de>, D::Error> {
                deserializer.deserialize_any(self)
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(v.into()))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(v.to_owned().into()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(v.into()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                Ok(i64::try_from(v).map_or(Scalar::Uint(v), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Bool(v))
            }
        }
        deserializer.deserialize_option(ScalarVisitor)
    }
}

impl Scalar<'_> {
    /// The number as JSON writes it (what `Value::Number::to_string` gives).
    fn number_text(&self) -> Option<String> {
        match self {
            Scalar::Int(i) => Some(i.to_string()),
            Scalar::Uint(u) => Some(u.to_string()),
            Scalar::Float(f) => serde_json::Number::from_f64(*f).map(|n| n.to_string()),
            _ => None,
        }
    }
}

/// Decodes an optional string that may arrive as a JSON number (e.g. a phone `4471234`).
pub fn opt_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    match Scalar::deserialize(deserializer)? {
        Scalar::Absent => Ok(None),
        // NUL is no text a person types, and PostgreSQL's text columns cannot hold it.
        Scalar::Text(s) if s.contains('\0') => Err(de::Error::custom("a string with a NUL character")),
        Scalar::Text(s) => Ok(Some(s.into_owned())),
        Scalar::Bool(b) => Ok(Some(b.to_string())),
        number => number.number_text().map(Some).ok_or_else(|| de::Error::custom("expected a string")),
    }
}

/// Decodes an optional integer that may arrive as a numeric string (`"12"`) or an integral float.
pub fn opt_i64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<i64>, D::Error> {
    match Scalar::deserialize(deserializer)? {
        Scalar::Absent => Ok(None),
        Scalar::Int(i) => Ok(Some(i)),
        Scalar::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
        Scalar::Text(s) if s.trim().is_empty() => Ok(None),
        Scalar::Text(s) => s.trim().parse().map(Some).map_err(|_| de::Error::custom("expected an integer")),
        _ => Err(de::Error::custom("expected an integer")),
    }
}

/// Decodes an optional boolean that may arrive as `"true"`, `"false"`, `1` or `0`.
pub fn opt_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<bool>, D::Error> {
    match Scalar::deserialize(deserializer)? {
        Scalar::Absent => Ok(None),
        Scalar::Bool(b) => Ok(Some(b)),
        Scalar::Int(i) => Ok(Some(i != 0)),
        Scalar::Uint(_) => Ok(Some(true)),
        Scalar::Float(f) => Ok(Some(f != 0.0)),
        Scalar::Text(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" | "" => Ok(Some(false)),
            _ => Err(de::Error::custom("expected a boolean")),
        },
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
        let p = probe(json!({"s": u64::MAX, "i": 3.0, "b": 0}));
        assert_eq!((p.s.as_deref(), p.i, p.b), (Some("18446744073709551615"), Some(3), Some(false)));
        let p = probe(json!({"s": null, "i": 3.0}));
        assert_eq!((p.s, p.i, p.b), (None, Some(3), None));
        assert!(serde_json::from_value::<Probe>(json!({"i": "twelve"})).is_err());
        assert!(serde_json::from_value::<Probe>(json!({"s": {"a": 1}})).is_err());
    }
}
