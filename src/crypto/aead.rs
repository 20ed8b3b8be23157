//! AES-256-GCM sealing with bound associated data.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};

use super::keys::Key256;
use crate::tenants::TenantId;

/// Format byte of every sealed blob; lets a later format coexist with this one.
const FORMAT_V1: u8 = 1;
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

/// Encrypts `plaintext` under `key`: `format ‖ key version ‖ nonce ‖ ciphertext+tag`.
pub fn seal(key: &Key256, aad: Aad<'_>, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    super::random::fill(&mut nonce);
    let cipher = Aes256Gcm::new(key.as_array().into());
    let aad_bytes = aad.encode();
    let payload = Payload { msg: plaintext, aad: &aad_bytes };
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), payload)
        .expect("AES-GCM fails only for messages beyond 64 GiB; bodies are limited far below");
    let mut out = Vec::with_capacity(HEADER_LEN + ciphertext.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&aad.key_version.to_be_bytes());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    out
}

/// Decrypts a blob made by [`seal`]; fails on any tampering, wrong key or wrong location.
pub fn open(key: &Key256, aad: Aad<'_>, blob: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if blob.len() < HEADER_LEN + 16 || blob[0] != FORMAT_V1 {
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

/// Reads the key version recorded in a sealed blob's header.
pub fn key_version_of(blob: &[u8]) -> Option<u32> {
    (blob.len() >= HEADER_LEN && blob[0] == FORMAT_V1).then(|| u32::from_be_bytes([blob[1], blob[2], blob[3], blob[4]]))
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
        assert_eq!(key_version_of(&a), Some(1));
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
}
