//! Key material types: zeroized on drop, never printed.

use std::fmt;

use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 256-bit symmetric key.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct Key256([u8; 32]);

impl Key256 {
    /// A fresh key from the thread's CSPRNG (see [`crate::crypto::random`]).
    pub fn random() -> Key256 {
        let mut bytes = [0u8; 32];
        super::random::fill(&mut bytes);
        Key256(bytes)
    }

    /// Wraps existing bytes (which the caller should zeroize).
    pub fn from_bytes(bytes: [u8; 32]) -> Key256 {
        Key256(bytes)
    }

    /// Builds a key from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Key256> {
        <[u8; 32]>::try_from(bytes).ok().map(Key256)
    }

    /// The raw bytes, for ciphers and KDFs only.
    pub fn as_array(&self) -> &[u8; 32] {
        &self.0
    }

    /// Derives a sub-key for one purpose (HKDF-SHA256, domain-separated by `info`).
    pub fn derive(&self, info: &[u8]) -> Key256 {
        let hk = Hkdf::<Sha256>::new(Some(b"bunker-kdf-v1"), &self.0);
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's 8160-byte output limit.
        hk.expand(info, &mut out).expect("HKDF output length is valid");
        Key256(out)
    }

    /// Constant-time equality.
    pub fn ct_eq(&self, other: &Key256) -> bool {
        subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..]).into()
    }
}

impl fmt::Debug for Key256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key256(<redacted>)")
    }
}

/// A user's data key: encrypts the profile, versions and audit details of one user.
pub type DataKey = Key256;

/// The operator's wrapping key: 24 bytes (48 hex, as Databunker Pro) or 32 bytes (64 hex).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct WrappingKey {
    raw: Vec<u8>,
}

/// Why a wrapping key was refused. Never includes the key text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WrappingKeyError {
    /// Not 48 or 64 hexadecimal characters.
    #[error("the wrapping key must be 48 or 64 hexadecimal characters")]
    Format,
}

impl WrappingKey {
    /// Parses the hex form, ignoring surrounding whitespace (files often end with a newline).
    pub fn from_hex(text: &str) -> Result<WrappingKey, WrappingKeyError> {
        let text = text.trim();
        if text.len() != 48 && text.len() != 64 {
            return Err(WrappingKeyError::Format);
        }
        let raw = hex::decode(text).map_err(|_| WrappingKeyError::Format)?;
        Ok(WrappingKey { raw })
    }

    /// A new random 48-hex-character key.
    pub fn generate() -> WrappingKey {
        let mut raw = vec![0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        WrappingKey { raw }
    }

    /// The hex form, to be shown once to the operator.
    pub fn to_hex(&self) -> String {
        hex::encode(&self.raw)
    }

    /// The AES-256 key-encryption key derived from the operator's key material.
    pub fn kek(&self) -> Key256 {
        let hk = Hkdf::<Sha256>::new(Some(b"bunker-wrapping-key-v1"), &self.raw);
        let mut out = [0u8; 32];
        hk.expand(b"key-encryption-key", &mut out).expect("HKDF output length is valid");
        Key256(out)
    }
}

impl fmt::Debug for WrappingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrappingKey(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_key_accepts_48_and_64_hex() {
        let k48 = WrappingKey::generate().to_hex();
        assert_eq!(k48.len(), 48);
        assert!(WrappingKey::from_hex(&format!("{k48}\n")).is_ok());
        assert!(WrappingKey::from_hex(&"ab".repeat(32)).is_ok());
        assert_eq!(WrappingKey::from_hex("abc").err(), Some(WrappingKeyError::Format));
        assert_eq!(WrappingKey::from_hex(&"zz".repeat(24)).err(), Some(WrappingKeyError::Format));
    }

    #[test]
    fn derivation_is_domain_separated_and_debug_redacts() {
        let k = Key256::random();
        assert!(!k.derive(b"a").ct_eq(&k.derive(b"b")));
        assert!(k.derive(b"a").ct_eq(&k.derive(b"a")));
        assert_eq!(format!("{k:?}"), "Key256(<redacted>)");
    }
}
