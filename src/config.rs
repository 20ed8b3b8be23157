//! Start-up configuration from flags and the environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::crypto::WrappingKey;
use crate::server::ServerLimits;
use crate::state::Settings;
use crate::store::{Location, PoolSettings};
use crate::tokens::shape::{Luhn, Prefix};

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
    if let Some(period) = env("BUNKER_DELETED_RETENTION") {
        settings.deleted_retention = crate::expiry::parse_max(&period).map_err(|_| {
            ConfigError::Invalid("BUNKER_DELETED_RETENTION must be a period such as 30d or 720h".into())
        })?;
    }
    if let Some(max) = env("BUNKER_MAX_USER_RETENTION") {
        settings.max_user_retention = crate::expiry::parse_max(&max)
            .map_err(|_| ConfigError::Invalid("BUNKER_MAX_USER_RETENTION must be a period such as 10y or 6m".into()))?;
    }
    if let Some(max) = env("BUNKER_MAX_XTOKEN_RETENTION") {
        settings.max_xtoken_retention = crate::expiry::parse_max(&max).map_err(|_| {
            ConfigError::Invalid("BUNKER_MAX_XTOKEN_RETENTION must be a period such as 10m or 1d".into())
        })?;
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
    let per_minute = |name: &str| -> Result<Option<u32>, ConfigError> {
        positive(name)?
            .map(|n| u32::try_from(n).map_err(|_| ConfigError::Invalid(format!("{name} is too large"))))
            .transpose()
    };
    if let Some(count) = per_minute("BUNKER_AUTH_FAILURES_PER_MINUTE")? {
        settings.rate.auth_failures_per_minute = count;
    }
    if let Some(count) = per_minute("BUNKER_PUBLIC_REQUESTS_PER_MINUTE")? {
        settings.rate.public_per_minute = count;
    }
    if let Some(proxies) = env("BUNKER_TRUSTED_PROXIES") {
        settings.rate.trusted_proxies = proxies
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| p.parse::<ipnet::IpNet>().or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from)))
            .collect::<Result<_, _>>()
            .map_err(|_| {
                ConfigError::Invalid("BUNKER_TRUSTED_PROXIES must list addresses or networks such as 10.0.0.0/8".into())
            })?;
    }
    if let Some(period) = env("BUNKER_ACCOUNT_SESSION") {
        let secs = crate::expiry::parse_max(&period).ok().filter(|secs| *secs > 0).ok_or_else(|| {
            ConfigError::Invalid("BUNKER_ACCOUNT_SESSION must be a period such as 8h or 90min".into())
        })?;
        settings.accounts.session = std::time::Duration::from_secs(secs.unsigned_abs());
    }
    if let Some(period) = env("BUNKER_CONSOLE_IDLE") {
        let secs = crate::expiry::parse_max(&period)
            .ok()
            .filter(|secs| *secs > 0)
            .ok_or_else(|| ConfigError::Invalid("BUNKER_CONSOLE_IDLE must be a period such as 15min or 1h".into()))?;
        settings.accounts.console_idle = std::time::Duration::from_secs(secs.unsigned_abs());
    }
    if let Some(url) = env("BUNKER_SMTP_URL") {
        settings.accounts.mail = Some(crate::accounts::MailSettings {
            url,
            from: env("BUNKER_SMTP_FROM").unwrap_or_else(|| "bunker@localhost".into()),
            console_url: env("BUNKER_CONSOLE_URL").unwrap_or_else(|| "http://localhost:3000".into()),
        });
    }
    if let Some(url) = env("BUNKER_SMS_WEBHOOK_URL") {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(ConfigError::Invalid("BUNKER_SMS_WEBHOOK_URL must be an http:// or https:// URL".into()));
        }
        settings.portal.sms_webhook = Some(url);
    }
    if let Some(count) = per_minute("BUNKER_PORTAL_REQUESTS_PER_MINUTE")? {
        settings.portal.per_address_per_minute = count;
    }
    if let Some(count) = per_minute("BUNKER_PORTAL_CODES_PER_HOUR")? {
        settings.portal.codes_per_hour = count;
    }
    if let Some(captcha) = env("BUNKER_PORTAL_CAPTCHA") {
        settings.portal.captcha = match captcha.trim() {
            "on" => true,
            "off" => false,
            _ => return Err(ConfigError::Invalid("BUNKER_PORTAL_CAPTCHA must be on or off".into())),
        };
    }
    if let Some(hosts) = env("BUNKER_CONNECTOR_HOSTS") {
        settings.connectors.hosts =
            crate::connectors::hosts::HostPolicy::parse(&hosts).map_err(ConfigError::Invalid)?;
    }
    if let Some(rows) = positive("BUNKER_CONNECTOR_MAX_ROWS")? {
        settings.connectors.limits.max_rows = rows;
    }
    if let Some(ms) = positive("BUNKER_CONNECTOR_ERASURE_INTERVAL_MS")? {
        settings.connectors.worker.interval = std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
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
    if let Some(luhn) = env("BUNKER_CARD_TOKEN_LUHN") {
        settings.card_tokens.luhn = Luhn::parse(&luhn)
            .ok_or_else(|| ConfigError::Invalid("BUNKER_CARD_TOKEN_LUHN must be valid or invalid".into()))?;
    }
    if let Some(prefix) = env("BUNKER_CARD_TOKEN_PREFIX") {
        settings.card_tokens.prefix = Some(Prefix::parse(&prefix).ok_or_else(|| {
            ConfigError::Invalid("BUNKER_CARD_TOKEN_PREFIX must be 1 to 6 digits, not starting with 0".into())
        })?);
    }
    if let Some(count) = positive("BUNKER_KEY_JOB_BATCH")? {
        settings.key_job.batch = i64::try_from(count).unwrap_or(i64::MAX);
    }
    if let Some(ms) = positive("BUNKER_KEY_JOB_PAUSE_MS")? {
        settings.key_job.pause = std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX));
    }
    settings.licence_key = licence_public_key()?;
    if let Some(secs) = positive("BUNKER_KEY_RETIRE_GRACE")? {
        let grace = std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(u64::MAX));
        let least = crate::crypto::keyring::TENANT_KEYS_LIFETIME + std::time::Duration::from_secs(10);
        if grace < least {
            tracing::warn!(
                "BUNKER_KEY_RETIRE_GRACE is under {} seconds (the key cache's lifetime and a margin): with several \
                 replicas, one may still seal under a master-key version when it is retired",
                least.as_secs()
            );
        }
        settings.key_job.retire_grace = grace;
    }
    Ok(settings)
}

/// The key licences are verified against, from `BUNKER_LICENSE_PUBLIC_KEY` or
/// `BUNKER_LICENSE_PUBLIC_KEY_FILE` (64 hex characters or base64 of 32 bytes, as
/// `bunker license keygen` prints it). A malformed key stops the start.
pub fn licence_public_key() -> Result<Option<crate::licence::PublicKey>, ConfigError> {
    let text = match (env("BUNKER_LICENSE_PUBLIC_KEY"), env("BUNKER_LICENSE_PUBLIC_KEY_FILE")) {
        (Some(key), _) => key,
        (None, Some(path)) => read_secret_file("BUNKER_LICENSE_PUBLIC_KEY_FILE", &path)?,
        (None, None) => return Ok(None),
    };
    crate::licence::PublicKey::parse(&text)
        .map(Some)
        .map_err(|err| ConfigError::Invalid(format!("BUNKER_LICENSE_PUBLIC_KEY {err}")))
}

/// A licence to install at start when none is stored yet: `DATABUNKER_LICENSEKEY` (the vendor's
/// name), `BUNKER_LICENSE_KEY`, or the file named by `BUNKER_LICENSE_KEY_FILE`.
pub fn licence_from_env() -> Result<Option<String>, ConfigError> {
    if let Some(text) = env("DATABUNKER_LICENSEKEY").or_else(|| env("BUNKER_LICENSE_KEY")) {
        return Ok(Some(text));
    }
    env("BUNKER_LICENSE_KEY_FILE").map(|path| read_secret_file("BUNKER_LICENSE_KEY_FILE", &path)).transpose()
}

/// A positive whole number from the environment, if set.
fn positive(name: &str) -> Result<Option<usize>, ConfigError> {
    env(name)
        .map(|value| value.parse::<usize>().ok().filter(|n| *n > 0))
        .map(|parsed| parsed.ok_or_else(|| ConfigError::Invalid(format!("{name} must be a positive whole number"))))
        .transpose()
}

/// Pool size from `BUNKER_DB_MAX_CONNECTIONS`, if given.
fn max_connections() -> Option<u32> {
    env("BUNKER_DB_MAX_CONNECTIONS").and_then(|v| v.parse().ok())
}

/// The pool: its size, `BUNKER_DB_TIMEOUT` (seconds, default 2) and
/// `BUNKER_DB_STATEMENT_TIMEOUT` (seconds, default 30; 0 for none).
pub fn pool_settings() -> Result<PoolSettings, ConfigError> {
    let mut pool = PoolSettings::default();
    if let Some(size) = max_connections() {
        (pool.max_connections, pool.sqlite_max_connections) = (size, size);
    }
    if let Some(value) = env("BUNKER_DB_TIMEOUT") {
        pool.timeout = seconds(&value)
            .filter(|t| !t.is_zero())
            .ok_or_else(|| ConfigError::Invalid("BUNKER_DB_TIMEOUT must be a positive number of seconds".into()))?;
    }
    if let Some(value) = env("BUNKER_DB_STATEMENT_TIMEOUT") {
        pool.statement_timeout = seconds(&value).ok_or_else(|| {
            ConfigError::Invalid("BUNKER_DB_STATEMENT_TIMEOUT must be a number of seconds (0 for none)".into())
        })?;
    }
    Ok(pool)
}

/// A number of seconds such as `2` or `0.5`.
fn seconds(value: &str) -> Option<std::time::Duration> {
    value.parse::<f64>().ok().and_then(|s| std::time::Duration::try_from_secs_f64(s).ok())
}

/// Connection limits from `BUNKER_HEADER_TIMEOUT`, `BUNKER_MAX_CONNECTIONS`,
/// `BUNKER_HTTP2_MAX_STREAMS` and `BUNKER_HTTP2_KEEPALIVE`; the connection cap defaults to
/// the descriptor limit less a reserve.
pub fn server_limits() -> Result<ServerLimits, ConfigError> {
    let mut limits = ServerLimits::for_this_process();
    if let Some(value) = env("BUNKER_HEADER_TIMEOUT") {
        limits.header_timeout = duration("BUNKER_HEADER_TIMEOUT", &value)?;
    }
    if let Some(value) = env("BUNKER_MAX_CONNECTIONS") {
        limits.max_connections = value
            .parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| ConfigError::Invalid("BUNKER_MAX_CONNECTIONS must be a whole number above 0".into()))?;
    }
    if let Some(value) = env("BUNKER_HTTP2_MAX_STREAMS") {
        limits.http2_max_streams =
            value.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                ConfigError::Invalid("BUNKER_HTTP2_MAX_STREAMS must be a whole number above 0".into())
            })?;
    }
    if let Some(value) = env("BUNKER_HTTP2_KEEPALIVE") {
        limits.http2_keepalive = duration("BUNKER_HTTP2_KEEPALIVE", &value)?;
    }
    Ok(limits)
}

/// A positive duration: a number of seconds, or a number with `ms`, `s` or `min`.
fn duration(name: &str, value: &str) -> Result<std::time::Duration, ConfigError> {
    let split = value.find(|c: char| !c.is_ascii_digit()).unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: u64 =
        number.parse().map_err(|_| ConfigError::Invalid(format!("{name} must be a duration such as 10s")))?;
    let duration = match unit.trim() {
        "" | "s" => std::time::Duration::from_secs(number),
        "ms" => std::time::Duration::from_millis(number),
        "min" => std::time::Duration::from_secs(number.saturating_mul(60)),
        _ => return Err(ConfigError::Invalid(format!("{name} must be a duration such as 10s, 500ms or 2min"))),
    };
    if duration.is_zero() {
        return Err(ConfigError::Invalid(format!("{name} must be longer than zero")));
    }
    Ok(duration)
}

/// `serve` refuses the public demo wrapping key: whoever read the README can open the vault.
pub fn refuse_demo_wrapping_key(key: &WrappingKey) -> Result<(), ConfigError> {
    let demo =
        WrappingKey::from_hex(DEMO_WRAPPING_KEY).map_err(|_| ConfigError::Invalid("demo wrapping key".into()))?;
    if key.kek().ct_eq(&demo.kek()) {
        return Err(ConfigError::Invalid(
            "DATABUNKER_WRAPPINGKEY is the public demo key, which protects nothing: generate a key of your own \
             (48 hex characters, e.g. `openssl rand -hex 24`), or run `bunker demo` to try Bunker"
                .into(),
        ));
    }
    Ok(())
}

/// `serve` refuses the demo root token: it is printed in the README.
pub fn refuse_demo_root_token(token: Option<&str>) -> Result<(), ConfigError> {
    if token.is_some_and(|t| t.eq_ignore_ascii_case(DEMO_ROOT_TOKEN)) {
        return Err(ConfigError::Invalid(
            "DATABUNKER_ROOTTOKEN is the public demo token DEMO: choose a secret token, or leave it unset to have \
             one generated and printed once"
                .into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(duration("X", "10").ok(), Some(Duration::from_secs(10)));
        assert_eq!(duration("X", "10s").ok(), Some(Duration::from_secs(10)));
        assert_eq!(duration("X", "1500ms").ok(), Some(Duration::from_millis(1500)));
        assert_eq!(duration("X", "2min").ok(), Some(Duration::from_secs(120)));
        for bad in ["0", "0s", "s", "-1", "1h", "1.5s", ""] {
            assert!(duration("X", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_demo_secrets_are_refused() {
        let demo = WrappingKey::from_hex(DEMO_WRAPPING_KEY).expect("demo key");
        assert!(refuse_demo_wrapping_key(&demo).is_err());
        assert!(refuse_demo_wrapping_key(&WrappingKey::generate()).is_ok());
        assert!(refuse_demo_root_token(Some("DEMO")).is_err());
        assert!(refuse_demo_root_token(Some("demo")).is_err());
        assert!(refuse_demo_root_token(Some("a-secret-token")).is_ok());
        assert!(refuse_demo_root_token(None).is_ok());
    }
}
