//! Legal bases and processing activities: the tenant's catalogue of why and how it processes
//! personal data. These records hold no personal data and are stored in clear.

pub mod activities;
pub mod bases;
pub mod name;

use crate::http::Operation;

/// The legal basis and processing activity operations.
pub fn operations() -> Vec<Operation> {
    [bases::operations(), activities::operations()].into_iter().flatten().collect()
}
