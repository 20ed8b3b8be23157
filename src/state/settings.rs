//! Tunables that handlers consult, with their defaults.

use std::time::Duration;

use crate::http::rate::RateSettings;

/// Lifetime of a role or user access token created without one: ten minutes (the contract's).
pub const XTOKEN_DEFAULT_SECS: i64 = 600;

/// Tunables that handlers consult.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Longest lifetime a user record may be given, in seconds (longer requests are capped).
    pub max_user_retention: i64,
    /// Longest lifetime a session may be given, in seconds (longer requests are capped; a
    /// session upserted without a lifetime gets exactly this, so none lives forever).
    pub max_session_retention: i64,
    /// Longest lifetime a shared record may be given, in seconds (longer requests are capped; a
    /// record created without `finaltime` gets exactly this).
    pub max_shared_record_retention: i64,
    /// Longest lifetime a role or user access token may be given, in seconds (longer requests
    /// are capped; a token created without a lifetime gets [`XTOKEN_DEFAULT_SECS`]).
    pub max_xtoken_retention: i64,
    /// Longest lifetime a format-preserving token may be given, in seconds (longer requests are
    /// capped; a token created without a lifetime does not expire).
    pub max_token_retention: i64,
    /// Superseded profile versions kept per user.
    pub keep_versions: i64,
    /// How long a bulk `unlockuuid` stays valid, in seconds (Databunker: 60).
    pub bulk_unlock_ttl: i64,
    /// How long a profile deleted by `SystemDeleteUserProfiles` stays restorable, in seconds,
    /// before the retention sweeper erases it (`BUNKER_DELETED_RETENTION`, 30 days).
    pub deleted_retention: i64,
    /// Largest body of a public operation (served without a token), in bytes.
    pub public_body_limit: usize,
    /// Largest body of an ordinary operation, in bytes.
    pub body_limit: usize,
    /// Largest body of a bulk or file operation ([`crate::http::limits::LARGE`]), in bytes.
    pub large_body_limit: usize,
    /// Memory that request bodies being decoded may reserve together, in bytes.
    pub request_memory: usize,
    /// Requests handled at once; more are refused with 503.
    pub max_in_flight: usize,
    /// Largest record (profile, app record, session, agreement) once serialised, in bytes.
    pub max_record_size: usize,
    /// Most operations in one JSON Patch.
    pub max_patch_operations: usize,
    /// Most records (or users) in one bulk call.
    pub max_bulk_records: usize,
    /// Longest a request may run.
    pub request_timeout: Duration,
    /// Largest file `FileCreate` accepts, in decoded bytes.
    pub max_file_size: u64,
    /// Directory for file content (ciphertext blobs); `None` keeps file content in the database.
    pub file_dir: Option<std::path::PathBuf>,
    /// Rate limits per client address.
    pub rate: RateSettings,
    /// The master-key rotation job.
    pub key_job: crate::keys::JobSettings,
    /// Whether the API listener serves `GET /metrics` (false when it has its own admin address,
    /// `BUNKER_METRICS_LISTEN`: the API listener then answers 404 for it).
    pub metrics_on_api: bool,
    /// Shape of new card tokenbases unless a create call asks for another.
    pub card_tokens: crate::tokens::shape::CardShape,
    /// The key licences are verified against (`BUNKER_LICENSE_PUBLIC_KEY`); without one no
    /// licence can be installed.
    pub licence_key: Option<crate::licence::PublicKey>,
    /// What connectors may reach, their limits, and the erasure worker's pace.
    pub connectors: crate::connectors::ConnectorSettings,
    /// Administrator accounts: their sessions' lifetime and the mail server.
    pub accounts: crate::accounts::AccountSettings,
    /// The data subject portal's login: the SMS webhook and its rate limits.
    pub portal: crate::portal::PortalSettings,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_user_retention: 10 * 365 * 86_400,
            max_xtoken_retention: 86_400,
            // Databunker's shipped `max_session_retention_period` is "1h".
            max_session_retention: 3_600,
            // Databunker's shipped `max_shareable_record_retention_period` is "1m".
            max_shared_record_retention: 30 * 86_400,
            max_token_retention: 10 * 365 * 86_400,
            keep_versions: 10,
            bulk_unlock_ttl: 60,
            deleted_retention: 30 * 86_400,
            public_body_limit: 4 * 1024,
            body_limit: 1024 * 1024,
            large_body_limit: 64 * 1024 * 1024,
            request_memory: 256 * 1024 * 1024,
            max_in_flight: 1024,
            max_record_size: 1024 * 1024,
            max_patch_operations: 256,
            max_bulk_records: 10_000,
            request_timeout: Duration::from_secs(60),
            // 32 MiB of content is about 43 MB of base64, under the default body limit.
            max_file_size: 32 * 1024 * 1024,
            file_dir: None,
            rate: RateSettings::default(),
            key_job: crate::keys::JobSettings::default(),
            metrics_on_api: true,
            card_tokens: crate::tokens::shape::CardShape::default(),
            licence_key: None,
            connectors: crate::connectors::ConnectorSettings::default(),
            accounts: crate::accounts::AccountSettings::default(),
            portal: crate::portal::PortalSettings::default(),
        }
    }
}
