//! Admission: what a request may cost before the vault spends anything on it.
//!
//! Every operation has a body limit by class: public operations (no token) a few KiB, ordinary
//! operations 1 MiB, bulk and file operations the large limit. A declared `Content-Length` over
//! the limit is a 413 before any byte is read. A body that is read reserves its cost against a
//! shared memory budget first — its length times what decoding it may cost — and a request that
//! does not fit is a 503 with `Retry-After`, not a request the vault tries to absorb.

use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use http_body_util::BodyExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::state::Settings;

/// Operations that carry thousands of records or a file in one call: the large limit, and a
/// body that is never decoded as one tree.
pub const LARGE: [&str; 4] = ["UserCreateBulk", "TokenCreateBulk", "UserDeleteBulk", "FileCreate"];

/// What decoding a byte of an ordinary body may cost: a request struct holding a JSON tree
/// (a profile) takes up to 72 times its text (`[0,0,…]`: a 72-byte `Value` per two-byte
/// element, in a `Vec` that may just have doubled; see the `json_tree_cost` test). A 50 MB body
/// of that shape was measured at 1.9 GB resident, 38 times.
const TREE_COST: usize = 72;
/// What a byte of a large body may cost: its text, its records' raw copies and their sealed
/// forms; records are decoded one at a time.
const RAW_COST: usize = 4;
/// The least any body reserves: the request's own bookkeeping.
const FLOOR: usize = 16 * 1024;

/// How much an operation's body may be and cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyRule {
    /// Largest body, in bytes.
    pub limit: usize,
    /// Bytes of memory one byte of body may take once decoded.
    pub cost: usize,
}

impl BodyRule {
    /// The rule for `operation`; `public` for operations served without a token.
    pub fn of(settings: &Settings, operation: &str, public: bool) -> BodyRule {
        if public {
            BodyRule { limit: settings.public_body_limit, cost: TREE_COST }
        } else if LARGE.contains(&operation) {
            BodyRule { limit: settings.large_body_limit, cost: RAW_COST }
        } else {
            BodyRule { limit: settings.body_limit, cost: TREE_COST }
        }
    }
}

/// The shared budget of request memory, in KiB.
#[derive(Debug, Clone)]
pub struct MemoryBudget(Arc<Semaphore>);

impl MemoryBudget {
    /// A budget of `bytes`.
    pub fn new(bytes: usize) -> MemoryBudget {
        MemoryBudget(Arc::new(Semaphore::new(kib(bytes).min(Semaphore::MAX_PERMITS))))
    }

    /// KiB currently free (for tests and metrics).
    pub fn available_kib(&self) -> usize {
        self.0.available_permits()
    }
}

fn kib(bytes: usize) -> usize {
    bytes.div_ceil(1024)
}

/// A request's admission: its rule, and the memory its body has reserved so far.
#[derive(Debug, Clone)]
pub struct Admission {
    rule: BodyRule,
    declared: Option<usize>,
    budget: MemoryBudget,
    reserved: Arc<Mutex<Reserved>>,
}

/// Memory held for one request until it ends.
#[derive(Debug, Default)]
struct Reserved {
    /// Bytes of memory covered.
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
}

impl Admission {
    /// Reads the body within the limit, reserving what it may cost before holding it: a
    /// declared length with its decoding cost up front; an undeclared (chunked) body its bytes
    /// as they arrive and its decoding cost once complete, so that a body over the limit is a
    /// 413 whatever else is in flight, never a 503. 503 when the budget cannot cover it now.
    pub async fn read(&self, body: axum::body::Body) -> Result<Bytes, ApiError> {
        let limit = self.rule.limit;
        if let Some(length) = self.declared {
            self.reserve(length.saturating_mul(self.rule.cost))?;
        }
        let mut body = body;
        let mut buffer = BytesMut::with_capacity(self.declared.unwrap_or(0).min(limit));
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| ApiError::bad_request("Failed to decode the request body"))?;
            let Ok(data) = frame.into_data() else { continue };
            let length = buffer.len() + data.len();
            if length > limit {
                return Err(ApiError::TooLarge);
            }
            // Grows by doubling, so a chunked body takes a few reservations, not one per frame.
            self.reserve(length.max(buffer.len() * 2).min(limit))?;
            buffer.extend_from_slice(&data);
        }
        self.reserve(buffer.len().saturating_mul(self.rule.cost))?;
        Ok(buffer.freeze())
    }

    /// Makes the reservation cover `memory` bytes (at least [`FLOOR`]).
    fn reserve(&self, memory: usize) -> Result<(), ApiError> {
        let memory = memory.max(FLOOR);
        let mut reserved = self.reserved.lock().unwrap_or_else(PoisonError::into_inner);
        if memory <= reserved.bytes {
            return Ok(());
        }
        let held = reserved.permit.as_ref().map_or(0, OwnedSemaphorePermit::num_permits);
        let needed = kib(memory).saturating_sub(held);
        let permits = u32::try_from(needed).map_err(|_| ApiError::Overloaded)?;
        let more = self.budget.0.clone().try_acquire_many_owned(permits).map_err(|_| {
            tracing::warn!(kib = permits, "request refused: the request memory budget is spent");
            ApiError::Overloaded
        })?;
        match &mut reserved.permit {
            Some(permit) => permit.merge(more),
            None => reserved.permit = Some(more),
        }
        reserved.bytes = memory;
        Ok(())
    }
}

/// Route layer state: the operation's rule and the shared budget.
#[derive(Debug, Clone)]
pub struct Gate {
    /// The operation's rule.
    pub rule: BodyRule,
    /// The shared budget.
    pub budget: MemoryBudget,
}

/// Refuses a declared length over the limit (413, nothing read) and hands the request its
/// [`Admission`]; whatever the body reserved is released when the answer is ready.
pub async fn admit(State(gate): State<Gate>, mut req: Request, next: Next) -> Response {
    let declared = match req.headers().get(CONTENT_LENGTH).map(|v| v.to_str().ok().and_then(|v| v.parse().ok())) {
        None => None,
        Some(Some(length)) => Some(length),
        Some(None) => return ApiError::bad_request("The Content-Length header is invalid").into_response(),
    };
    if declared.is_some_and(|length: usize| length > gate.rule.limit) {
        return ApiError::TooLarge.into_response();
    }
    let admission = Admission { rule: gate.rule, declared, budget: gate.budget, reserved: Arc::default() };
    let reserved = admission.reserved.clone();
    req.extensions_mut().insert(admission);
    let response = next.run(req).await;
    drop(reserved);
    response
}

/// Refuses a record (profile, app record, session, agreement) whose JSON text would exceed
/// `max` bytes: 400 naming the limit, never a value. Serialisation stops at the limit, so
/// checking a huge value costs no more than `max` bytes of output.
pub fn check_record_size(value: &serde_json::Value, max: usize, what: &str) -> Result<(), ApiError> {
    struct Counter {
        written: usize,
        max: usize,
    }
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.written += buf.len();
            if self.written > self.max { Err(std::io::ErrorKind::FileTooLarge.into()) } else { Ok(buf.len()) }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    match serde_json::to_writer(Counter { written: 0, max }, value) {
        Ok(()) => Ok(()),
        Err(_) => Err(ApiError::bad_request(format!("The {what} is larger than the limit of {max} bytes"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_measured_as_json_text() {
        let value = serde_json::json!({"a": "x".repeat(100)});
        let length = serde_json::to_vec(&value).expect("json").len();
        assert!(check_record_size(&value, length, "profile").is_ok());
        let err = check_record_size(&value, length - 1, "profile").expect_err("over");
        assert_eq!(err.to_string(), format!("The profile is larger than the limit of {} bytes", length - 1));
    }

    fn admission(limit: usize, budget: &MemoryBudget) -> Admission {
        let rule = BodyRule { limit, cost: TREE_COST };
        Admission { rule, declared: None, budget: budget.clone(), reserved: Arc::default() }
    }

    fn chunked(size: usize) -> axum::body::Body {
        let chunks = (0..size / 4096).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 4096])));
        axum::body::Body::from_stream(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn a_chunked_body_over_the_limit_is_too_large_even_when_the_budget_is_short() {
        // Room for 1 MiB of bytes but not for decoding 1 MiB: over the limit is still 413.
        let budget = MemoryBudget::new(8 * 1024 * 1024);
        let err = admission(1024 * 1024, &budget).read(chunked(2 * 1024 * 1024)).await.expect_err("too large");
        assert!(matches!(err, ApiError::TooLarge), "{err:?}");
        // Within the limit, decoding it does not fit: 503.
        let err = admission(1024 * 1024, &budget).read(chunked(512 * 1024)).await.expect_err("busy");
        assert!(matches!(err, ApiError::Overloaded), "{err:?}");
        // What fits is read, and reserved at its decoding cost until the admission is dropped.
        let read = admission(1024 * 1024, &budget);
        assert_eq!(read.read(chunked(64 * 1024)).await.expect("read").len(), 64 * 1024);
        assert_eq!(budget.available_kib(), 8 * 1024 - 64 * TREE_COST);
        drop(read);
        assert_eq!(budget.available_kib(), 8 * 1024);
    }

    /// What a JSON tree costs per byte of its text, in the worst shapes a client can send.
    #[test]
    fn json_tree_cost() {
        let value_size = std::mem::size_of::<serde_json::Value>();
        // An array of one-digit numbers: one Value per two bytes, in a Vec that may double.
        assert!(value_size <= TREE_COST, "Value is {value_size} bytes");
        // Objects: an entry per `"":0,` (5 bytes) costs a Value, a String, a hash and an index.
        let entry = value_size + std::mem::size_of::<String>() + 16;
        assert!(entry * 2 / 5 <= TREE_COST, "an object entry is {entry} bytes");
    }
}
