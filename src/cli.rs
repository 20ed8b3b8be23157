//! Command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand};

/// Bunker: a personal-data vault speaking the Databunker Pro v2 API.
#[derive(Debug, Parser)]
#[command(name = "bunker", version, about)]
pub struct Cli {
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Options of the default `serve` command.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the vault (the default).
    Serve(ServeArgs),
    /// Run a throw-away vault in memory with root token DEMO and a public wrapping key.
    Demo(DemoArgs),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Initialise an empty vault and exit, handing out its secrets one by one: each recovery
    /// share to its own file (--shares-dir) or shown one at a time, the root token to its own
    /// file (--root-token-file). The safer ceremony than a first `serve`.
    Init(InitArgs),
    /// Offline recovery when the wrapping key is lost: three recovery shares re-wrap every
    /// master key under a new wrapping key (DATABUNKER_WRAPPINGKEY / _FILE, or one generated and
    /// shown once), which is then the only one that opens the vault.
    Recover(RecoverArgs),
    /// Load users from a JSON Lines or CSV file through UserCreateBulk, in batches, and their app
    /// records through AppdataCreate, into an initialised vault opened as `serve` opens it (no
    /// server needed); resumes after an interruption.
    Import(ImportArgs),
    /// Licences for resold vaults: make a signing key pair, sign a licence (the vault verifies
    /// it against BUNKER_LICENSE_PUBLIC_KEY).
    #[command(visible_alias = "licence", subcommand)]
    License(LicenseCommand),
}

/// `bunker license ...`.
#[derive(Debug, Subcommand)]
pub enum LicenseCommand {
    /// Make a signing key pair: the private key goes to a new owner-only (0600) file, the
    /// public key (for BUNKER_LICENSE_PUBLIC_KEY) is printed.
    Keygen(KeygenArgs),
    /// Sign a licence with a private key made by `keygen` and print it.
    Sign(SignArgs),
}

/// Options of `license keygen`.
#[derive(Debug, Args, Clone)]
#[group(required = true, multiple = false)]
pub struct KeygenArgs {
    /// Write the private key to this new file, owner-only (0600); an existing file is never
    /// overwritten.
    #[arg(long, value_name = "FILE")]
    pub private_key: Option<PathBuf>,
    /// Print the private key on standard output instead of writing a file (whatever collects
    /// the output keeps it).
    #[arg(long)]
    pub private_key_to_stdout: bool,
}

/// Options of `license sign`.
#[derive(Debug, Args, Clone)]
pub struct SignArgs {
    /// The private key file written by `keygen`.
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,
    /// Who the licence is for.
    #[arg(long)]
    pub customer: String,
    /// Most records the vault may hold (user profiles plus tokens).
    #[arg(long, value_name = "N")]
    pub max_records: i64,
    /// When the licence expires: a date (YYYY-MM-DD, at 00:00 UTC that day) or unix seconds.
    #[arg(long, value_name = "YYYY-MM-DD|UNIX")]
    pub expires: String,
}

/// Options of `serve`.
#[derive(Debug, Args, Clone, Default)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BUNKER_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Development mode: without DATABUNKER_WRAPPINGKEY, keep a development wrapping key beside
    /// the embedded SQLite data (generated on first start). For trying Bunker, never for real data.
    #[arg(long, env = "BUNKER_DEV", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub dev: bool,
    /// Do not apply migrations at start: check that `bunker migrate` (run as the database's owner)
    /// has applied them all, and refuse to start otherwise. For a serving role without DDL rights.
    #[arg(long, env = "BUNKER_NO_MIGRATE", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub no_migrate: bool,
    /// Serve `GET /metrics` on this admin address only (the API address then answers 404 for it).
    #[arg(long, env = "BUNKER_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Storage options.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Where the data lives.
#[derive(Debug, Args, Clone, Default)]
pub struct DatabaseArgs {
    /// `postgres://...` or `sqlite://PATH` (default: an embedded SQLite file under ./bunker-data/).
    /// PostgreSQL can also be given with PGSQL_HOST, PGSQL_PORT, PGSQL_DATABASE, PGSQL_USER_NAME,
    /// PGSQL_USER_PASS / PGSQL_USER_PASS_FILE and PGSQL_SSL_MODE.
    #[arg(long, env = "BUNKER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Options of `demo`.
#[derive(Debug, Args, Clone, Default)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, env = "BUNKER_LISTEN")]
    pub listen: Option<SocketAddr>,
}

/// Options of `init`.
#[derive(Debug, Args, Clone, Default)]
pub struct InitArgs {
    /// Write the five recovery shares to DIR/share-1 ... DIR/share-5, owner-only (0600), one file
    /// per custodian (DIR is created owner-only when missing; existing share files are never
    /// overwritten). Without it the shares are shown one at a time, each after Enter.
    #[arg(long, value_name = "DIR")]
    pub shares_dir: Option<PathBuf>,
    /// Without --shares-dir, show the shares even though standard output is not a terminal
    /// (whatever collects it, such as a container runtime's log, keeps them). Refused otherwise.
    #[arg(long)]
    pub shares_to_stdout: bool,
    /// Write the root access token to this new owner-only (0600) file instead of showing it.
    #[arg(long, value_name = "FILE")]
    pub root_token_file: Option<PathBuf>,
    /// Development mode, as for `serve`: keep a development wrapping key beside embedded SQLite data.
    #[arg(long, env = "BUNKER_DEV", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub dev: bool,
    /// Storage options.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// Options of `recover`.
#[derive(Debug, Args, Clone, Default)]
pub struct RecoverArgs {
    /// A file holding one recovery share; give it three times. Shares are never taken on the
    /// command line (the process list shows it); without files they are read from standard
    /// input, one a line.
    #[arg(long = "share-file", value_name = "FILE")]
    pub share_files: Vec<PathBuf>,
    /// Storage options.
    #[command(flatten)]
    pub database: DatabaseArgs,
}

/// The format of an import file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// One JSON object a line: a profile, or `{"profile": {...}, "slidingtime": ..., "appdata":
    /// {"<appname>": {...}}, ...}`.
    Jsonl,
    /// A header row naming the profile fields (`appdata.<appname>` columns hold that app's data,
    /// a JSON object), then one user a row.
    Csv,
}

/// Options of `import`.
#[derive(Debug, Args, Clone)]
pub struct ImportArgs {
    /// The file to load (`.jsonl`/`.ndjson` or `.csv`, or see --format).
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The file's format, when its extension does not tell.
    #[arg(long, value_enum)]
    pub format: Option<ImportFormat>,
    /// The access token the calls are made with: the root token or one a policy grants
    /// UserCreateBulk (and AppdataCreate and AppdataGet for app records). Prefer BUNKER_TOKEN or
    /// --token-file (the process list shows arguments).
    #[arg(long, env = "BUNKER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A file holding the access token.
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    pub token_file: Option<PathBuf>,
    /// The tenant to load into (X-Bunker-Tenant); default: the token's own.
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Records per UserCreateBulk call (at most the vault's BUNKER_MAX_BULK_RECORDS).
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub batch: usize,
    /// Sliding lifetime of every record that gives none (e.g. `30d`).
    #[arg(long)]
    pub slidingtime: Option<String>,
    /// Final lifetime of every record that gives none (e.g. `1y` or `2030-01-01`).
    #[arg(long)]
    pub finaltime: Option<String>,
    /// Where progress is kept for resumption (default: FILE.import-state; owner-only: it holds
    /// the tokens of users whose app records are being written).
    #[arg(long, value_name = "PATH")]
    pub state: Option<PathBuf>,
    /// Ignore the state file and import from the first line.
    #[arg(long)]
    pub restart: bool,
    /// Write every refusal to this file as JSON Lines `{"line": N, "reason": "..."}`.
    #[arg(long, value_name = "PATH")]
    pub refusals: Option<PathBuf>,
    /// Write the token of every user created to this file as JSON Lines `{"line": N, "token": "..."}`.
    #[arg(long, value_name = "PATH")]
    pub tokens: Option<PathBuf>,
    /// Development mode, as for `serve`: use the development wrapping key kept beside the data.
    #[arg(long, env = "BUNKER_DEV", action = ArgAction::SetTrue, value_parser = BoolishValueParser::new())]
    pub dev: bool,
    /// Storage options.
    #[command(flatten)]
    pub database: DatabaseArgs,
}
