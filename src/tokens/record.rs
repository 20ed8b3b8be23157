//! What a token stands for: its type, the validated value, and the sealed content of its row.

use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoError, IndexValue, TenantKeys};
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult};

/// Table name bound into the associated data of sealed tokens.
const TABLE: &str = "tokens";

/// Digits a card number may have (ISO/IEC 7812 allows 8–19; 12 is the shortest in use).
pub const CARD_DIGITS: std::ops::RangeInclusive<usize> = 12..=19;

/// Longest accepted email address (RFC 5321 path limit).
const EMAIL_MAX: usize = 254;

/// The kinds of value Bunker tokenizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// A payment card number: the tokenbase is a Luhn-valid number of the same length.
    CreditCard,
    /// An email address: the tokenbase is an address at a reserved domain.
    Email,
}

impl TokenType {
    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::CreditCard => "creditcard",
            TokenType::Email => "email",
        }
    }

    /// Parses `tokentype` (any case).
    pub fn parse(tokentype: Option<Text>) -> ApiResult<TokenType> {
        let name = text(tokentype).ok_or_else(|| ApiError::bad_request("Missing API request parameters: tokentype"))?;
        match name.trim().to_ascii_lowercase().as_str() {
            "creditcard" => Ok(TokenType::CreditCard),
            "email" => Ok(TokenType::Email),
            _ => Err(ApiError::bad_request("The tokentype parameter must be creditcard or email")),
        }
    }
}

/// A validated value to tokenize.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenValue {
    /// Its type.
    pub kind: TokenType,
    /// The value as kept and returned: a card's digits without separators; an email address
    /// as sent, without surrounding whitespace.
    pub record: String,
    /// The form that identifies the value for `unique` (the type, then the card's digits or the
    /// lower-cased address).
    normalised: String,
}

impl TokenValue {
    /// Validates `record` as a value of `kind`. Errors describe the expected shape, never the value.
    ///
    /// A card number is 12 to 19 digits; single spaces or dashes between digits are accepted and
    /// dropped, since printed and typed card numbers come in groups. Its own Luhn digit is not
    /// checked: test and legacy numbers need not have one, and the tokenbase has one regardless.
    pub fn parse(kind: TokenType, record: Option<Text>) -> ApiResult<TokenValue> {
        let record = text(record).ok_or_else(|| ApiError::bad_request("Missing API request parameters: record"))?;
        let record = record.trim();
        if record.is_empty() {
            return Err(ApiError::bad_request("Missing API request parameters: record"));
        }
        match kind {
            TokenType::CreditCard => {
                let digits = card_digits(record).ok_or_else(|| {
                    ApiError::bad_request(
                        "The record parameter is not a card number: 12 to 19 digits, optionally grouped by spaces or dashes",
                    )
                })?;
                Ok(TokenValue { kind, normalised: format!("creditcard:{digits}"), record: digits })
            }
            TokenType::Email => {
                if !is_email(record) {
                    return Err(ApiError::bad_request("The record parameter is not an email address"));
                }
                Ok(TokenValue {
                    kind,
                    normalised: format!("email:{}", record.to_lowercase()),
                    record: record.to_owned(),
                })
            }
        }
    }

    /// The blind index that finds a unique token of this value again.
    pub fn index(&self, keys: &TenantKeys) -> IndexValue {
        keys.token_value_index(&self.normalised)
    }

    /// True when `candidate` (a tokenbase) would stand for this very value.
    pub fn is_same(&self, candidate: &str) -> bool {
        match self.kind {
            TokenType::CreditCard => candidate == self.record,
            TokenType::Email => candidate.eq_ignore_ascii_case(&self.record),
        }
    }

    /// True when `record` (an opened token's value) is this value, normalised alike: the check
    /// that a token found through the value's blind index stands for it.
    pub fn is_value_of(&self, kind: TokenType, record: &str) -> bool {
        kind == self.kind && self.is_same(record)
    }

    /// How many digits a card number has (the tokenbase keeps it); 0 for other kinds.
    pub fn digits(&self) -> usize {
        match self.kind {
            TokenType::CreditCard => self.record.len(),
            TokenType::Email => 0,
        }
    }
}

/// The digits of a card number written with optional single space or dash separators.
fn card_digits(text: &str) -> Option<String> {
    let mut digits = String::with_capacity(text.len());
    let mut previous_was_digit = false;
    for c in text.chars() {
        match c {
            '0'..='9' => {
                digits.push(c);
                previous_was_digit = true;
            }
            // A separator only between two digits: no leading, trailing or doubled ones.
            ' ' | '-' if previous_was_digit => previous_was_digit = false,
            _ => return None,
        }
    }
    (previous_was_digit && CARD_DIGITS.contains(&digits.len())).then_some(digits)
}

/// A plausible address: one `@` between a non-empty local part and a dotless-or-dotted domain,
/// no whitespace or control characters. Deliverability is not Bunker's concern.
fn is_email(text: &str) -> bool {
    let Some((local, domain)) = text.rsplit_once('@') else { return false };
    text.len() <= EMAIL_MAX
        && !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !text.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A caller's reference to a token, `tokenuuid` or `tokenbase`, and its two blind indexes (only
/// one of which can match: the index keys are domain-separated).
#[derive(Debug, Clone)]
pub struct Handle {
    /// The reference, trimmed and lower-cased (tokenuuids and tokenbases are generated lower-case).
    pub normalised: String,
    /// Blind index as a tokenuuid.
    pub uuid_idx: IndexValue,
    /// Blind index as a tokenbase.
    pub base_idx: IndexValue,
}

impl Handle {
    /// A handle from caller input; `None` when empty.
    pub fn new(keys: &TenantKeys, reference: &str) -> Option<Handle> {
        let normalised = reference.trim().to_ascii_lowercase();
        if normalised.is_empty() {
            return None;
        }
        let uuid_idx = keys.token_uuid_index(&normalised);
        let base_idx = keys.token_base_index(&normalised);
        Some(Handle { normalised, uuid_idx, base_idx })
    }

    /// True when `token` is the one this handle names (by tokenuuid or tokenbase): the check that
    /// a row found through a blind index is the one asked for.
    pub fn names(&self, token: &Token) -> bool {
        token.tokenuuid == self.normalised || token.tokenbase.eq_ignore_ascii_case(&self.normalised)
    }

    /// The required `token` parameter as a handle.
    pub fn parse(keys: &TenantKeys, token: Option<Text>) -> ApiResult<Handle> {
        text(token)
            .and_then(|token| Handle::new(keys, &token))
            .ok_or_else(|| ApiError::bad_request("Missing API request parameters: token"))
    }
}

/// A token as the API shows it; also the sealed content of its row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// Random UUID-shaped handle.
    pub tokenuuid: String,
    /// Format-preserving handle.
    pub tokenbase: String,
    /// The value it stands for.
    pub record: String,
    /// The value's type.
    pub tokentype: TokenType,
}

impl Token {
    /// Seals the token for the row keyed by `uuid_idx`.
    pub fn seal(&self, keys: &TenantKeys, uuid_idx: &[u8]) -> Vec<u8> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(self).unwrap_or_default());
        keys.seal(TABLE, uuid_idx, &plain)
    }

    /// Opens a token sealed by [`Token::seal`].
    pub fn open(keys: &TenantKeys, uuid_idx: &[u8], data: &[u8]) -> Result<Token, CryptoError> {
        let plain = zeroize::Zeroizing::new(keys.open(TABLE, uuid_idx, data)?);
        serde_json::from_slice(&plain).map_err(|_| CryptoError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn card(text: &str) -> ApiResult<TokenValue> {
        TokenValue::parse(TokenType::CreditCard, Some(Text(text.to_owned())))
    }

    fn email(text: &str) -> ApiResult<TokenValue> {
        TokenValue::parse(TokenType::Email, Some(Text(text.to_owned())))
    }

    #[test]
    fn card_numbers_keep_their_digits_and_accept_grouping() {
        assert_eq!(card("4111111111111111").expect("plain").record, "4111111111111111");
        assert_eq!(card(" 4111 1111 1111 1111 ").expect("spaces").record, "4111111111111111");
        assert_eq!(card("4111-1111-1111-1111").expect("dashes").record, "4111111111111111");
        assert_eq!(card("411111111111").expect("12 digits").digits(), 12);
        assert_eq!(card("4111111111111111111").expect("19 digits").digits(), 19);
        assert_eq!(card("4111 1111 1111 1111").expect("a").normalised, card("4111111111111111").expect("b").normalised);
    }

    #[test]
    fn malformed_card_numbers_are_refused_without_echo() {
        for bad in [
            "41111111111",
            "41111111111111111111",
            "4111x11111111111",
            "4111  1111 1111 1111",
            "-4111111111111111",
            "4111111111111111-",
            "４１１１１１１１１１１１１１１１",
            "+4111111111111111",
        ] {
            let err = card(bad).expect_err(bad).to_string();
            assert!(err.starts_with("The record parameter is not a card number"), "{err}");
            assert!(!err.contains("4111"), "{err}");
        }
        assert_eq!(card("   ").expect_err("blank").to_string(), "Missing API request parameters: record");
    }

    #[test]
    fn emails_need_an_at_sign_and_dedupe_case_insensitively() {
        let a = email(" Alice@Example.com ").expect("email");
        assert_eq!(a.record, "Alice@Example.com");
        assert_eq!(a.normalised, email("alice@example.com").expect("email").normalised);
        assert!(a.is_same("alice@example.COM"));
        for bad in ["alice.example.com", "@example.com", "alice@", "al ice@example.com", "alice@.com"] {
            assert_eq!(email(bad).expect_err(bad).to_string(), "The record parameter is not an email address");
        }
    }

    #[test]
    fn a_card_and_an_email_never_share_a_normal_form() {
        assert_ne!(card("4111111111111111").expect("card").normalised, "email:4111111111111111");
    }

    #[test]
    fn token_types_parse_in_any_case() {
        assert_eq!(TokenType::parse(Some(Text("CreditCard".into()))).expect("type"), TokenType::CreditCard);
        assert_eq!(TokenType::parse(Some(Text("email".into()))).expect("type"), TokenType::Email);
        let err = TokenType::parse(Some(Text("iban".into()))).expect_err("unknown").to_string();
        assert_eq!(err, "The tokentype parameter must be creditcard or email");
        assert_eq!(
            TokenType::parse(None).expect_err("missing").to_string(),
            "Missing API request parameters: tokentype"
        );
    }
}
