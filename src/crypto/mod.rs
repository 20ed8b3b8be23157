//! Keys, ciphers and blind indexes.
//!
//! Hierarchy: wrapping key (operator secret) → per-tenant master key (stored wrapped, versioned)
//! → per-user data key (stored wrapped by the tenant key, destroyed with the user). Tenant-level
//! blobs (data-key wraps, tokens, unbound sessions, events without a subject) seal under HKDF
//! subkeys of the active master key version, one per purpose ([`keyring::Purpose`]). Every
//! ciphertext is AES-256-GCM with a random 96-bit nonce and associated data naming its tenant,
//! table, record and key version, so a ciphertext moved to another row does not decrypt.

pub mod aead;
pub mod index;
pub mod keyring;
pub mod keys;
pub mod random;
pub mod secrets;
pub mod shamir;

pub use aead::{Aad, CryptoError};
pub use index::{IndexKind, IndexValue};
pub use keyring::{KeyRing, TenantKeys};
pub use keys::{DataKey, Key256, WrappingKey};
