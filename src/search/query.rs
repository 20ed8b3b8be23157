//! A search query: the digests that preselect candidates, and the rule a candidate's opened
//! profile must then meet.
//!
//! A query part of three characters or more matches a value that contains it with at most
//! [`Part::typos`] edits (insertions, deletions, substitutions or swaps of adjacent
//! characters): partial values and typos alike. A shorter part matches a value that begins with
//! it (trigrams cannot find two characters in the middle of a value).

use std::collections::BTreeSet;

use super::grams::{self, Field, Gram};
use crate::crypto::{IndexKind, TenantKeys};

/// What a query searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// One identity kind (an explicit `mode`, or one detected from the value).
    Kind(IndexKind),
    /// A value that looks like neither an e-mail nor a phone: logins and custom ids.
    LoginOrCustom,
}

impl Target {
    /// The target of a value sent without `mode`: `@` means an e-mail; only digits, `+` and
    /// phone punctuation (with at least three digits) mean a phone; anything else a login or
    /// custom id.
    pub fn detect(identity: &str) -> Target {
        let identity = identity.trim();
        if identity.contains('@') {
            return Target::Kind(IndexKind::Email);
        }
        let phone_chars = identity.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
        if phone_chars && identity.chars().filter(char::is_ascii_digit).count() >= 3 {
            Target::Kind(IndexKind::Phone)
        } else {
            Target::LoginOrCustom
        }
    }

    /// Name recorded in the audit event (the kind searched, never the value).
    pub fn name(self) -> &'static str {
        match self {
            Target::Kind(kind) => kind.name(),
            Target::LoginOrCustom => "login/custom",
        }
    }
}

/// Inner trigrams of the query one edit can break: a substituted or missing character is in
/// three of them, two swapped characters in four.
const GRAMS_PER_EDIT: usize = 4;

/// One searchable part of the query (e.g. the local part of an e-mail).
#[derive(Debug, Clone)]
struct Part {
    field: Field,
    /// The folded query text.
    text: Vec<char>,
    /// Grams of the padded trigrams (what the database is asked about).
    padded: Vec<Gram>,
    /// How many of the inner trigrams there are.
    inner: usize,
}

impl Part {
    fn new(keys: &TenantKeys, field: Field, value: &str) -> Part {
        let trigrams = grams::trigrams(value);
        Part {
            field,
            text: value.chars().collect(),
            padded: trigrams.padded.iter().map(|trigram| grams::gram(keys, field, trigram)).collect(),
            inner: trigrams.inner.len(),
        }
    }

    /// Edits tolerated: none below four characters, one up to eleven, two from twelve; phone
    /// numbers, which differ from each other in a digit or two, one from seven digits.
    fn typos(&self) -> usize {
        match (self.field, self.text.len()) {
            (Field::Phone, n) if n >= 7 => 1,
            (Field::Phone, _) | (_, 0..=3) => 0,
            (_, 4..=11) => 1,
            _ => 2,
        }
    }

    /// Digests any matching value shares with this part at least: a value containing the query
    /// with `typos` edits keeps all but [`GRAMS_PER_EDIT`] inner trigrams per edit; a short query's value
    /// begins with it, so it has its leading framed trigrams.
    fn min_shared(&self) -> usize {
        if self.text.len() < 3 {
            return self.text.len();
        }
        self.inner.saturating_sub(GRAMS_PER_EDIT * self.typos()).max(1)
    }

    /// Edits between this part and the closest piece of `value`, if within [`Part::typos`].
    fn distance(&self, value: &str) -> Option<usize> {
        let value: Vec<char> = value.chars().collect();
        if self.text.len() < 3 {
            return value.starts_with(&self.text).then_some(0);
        }
        let distance = substring_distance(&self.text, &value);
        (distance <= self.typos()).then_some(distance)
    }
}

/// The fewest edits turning `pattern` into some substring of `text` (Sellers' algorithm, with
/// swaps of adjacent characters counted as one edit).
fn substring_distance(pattern: &[char], text: &[char]) -> usize {
    let m = pattern.len();
    // rows[j][i]: edits between pattern[..i] and the best substring of text ending at j.
    let mut before: Vec<usize> = (0..=m).collect();
    let mut previous = before.clone();
    let mut best = previous[m];
    for j in 1..=text.len() {
        let mut current = vec![0; m + 1];
        for i in 1..=m {
            let cost = usize::from(pattern[i - 1] != text[j - 1]);
            let mut value = (previous[i - 1] + cost).min(previous[i] + 1).min(current[i - 1] + 1);
            if i > 1 && j > 1 && pattern[i - 1] == text[j - 2] && pattern[i - 2] == text[j - 1] {
                value = value.min(before[i - 2] + 1);
            }
            current[i] = value;
        }
        best = best.min(current[m]);
        before = std::mem::replace(&mut previous, current);
    }
    best
}

/// A parsed query: a user matches when it matches every part of at least one alternative.
#[derive(Debug, Clone)]
pub struct Query {
    alternatives: Vec<Vec<Part>>,
}

impl Query {
    /// The query for `identity` against `target`. An e-mail with an `@` must match on both
    /// sides of it (either may be left empty); without one it may match either side. A value
    /// that folds to nothing searchable gives a query that matches no one.
    pub fn new(keys: &TenantKeys, target: Target, identity: &str) -> Query {
        let single = |kind: IndexKind| -> Vec<Vec<Part>> {
            let parts: Vec<Part> =
                grams::parts(kind, identity).iter().map(|(field, value)| Part::new(keys, *field, value)).collect();
            if parts.is_empty() { Vec::new() } else { vec![parts] }
        };
        let alternatives = match target {
            Target::Kind(IndexKind::Email) if !identity.contains('@') => {
                let folded = grams::fold(identity);
                if folded.is_empty() {
                    Vec::new()
                } else {
                    [Field::EmailLocal, Field::EmailDomain]
                        .into_iter()
                        .map(|field| vec![Part::new(keys, field, &folded)])
                        .collect()
                }
            }
            Target::Kind(kind) => single(kind),
            Target::LoginOrCustom => [IndexKind::Login, IndexKind::Custom].into_iter().flat_map(single).collect(),
        };
        Query { alternatives }
    }

    /// True when no user can match (nothing searchable in the value).
    pub fn is_empty(&self) -> bool {
        self.alternatives.is_empty()
    }

    /// Every digest of the query, without duplicates.
    pub fn digests(&self) -> Vec<Gram> {
        let all: BTreeSet<Gram> =
            self.alternatives.iter().flatten().flat_map(|part| part.padded.iter().copied()).collect();
        all.into_iter().collect()
    }

    /// The fewest digests a matching user shares with the query: the threshold below which
    /// users are not even looked at.
    pub fn min_shared(&self) -> usize {
        self.alternatives.iter().map(|parts| parts.iter().map(Part::min_shared).sum()).min().unwrap_or(1)
    }

    /// Edits between the query and a user's searchable `parts` (as [`grams::parts`] cuts an
    /// opened profile) along the closest alternative it matches; `None` when it matches none.
    pub fn distance(&self, parts: &[(Field, String)]) -> Option<usize> {
        self.alternatives
            .iter()
            .filter_map(|alternative| {
                alternative
                    .iter()
                    .map(|part| {
                        parts
                            .iter()
                            .filter(|(field, _)| *field == part.field)
                            .filter_map(|(_, v)| part.distance(v))
                            .min()
                    })
                    .sum::<Option<usize>>()
            })
            .min()
    }
}

/// The searchable parts of an opened profile, folded as the index folds them.
pub fn profile_parts(profile: &serde_json::Value) -> Vec<(Field, String)> {
    IndexKind::PROFILE
        .iter()
        .filter_map(|kind| profile.get(kind.name()).and_then(|value| kind.normalise(value)).map(|v| (*kind, v)))
        .flat_map(|(kind, value)| grams::parts(kind, &value))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::{Value, json};

    use super::*;
    use crate::crypto::Key256;
    use crate::crypto::keyring::{KeyRing, WrappedMasterKey, wrap_master};
    use crate::tenants::TenantId;

    fn keys() -> std::sync::Arc<TenantKeys> {
        let kek = Key256::random();
        let wrapped = wrap_master(&kek, TenantId::new(1), 1, &Key256::random());
        KeyRing::new(kek)
            .unlock(TenantId::new(1), &[WrappedMasterKey { version: 1, wrapped, retired: false }])
            .expect("unlock")
    }

    /// Whether `identity` (with `mode`, or detected) finds `profile`; checks that the digest
    /// threshold would have let a match through.
    fn finds(keys: &TenantKeys, mode: Option<IndexKind>, identity: &str, profile: Value) -> bool {
        let stored: HashSet<Gram> = grams::of_profile(keys, &profile).into_iter().collect();
        let target = mode.map_or_else(|| Target::detect(identity), Target::Kind);
        let query = Query::new(keys, target, identity);
        let shared = query.digests().iter().filter(|d| stored.contains(*d)).count();
        let found = query.distance(&profile_parts(&profile)).is_some();
        if found {
            assert!(shared >= query.min_shared(), "{identity:?}: the threshold would drop a match");
        }
        found
    }

    #[test]
    fn modes_are_detected_from_the_value() {
        assert_eq!(Target::detect("a@b"), Target::Kind(IndexKind::Email));
        assert_eq!(Target::detect("+44 (20) 7946-0000"), Target::Kind(IndexKind::Phone));
        assert_eq!(Target::detect("12"), Target::LoginOrCustom);
        assert_eq!(Target::detect("alice"), Target::LoginOrCustom);
        assert_eq!(Target::detect("r2d2"), Target::LoginOrCustom);
    }

    #[test]
    fn substring_distance_counts_edits_to_the_closest_piece() {
        let d = |p: &str, t: &str| substring_distance(&p.chars().collect::<Vec<_>>(), &t.chars().collect::<Vec<_>>());
        assert_eq!(d("lic", "alice"), 0);
        assert_eq!(d("alixe", "alice"), 1);
        assert_eq!(d("alcie", "alice"), 1, "a swap is one edit");
        assert_eq!(d("allice", "alice"), 1);
        assert_eq!(d("alce", "alice"), 1);
        assert_eq!(d("smiht", "alice.smith"), 1);
        assert_eq!(d("bulkling17", "bulkling49"), 2);
        assert_eq!(d("alice", ""), 5);
    }

    #[test]
    fn partial_values_typos_and_accents_match() {
        let k = keys();
        let alice = json!({"login": "alice", "email": "alice.smith@example.com", "phone": "+44 7700 900123",
                           "custom": "CUST-0042"});
        for (mode, identity) in [
            (None, "alice.smith@"),
            (None, "alice.smith@exam"),
            (None, "smith@example.com"),
            (None, "@example.com"),
            (None, "Alice.Smith@Example.com"),
            (None, "alise.smith@example.com"),
            (Some(IndexKind::Email), "smith"),
            (Some(IndexKind::Email), "smiht"),
            (Some(IndexKind::Email), "example"),
            (None, "alice"),
            (None, "alixe"),
            (None, "alcie"),
            (None, "alce"),
            (None, "allice"),
            (None, "ÁLICE"),
            (None, "al"),
            (None, "900123"),
            (None, "+44 7700 900 123"),
            (None, "447700900124"),
            (None, "cust-0042"),
            (None, "cust-0043"),
            (Some(IndexKind::Custom), "0042"),
        ] {
            assert!(finds(&k, mode, identity, alice.clone()), "{identity:?} should find alice");
        }
    }

    #[test]
    fn unrelated_values_do_not_match() {
        let k = keys();
        let bob =
            json!({"login": "bob", "email": "bob@example.com", "phone": "+44 7700 900456", "custom": "CUST-0999"});
        for (mode, identity) in [
            (None, "alice@example.com"),
            (None, "alice"),
            (None, "+44 7700 900123"),
            (None, "123"),
            (None, "cust-0042"),
            (None, "ob"),
            (Some(IndexKind::Login), "example"),
            (None, "@"),
            (None, ""),
        ] {
            assert!(!finds(&k, mode, identity, bob.clone()), "{identity:?} should not find bob");
        }
        let numbered = json!({"login": "bulkling49"});
        assert!(!finds(&k, None, "bulkling17", numbered.clone()), "two edits in ten characters");
        assert!(finds(&k, None, "bulkling19", numbered), "one edit");
    }

    #[test]
    fn fields_are_kept_apart() {
        let k = keys();
        // The same text in another field is not a match for an explicit mode.
        assert!(!finds(&k, Some(IndexKind::Login), "carol", json!({"custom": "carol"})));
        assert!(finds(&k, Some(IndexKind::Custom), "carol", json!({"custom": "carol"})));
        assert!(finds(&k, None, "carol", json!({"custom": "carol"})));
        assert_ne!(k.search_gram("login", "car"), k.search_gram("custom", "car"));
    }
}
