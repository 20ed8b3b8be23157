//! The `bunker` binary.

use std::process::ExitCode;

use clap::Parser;

/// jemalloc with background threads: freed memory goes back to the system about ten seconds
/// after a spike, where glibc's malloc kept 130-170 MB of it resident (BENCHMARKS.md, "Memory
/// under abuse").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
