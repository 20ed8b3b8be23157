//! The `bunker` binary.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = bunker::cli::Cli::parse();
    bunker::telemetry::init();
    match bunker::startup::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bunker: {err}");
            ExitCode::FAILURE
        }
    }
}
