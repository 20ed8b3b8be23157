//! New tokenbases: random values of the same shape as the value they stand for.
//!
//! A tokenbase is drawn at random, never computed from the value (no keyed permutation): it
//! carries no information about the value, so no key compromise turns tokenbases back into card
//! numbers. The price is that equal values get unrelated tokenbases unless `unique` is asked
//! for, and that a draw can collide with an existing tokenbase; the store's UNIQUE blind index
//! catches that and the service draws again.

use rand::Rng;

use super::record::TokenType;
use super::shape::{CardShape, Luhn};

/// Domain of email tokenbases. `.invalid` is reserved (RFC 2606): mail sent to a tokenbase by
/// mistake cannot be delivered anywhere.
pub const EMAIL_DOMAIN: &str = "token.invalid";

/// Length of the random local part of an email tokenbase (36^16 ≈ 2^82 possibilities).
const EMAIL_LOCAL_LEN: usize = 16;

const LOCAL_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Draws candidate tokenbases: `(type, card digits) -> candidate`. [`random`] in service;
/// tests substitute their own to force collisions.
pub type Generator = dyn FnMut(TokenType, usize) -> String + Send;

/// A random tokenbase of `kind`; for a card, `digits` long and of the default shape.
pub fn random(kind: TokenType, digits: usize) -> String {
    shaped(kind, digits, &CardShape::default())
}

/// A generator of tokenbases whose cards have `shape`.
pub fn with_shape(shape: CardShape) -> impl FnMut(TokenType, usize) -> String + Send {
    move |kind, digits| shaped(kind, digits, &shape)
}

/// A random tokenbase of `kind`; for a card, `digits` long and of `shape`.
///
/// A card tokenbase starts with the shape's prefix, or else with 1–9 (a leading zero is lost by
/// clients that store numbers as integers), continues with random digits and ends with its Luhn
/// check digit, or with any other digit when the shape asks for Luhn-invalid tokens.
pub fn shaped(kind: TokenType, digits: usize, shape: &CardShape) -> String {
    match kind {
        TokenType::CreditCard => random_card(digits, shape),
        TokenType::Email => {
            let mut rng = rand::thread_rng();
            let local: String = (0..EMAIL_LOCAL_LEN)
                .map(|_| char::from(LOCAL_ALPHABET[rng.gen_range(0..LOCAL_ALPHABET.len())]))
                .collect();
            format!("{local}@{EMAIL_DOMAIN}")
        }
    }
}

fn random_card(digits: usize, shape: &CardShape) -> String {
    let mut rng = rand::thread_rng();
    let mut body: Vec<u8> = Vec::with_capacity(digits);
    let payload = digits.saturating_sub(1);
    match &shape.prefix {
        Some(prefix) => body.extend(prefix.digits().iter().take(payload)),
        None if payload > 0 => body.push(rng.gen_range(1..=9)),
        None => {}
    }
    while body.len() < payload {
        body.push(rng.gen_range(0..=9u8));
    }
    let check = luhn_check_digit(&body);
    body.push(match shape.luhn {
        Luhn::Valid => check,
        // One of the nine digits that make the number fail: its Luhn sum is off by 1 to 9.
        Luhn::Invalid => (check + rng.gen_range(1..=9u8)) % 10,
    });
    body.iter().map(|d| char::from(b'0' + d)).collect()
}

/// The digit that makes `payload` followed by it pass the Luhn check.
fn luhn_check_digit(payload: &[u8]) -> u8 {
    // Counting from the right of the final number, the check digit is position 0, so the last
    // payload digit is doubled.
    let sum: u32 = payload.iter().rev().enumerate().map(|(i, &d)| luhn_term(d, i % 2 == 0)).sum();
    ((10 - sum % 10) % 10) as u8
}

fn luhn_term(digit: u8, doubled: bool) -> u32 {
    let d = u32::from(digit);
    if !doubled {
        d
    } else if d * 2 > 9 {
        d * 2 - 9
    } else {
        d * 2
    }
}

/// True when `number` is all digits and passes the Luhn check.
pub fn luhn_valid(number: &str) -> bool {
    !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit())
        && number.bytes().rev().enumerate().map(|(i, b)| luhn_term(b - b'0', i % 2 == 1)).sum::<u32>() % 10 == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_accepts_known_numbers_and_rejects_altered_ones() {
        for valid in ["4111111111111111", "5500005555555559", "5467047429390590", "378282246310005", "79927398713"] {
            assert!(luhn_valid(valid), "{valid}");
        }
        for invalid in ["4111111111111112", "79927398710", "", "4111-1111"] {
            assert!(!luhn_valid(invalid), "{invalid}");
        }
        assert_eq!(luhn_check_digit(&[7, 9, 9, 2, 7, 3, 9, 8, 7, 1]), 3);
    }

    #[test]
    fn random_cards_have_the_length_and_pass_luhn() {
        for digits in 12..=19 {
            for _ in 0..200 {
                let card = random(TokenType::CreditCard, digits);
                assert_eq!(card.len(), digits);
                assert!(luhn_valid(&card), "{card}");
                assert_ne!(card.as_bytes()[0], b'0');
            }
        }
    }

    #[test]
    fn shaped_cards_keep_the_length_and_prefix_and_fail_luhn_when_asked() {
        use super::super::shape::Prefix;
        let invalid = CardShape { luhn: Luhn::Invalid, prefix: None };
        let prefixed = CardShape { luhn: Luhn::Valid, prefix: Prefix::parse("999") };
        let both = CardShape { luhn: Luhn::Invalid, prefix: Prefix::parse("123456") };
        let mut last_digits = std::collections::HashSet::new();
        for digits in 12..=19 {
            for _ in 0..200 {
                let card = shaped(TokenType::CreditCard, digits, &invalid);
                assert_eq!(card.len(), digits);
                assert!(!luhn_valid(&card), "{card}");
                assert_ne!(card.as_bytes()[0], b'0');
                last_digits.insert(card.as_bytes()[digits - 1]);
                let card = shaped(TokenType::CreditCard, digits, &prefixed);
                assert_eq!(card.len(), digits);
                assert!(card.starts_with("999") && luhn_valid(&card), "{card}");
                let card = shaped(TokenType::CreditCard, digits, &both);
                assert_eq!(card.len(), digits);
                assert!(card.starts_with("123456") && !luhn_valid(&card), "{card}");
            }
        }
        // The wrong digit is drawn, not fixed: a reader cannot recompute the valid number.
        assert_eq!(last_digits.len(), 10);
    }

    #[test]
    fn email_tokenbases_are_addresses_at_the_reserved_domain() {
        let a = random(TokenType::Email, 0);
        let (local, domain) = a.split_once('@').expect("an address");
        assert_eq!(domain, EMAIL_DOMAIN);
        assert_eq!(local.len(), EMAIL_LOCAL_LEN);
        assert!(local.bytes().all(|b| LOCAL_ALPHABET.contains(&b)));
        assert_ne!(a, random(TokenType::Email, 0));
    }
}
