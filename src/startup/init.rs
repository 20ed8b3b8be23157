//! `bunker init`: initialise an empty vault and hand out its secrets one by one.
//!
//! Every destination file is created (empty, owner-only) before the vault is, so a file that
//! exists already or cannot be written stops the ceremony with nothing initialised. Each
//! recovery share goes to its own file, or is shown alone on the terminal between two Enters
//! (the screen is cleared after each when it is a terminal); the root token goes to its own
//! file or is shown once.

use std::fs::File;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::{StartError, files, key_source, resolve_wrapping_key};
use crate::cli::InitArgs;
use crate::clock::Clock;
use crate::config::{self, ConfigError};
use crate::crypto::shamir;
use crate::store;
use crate::vault::{self, InitSecrets};

/// Runs `bunker init`.
pub(super) async fn run(args: InitArgs) -> Result<(), StartError> {
    let (location, embedded_default) = config::location(args.database.database_url.as_deref())?;
    let root_token = config::root_token_from_env();
    config::refuse_demo_root_token(root_token.as_deref())?;
    if let Some(token) = &root_token {
        super::root_token::warn_if_weak(token);
    }
    let key = key_source(&location, args.dev)?;
    if args.shares_dir.is_none() && !args.shares_to_stdout && !std::io::stdout().is_terminal() {
        return Err(ConfigError::Invalid(
            "standard output is not a terminal: whatever collects it would keep all five recovery shares. \
             Use --shares-dir DIR (one owner-only file per share), run in a terminal (docker run -it), or \
             accept it with --shares-to-stdout"
                .into(),
        )
        .into());
    }
    if root_token.is_none()
        && args.root_token_file.is_none()
        && !args.shares_to_stdout
        && !std::io::stdout().is_terminal()
    {
        return Err(ConfigError::Invalid(
            "standard output is not a terminal: whatever collects it would keep the root access token. \
             Use --root-token-file FILE, give it in DATABUNKER_ROOTTOKEN, run in a terminal, or accept it with \
             --shares-to-stdout"
                .into(),
        )
        .into());
    }
    files::secure(&location, embedded_default)?;
    let db = store::connect_with(&location, &config::pool_settings()?).await?;
    if store::vault::is_initialised(&db).await? {
        db.close().await;
        return Err(StartError::AlreadyInitialised);
    }
    let mut outputs = Outputs::prepare(&args)?;
    let opened = match resolve_wrapping_key(key, &db, embedded_default).await {
        Ok(wrapping) => vault::open(&db, &wrapping.key, root_token.as_deref(), Clock::default().now())
            .await
            .map(|(_, secrets)| (secrets, wrapping))
            .map_err(StartError::from),
        Err(err) => Err(err),
    };
    db.close().await;
    let (secrets, wrapping) = match opened {
        Ok((Some(secrets), wrapping)) => (secrets, wrapping),
        Ok((None, _)) => {
            outputs.discard();
            return Err(StartError::AlreadyInitialised);
        }
        Err(err) => {
            outputs.discard();
            return Err(err);
        }
    };
    tracing::info!(storage = %location.describe(), "vault initialised by `bunker init`");
    println!("================ BUNKER VAULT INITIALISED ================");
    if wrapping.generated {
        println!("Development wrapping key: {}", wrapping.key.to_hex());
    }
    outputs.deliver(&secrets, root_token.is_some())
}

/// Where the secrets go, created before the vault is initialised.
struct Outputs {
    root_token: Option<(PathBuf, File)>,
    shares: Option<Vec<(PathBuf, File)>>,
}

fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> StartError + '_ {
    move |source| StartError::Files { path: path.to_path_buf(), source }
}

impl Outputs {
    fn prepare(args: &InitArgs) -> Result<Outputs, StartError> {
        let mut outputs = Outputs { root_token: None, shares: None };
        let prepared = outputs.create(args);
        if prepared.is_err() {
            outputs.discard();
        }
        prepared.map(|()| outputs)
    }

    /// Creates the share directory (when missing) and every file, shares first (the token file
    /// may be in the share directory).
    fn create(&mut self, args: &InitArgs) -> Result<(), StartError> {
        if let Some(dir) = &args.shares_dir {
            if !dir.exists() {
                files::create_private_dir(dir).map_err(file_error(dir))?;
            }
            let shares = self.shares.insert(Vec::with_capacity(shamir::SHARES));
            for n in 1..=shamir::SHARES {
                let path = dir.join(format!("share-{n}"));
                let file = files::new_secret_file(&path).map_err(file_error(&path))?;
                shares.push((path, file));
            }
        }
        if let Some(path) = &args.root_token_file {
            let file = files::new_secret_file(path).map_err(file_error(path))?;
            self.root_token = Some((path.clone(), file));
        }
        Ok(())
    }

    /// Removes the (still empty) files created for a ceremony that did not happen.
    fn discard(&mut self) {
        let created = self.root_token.take().into_iter().chain(self.shares.take().unwrap_or_default());
        for (path, file) in created {
            drop(file);
            let _ = std::fs::remove_file(path);
        }
    }

    /// Writes or shows the secrets; a root token the operator gave (`supplied`) is not echoed.
    fn deliver(self, secrets: &InitSecrets, supplied: bool) -> Result<(), StartError> {
        match self.root_token {
            Some((path, mut file)) => {
                writeln!(file, "{}", secrets.root_token).and_then(|()| file.sync_all()).map_err(file_error(&path))?;
                println!("Root access token written to {} (owner-only).", path.display());
            }
            None if supplied => println!("Root access token: the one given in DATABUNKER_ROOTTOKEN."),
            None => println!("Root access token: {}", secrets.root_token),
        }
        match self.shares {
            Some(files) => {
                for ((path, mut file), share) in files.into_iter().zip(&secrets.shares) {
                    writeln!(file, "{share}").and_then(|()| file.sync_all()).map_err(file_error(&path))?;
                    println!("Recovery share written to {} (owner-only).", path.display());
                }
                println!(
                    "Hand each share file to its own custodian, then delete it here: any 3 of the 5 shares \
                     recover the master key."
                );
            }
            None => show_one_at_a_time(&secrets.shares),
        }
        Ok(())
    }
}

/// Shows each share alone: Enter shows it, Enter again hides it (clearing a terminal).
fn show_one_at_a_time(shares: &[String]) {
    let terminal = std::io::stdout().is_terminal();
    let mut stdin = std::io::stdin().lock();
    let mut wait = |prompt: &str| {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = stdin.read_line(&mut line);
    };
    println!(
        "Recovery key shares: {} shares, any {} recover the master key. Each is shown alone, for its custodian.",
        shamir::SHARES,
        shamir::THRESHOLD
    );
    for (i, share) in shares.iter().enumerate() {
        let n = i + 1;
        wait(&format!("Custodian {n}: press Enter to show share {n} of {}. ", shares.len()));
        println!("  key{n}: {share}");
        let _ = std::io::stdout().flush();
        wait(&format!("Press Enter once custodian {n} has stored share {n}. "));
        if terminal {
            // Clear the screen and its scroll-back, so the next custodian does not see it.
            print!("\x1b[2J\x1b[3J\x1b[H");
            let _ = std::io::stdout().flush();
        }
    }
    println!("==========================================================");
}
