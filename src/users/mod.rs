//! Users: profiles under a per-user data key, found through blind indexes.

pub mod bulk;
pub mod identity;
pub mod inserts;
pub mod record;
pub mod routes;
pub mod service;

pub use identity::Identity;
pub use routes::operations;
pub use service::LoadedUser;
