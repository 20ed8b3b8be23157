//! Random bytes for keys, nonces and identifiers.
//!
//! Drawn from `rand`'s thread-local CSPRNG (ChaCha12, seeded from the operating system and
//! reseeded from it every 64 KiB and after a fork) rather than a system call per draw: a new
//! user alone needs a data key, a token and three nonces, and the system calls showed up in
//! profiles of bulk creation. Long-lived secrets made once (the wrapping key, recovery shares)
//! still come straight from the operating system.

use rand::RngCore;

/// Fills `out` with cryptographically secure random bytes.
pub fn fill(out: &mut [u8]) {
    rand::thread_rng().fill_bytes(out);
}
