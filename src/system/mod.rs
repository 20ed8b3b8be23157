//! Vault-wide administration.

pub mod wrapping_key;

use crate::app::{Operation, op};

/// The system operations.
pub fn operations() -> Vec<Operation> {
    vec![op("SystemGenerateWrappingKey", wrapping_key::generate)]
}
