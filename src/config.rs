//! Start-up configuration from flags and the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::app::Settings;
use crate::crypto::WrappingKey;
use crate::store::Location;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Default embedded database file.
pub const DEFAULT_SQLITE: &str = "bunker-data/bunker.db";
/// Demo wrapping key: fixed and public, so demo data is protected by nothing.
pub const DEMO_WRAPPING_KEY: &str = "62756e6b65722d64656d6f2d7075626c69632d6b65792121";
/// Demo root token.
pub const DEMO_ROOT_TOKEN: &str = "DEMO";

/// A configuration problem, reported before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is malformed; names the variable, never its content.
    #[error("{0}")]
    Invalid(String),
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

fn read_secret_file(var: &str, path: &str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .map_err(|err| ConfigError::Invalid(format!("cannot read the file named by {var}: {err}")))
}

/// The storage location from the flag/`BUNKER_DATABASE_URL`, the PGSQL_* variables, or the default.
pub fn location(database_url: Option<&str>) -> Result<(Location, bool), ConfigError> {
    if let Some(url) = database_url.map(str::trim).filter(|u| !u.is_empty()) {
        let location = Location::parse(url).ok_or_else(|| {
            ConfigError::Invalid("the database URL must start with postgres://, postgresql:// or sqlite://".into())
        })?;
        return Ok((location, false));
    }
    if let Some(host) = env("PGSQL_HOST") {
        let mut opts = PgConnectOptions::new().host(&host);
        if let Some(port) = env("PGSQL_PORT") {
            opts = opts.port(port.parse().map_err(|_| ConfigError::Invalid("PGSQL_PORT is not a port number".into()))?);
        }
        if let Some(db) = env("PGSQL_DATABASE") {
            opts = opts.database(&db);
        }
        if let Some(user) = env("PGSQL_USER_NAME") {
            opts = opts.username(&user);
        }
        let password = match (env("PGSQL_USER_PASS"), env("PGSQL_USER_PASS_FILE")) {
            (Some(pass), _) => Some(pass),
            (None, Some(path)) => Some(read_secret_file("PGSQL_USER_PASS_FILE", &path)?),
            (None, None) => None,
        };
        if let Some(password) = password {
            opts = opts.password(&password);
        }
        if let Some(mode) = env("PGSQL_SSL_MODE") {
            let mode = PgSslMode::from_str(&mode).map_err(|_| {
                ConfigError::Invalid("PGSQL_SSL_MODE must be disable, prefer, require, verify-ca or verify-full".into())
            })?;
            opts = opts.ssl_mode(mode);
        }
        return Ok((Location::Postgres(Box::new(opts)), false));
    }
    Ok((Location::SqliteFile(PathBuf::from(DEFAULT_SQLITE)), true))
}

/// Where a development wrapping key may be kept: beside an embedded SQLite file only.
pub fn dev_key_path(location: &Location) -> Option<PathBuf> {
    match location {
        Location::SqliteFile(path) => {
            let mut name = path.file_name()?.to_os_string();
            name.push(".wrapping-key");
            Some(path.with_file_name(name))
        }
        _ => None,
    }
}

/// The operator's wrapping key from `DATABUNKER_WRAPPINGKEY` or `DATABUNKER_WRAPPINGKEY_FILE`.
pub fn wrapping_key_from_env() -> Result<Option<WrappingKey>, ConfigError> {
    let text = match (env("DATABUNKER_WRAPPINGKEY"), env("DATABUNKER_WRAPPINGKEY_FILE")) {
        (Some(key), _) => key,
        (None, Some(path)) => read_secret_file("DATABUNKER_WRAPPINGKEY_FILE", &path)?,
        (None, None) => return Ok(None),
    };
    WrappingKey::from_hex(&text).map(Some).map_err(|err| ConfigError::Invalid(format!("DATABUNKER_WRAPPINGKEY: {err}")))
}

/// Reads a development key kept beside the data, if one exists.
pub fn read_dev_key(path: &Path) -> Result<Option<WrappingKey>, ConfigError> {
    if !path.exists() {
        return Ok(None);
    }
    let text = read_secret_file("the development key file", &path.to_string_lossy())?;
    WrappingKey::from_hex(&text).map(Some).map_err(|err| ConfigError::Invalid(format!("{}: {err}", path.display())))
}

/// Writes a development key with owner-only permissions.
pub fn write_dev_key(path: &Path, key: &WrappingKey) -> Result<(), ConfigError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file =
        options.open(path).map_err(|err| ConfigError::Invalid(format!("cannot create {}: {err}", path.display())))?;
    writeln!(file, "{}", key.to_hex())
        .map_err(|err| ConfigError::Invalid(format!("cannot write {}: {err}", path.display())))
}

/// The root token to install on first start (`DATABUNKER_ROOTTOKEN`).
pub fn root_token_from_env() -> Option<String> {
    env("DATABUNKER_ROOTTOKEN")
}

/// The listen address: flag/`BUNKER_LISTEN`, else the default.
pub fn listen(flag: Option<SocketAddr>) -> SocketAddr {
    flag.unwrap_or_else(|| DEFAULT_LISTEN.parse().unwrap_or(SocketAddr::from(([127, 0, 0, 1], 3000))))
}

/// Tunables from `BUNKER_*` variables.
pub fn settings() -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    if let Some(max) = env("BUNKER_MAX_USER_RETENTION") {
        settings.max_user_retention = crate::expiry::parse_max(&max)
            .map_err(|_| ConfigError::Invalid("BUNKER_MAX_USER_RETENTION must be a period such as 10y or 6m".into()))?;
    }
    if let Some(max) = env("BUNKER_MAX_SESSION_RETENTION") {
        settings.max_session_retention = crate::expiry::parse_max(&max).map_err(|_| {
            ConfigError::Invalid("BUNKER_MAX_SESSION_RETENTION must be a period such as 1h or 1d".into())
        })?;
    }
    if let Some(max) = env("BUNKER_MAX_SHARED_RECORD_RETENTION") {
        settings.max_shared_record_retention = crate::expiry::parse_max(&max).map_err(|_| {
            ConfigError::Invalid("BUNKER_MAX_SHARED_RECORD_RETENTION must be a period such as 1d or 1m".into())
        })?;
    }
    if let Some(max) = env("BUNKER_MAX_TOKEN_RETENTION") {
        settings.max_token_retention = crate::expiry::parse_max(&max).map_err(|_| {
            ConfigError::Invalid("BUNKER_MAX_TOKEN_RETENTION must be a period such as 10y or 6m".into())
        })?;
    }
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    let sizes: [(&str, usize, &mut usize); 6] = [
        ("BUNKER_PUBLIC_BODY_LIMIT_KB", KIB, &mut settings.public_body_limit),
        ("BUNKER_BODY_LIMIT_KB", KIB, &mut settings.body_limit),
        ("BUNKER_LARGE_BODY_LIMIT_MB", MIB, &mut settings.large_body_limit),
        ("BUNKER_REQUEST_MEMORY_MB", MIB, &mut settings.request_memory),
        ("BUNKER_MAX_RECORD_KB", KIB, &mut settings.max_record_size),
        ("BUNKER_MAX_IN_FLIGHT", 1, &mut settings.max_in_flight),
    ];
    for (name, unit, setting) in sizes {
        if let Some(count) = positive(name)? {
            *setting = count.saturating_mul(unit);
        }
    }
    if let Some(count) = positive("BUNKER_MAX_PATCH_OPERATIONS")? {
        settings.max_patch_operations = count;
    }
    if let Some(count) = positive("BUNKER_MAX_BULK_RECORDS")? {
        settings.max_bulk_records = count;
    }
    if let Some(mb) = env("BUNKER_MAX_FILE_SIZE_MB") {
        let mb: u64 =
            mb.parse().map_err(|_| ConfigError::Invalid("BUNKER_MAX_FILE_SIZE_MB must be a number".into()))?;
        settings.max_file_size = mb.saturating_mul(1024 * 1024);
    }
    if let Some(dir) = env("BUNKER_FILE_DIR") {
        settings.file_dir = Some(PathBuf::from(dir));
    }
    Ok(settings)
}

/// A positive whole number from the environment, if set.
fn positive(name: &str) -> Result<Option<usize>, ConfigError> {
    env(name)
        .map(|value| value.parse::<usize>().ok().filter(|n| *n > 0))
        .map(|parsed| parsed.ok_or_else(|| ConfigError::Invalid(format!("{name} must be a positive whole number"))))
        .transpose()
}

/// Pool size from `BUNKER_DB_MAX_CONNECTIONS` (default 16).
pub fn max_connections() -> u32 {
    env("BUNKER_DB_MAX_CONNECTIONS").and_then(|v| v.parse().ok()).unwrap_or(16)
}
