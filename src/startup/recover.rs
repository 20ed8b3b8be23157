//! `bunker recover`: when the wrapping key is lost, three recovery shares re-wrap every master
//! key under a new one, offline.
//!
//! Shares come from files (`--share-file`, three times) or standard input, never from the
//! command line, which the process list shows. The new key is the operator's
//! (`DATABUNKER_WRAPPINGKEY` / `_FILE`) or, without one, generated and shown once.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use super::{StartError, files};
use crate::cli::RecoverArgs;
use crate::clock::Clock;
use crate::config;
use crate::crypto::{WrappingKey, shamir};
use crate::store;
use crate::vault;

const NAMES: [&str; shamir::THRESHOLD] = ["share 1", "share 2", "share 3"];

/// Runs `bunker recover`.
pub(super) async fn run(args: RecoverArgs) -> Result<(), StartError> {
    let (location, embedded_default) = config::location(args.database.database_url.as_deref())?;
    let (wrapping, generated) = match config::wrapping_key_from_env()? {
        Some(key) => {
            config::refuse_demo_wrapping_key(&key)?;
            (key, false)
        }
        None => (WrappingKey::generate(), true),
    };
    let shares = read_shares(&args.share_files)?;
    let named: Vec<(&'static str, &str)> = NAMES.iter().copied().zip(shares.iter().map(String::as_str)).collect();
    let recovery = shamir::combine(&named).map_err(|err| StartError::Shares(format!("recovery shares: {err}")))?;
    files::secure(&location, embedded_default)?;
    let db = store::connect_with(&location, &config::pool_settings()?).await?;
    let recovered = vault::recover(&db, &recovery, &wrapping).await;
    // The proof: the vault opens with the new key, as the next start will.
    let opened = match recovered {
        Ok(count) => vault::open(&db, &wrapping, None, Clock::default().now()).await.map(|_| count).map_err(Into::into),
        Err(err) => Err(StartError::from(err)),
    };
    db.close().await;
    let count = opened?;
    tracing::warn!(master_keys = count, "vault recovered: every master key is wrapped under a new wrapping key");
    println!("Recovered: {count} master keys are wrapped under the new wrapping key; the previous key no longer opens");
    println!("the vault and any pending rotation was dropped.");
    if generated {
        println!("New wrapping key (shown once; start with it as DATABUNKER_WRAPPINGKEY): {}", wrapping.to_hex());
    }
    if let Some(path) = config::dev_key_path(&location).filter(|path| path.exists()) {
        println!(
            "The development key file {} still holds the previous key: start with DATABUNKER_WRAPPINGKEY, or \
             replace the file's content with the new key.",
            path.display()
        );
    }
    Ok(())
}

/// Three shares from files, or from standard input (one a line; blank lines skipped).
fn read_shares(paths: &[PathBuf]) -> Result<Vec<String>, StartError> {
    if !paths.is_empty() {
        if paths.len() != shamir::THRESHOLD {
            return Err(StartError::Shares(format!(
                "give --share-file exactly {} times ({} given)",
                shamir::THRESHOLD,
                paths.len()
            )));
        }
        return paths
            .iter()
            .map(|path| {
                std::fs::read_to_string(path)
                    .map(|text| text.trim().to_owned())
                    .map_err(|source| StartError::Files { path: path.clone(), source })
            })
            .collect();
    }
    let prompt = std::io::stdin().is_terminal();
    let mut shares = Vec::with_capacity(shamir::THRESHOLD);
    let mut lines = std::io::stdin().lock().lines();
    while shares.len() < shamir::THRESHOLD {
        if prompt {
            eprint!("Recovery share {} of {}: ", shares.len() + 1, shamir::THRESHOLD);
        }
        match lines.next() {
            Some(Ok(line)) if line.trim().is_empty() => {}
            Some(Ok(line)) => shares.push(line.trim().to_owned()),
            Some(Err(source)) => return Err(StartError::Io(source)),
            None => {
                return Err(StartError::Shares(format!(
                    "standard input ended after {} of {} recovery shares",
                    shares.len(),
                    shamir::THRESHOLD
                )));
            }
        }
    }
    Ok(shares)
}
