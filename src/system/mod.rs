//! Vault-wide administration.

pub mod report;
pub mod wrapping_key;

use crate::http::{Operation, op};

/// The system operations.
pub fn operations() -> Vec<Operation> {
    let mut operations = vec![op("SystemGenerateWrappingKey", wrapping_key::generate)];
    operations.extend(report::operations());
    operations
}
