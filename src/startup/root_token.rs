//! How much randomness an operator's `DATABUNKER_ROOTTOKEN` carries, estimated from its form.
//!
//! The rule (also in the README): a UUID counts 122 bits (its random bits); a token of decimal
//! digits counts log2(10) bits per digit, one of hex digits (dashes ignored) 4 bits per digit;
//! anything else counts log2(alphabet) bits per character, where the alphabet is the sum of the
//! sizes of the character classes it uses (26 lower case, 26 upper case, 10 digits, 33 others).
//! It is an upper bound: a word or a pattern carries far less than its length suggests.

use crate::crypto::secrets::is_uuid_shaped;

/// The least a root token should carry.
pub const MIN_BITS: f64 = 128.0;

/// Estimated bits of randomness of `token` (see the module's rule).
pub fn estimated_bits(token: &str) -> f64 {
    if is_uuid_shaped(token) {
        return 122.0;
    }
    let symbols = token.chars().filter(|c| *c != '-').count();
    let count = |n: usize| f64::from(u32::try_from(n).unwrap_or(u32::MAX));
    if symbols > 0 && token.chars().filter(|c| *c != '-').all(|c| c.is_ascii_digit()) {
        return count(symbols) * 10f64.log2();
    }
    if symbols > 0 && token.chars().filter(|c| *c != '-').all(|c| c.is_ascii_hexdigit()) {
        return count(symbols) * 4.0;
    }
    let uses = |class: fn(&char) -> bool, size: u32| if token.chars().any(|c| class(&c)) { size } else { 0 };
    let alphabet = uses(char::is_ascii_lowercase, 26)
        + uses(char::is_ascii_uppercase, 26)
        + uses(char::is_ascii_digit, 10)
        + uses(|c| !c.is_ascii_alphanumeric(), 33);
    if alphabet < 2 {
        return 0.0;
    }
    count(token.chars().count()) * f64::from(alphabet).log2()
}

/// Warns (never showing the token) when the operator's root token carries under [`MIN_BITS`].
pub fn warn_if_weak(token: &str) {
    let bits = estimated_bits(token);
    if bits < MIN_BITS {
        tracing::warn!(
            estimated_bits = bits.floor(),
            "DATABUNKER_ROOTTOKEN carries under 128 bits of randomness (estimated from its length and the \
             characters it uses; see the README): anyone who guesses it administers the whole vault. Use at \
             least 22 random letters and digits, or 32 random hex digits"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_follow_the_documented_rule() {
        assert!((estimated_bits("3b1f0c2e-8d4a-4f6b-9c1d-2e7a5b8c9d0f") - 122.0).abs() < 1e-9);
        assert!((estimated_bits(&"ab12".repeat(8)) - 128.0).abs() < 1e-9, "32 hex digits");
        assert!(estimated_bits(&"1".repeat(38)) < MIN_BITS, "38 decimal digits are 126 bits");
        assert!(estimated_bits(&"1".repeat(39)) >= MIN_BITS);
        // 22 letters and digits of both cases: 22 * log2(62) = 131 bits.
        assert!(estimated_bits("aZ3kQ9xP2mL7vB4nR8tY1w") >= MIN_BITS);
        assert!(estimated_bits("rootpassword") < MIN_BITS, "12 lower case letters are 56 bits");
        assert!(estimated_bits("Root-Token-2024!") < MIN_BITS, "16 characters of four classes are 105 bits");
        assert!(estimated_bits("DEMO") < MIN_BITS);
        assert_eq!(estimated_bits(""), 0.0);
    }
}
