//! The shape of card tokenbases: whether they pass the Luhn check, and a reserved prefix.
//!
//! By default a card tokenbase is a random Luhn-valid number (compatible with systems that
//! validate what they store), which can look like, or even equal, a real card elsewhere. A vault
//! (`BUNKER_CARD_TOKEN_LUHN`, `BUNKER_CARD_TOKEN_PREFIX`) or a single create call (`luhn`,
//! `prefix`) can ask instead for tokenbases that no card validator accepts, and that start with
//! a prefix reserved for tokens, so that no tokenbase can be mistaken for a card.

use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult};

/// Most digits a prefix may have: a 12-digit card keeps five random digits and its check digit.
pub const PREFIX_MAX: usize = 6;

/// Whether a card tokenbase passes the Luhn check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Luhn {
    /// It does (today's tokens, the default).
    #[default]
    Valid,
    /// It never does: its last digit is any digit but the check digit.
    Invalid,
}

impl Luhn {
    /// Parses `valid` or `invalid` (any case).
    pub fn parse(name: &str) -> Option<Luhn> {
        match name.trim().to_ascii_lowercase().as_str() {
            "valid" => Some(Luhn::Valid),
            "invalid" => Some(Luhn::Invalid),
            _ => None,
        }
    }
}

/// A reserved prefix of card tokenbases: 1 to [`PREFIX_MAX`] digits, not starting with 0 (a
/// leading zero is lost by clients that store numbers as integers, and the length with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prefix(Vec<u8>);

impl Prefix {
    /// Parses a prefix; `None` when it is not 1 to [`PREFIX_MAX`] digits starting with 1–9.
    pub fn parse(prefix: &str) -> Option<Prefix> {
        let prefix = prefix.trim();
        let shaped = (1..=PREFIX_MAX).contains(&prefix.len())
            && prefix.bytes().all(|b| b.is_ascii_digit())
            && !prefix.starts_with('0');
        shaped.then(|| Prefix(prefix.bytes().map(|b| b - b'0').collect()))
    }

    /// The prefix's digits, each 0–9.
    pub fn digits(&self) -> &[u8] {
        &self.0
    }
}

/// How card tokenbases are drawn.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CardShape {
    /// Whether they pass the Luhn check.
    pub luhn: Luhn,
    /// The digits they start with, if any.
    pub prefix: Option<Prefix>,
}

/// The message for a `luhn` value that is neither `valid` nor `invalid`.
pub const LUHN_MESSAGE: &str = "The luhn parameter must be valid or invalid";

/// The message for a malformed `prefix`.
pub const PREFIX_MESSAGE: &str = "The prefix parameter must be 1 to 6 digits, not starting with 0";

impl CardShape {
    /// The shape for a create call: its `luhn` and `prefix` fields where given, the vault's
    /// otherwise. A value of the wrong shape is a 400 (the message names the field, not the value).
    pub fn for_request(vault: &CardShape, luhn: Option<Text>, prefix: Option<Text>) -> ApiResult<CardShape> {
        let mut shape = vault.clone();
        if let Some(luhn) = text(luhn) {
            shape.luhn = Luhn::parse(&luhn).ok_or_else(|| ApiError::bad_request(LUHN_MESSAGE))?;
        }
        if let Some(prefix) = text(prefix) {
            shape.prefix = Some(Prefix::parse(&prefix).ok_or_else(|| ApiError::bad_request(PREFIX_MESSAGE))?);
        }
        Ok(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(value: &str) -> Option<Text> {
        Some(Text(value.to_owned()))
    }

    #[test]
    fn prefixes_are_short_digit_strings_without_a_leading_zero() {
        assert_eq!(Prefix::parse(" 9 ").expect("one digit").digits(), &[9]);
        assert_eq!(Prefix::parse("999999").expect("six digits").digits(), &[9, 9, 9, 9, 9, 9]);
        for bad in ["", "0", "0999", "9999999", "99a", "9 9", "-9", "٩"] {
            assert!(Prefix::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn a_request_overrides_the_vault_field_by_field() {
        let vault = CardShape { luhn: Luhn::Invalid, prefix: Prefix::parse("99") };
        assert_eq!(CardShape::for_request(&vault, None, None).expect("vault's"), vault);
        let shape = CardShape::for_request(&vault, field("VALID"), None).expect("luhn");
        assert_eq!((shape.luhn, shape.prefix), (Luhn::Valid, Prefix::parse("99")));
        let shape = CardShape::for_request(&CardShape::default(), None, field("123")).expect("prefix");
        assert_eq!((shape.luhn, shape.prefix), (Luhn::Valid, Prefix::parse("123")));
        let err = CardShape::for_request(&vault, field("no"), None).expect_err("luhn").to_string();
        assert_eq!(err, LUHN_MESSAGE);
        let err = CardShape::for_request(&vault, None, field("0123")).expect_err("prefix").to_string();
        assert_eq!(err, PREFIX_MESSAGE);
    }
}
