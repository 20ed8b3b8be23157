//! Vault-wide administration.

mod custody;
pub mod profiles;
pub mod recovery_key;
pub mod report;
pub mod stats;
pub mod wrapping_key;

use crate::http::{Operation, op};

/// The system operations.
pub fn operations() -> Vec<Operation> {
    let mut operations = vec![
        op("SystemGenerateWrappingKey", wrapping_key::generate),
        op("SystemRotateRecoveryKey", recovery_key::rotate),
        op("SystemGetSystemStats", stats::get),
    ];
    operations.extend(report::operations());
    operations.extend(profiles::operations());
    operations.extend(crate::licence::operations());
    operations
}
