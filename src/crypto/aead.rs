//! AES-256-GCM sealing with bound associated data.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::keys::Key256;
use crate::tenants::TenantId;

/// Format byte of a blob sealed directly under the key its version names (data keys, the
/// key-encryption key, and tenant master keys before per-purpose subkeys).
const FORMAT_V1: u8 = 1;
/// Format byte of a blob sealed under a per-purpose subkey of the tenant master key version it
/// names (see [`crate::crypto::keyring::Purpose`]).
const FORMAT_SUBKEY: u8 = 2;
const NONCE_LEN: usize = 12;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;

/// Decryption or format failure. Carries no detail on purpose: the cause is never useful to a
/// caller and could help an attacker.
#[derive(Debug, thiserror::Error)]
#[error("decryption failed")]
pub struct CryptoError;

/// Associated data binding a ciphertext to where it lives.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    /// Tenant owning the record.
    pub tenant: TenantId,
    /// Table (or logical store) holding the ciphertext.
    pub table: &'a str,
    /// Record identifier within the table.
    pub record: &'a [u8],
    /// Version of the key that sealed it.
    pub key_version: u32,
}

impl Aad<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.table.len() + self.record.len());
        out.extend_from_slice(b"bunker-aad-v1");
        out.extend_from_slice(&self.tenant.get().to_be_bytes());
        // Length prefixes keep (table, record) pairs unambiguous.
        out.extend_from_slice(&(self.table.len() as u32).to_be_bytes());
        out.extend_from_slice(self.table.as_bytes());
        out.extend_from_slice(&(self.record.len() as u32).to_be_bytes());
        out.extend_from_slice(self.record);
        out.extend_from_slice(&self.key_version.to_be_bytes());
        out
    }
}

/// How the key of a blob was chosen, from its format byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Sealed directly under the key of its version.
    Direct,
    /// Sealed under a per-purpose subkey of the master key of its version.
    Subkey,
}

impl Format {
    fn byte(self) -> u8 {
        match self {
            Format::Direct => FORMAT_V1,
            Format::Subkey => FORMAT_SUBKEY,
        }
    }

    fn of(byte: u8) -> Option<Format> {
        match byte {
            FORMAT_V1 => Some(Format::Direct),
            FORMAT_SUBKEY => Some(Format::Subkey),
            _ => None,
        }
    }
}

/// Encrypts `plaintext` under `key`: `format ‖ key version ‖ nonce ‖ ciphertext+tag`.
pub fn seal(key: &Key256, aad: Aad<'_>, plaintext: &[u8]) -> Vec<u8> {
    seal_as(Format::Direct, key, aad, plaintext)
}

/// [`seal`] with the format byte `format` (which says how `key` was chosen).
pub fn seal_as(format: Format, key: &Key256, aad: Aad<'_>, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    super::random::fill(&mut nonce);
    let cipher = Aes256Gcm::new(key.as_array().into());
    let aad_bytes = aad.encode();
    let payload = Payload { msg: plaintext, aad: &aad_bytes };
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), payload)
        .expect("AES-GCM fails only for messages beyond 64 GiB; bodies are limited far below");
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    out.push(format.byte());
    out.extend_from_slice(&aad.key_version.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

/// Decrypts a blob made by [`seal`]; fails on any tampering, wrong key or wrong location.
pub fn open(key: &Key256, aad: Aad<'_>, blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
    open_as(Format::Direct, key, aad, blob)
}

/// Decrypts a blob made by [`seal_as`] with `format`.
pub fn open_as(format: Format, key: &Key256, aad: Aad<'_>, blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if blob.len() < HEADER_LEN + 16 || blob[0] != format.byte() {
        return Err(CryptoError);
    }
    let version = u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]);
    if version != aad.key_version {
        return Err(CryptoError);
    }
    let nonce = Nonce::from_slice(&blob[5..HEADER_LEN]);
    let cipher = Aes256Gcm::new(key.as_array().into());
    let aad_bytes = aad.encode();
    cipher.decrypt(nonce, Payload { msg: &blob[HEADER_LEN..], aad: &aad_bytes }).map_err(|_| CryptoError)
}

/// Reads the format and key version recorded in a sealed blob's header.
pub fn header_of(blob: &[u8]) -> Option<(Format, u32)> {
    let format = Format::of(*blob.first()?)?;
    (blob.len() >= HEADER_LEN).then(|| (format, u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]])))
}

/// The first bytes of every blob sealed as `format` under key version `version` (format byte and
/// version): what the store compares to find blobs still sealed otherwise.
pub fn header_prefix(format: Format, version: u32) -> [u8; 5] {
    let [a, b, c, d] = version.to_be_bytes();
    [format.byte(), a, b, c, d]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aad(record: &[u8]) -> Aad<'_> {
        Aad { tenant: TenantId::new(1), table: "users", record, key_version: 1 }
    }

    #[test]
    fn round_trip_and_fresh_nonce() {
        let key = Key256::random();
        let a = seal(&key, aad(b"r1"), b"secret");
        let b = seal(&key, aad(b"r1"), b"secret");
        assert_ne!(a, b, "nonces must differ");
        assert_eq!(open(&key, aad(b"r1"), &a).expect("open"), b"secret");
        assert_eq!(header_of(&a), Some((Format::Direct, 1)));
        assert_eq!(a[..5], header_prefix(Format::Direct, 1));
    }

    #[test]
    fn moved_ciphertext_does_not_open() {
        let key = Key256::random();
        let blob = seal(&key, aad(b"r1"), b"secret");
        assert!(open(&key, aad(b"r2"), &blob).is_err());
        let other_table = Aad { table: "audit", ..aad(b"r1") };
        assert!(open(&key, other_table, &blob).is_err());
        let other_tenant = Aad { tenant: TenantId::new(2), ..aad(b"r1") };
        assert!(open(&key, other_tenant, &blob).is_err());
        assert!(open(&Key256::random(), aad(b"r1"), &blob).is_err());
        let mut tampered = blob.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert!(open(&key, aad(b"r1"), &tampered).is_err());
    }

    #[test]
    fn formats_are_told_apart() {
        let key = Key256::random();
        let blob = seal_as(Format::Subkey, &key, aad(b"r1"), b"secret");
        assert_eq!(header_of(&blob), Some((Format::Subkey, 1)));
        assert_eq!(open_as(Format::Subkey, &key, aad(b"r1"), &blob).expect("open"), b"secret");
        assert!(open(&key, aad(b"r1"), &blob).is_err(), "a subkey blob is not opened as a direct one");
        assert!(header_of(&[9, 0, 0, 0, 1]).is_none());
    }
}
