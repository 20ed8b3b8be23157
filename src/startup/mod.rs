//! From command line to running vault.
//!
//! `serve` checks everything it can before it touches anything: the configuration, the demo
//! secrets it refuses, the wrapping key (a development key only when asked for), then the
//! listen address. Only then does it open the database, so that a busy port or a missing key
//! never leaves an initialised vault behind whose root token and shares were printed for
//! nothing.

mod files;
mod init;
mod recover;
pub mod root_token;

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;

use crate::cli::{Cli, Command, DatabaseArgs, ServeArgs};
use crate::clock::Clock;
use crate::config::{self, ConfigError};
use crate::crypto::WrappingKey;
use crate::server::{Server, ServerLimits, shutdown_signal};
use crate::state::AppState;
use crate::store::{self, Location};
use crate::vault::{self, InitSecrets, RecoverError, VaultError};

/// Any reason start-up failed; each message tells the operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The database could not be opened or migrated.
    #[error("cannot open the database: {0}")]
    Database(#[from] sqlx::Error),
    /// The vault could not be unlocked.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why (typically: the address is in use).
        source: std::io::Error,
    },
    /// The data directory or files could not be created or secured.
    #[error("cannot prepare {}: {source}", path.display())]
    Files {
        /// The directory or file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The server failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// `bunker init` on a vault that already holds data.
    #[error("the vault is already initialised: `bunker init` only initialises an empty vault (nothing was changed)")]
    AlreadyInitialised,
    /// `bunker recover` failed.
    #[error(transparent)]
    Recover(#[from] RecoverError),
    /// `bunker import` on a vault that holds no data yet.
    #[error("the vault is not initialised: start it once with `bunker serve` or run `bunker init` before importing")]
    NotInitialised,
    /// `bunker import` failed.
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    /// Recovery shares were missing or malformed.
    #[error("{0}")]
    Shares(String),
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<(), StartError> {
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Demo(args)) => demo(args.listen).await,
        Some(Command::Init(args)) => init::run(args).await,
        Some(Command::Recover(args)) => recover::run(args).await,
        Some(Command::Import(args)) => {
            let state = open_initialised(&args.database, args.dev).await?;
            let db = state.db.clone();
            let outcome = crate::import::run(state, args).await;
            db.close().await;
            Ok(outcome?)
        }
        Some(Command::License(command)) => Ok(crate::licence::cli::run(command)?),
        Some(Command::Migrate(args)) => {
            let (location, embedded_default) = config::location(args.database_url.as_deref())?;
            files::secure(&location, embedded_default)?;
            store::connect(&location, 1).await?.close().await;
            println!("migrations applied to {}", location.describe());
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), StartError> {
    let (location, embedded_default) = config::location(args.database.database_url.as_deref())?;
    let mut settings = config::settings()?;
    let limits = server_limits()?;
    let root_token = config::root_token_from_env();
    config::refuse_demo_root_token(root_token.as_deref())?;
    if let Some(token) = &root_token {
        root_token::warn_if_weak(token);
    }
    let key = key_source(&location, args.dev)?;
    let licence = config::licence_from_env()?;
    let listener = listen(config::listen(args.listen))?;
    let metrics_listener = args.metrics_listen.map(listen).transpose()?;
    settings.metrics_on_api = metrics_listener.is_none();
    files::secure(&location, embedded_default)?;
    let pool = config::pool_settings()?;
    let db = if args.no_migrate {
        store::connect_migrated(&location, &pool).await?
    } else {
        store::connect_with(&location, &pool).await?
    };
    if let Ok(Some(role)) = db.bypasses_row_security().await {
        tracing::warn!(
            role,
            "the database role is a superuser or has BYPASSRLS: PostgreSQL row-level security does not bind \
             this vault (tenant isolation rests on the vault's tenant-scoped queries alone); serve with a role \
             that is neither, for example the owner of the database (see the README, Tenants)"
        );
    }
    let wrapping = resolve_wrapping_key(key, &db, embedded_default).await?;
    let clock = Clock::default();
    let (keys, secrets) = vault::open(&db, &wrapping.key, root_token.as_deref(), clock.now()).await?;
    if let Some(secrets) = &secrets {
        print_first_start(secrets, wrapping.generated.then_some(&wrapping.key));
        tracing::warn!(
            "the vault was initialised by its first `serve`, which showed the root token and all five recovery \
             shares together on standard output (which container runtimes keep): `bunker init --shares-dir DIR \
             --root-token-file FILE` is the safer ceremony (see the README)"
        );
    }
    if settings.accounts.mail.is_none() {
        tracing::info!(
            "no mail server (BUNKER_SMTP_URL): administrator account invitations and password resets are answered \
             to the administrator, who hands them over"
        );
    }
    let state = AppState::new(db.clone(), keys, settings, clock);
    if let Some(licence) = licence {
        crate::licence::preload(&state, &licence).await?;
    }
    crate::retention::spawn(state.clone());
    crate::audit::chainer::spawn(state.clone());
    crate::tenants::changes::spawn(state.clone());
    crate::keys::job::spawn(state.clone());
    crate::system::stats::spawn_compaction(state.clone());
    crate::connectors::erasure::spawn(state.clone());
    if let Some(metrics_listener) = metrics_listener {
        tracing::info!(address = %metrics_listener.local_addr()?, "metrics are served on their own address");
        let app = crate::app::metrics_app(state.clone());
        tokio::spawn(async move {
            if let Err(err) = axum::serve(metrics_listener, app).with_graceful_shutdown(shutdown_signal()).await {
                tracing::error!(error = %err, "the metrics listener failed");
            }
        });
    }
    let server = Server::from_listener(listener, state, limits);
    tracing::info!(
        address = %server.local_addr()?,
        storage = %location.describe(),
        max_connections = limits.max_connections,
        header_timeout = ?limits.header_timeout,
        "bunker is listening"
    );
    server.run(shutdown_signal()).await?;
    db.close().await;
    Ok(())
}

/// Opens an initialised vault as `serve` does (same database settings and wrapping key), without
/// listening, migrating, initialising or background jobs: for commands that call the router
/// in-process, such as `import`.
async fn open_initialised(database: &DatabaseArgs, dev: bool) -> Result<AppState, StartError> {
    let (location, embedded_default) = config::location(database.database_url.as_deref())?;
    if let Location::SqliteFile(path) = &location
        && !path.exists()
    {
        return Err(StartError::NotInitialised);
    }
    let settings = config::settings()?;
    let key = key_source(&location, dev)?;
    files::secure(&location, embedded_default)?;
    let db = store::connect_migrated(&location, &config::pool_settings()?).await?;
    if !store::vault::is_initialised(&db).await? {
        db.close().await;
        return Err(StartError::NotInitialised);
    }
    let wrapping = resolve_wrapping_key(key, &db, embedded_default).await?;
    let clock = Clock::default();
    let (keys, _) = vault::open(&db, &wrapping.key, None, clock.now()).await?;
    Ok(AppState::new(db, keys, settings, clock))
}

/// Binds the listen address, before anything else is opened.
fn listen(addr: SocketAddr) -> Result<TcpListener, StartError> {
    crate::server::listen(addr).map_err(|source| StartError::Listen { addr, source })
}

/// The connection limits, with a warning when the cap leaves too few descriptors.
fn server_limits() -> Result<ServerLimits, StartError> {
    let limits = config::server_limits()?;
    if let Some(nofile) = crate::server::descriptor_limit() {
        let cap = u64::try_from(limits.max_connections).unwrap_or(u64::MAX);
        if cap.saturating_add(crate::server::RESERVED_DESCRIPTORS) > nofile {
            tracing::warn!(
                max_connections = limits.max_connections,
                descriptor_limit = nofile,
                "BUNKER_MAX_CONNECTIONS leaves fewer than {} descriptors for the database, files and \
                 listener: accepting will pause whenever they run out (raise `ulimit -n` or lower the cap)",
                crate::server::RESERVED_DESCRIPTORS
            );
        }
    }
    Ok(limits)
}

/// Where the wrapping key will come from, decided before anything is opened.
pub(super) enum KeySource {
    /// The operator's key.
    Operator(WrappingKey),
    /// A development key kept in this file beside an embedded SQLite database (`--dev`).
    Development(PathBuf),
}

pub(super) fn key_source(location: &Location, dev: bool) -> Result<KeySource, StartError> {
    if let Some(key) = config::wrapping_key_from_env()? {
        config::refuse_demo_wrapping_key(&key)?;
        return Ok(KeySource::Operator(key));
    }
    let Some(path) = config::dev_key_path(location) else {
        return Err(ConfigError::Invalid(
            "DATABUNKER_WRAPPINGKEY or DATABUNKER_WRAPPINGKEY_FILE is required (48 hex characters)".into(),
        )
        .into());
    };
    if !dev {
        let found = if path.exists() {
            format!("a development wrapping key is kept in {}, ", path.display())
        } else {
            String::new()
        };
        return Err(ConfigError::Invalid(format!(
            "no wrapping key: {found}set DATABUNKER_WRAPPINGKEY or DATABUNKER_WRAPPINGKEY_FILE (48 hex characters), \
             or start with --dev (BUNKER_DEV=1) to try Bunker on a development key kept beside the data \
             (never for real personal data)"
        ))
        .into());
    }
    Ok(KeySource::Development(path))
}

pub(super) struct ResolvedKey {
    pub(super) key: WrappingKey,
    pub(super) generated: bool,
}

/// The operator's key; in development mode, the key kept beside the data (generated on the
/// first start of an empty vault).
pub(super) async fn resolve_wrapping_key(
    source: KeySource,
    db: &store::Db,
    embedded_default: bool,
) -> Result<ResolvedKey, StartError> {
    let path = match source {
        KeySource::Operator(key) => return Ok(ResolvedKey { key, generated: false }),
        KeySource::Development(path) => path,
    };
    let warning = format!(
        "DEVELOPMENT WRAPPING KEY in {}: it sits beside the data it protects. Set DATABUNKER_WRAPPINGKEY \
         and move this file away before storing real personal data{}",
        path.display(),
        if embedded_default { "" } else { " (custom SQLite path)" }
    );
    if let Some(key) = config::read_dev_key(&path)? {
        tracing::warn!("{warning}");
        return Ok(ResolvedKey { key, generated: false });
    }
    if store::vault::is_initialised(db).await? {
        return Err(ConfigError::Invalid(
            "this vault is initialised but no wrapping key was given: set DATABUNKER_WRAPPINGKEY".into(),
        )
        .into());
    }
    let key = WrappingKey::generate();
    config::write_dev_key(&path, &key)?;
    tracing::warn!("{warning}");
    Ok(ResolvedKey { key, generated: true })
}

/// Shows first-start secrets once, on stdout (never through the log pipeline).
fn print_first_start(secrets: &InitSecrets, generated_key: Option<&WrappingKey>) {
    println!("================ BUNKER VAULT INITIALISED ================");
    println!("These secrets are shown once. Store them safely now.");
    println!("Root access token: {}", secrets.root_token);
    if let Some(key) = generated_key {
        println!("Development wrapping key: {}", key.to_hex());
    }
    println!("Recovery key shares (any 3 of 5 recover the master key):");
    for (i, share) in secrets.shares.iter().enumerate() {
        println!("  key{}: {share}", i + 1);
    }
    println!("==========================================================");
}

async fn demo(listen_on: Option<SocketAddr>) -> Result<(), StartError> {
    let limits = server_limits()?;
    let listener = listen(config::listen(listen_on))?;
    let db = store::connect(&Location::SqliteMemory, 1).await?;
    let wrapping = WrappingKey::from_hex(config::DEMO_WRAPPING_KEY)
        .map_err(|_| ConfigError::Invalid("demo wrapping key".into()))?;
    let clock = Clock::default();
    let (keys, _) = vault::open(&db, &wrapping, Some(config::DEMO_ROOT_TOKEN), clock.now()).await?;
    let state = AppState::new(db.clone(), keys, config::settings()?, clock);
    crate::retention::spawn(state.clone());
    crate::audit::chainer::spawn(state.clone());
    crate::tenants::changes::spawn(state.clone());
    crate::keys::job::spawn(state.clone());
    crate::system::stats::spawn_compaction(state.clone());
    crate::connectors::erasure::spawn(state.clone());
    let server = Server::from_listener(listener, state, limits);
    let address = server.local_addr()?;
    println!("==================== BUNKER DEMO ====================");
    println!(" DEMO ONLY: in-memory SQLite, all data is lost on exit.");
    println!(" The wrapping key is fixed and publicly known: never");
    println!(" store real personal data in demo mode.");
    println!(" API:               http://{address}/v2/");
    println!(" Root access token: {}", config::DEMO_ROOT_TOKEN);
    println!("=====================================================");
    server.run(shutdown_signal()).await?;
    db.close().await;
    Ok(())
}
