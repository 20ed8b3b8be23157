//! Blind indexes: HMAC-SHA256 of a normalised value under a per-tenant, per-kind key.
//!
//! The database sees only these digests, backed by UNIQUE constraints; equality lookups work,
//! nothing else leaks beyond equality of values within one tenant and kind.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::keys::Key256;

/// Which identity a blind index is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IndexKind {
    /// The user token (UUID).
    Token,
    /// `profile.login`.
    Login,
    /// `profile.email`.
    Email,
    /// `profile.phone`.
    Phone,
    /// `profile.custom`.
    Custom,
}

impl IndexKind {
    /// The profile-derived kinds, in the order uniqueness clashes are reported.
    pub const PROFILE: [IndexKind; 4] = [IndexKind::Login, IndexKind::Email, IndexKind::Phone, IndexKind::Custom];

    /// Lower-case name: the profile key, the `mode` value and the error wording.
    pub fn name(self) -> &'static str {
        match self {
            IndexKind::Token => "token",
            IndexKind::Login => "login",
            IndexKind::Email => "email",
            IndexKind::Phone => "phone",
            IndexKind::Custom => "custom",
        }
    }

    /// Parses a `mode` value.
    pub fn from_mode(mode: &str) -> Option<IndexKind> {
        match mode {
            "token" => Some(IndexKind::Token),
            "login" => Some(IndexKind::Login),
            "email" => Some(IndexKind::Email),
            "phone" => Some(IndexKind::Phone),
            "custom" => Some(IndexKind::Custom),
            _ => None,
        }
    }

    /// Normalises a value of this kind; `None` when it cannot be indexed (empty, wrong type).
    ///
    /// Only the index is normalised: the stored profile keeps exactly what the client sent.
    pub fn normalise(self, value: &Value) -> Option<String> {
        let text = match value {
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let normal = match self {
            IndexKind::Email => text.to_lowercase(),
            IndexKind::Phone => normalise_phone(&text),
            IndexKind::Token => text.to_ascii_lowercase(),
            IndexKind::Login | IndexKind::Custom => text,
        };
        (!normal.is_empty()).then_some(normal)
    }
}

/// Keeps a leading `+` and the digits, so "+1 (555) 010-9999" and "+15550109999" match.
fn normalise_phone(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    if text.starts_with('+') {
        out.push('+');
    }
    out.extend(text.chars().filter(char::is_ascii_digit));
    if out == "+" { String::new() } else { out }
}

/// A blind index digest.
pub type IndexValue = [u8; 32];

/// An HMAC-SHA256 key made ready once: the keyed state (the hashes of the padded key) is kept,
/// so a digest costs the compressions of its message only, not the key's two as well. Search
/// indexes some sixty grams per user, which made the key's compressions most of the cost.
#[derive(Clone)]
pub struct IndexKey(Hmac<Sha256>);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

impl IndexKey {
    /// Keys the MAC with `key`.
    pub fn new(key: &Key256) -> IndexKey {
        IndexKey(<Hmac<Sha256> as Mac>::new_from_slice(key.as_array()).expect("HMAC accepts any key length"))
    }

    /// The digest of an already normalised value.
    pub fn digest(&self, normalised: &str) -> IndexValue {
        let mut mac = self.0.clone();
        mac.update(normalised.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The digest of several values, each length-prefixed so that no two different lists feed
    /// the MAC the same bytes.
    pub fn digest_parts(&self, parts: &[&[u8]]) -> IndexValue {
        let mut mac = self.0.clone();
        for part in parts {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    }
}

/// Computes the digest of an already normalised value.
pub fn digest(key: &Key256, normalised: &str) -> IndexValue {
    IndexKey::new(key).digest(normalised)
}

/// Computes the digest of several values (see [`IndexKey::digest_parts`]).
pub fn digest_parts(key: &Key256, parts: &[&[u8]]) -> IndexValue {
    IndexKey::new(key).digest_parts(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn email_is_trimmed_and_lowercased_keeping_plus() {
        assert_eq!(
            IndexKind::Email.normalise(&json!("  Alice+News@Example.COM ")).as_deref(),
            Some("alice+news@example.com")
        );
    }

    #[test]
    fn phone_keeps_plus_and_digits_and_accepts_numbers() {
        assert_eq!(IndexKind::Phone.normalise(&json!("+1 (555) 010-9999")).as_deref(), Some("+15550109999"));
        assert_eq!(IndexKind::Phone.normalise(&json!(4471234)).as_deref(), Some("4471234"));
        assert_eq!(IndexKind::Phone.normalise(&json!("+")), None);
        assert_eq!(IndexKind::Phone.normalise(&json!(true)), None);
    }

    #[test]
    fn digests_differ_per_key_and_value() {
        let k1 = Key256::random();
        let k2 = Key256::random();
        assert_eq!(digest(&k1, "a"), digest(&k1, "a"));
        assert_ne!(digest(&k1, "a"), digest(&k1, "b"));
        assert_ne!(digest(&k1, "a"), digest(&k2, "a"));
    }

    #[test]
    fn a_prepared_key_gives_the_plain_hmac() {
        let k = Key256::random();
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(k.as_array()).expect("any key length");
        mac.update(b"alice@example.com");
        let plain: IndexValue = mac.finalize().into_bytes().into();
        let prepared = IndexKey::new(&k);
        assert_eq!(prepared.digest("alice@example.com"), plain);
        // The kept state is not consumed: the next digest starts from the key again.
        assert_eq!(prepared.digest("alice@example.com"), plain);
        assert_ne!(prepared.digest("bob@example.com"), plain);
    }

    #[test]
    fn part_digests_do_not_depend_on_where_parts_split() {
        let k = Key256::random();
        assert_eq!(digest_parts(&k, &[b"login", b"ali"]), digest_parts(&k, &[b"login", b"ali"]));
        assert_ne!(digest_parts(&k, &[b"login", b"ali"]), digest_parts(&k, &[b"logina", b"li"]));
        assert_ne!(digest_parts(&k, &[b"login", b"ali"]), digest_parts(&k, &[b"email", b"ali"]));
    }
}
