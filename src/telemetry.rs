//! Logging: one subscriber, text or JSON, filtered by `BUNKER_LOG` (default `info`).
//!
//! Nothing logged carries a token, key or personal value: spans name the operation, tenant id
//! and access-token id only.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `BUNKER_LOG_FORMAT=json` switches to JSON lines.
pub fn init() {
    let filter = EnvFilter::try_from_env("BUNKER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("BUNKER_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if json { builder.json().try_init() } else { builder.try_init() };
    if let Err(err) = result {
        eprintln!("logging already initialised: {err}");
    }
}
