//! File keys and the chunked encryption of file content.
//!
//! Each file has its own random AES-256 key, sealed under its owner's data key (erasing the user
//! destroys the data key and with it every file key). The content is encrypted with the STREAM
//! construction over AES-256-GCM (`aead::stream`, big-endian 32-bit counter and last-chunk flag in
//! the nonce): fixed-size chunks, each authenticated on its own, so a file is encrypted and
//! decrypted chunk by chunk while reordering, truncation and extension are still detected. The
//! associated data of every chunk names the tenant, the file and its size.

use aead::stream::{DecryptorBE32, EncryptorBE32};
use aes_gcm::{Aes256Gcm, KeyInit};
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::keyring::{open_user, seal_user};
use crate::crypto::{CryptoError, DataKey, Key256};
use crate::tenants::TenantId;

/// Plaintext bytes per chunk. A multiple of 3, so each chunk is a whole run of base64
/// (65 536 characters) on the way in and out.
pub const CHUNK: usize = 48 * 1024;
/// Bytes the cipher adds to each chunk (the GCM tag).
pub const TAG: usize = 16;
/// Format of the sealed key material (and so of the chunk stream it encrypts).
const FORMAT_V1: u8 = 1;
/// STREAM nonce prefix: the 12-byte GCM nonce less the 5 bytes of counter and flag.
const PREFIX: usize = 7;
/// Table name bound into the associated data of sealed file keys.
const FILE_KEYS: &str = "file_keys";

/// How many chunks a file of `size` bytes has: at least one (an empty file is one empty chunk).
pub fn chunk_count(size: u64) -> u64 {
    size.div_ceil(CHUNK as u64).max(1)
}

/// Plaintext length of chunk `index` (from 0) of a file of `size` bytes.
pub fn chunk_len(size: u64, index: u64) -> usize {
    let start = index.saturating_mul(CHUNK as u64);
    usize::try_from(size.saturating_sub(start).min(CHUNK as u64)).unwrap_or(CHUNK)
}

/// Stored size of a file of `size` bytes: every chunk carries its tag.
pub fn sealed_len(size: u64) -> u64 {
    size + chunk_count(size) * TAG as u64
}

/// A file's own key and STREAM nonce prefix.
pub struct FileKey {
    key: Key256,
    prefix: [u8; PREFIX],
}

impl Drop for FileKey {
    fn drop(&mut self) {
        self.prefix.zeroize();
    }
}

impl FileKey {
    /// A fresh key for a new file.
    pub fn random() -> FileKey {
        let mut prefix = [0u8; PREFIX];
        crate::crypto::random::fill(&mut prefix);
        FileKey { key: Key256::random(), prefix }
    }

    /// Seals the key under the owner's data key, bound to the tenant and file.
    pub fn seal(&self, owner: &DataKey, tenant: TenantId, fileuuid: &str) -> Vec<u8> {
        let mut plain = Zeroizing::new(Vec::with_capacity(1 + 32 + PREFIX));
        plain.push(FORMAT_V1);
        plain.extend_from_slice(self.key.as_array());
        plain.extend_from_slice(&self.prefix);
        seal_user(owner, tenant, FILE_KEYS, fileuuid.as_bytes(), &plain)
    }

    /// Opens a key sealed by [`FileKey::seal`].
    pub fn open(owner: &DataKey, tenant: TenantId, fileuuid: &str, blob: &[u8]) -> Result<FileKey, CryptoError> {
        let plain = Zeroizing::new(open_user(owner, tenant, FILE_KEYS, fileuuid.as_bytes(), blob)?);
        if plain.len() != 1 + 32 + PREFIX || plain[0] != FORMAT_V1 {
            return Err(CryptoError);
        }
        let key = Key256::from_slice(&plain[1..33]).ok_or(CryptoError)?;
        let mut prefix = [0u8; PREFIX];
        prefix.copy_from_slice(&plain[33..]);
        Ok(FileKey { key, prefix })
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(self.key.as_array().into())
    }

    /// An encryptor for the chunks of a file of `size` bytes.
    pub fn sealer(&self, tenant: TenantId, fileuuid: &str, size: u64) -> ChunkSealer {
        ChunkSealer {
            stream: Some(EncryptorBE32::from_aead(self.cipher(), (&self.prefix).into())),
            aad: chunk_aad(tenant, fileuuid, size),
            size,
            next: 0,
        }
    }

    /// A decryptor for the chunks of a file of `size` bytes.
    pub fn opener(&self, tenant: TenantId, fileuuid: &str, size: u64) -> ChunkOpener {
        ChunkOpener {
            stream: Some(DecryptorBE32::from_aead(self.cipher(), (&self.prefix).into())),
            aad: chunk_aad(tenant, fileuuid, size),
            size,
            next: 0,
        }
    }
}

fn chunk_aad(tenant: TenantId, fileuuid: &str, size: u64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64);
    aad.extend_from_slice(b"bunker-file-v1");
    aad.extend_from_slice(&tenant.get().to_be_bytes());
    aad.extend_from_slice(&(fileuuid.len() as u32).to_be_bytes());
    aad.extend_from_slice(fileuuid.as_bytes());
    aad.extend_from_slice(&size.to_be_bytes());
    aad
}

/// Encrypts the chunks of one file, in order.
pub struct ChunkSealer {
    stream: Option<EncryptorBE32<Aes256Gcm>>,
    aad: Vec<u8>,
    size: u64,
    next: u64,
}

impl ChunkSealer {
    /// Encrypts the next chunk in place (the tag is appended). The chunk must have the length
    /// the file's size gives it; the last one closes the stream.
    pub fn seal(&mut self, chunk: &mut Vec<u8>) -> Result<(), CryptoError> {
        let count = chunk_count(self.size);
        if self.next >= count || chunk.len() != chunk_len(self.size, self.next) {
            return Err(CryptoError);
        }
        self.next += 1;
        if self.next == count {
            let stream = self.stream.take().ok_or(CryptoError)?;
            stream.encrypt_last_in_place(&self.aad, chunk).map_err(|_| CryptoError)
        } else {
            let stream = self.stream.as_mut().ok_or(CryptoError)?;
            stream.encrypt_next_in_place(&self.aad, chunk).map_err(|_| CryptoError)
        }
    }

    /// True once every chunk was sealed.
    pub fn is_done(&self) -> bool {
        self.next == chunk_count(self.size)
    }
}

/// Decrypts the chunks of one file, in order.
pub struct ChunkOpener {
    stream: Option<DecryptorBE32<Aes256Gcm>>,
    aad: Vec<u8>,
    size: u64,
    next: u64,
}

impl ChunkOpener {
    /// Stored length of the next chunk, `None` once every chunk was opened.
    pub fn next_sealed_len(&self) -> Option<usize> {
        (self.next < chunk_count(self.size)).then(|| chunk_len(self.size, self.next) + TAG)
    }

    /// Decrypts the next chunk in place (the tag is removed); fails on any tampering, a chunk
    /// out of order, a missing last chunk or one too many.
    pub fn open(&mut self, chunk: &mut Vec<u8>) -> Result<(), CryptoError> {
        let count = chunk_count(self.size);
        if self.next >= count || chunk.len() != chunk_len(self.size, self.next) + TAG {
            return Err(CryptoError);
        }
        self.next += 1;
        if self.next == count {
            let stream = self.stream.take().ok_or(CryptoError)?;
            stream.decrypt_last_in_place(&self.aad, chunk).map_err(|_| CryptoError)
        } else {
            let stream = self.stream.as_mut().ok_or(CryptoError)?;
            stream.decrypt_next_in_place(&self.aad, chunk).map_err(|_| CryptoError)
        }
    }

    /// True once every chunk was opened.
    pub fn is_done(&self) -> bool {
        self.next == chunk_count(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0b6f6a52-8d1c-4c39-9a0e-4f5d7c2e1a10";

    fn seal_all(key: &FileKey, data: &[u8]) -> Vec<Vec<u8>> {
        let size = data.len() as u64;
        let mut sealer = key.sealer(TenantId::new(1), UUID, size);
        let mut out = Vec::new();
        for index in 0..chunk_count(size) {
            let start = index as usize * CHUNK;
            let mut chunk = data[start..start + chunk_len(size, index)].to_vec();
            sealer.seal(&mut chunk).expect("seal");
            out.push(chunk);
        }
        assert!(sealer.is_done());
        out
    }

    fn open_all(key: &FileKey, size: u64, chunks: &[Vec<u8>]) -> Result<Vec<u8>, CryptoError> {
        let mut opener = key.opener(TenantId::new(1), UUID, size);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut chunk = chunk.clone();
            opener.open(&mut chunk)?;
            out.extend_from_slice(&chunk);
        }
        if opener.is_done() { Ok(out) } else { Err(CryptoError) }
    }

    #[test]
    fn chunk_geometry() {
        assert_eq!((chunk_count(0), chunk_len(0, 0)), (1, 0));
        assert_eq!((chunk_count(CHUNK as u64), chunk_len(CHUNK as u64, 0)), (1, CHUNK));
        assert_eq!((chunk_count(CHUNK as u64 + 1), chunk_len(CHUNK as u64 + 1, 1)), (2, 1));
        assert_eq!(sealed_len(0), TAG as u64);
        assert_eq!(sealed_len(2 * CHUNK as u64 + 5), 2 * CHUNK as u64 + 5 + 3 * TAG as u64);
        assert_eq!(CHUNK % 3, 0);
    }

    #[test]
    fn round_trips_empty_small_and_multi_chunk() {
        let key = FileKey::random();
        for size in [0, 1, CHUNK - 1, CHUNK, 2 * CHUNK + 7] {
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let chunks = seal_all(&key, &data);
            assert_eq!(chunks.iter().map(Vec::len).sum::<usize>() as u64, sealed_len(size as u64));
            assert_eq!(open_all(&key, size as u64, &chunks).expect("open"), data);
        }
    }

    #[test]
    fn tampering_reordering_and_truncation_fail() {
        let key = FileKey::random();
        let data = vec![7u8; 2 * CHUNK + 10];
        let size = data.len() as u64;
        let chunks = seal_all(&key, &data);
        let mut swapped = chunks.clone();
        swapped.swap(0, 1);
        assert!(open_all(&key, size, &swapped).is_err());
        assert!(open_all(&key, size, &chunks[..2]).is_err(), "missing last chunk");
        let mut flipped = chunks.clone();
        flipped[1][0] ^= 1;
        assert!(open_all(&key, size, &flipped).is_err());
        // The size is bound: a lying size column does not decrypt.
        assert!(open_all(&key, size + 1, &chunks).is_err());
        assert!(open_all(&FileKey::random(), size, &chunks).is_err());
        let mut other = key.opener(TenantId::new(2), UUID, size);
        assert!(other.open(&mut chunks[0].clone()).is_err(), "bound to the tenant");
    }

    #[test]
    fn sealed_key_is_bound_to_owner_tenant_and_file() {
        let owner = Key256::random();
        let key = FileKey::random();
        let sealed = key.seal(&owner, TenantId::new(1), UUID);
        let opened = FileKey::open(&owner, TenantId::new(1), UUID, &sealed).expect("open");
        assert!(opened.key.ct_eq(&key.key) && opened.prefix == key.prefix);
        assert!(FileKey::open(&Key256::random(), TenantId::new(1), UUID, &sealed).is_err());
        assert!(FileKey::open(&owner, TenantId::new(2), UUID, &sealed).is_err());
        assert!(FileKey::open(&owner, TenantId::new(1), "1b6f6a52-8d1c-4c39-9a0e-4f5d7c2e1a10", &sealed).is_err());
    }
}
