//! Command line.

use std::net::SocketAddr;

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
