//! What each operation sends, and how its answer is judged.
//!
//! Users loaded by `load` are u<i> (i < users): login `u<i>`, email `u<i>@bench.example`,
//! phone `+44<i, 10 digits>`. UserCreate makes c<n> (+45...), UserCreateBulk b<n> (+46...),
//! n counting from 0 in each run, so every value is new on a fresh vault.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde_json::Value;

/// A benchmarked operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// UserGet by email of a loaded user.
    UserGet,
    /// UserCreate of a new user.
    UserCreate,
    /// TokenCreate of a random card number.
    TokenCreate,
    /// TokenGet of a token made before the run.
    TokenGet,
    /// UserCreateBulk of `batch` new users.
    UserBulk,
}

impl Op {
    /// Parses the name used by bench/run (BENCH_OPS).
    pub fn parse(name: &str) -> Result<Op, String> {
        match name {
            // UserGet through a role's access token: the same requests (bench/run passes the token).
            "userget" | "roleget" => Ok(Op::UserGet),
            "usercreate" => Ok(Op::UserCreate),
            "tokencreate" => Ok(Op::TokenCreate),
            "tokenget" => Ok(Op::TokenGet),
            "userbulk" => Ok(Op::UserBulk),
            other => Err(format!("unknown operation {other}: userget, usercreate, tokencreate, tokenget or userbulk")),
        }
    }

    /// The API operation called.
    pub fn operation(self) -> &'static str {
        match self {
            Op::UserGet => "UserGet",
            Op::UserCreate => "UserCreate",
            Op::TokenCreate => "TokenCreate",
            Op::TokenGet => "TokenGet",
            Op::UserBulk => "UserCreateBulk",
        }
    }
}

/// Small, fast, per-connection random numbers (xorshift64*); quality is not the point.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from `seed` (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A profile as the vault stores it: login, email, phone, name.
pub fn profile(out: &mut String, prefix: char, country: u32, n: u64) {
    let _ = write!(
        out,
        r#"{{"login":"{prefix}{n}","email":"{prefix}{n}@bench.example","phone":"+{country}{n:010}","name":"Bench User {prefix}{n}"}}"#
    );
}

/// A UserCreateBulk body of users `prefix<from>..prefix<to>`.
pub fn bulk_body(prefix: char, country: u32, from: u64, to: u64) -> Bytes {
    let mut out = String::with_capacity(((to - from) as usize) * 140 + 16);
    out.push_str(r#"{"records":["#);
    for n in from..to {
        if n > from {
            out.push(',');
        }
        out.push_str(r#"{"profile":"#);
        profile(&mut out, prefix, country, n);
        out.push('}');
    }
    out.push_str("]}");
    Bytes::from(out)
}

/// A random 16-digit card number starting with 4 whose last digit is its Luhn check digit.
pub fn card(rng: &mut Rng) -> String {
    let mut digits = [0u8; 16];
    digits[0] = 4;
    for d in digits.iter_mut().take(15).skip(1) {
        *d = rng.below(10) as u8;
    }
    let sum: u32 = digits[..15]
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 0 {
                let twice = d * 2;
                if twice > 9 { twice - 9 } else { twice }
            } else {
                d
            }
        })
        .sum();
    digits[15] = ((10 - sum % 10) % 10) as u8;
    digits.iter().map(|d| char::from(b'0' + d)).collect()
}

/// The requests of one benchmarked operation.
pub struct Workload {
    /// The operation.
    pub op: Op,
    /// Users loaded before the run (UserGet picks among them).
    pub users: u64,
    /// Token handles made before the run (TokenGet picks among them).
    pub tokens: Vec<String>,
    /// Records per UserCreateBulk call.
    pub batch: u64,
    next: AtomicU64,
}

impl Workload {
    /// A workload; `tokens` is needed by TokenGet only, `users` by UserGet only.
    pub fn new(op: Op, users: u64, tokens: Vec<String>, batch: u64) -> Result<Workload, String> {
        if op == Op::UserGet && users == 0 {
            return Err("userget needs --users > 0".into());
        }
        if op == Op::TokenGet && tokens.is_empty() {
            return Err("tokenget needs --tokens FILE with at least one token".into());
        }
        Ok(Workload { op, users, tokens, batch: batch.max(1), next: AtomicU64::new(0) })
    }

    /// The body of the next request.
    pub fn body(&self, rng: &mut Rng) -> Bytes {
        match self.op {
            Op::UserGet => {
                let i = rng.below(self.users);
                Bytes::from(format!(r#"{{"mode":"email","identity":"u{i}@bench.example"}}"#))
            }
            Op::UserCreate => {
                let n = self.next.fetch_add(1, Ordering::Relaxed);
                let mut out = String::with_capacity(160);
                out.push_str(r#"{"profile":"#);
                profile(&mut out, 'c', 45, n);
                out.push('}');
                Bytes::from(out)
            }
            Op::TokenCreate => Bytes::from(format!(r#"{{"tokentype":"creditcard","record":"{}"}}"#, card(rng))),
            Op::TokenGet => {
                let token = &self.tokens[rng.below(self.tokens.len() as u64) as usize];
                Bytes::from(format!(r#"{{"token":"{token}"}}"#))
            }
            Op::UserBulk => {
                let from = self.next.fetch_add(self.batch, Ordering::Relaxed);
                bulk_body('b', 46, from, from + self.batch)
            }
        }
    }
}

/// Judges an answer: `Ok(records created)` (1 for single-record calls) when the status is 200
/// and the body says `"status":"ok"` (and, for a bulk call, no record was refused).
pub fn judge(op: Op, status: u16, body: &[u8]) -> Result<u64, String> {
    let parsed: Value = serde_json::from_slice(body).map_err(|_| format!("HTTP {status}, body is not JSON"))?;
    if status != 200 || parsed.get("status").and_then(Value::as_str) != Some("ok") {
        let message = parsed.get("message").and_then(Value::as_str).unwrap_or("no message");
        return Err(format!("HTTP {status}: {message}"));
    }
    if op != Op::UserBulk {
        return Ok(1);
    }
    let refused = parsed.get("errors").and_then(Value::as_array).map_or(0, Vec::len);
    if refused > 0 {
        return Err(format!("{refused} records refused"));
    }
    Ok(parsed.get("created").and_then(Value::as_array).map_or(0, Vec::len) as u64)
}

/// Judges a loading call of `expected` records: `Ok(records now present)` when every record was
/// created or, with `retried`, refused as a duplicate (a timed-out earlier attempt had committed it).
pub fn judge_load(status: u16, body: &[u8], expected: u64, retried: bool) -> Result<u64, String> {
    let parsed: Value = serde_json::from_slice(body).map_err(|_| format!("HTTP {status}, body is not JSON"))?;
    if status != 200 || parsed.get("status").and_then(Value::as_str) != Some("ok") {
        let message = parsed.get("message").and_then(Value::as_str).unwrap_or("no message");
        return Err(format!("HTTP {status}: {message}"));
    }
    let created = parsed.get("created").and_then(Value::as_array).map_or(0, Vec::len) as u64;
    let refused = parsed.get("errors").and_then(Value::as_array).cloned().unwrap_or_default();
    let duplicates = refused
        .iter()
        .filter(|e| e.get("reason").and_then(Value::as_str).is_some_and(|r| r.starts_with("Duplicate")))
        .count() as u64;
    if created + if retried { duplicates } else { 0 } != expected {
        let reason = refused.first().and_then(|e| e.get("reason")).and_then(Value::as_str).unwrap_or("none");
        return Err(format!("{created} of {expected} created, {} refused (first reason: {reason})", refused.len()));
    }
    Ok(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn luhn_ok(number: &str) -> bool {
        let sum: u32 = number
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    let twice = d * 2;
                    if twice > 9 { twice - 9 } else { twice }
                } else {
                    d
                }
            })
            .sum();
        sum % 10 == 0
    }

    #[test]
    fn cards_pass_luhn() {
        assert!(luhn_ok("4111111111111111"));
        let mut rng = Rng::new(7);
        for _ in 0..1000 {
            let number = card(&mut rng);
            assert_eq!(number.len(), 16);
            assert!(luhn_ok(&number), "{number}");
        }
    }

    #[test]
    fn bulk_body_is_json() {
        let body = bulk_body('b', 46, 5, 8);
        let value: Value = serde_json::from_slice(&body).expect("json");
        let records = value["records"].as_array().expect("records");
        assert_eq!(records.len(), 3);
        assert_eq!(records[0]["profile"]["email"], "b5@bench.example");
        assert_eq!(records[2]["profile"]["phone"], "+460000000007");
    }

    #[test]
    fn judges_answers() {
        assert_eq!(judge(Op::UserGet, 200, br#"{"status":"ok"}"#), Ok(1));
        assert!(judge(Op::UserGet, 200, br#"{"status":"error","message":"x"}"#).is_err());
        assert!(judge(Op::UserGet, 500, br#"{"status":"ok"}"#).is_err());
        assert_eq!(judge(Op::UserBulk, 200, br#"{"status":"ok","created":[{},{}],"errors":[]}"#), Ok(2));
        assert!(judge(Op::UserBulk, 200, br#"{"status":"ok","created":[{}],"errors":[{}]}"#).is_err());
    }

    #[test]
    fn judges_loading() {
        let partly = br#"{"status":"ok","created":[{}],"errors":[{"reason":"Duplicate email value"}]}"#;
        assert_eq!(judge_load(200, partly, 2, true), Ok(2));
        assert!(judge_load(200, partly, 2, false).is_err());
        assert!(judge_load(503, br#"{"status":"error","message":"Request timed out"}"#, 2, true).is_err());
    }
}
