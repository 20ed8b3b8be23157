//! Which trigrams of a profile are indexed, and how a value is folded before it is cut up.

use std::collections::BTreeSet;

use serde_json::Value;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::crypto::{IndexKind, IndexValue, TenantKeys};

/// Longest folded value indexed, in characters: a longer value is indexed by its beginning
/// (search is for identifiers, and the index grows with every character).
pub const MAX_CHARS: usize = 256;

/// A searchable part of a profile. An e-mail is two parts, so that two addresses sharing a
/// domain do not look alike and a domain can be searched on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    /// `profile.login`.
    Login,
    /// What precedes the last `@` of `profile.email` (all of it when there is none).
    EmailLocal,
    /// What follows the last `@` of `profile.email`.
    EmailDomain,
    /// The digits of `profile.phone`.
    Phone,
    /// `profile.custom`.
    Custom,
}

impl Field {
    /// Name mixed into each digest, so equal trigrams of different fields differ at rest.
    pub fn name(self) -> &'static str {
        match self {
            Field::Login => "login",
            Field::EmailLocal => "email-local",
            Field::EmailDomain => "email-domain",
            Field::Phone => "phone",
            Field::Custom => "custom",
        }
    }
}

/// Case, accents and runs of white space do not matter to search: lower-cased, decomposed with
/// the combining marks dropped ("José" → "jose"), white space collapsed to one space.
pub fn fold(text: &str) -> String {
    let folded: String = text.nfkd().filter(|c| !is_combining_mark(*c)).flat_map(char::to_lowercase).collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(MAX_CHARS).collect()
}

/// The digits of a phone number (a leading `+` and any separators do not matter to search).
pub fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).take(MAX_CHARS).collect()
}

/// The searchable parts of one identity value of `kind`, folded; empty parts are left out.
pub fn parts(kind: IndexKind, value: &str) -> Vec<(Field, String)> {
    let parts = match kind {
        IndexKind::Login => vec![(Field::Login, fold(value))],
        IndexKind::Custom => vec![(Field::Custom, fold(value))],
        IndexKind::Phone => vec![(Field::Phone, digits(value))],
        IndexKind::Email => {
            let folded = fold(value);
            match folded.rsplit_once('@') {
                Some((local, domain)) => {
                    vec![(Field::EmailLocal, local.to_owned()), (Field::EmailDomain, domain.to_owned())]
                }
                None => vec![(Field::EmailLocal, folded)],
            }
        }
        IndexKind::Token => Vec::new(),
    };
    parts.into_iter().filter(|(_, value)| !value.is_empty()).collect()
}

/// The trigrams of a folded value: `padded` frames it with two spaces before and one after,
/// so that short values and both ends count (as PostgreSQL's `pg_trgm` does); `inner` are the
/// trigrams of the value alone, which any value containing it also has. Duplicates removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trigrams {
    /// Trigrams of `"  " + value + " "`.
    pub padded: Vec<String>,
    /// Trigrams of the value itself (none below three characters); a subset of `padded`.
    pub inner: Vec<String>,
}

/// Cuts a folded value into [`Trigrams`].
pub fn trigrams(value: &str) -> Trigrams {
    let chars: Vec<char> = value.chars().collect();
    let framed: Vec<char> = [' ', ' '].into_iter().chain(chars.iter().copied()).chain([' ']).collect();
    let windows = |chars: &[char]| -> Vec<String> {
        let mut seen = BTreeSet::new();
        chars.windows(3).map(|w| w.iter().collect::<String>()).filter(|g| seen.insert(g.clone())).collect()
    };
    Trigrams { padded: windows(&framed), inner: windows(&chars) }
}

/// A stored gram: the first 8 bytes (big-endian, signed) of a trigram's keyed digest
/// ([`TenantKeys::search_gram`]). Search needs no more: a false match costs a candidate that the
/// opened profile then rules out, and at 64 bits a tenant of millions of users sees about one in
/// ten billion. Both backends store this form, so a gram costs 8 bytes in memory and at rest.
pub type Gram = i64;

/// The stored form of a trigram's digest: its first 8 bytes, big-endian.
pub fn short(digest: &IndexValue) -> Gram {
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(head)
}

/// The gram of `trigram` of `field`, under the tenant's search key.
pub fn gram(keys: &TenantKeys, field: Field, trigram: &str) -> Gram {
    short(&keys.search_gram(field.name(), trigram))
}

/// The grams stored for a profile: every padded trigram of every searchable part of its
/// login, email, phone and custom values, keyed by the tenant. Sorted, without duplicates.
pub fn of_profile(keys: &TenantKeys, profile: &Value) -> Vec<Gram> {
    let mut digests = BTreeSet::new();
    for kind in IndexKind::PROFILE {
        let Some(value) = profile.get(kind.name()).and_then(|value| kind.normalise(value)) else { continue };
        for (field, part) in parts(kind, &value) {
            for trigram in trigrams(&part).padded {
                digests.insert(gram(keys, field, &trigram));
            }
        }
    }
    digests.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_accents_and_spacing() {
        assert_eq!(fold("  José   MÜLLER "), "jose muller");
        assert_eq!(fold("Ｆｕｌｌ"), "full");
        assert_eq!(digits("+44 (7700) 900-123"), "447700900123");
        assert_eq!(fold(&"x".repeat(MAX_CHARS + 10)).len(), MAX_CHARS);
    }

    #[test]
    fn emails_split_at_the_last_at_sign() {
        assert_eq!(
            parts(IndexKind::Email, "Al.Ice@Example.COM"),
            vec![(Field::EmailLocal, "al.ice".to_owned()), (Field::EmailDomain, "example.com".to_owned())]
        );
        assert_eq!(parts(IndexKind::Email, "@example.com"), vec![(Field::EmailDomain, "example.com".to_owned())]);
        assert_eq!(parts(IndexKind::Email, "nodomain"), vec![(Field::EmailLocal, "nodomain".to_owned())]);
        assert!(parts(IndexKind::Phone, "+").is_empty());
    }

    #[test]
    fn trigrams_are_framed_and_deduplicated() {
        let t = trigrams("alice");
        assert_eq!(t.padded, ["  a", " al", "ali", "lic", "ice", "ce "]);
        assert_eq!(t.inner, ["ali", "lic", "ice"]);
        assert_eq!(trigrams("aaaa").inner, ["aaa"]);
        assert_eq!(trigrams("ab").padded, ["  a", " ab", "ab "]);
        assert!(trigrams("ab").inner.is_empty());
    }
}
