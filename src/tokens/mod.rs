//! Format-preserving tokens: a card number or email address exchanged for a random tokenuuid
//! and a tokenbase of the same shape (a Luhn-valid number of the card's length, an address at a
//! reserved domain), sealed under the tenant key. Card tokenbases can be asked to fail the Luhn check
//! and to start with a reserved prefix (see [`shape`]).

pub mod base;
pub mod bulk;
pub mod inserts;
pub mod record;
pub mod routes;
pub mod service;
pub mod shape;

pub use record::{Token, TokenType, TokenValue};
pub use routes::operations;
