//! The `bunker` binary.

use std::process::ExitCode;

use clap::Parser;

/// jemalloc with background threads: freed memory goes back to the system within a quarter of a
/// second after a spike (.cargo/config.toml), where glibc's malloc kept 130-170 MB of it resident
/// (BENCHMARKS.md, "Memory under abuse"). It also replaces the C library's `malloc`, which the
/// embedded SQLite allocates with.
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
