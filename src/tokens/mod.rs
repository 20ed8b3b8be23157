//! Format-preserving tokens: a card number or email address exchanged for a random tokenuuid
//! and a tokenbase of the same shape (a Luhn-valid number of the card's length, an address at a
//! reserved domain), sealed under the tenant key.

pub mod base;
pub mod bulk;
pub mod record;
pub mod routes;
pub mod service;

pub use record::{Token, TokenType, TokenValue};
pub use routes::operations;
