//! Random identifiers and access-token digests.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A random 128-bit value formatted 8-4-4-4-12 in lower-case hex, like Databunker's tokens.
///
/// No RFC 4122 version bits: all 128 bits are random, as in the vendor's samples.
pub fn random_uuid_string() -> String {
    let mut bytes = [0u8; 16];
    super::random::fill(&mut bytes);
    uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
}

/// True when `text` has the 8-4-4-4-12 hex shape (any case).
pub fn is_uuid_shaped(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// SHA-256 of an access token: tokens are 128-bit random, so a fast hash suffices (argon2 is
/// for human-chosen secrets) and the stored digest is useless to a database reader.
pub fn token_digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time comparison of two digests.
pub fn digests_match(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_strings_have_the_shape_and_differ() {
        let a = random_uuid_string();
        assert!(is_uuid_shaped(&a));
        assert_ne!(a, random_uuid_string());
        assert!(!is_uuid_shaped("not-a-uuid"));
        assert!(is_uuid_shaped("AB88CA3E-599F-8F17-10DD-C7F424504B94"));
        assert!(!is_uuid_shaped("ab88ca3e-599f-8f17-10dd-c7f424504b9g"));
    }

    #[test]
    fn digests_compare_in_constant_time() {
        assert!(digests_match(&token_digest("DEMO"), &token_digest("DEMO")));
        assert!(!digests_match(&token_digest("DEMO"), &token_digest("DEMO2")));
    }
}
