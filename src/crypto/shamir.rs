//! Shamir secret sharing of the recovery key (GF(256), vsss-rs): five shares, any three recover.

use vsss_rs::Gf256;

use super::keys::Key256;

/// Number of shares issued at initialisation.
pub const SHARES: usize = 5;
/// Number of shares needed to recover.
pub const THRESHOLD: usize = 3;

/// Splits the recovery key into hex-encoded shares.
pub fn split(secret: &Key256) -> Vec<String> {
    Gf256::split_array(THRESHOLD, SHARES, secret.as_array(), rand::rngs::OsRng)
        .expect("3-of-5 over a 32-byte secret is a valid split")
        .into_iter()
        .map(hex::encode)
        .collect()
}

/// Why shares could not be combined; the message names the offending parameter only.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ShareError {
    /// A share is not hex.
    #[error("Failed to hex decode {0}")]
    Hex(&'static str),
    /// Shares are malformed, duplicated or of different lengths.
    #[error("The shares are not valid")]
    Invalid,
}

/// Recombines hex shares named `key1`, `key2`, ... into the recovery key.
pub fn combine(shares: &[(&'static str, &str)]) -> Result<Key256, ShareError> {
    let mut decoded = Vec::with_capacity(shares.len());
    for (name, text) in shares {
        decoded.push(hex::decode(text.trim()).map_err(|_| ShareError::Hex(name))?);
    }
    let secret = zeroize::Zeroizing::new(Gf256::combine_array(&decoded).map_err(|_| ShareError::Invalid)?);
    Key256::from_slice(&secret).ok_or(ShareError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_three_of_five_recover() {
        let key = Key256::random();
        let shares = split(&key);
        assert_eq!(shares.len(), 5);
        for (a, b, c) in [(0, 1, 2), (0, 2, 4), (1, 3, 4), (2, 3, 4)] {
            let got = combine(&[("key1", &shares[a]), ("key2", &shares[b]), ("key3", &shares[c])]).expect("combine");
            assert!(got.ct_eq(&key));
        }
    }

    #[test]
    fn bad_hex_names_the_share() {
        let shares = split(&Key256::random());
        let err = combine(&[("key1", &shares[0]), ("key2", "zz"), ("key3", &shares[2])]).err();
        assert_eq!(err, Some(ShareError::Hex("key2")));
    }
}
