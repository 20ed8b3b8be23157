//! From command line to running vault.

use crate::app::AppState;
use crate::cli::{Cli, Command, ServeArgs};
use crate::clock::Clock;
use crate::config::{self, ConfigError};
use crate::crypto::WrappingKey;
use crate::server::{Server, shutdown_signal};
use crate::store::{self, Location};
use crate::vault::{self, InitSecrets, VaultError};

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
    /// The listener could not be bound or failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Runs the command line.
pub async fn run(cli: Cli) -> Result<(), StartError> {
    match cli.command {
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Demo(args)) => demo(args.listen).await,
        Some(Command::Migrate(args)) => {
            let (location, _) = config::location(args.database_url.as_deref())?;
            store::connect(&location, 1).await?.close().await;
            println!("migrations applied to {}", location.describe());
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), StartError> {
    let (location, embedded_default) = config::location(args.database.database_url.as_deref())?;
    let settings = config::settings()?;
    let db = store::connect_with(&location, &config::pool_settings()?).await?;
    let wrapping = resolve_wrapping_key(&location, &db, embedded_default).await?;
    let clock = Clock::default();
    let (keys, secrets) =
        vault::open(&db, &wrapping.key, config::root_token_from_env().as_deref(), clock.now()).await?;
    if let Some(secrets) = &secrets {
        print_first_start(secrets, wrapping.generated.then_some(&wrapping.key));
    }
    let state = AppState::new(db.clone(), keys, settings, clock);
    crate::retention::spawn(state.clone());
    let server = Server::bind(config::listen(args.listen), state).await?;
    tracing::info!(address = %server.local_addr()?, storage = %location.describe(), "bunker is listening");
    server.run(shutdown_signal()).await?;
    db.close().await;
    Ok(())
}

struct ResolvedKey {
    key: WrappingKey,
    generated: bool,
}

/// The operator's key; for an embedded SQLite file only, a development key kept beside it.
async fn resolve_wrapping_key(
    location: &Location,
    db: &store::Db,
    embedded_default: bool,
) -> Result<ResolvedKey, StartError> {
    if let Some(key) = config::wrapping_key_from_env()? {
        return Ok(ResolvedKey { key, generated: false });
    }
    let Some(path) = config::dev_key_path(location) else {
        return Err(ConfigError::Invalid(
            "DATABUNKER_WRAPPINGKEY or DATABUNKER_WRAPPINGKEY_FILE is required (48 hex characters)".into(),
        )
        .into());
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

async fn demo(listen: Option<std::net::SocketAddr>) -> Result<(), StartError> {
    let db = store::connect(&Location::SqliteMemory, 1).await?;
    let wrapping = WrappingKey::from_hex(config::DEMO_WRAPPING_KEY)
        .map_err(|_| ConfigError::Invalid("demo wrapping key".into()))?;
    let clock = Clock::default();
    let (keys, _) = vault::open(&db, &wrapping, Some(config::DEMO_ROOT_TOKEN), clock.now()).await?;
    let state = AppState::new(db.clone(), keys, config::settings()?, clock);
    crate::retention::spawn(state.clone());
    let server = Server::bind(config::listen(listen), state).await?;
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
