//! The licence as text: `base64url(JSON terms) + "." + base64url(Ed25519 signature of those
//! bytes)`, both without padding. The signature covers the exact payload bytes, so the JSON is
//! never re-serialised before it is checked; the terms are read only once it holds.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The one format version this vault reads and writes.
pub const FORMAT: u32 = 1;
/// Longest licence text considered (a real one is a few hundred characters).
const MAX_TEXT: usize = 4096;
/// Longest customer name.
const MAX_CUSTOMER: usize = 200;

/// What a licence states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    /// Format version ([`FORMAT`]).
    pub v: u32,
    /// Who the licence is for.
    pub customer: String,
    /// Most records (user profiles plus standalone tokens) the vault may hold.
    pub max_records: i64,
    /// When it stops allowing changes (unix seconds).
    pub expires: i64,
    /// When it was signed (unix seconds).
    pub issued: i64,
}

impl Terms {
    /// True from the second `expires` names on.
    pub fn expired(&self, now: i64) -> bool {
        now >= self.expires
    }

    /// The terms a signer may state: a name, a positive maximum, an expiry after the issue.
    fn check(&self) -> Result<(), &'static str> {
        if self.v != FORMAT {
            return Err("unknown licence format version");
        }
        let customer = self.customer.trim();
        if customer.is_empty() || customer.len() > MAX_CUSTOMER || customer.chars().any(char::is_control) {
            return Err("the customer must be a name of 1 to 200 characters");
        }
        if self.max_records < 1 {
            return Err("the maximum number of records must be at least 1");
        }
        if self.expires <= self.issued {
            return Err("the expiry must come after the issue time");
        }
        Ok(())
    }
}

/// Why a licence text was refused. Never carries the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    /// Not two base64url parts, or not a 64-byte signature, or a payload that is not the terms.
    #[error("malformed")]
    Malformed,
    /// The signature does not hold under the configured public key.
    #[error("bad signature")]
    BadSignature,
    /// Signed, but the terms are out of range.
    #[error("{0}")]
    Terms(&'static str),
}

/// The public key licences are verified against (`BUNKER_LICENSE_PUBLIC_KEY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// A key given as 64 hex characters or as base64 (standard or URL alphabet) of 32 bytes.
    /// Small-order ("weak") points are refused: any signature would verify under them.
    pub fn parse(text: &str) -> Result<PublicKey, &'static str> {
        let text = text.trim();
        let bytes = decode_key_bytes(text)
            .ok_or("must be 32 bytes as 64 hex characters or base64, as `bunker license keygen` prints it")?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| "is not an Ed25519 public key")?;
        if key.is_weak() {
            return Err("is a weak Ed25519 key, which would accept any signature");
        }
        Ok(PublicKey(key))
    }

    /// As `bunker license keygen` prints it: 64 hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    /// The terms of `text` if it is a licence signed by this key, whatever its expiry.
    pub fn verify(&self, text: &str) -> Result<Terms, Invalid> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(Invalid::Malformed);
        }
        let (payload, signature) = text.split_once('.').ok_or(Invalid::Malformed)?;
        let payload = URL_SAFE_NO_PAD.decode(payload).map_err(|_| Invalid::Malformed)?;
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| Invalid::Malformed)?;
        let signature = Signature::from_slice(&signature).map_err(|_| Invalid::Malformed)?;
        self.0.verify_strict(&payload, &signature).map_err(|_| Invalid::BadSignature)?;
        let terms: Terms = serde_json::from_slice(&payload).map_err(|_| Invalid::Malformed)?;
        terms.check().map_err(Invalid::Terms)?;
        Ok(terms)
    }
}

fn decode_key_bytes(text: &str) -> Option<[u8; 32]> {
    let decoded = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        hex::decode(text).ok()?
    } else {
        [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD].iter().find_map(|engine| engine.decode(text).ok())?
    };
    decoded.try_into().ok()
}

/// A signing key, kept by whoever issues licences (never by the vault).
pub struct PrivateKey(SigningKey);

impl PrivateKey {
    /// A new random key.
    pub fn generate() -> PrivateKey {
        let mut seed = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, seed.as_mut());
        PrivateKey(SigningKey::from_bytes(&seed))
    }

    /// The key whose 32-byte seed is given as 64 hex characters (the key file's content).
    pub fn from_hex(text: &str) -> Result<PrivateKey, &'static str> {
        let bytes = Zeroizing::new(hex::decode(text.trim()).map_err(|_| "not hex")?);
        let seed: Zeroizing<[u8; 32]> =
            Zeroizing::new(bytes.as_slice().try_into().map_err(|_| "not 32 bytes (64 hex characters)")?);
        Ok(PrivateKey(SigningKey::from_bytes(&seed)))
    }

    /// The seed as 64 hex characters (what the key file holds).
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.to_bytes()))
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs terms into a licence text. Refuses terms no vault would accept.
    pub fn sign(&self, terms: &Terms) -> Result<String, &'static str> {
        terms.check()?;
        let payload = serde_json::to_vec(terms).map_err(|_| "the terms cannot be encoded")?;
        let signature = self.0.sign(&payload);
        Ok(format!("{}.{}", URL_SAFE_NO_PAD.encode(&payload), URL_SAFE_NO_PAD.encode(signature.to_bytes())))
    }
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PrivateKey").field(&self.public().to_hex()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> Terms {
        Terms { v: FORMAT, customer: "Acme Resale".into(), max_records: 1000, expires: 2_000_000_000, issued: 1 }
    }

    #[test]
    fn a_signed_licence_verifies_under_its_key_only() {
        let key = PrivateKey::generate();
        let text = key.sign(&terms()).expect("sign");
        assert_eq!(key.public().verify(&text), Ok(terms()));
        assert_eq!(PrivateKey::generate().public().verify(&text), Err(Invalid::BadSignature));
    }

    #[test]
    fn any_changed_byte_is_refused() {
        let key = PrivateKey::generate();
        let text = key.sign(&terms()).expect("sign");
        let (payload, signature) = text.split_once('.').expect("two parts");
        let mut forged = URL_SAFE_NO_PAD.decode(payload).expect("payload");
        let at = forged.iter().position(|b| *b == b'1').expect("a digit");
        forged[at] = b'9';
        let forged = format!("{}.{signature}", URL_SAFE_NO_PAD.encode(&forged));
        assert_eq!(key.public().verify(&forged), Err(Invalid::BadSignature));
        let mut signature = URL_SAFE_NO_PAD.decode(signature).expect("signature");
        signature[10] ^= 1;
        let forged = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(&signature));
        assert_eq!(key.public().verify(&forged), Err(Invalid::BadSignature));
    }

    #[test]
    fn garbage_is_malformed() {
        let key = PrivateKey::generate().public();
        for text in ["", "test-license-key-1234", "a.b", "e30.e30", "....", &"x".repeat(MAX_TEXT + 1)] {
            assert_eq!(key.verify(text), Err(Invalid::Malformed), "{text}");
        }
    }

    #[test]
    fn terms_out_of_range_are_not_signed() {
        let key = PrivateKey::generate();
        assert!(key.sign(&Terms { max_records: 0, ..terms() }).is_err());
        assert!(key.sign(&Terms { expires: 1, ..terms() }).is_err());
        assert!(key.sign(&Terms { customer: " ".into(), ..terms() }).is_err());
        assert!(key.sign(&Terms { v: 2, ..terms() }).is_err());
    }

    #[test]
    fn public_keys_parse_as_hex_or_base64() {
        let key = PrivateKey::generate();
        let public = key.public();
        assert_eq!(PublicKey::parse(&public.to_hex()), Ok(public));
        assert_eq!(PublicKey::parse(&STANDARD.encode(public.0.as_bytes())), Ok(public));
        assert_eq!(PublicKey::parse(&URL_SAFE_NO_PAD.encode(public.0.as_bytes())), Ok(public));
        for bad in ["", "00", &"zz".repeat(32), &hex::encode([0u8; 32])] {
            assert!(PublicKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_keys_round_trip_through_hex() {
        let key = PrivateKey::generate();
        let again = PrivateKey::from_hex(&key.to_hex()).expect("hex");
        assert_eq!(again.public(), key.public());
        assert!(PrivateKey::from_hex("00").is_err());
    }
}
