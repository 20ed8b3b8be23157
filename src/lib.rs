//! Bunker: a personal-data vault speaking the Databunker Pro v2 API.

pub mod access;
pub mod agreements;
pub mod app;
pub mod appdata;
pub mod audit;
pub mod bulk;
pub mod cli;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod crypto;
pub mod expiry;
pub mod files;
#[doc(hidden)]
pub mod fuzzing;
pub mod group_commit;
pub mod http;
pub mod integrity;
pub mod keys;
pub mod legal;
pub mod licence;
pub mod requests;
pub mod retention;
pub mod search;
pub mod server;
pub mod sessions;
pub mod shared;
pub mod startup;
pub mod state;
pub mod store;
pub mod system;
pub mod telemetry;
pub mod tenants;
pub mod tokens;
pub mod users;
pub mod vault;
