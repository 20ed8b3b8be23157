//! Logging: one subscriber, text or JSON, filtered by `BUNKER_LOG` (default `info`).
//!
//! Nothing logged carries a token, key or personal value: spans name the operation, tenant id
//! and access-token id only.

use tracing_subscriber::EnvFilter;

/// HTTP internals log raw headers at debug/trace level (the access token among them); they
/// stay at `warn` whatever `BUNKER_LOG` asks for.
const QUIET: [&str; 3] = ["hyper=warn", "hyper_util=warn", "h2=warn"];

/// Installs the global subscriber; `BUNKER_LOG_FORMAT=json` switches to JSON lines.
pub fn init() {
    let mut filter = EnvFilter::try_from_env("BUNKER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    for directive in QUIET {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let json = std::env::var("BUNKER_LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = if json { builder.json().try_init() } else { builder.try_init() };
    if let Err(err) = result {
        eprintln!("logging already initialised: {err}");
    }
}
