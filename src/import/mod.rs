//! `bunker import FILE`: users from JSON Lines or CSV, loaded through `UserCreateBulk` on the
//! vault's own router (in-process, no network), so that authentication, policies, licence
//! limits, checks and audit events are that operation's own; the app records a line carries
//! follow through `AppdataCreate`, addressed by the token each user was created with.
//!
//! The file is read one bounded line at a time; memory holds one batch. After each batch
//! commits (UserCreateBulk writes its users and their events in one transaction), the state
//! file records the lines done, so an interrupted import resumes after the last committed batch;
//! a batch with app records is recorded as unfinished until they are written (`run.rs`).
//! Refusals are reported by line number and reason, never by value.

mod apps;
mod batch;
mod client;
mod formats;
mod progress;
mod run;
mod state;

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;

use self::batch::Batch;
use self::client::Client;
use self::formats::{Line, MAX_APPS, Parsed, Parser};
use self::progress::Counts;
use self::run::{Outputs, Resumption, Run};
use self::state::{Identity, Saved, StateFile};
use crate::cli::{ImportArgs, ImportFormat};
use crate::expiry::Expiry;
use crate::state::AppState;

/// Why an import stopped before the end of its file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The command line or the file's format is wrong.
    #[error("{0}")]
    Usage(String),
    /// The state file is unusable.
    #[error("{0}")]
    State(String),
    /// The vault refused a call as a whole (authentication, permission, database down).
    #[error("{0}")]
    Vault(String),
}

/// Runs an import into the opened vault.
pub async fn run(state: AppState, args: ImportArgs) -> Result<(), ImportError> {
    let format = format_of(&args)?;
    let token = token_of(&args)?;
    let settings = &state.settings;
    let batch_size = args.batch.clamp(1, settings.max_bulk_records.max(1));
    // A profile, and each app record, may take twice the record limit as sent (escapes); the rest
    // is the record's keys.
    let line_cap = settings.max_record_size.saturating_mul(2).saturating_mul(1 + MAX_APPS).saturating_add(64 * 1024);
    let body_cap = (settings.large_body_limit / 2).max(line_cap);
    let defaults = [args.slidingtime.clone().map(Value::String), args.finaltime.clone().map(Value::String)];
    if let Err(err) = Expiry::from_request(defaults[0].as_ref(), defaults[1].as_ref(), now(), i64::MAX / 4) {
        return Err(ImportError::Usage(err.to_string()));
    }

    let identity = Identity::of(&args.file)?;
    let state_file = StateFile::new(args.state.clone().unwrap_or_else(|| with_suffix(&args.file, ".import-state")));
    let resumed = if args.restart { None } else { state_file.load()? };
    if let Some(saved) = &resumed
        && saved.file != identity
    {
        return Err(ImportError::State(format!(
            "{} belongs to another version of {}: give --restart to import it from the first line",
            state_file.path().display(),
            args.file.display()
        )));
    }
    // Lines up to `skip` are done, but for the app records of an unfinished batch's users.
    let unfinished = resumed.as_ref().and_then(|saved| saved.unfinished.clone());
    let skip = resumed.as_ref().map_or(0, |saved| saved.lines_done).max(unfinished.as_ref().map_or(0, |u| u.through));
    if skip > 0 {
        eprintln!("resuming after line {skip} (from {})", state_file.path().display());
    }
    if let Some(batch) = &unfinished {
        eprintln!("first writing the app records of the users created from lines up to {}", batch.through);
    }
    let mut unfinished = unfinished.map(Resumption::new);

    let open = |path: &Path| File::open(path).map_err(|source| ImportError::Io { path: path.to_path_buf(), source });
    let mut reader = BufReader::with_capacity(64 * 1024, open(&args.file)?);
    let total = progress::count_lines(&mut reader).map_err(|source| io(&args.file, source))?;
    reader.rewind().map_err(|source| io(&args.file, source))?;
    let mut out = Outputs {
        refusals: args.refusals.as_deref().map(|p| append_or_create(p, skip > 0)).transpose()?,
        tokens: args.tokens.as_deref().map(|p| append_or_create(p, skip > 0)).transpose()?,
        listed: Vec::new(),
        pending: Vec::new(),
    };
    let mut run = Run {
        client: Client::new(crate::app::app(state.clone()), token, args.tenant.clone()),
        state_file,
        saved: resumed.unwrap_or(Saved { file: identity, lines_done: 0, created: 0, refused: 0, unfinished: None }),
        counts: Counts { skipped: skip, ..Counts::default() },
        bar: progress::bar(total, skip),
    };
    let started = Instant::now();
    let mut parser = Parser::new(format, settings.max_record_size);
    let mut batch = Batch::default();
    let mut line_no = 0;
    loop {
        let line = formats::next_line(&mut reader, line_cap).map_err(|source| io(&args.file, source))?;
        let Some(line) = line else { break };
        line_no += 1;
        if line_no > skip
            && let Some(resumption) = unfinished.take()
        {
            run.resume(resumption, &mut out).await?;
        }
        let parsed = match line {
            Line::TooLong if parser.wants_header() => {
                return Err(ImportError::Usage("the CSV header row is longer than a record may be".into()));
            }
            Line::Text(text) if parser.wants_header() => {
                parser.header(&text).map_err(ImportError::Usage)?;
                continue;
            }
            Line::Text(text) if unfinished.as_ref().is_some_and(|u| u.wants(line_no)) => {
                if let Some(resumption) = &mut unfinished {
                    resumption.found(line_no, parser.parse(&text));
                }
                continue;
            }
            _ if line_no <= skip => continue,
            Line::TooLong => Parsed::Refused(format!("the line is longer than {line_cap} bytes")),
            Line::Text(text) => parser.parse(&text),
        };
        match parsed {
            Parsed::Blank => {}
            Parsed::Refused(reason) => {
                out.pending.push((line_no, reason));
                if out.pending.len() >= batch_size {
                    run.checkpoint(std::mem::take(&mut batch), line_no, &mut out).await?;
                }
            }
            Parsed::Record(record) => {
                let lifetime = [0, 1].map(|i| record.lifetime[i].clone().or_else(|| defaults[i].clone()));
                if let Err(err) = Expiry::from_request(lifetime[0].as_ref(), lifetime[1].as_ref(), now(), i64::MAX / 4)
                {
                    out.pending.push((line_no, err.to_string()));
                    continue;
                }
                if !batch.fits(&lifetime, &record) || batch.bytes() + record.bytes() > body_cap {
                    run.checkpoint(std::mem::take(&mut batch), line_no - 1, &mut out).await?;
                }
                batch.push(line_no, lifetime, record);
                if batch.len() >= batch_size {
                    run.checkpoint(std::mem::take(&mut batch), line_no, &mut out).await?;
                }
            }
        }
    }
    if parser.wants_header() && line_no > 0 {
        return Err(ImportError::Usage("the CSV file has no header row".into()));
    }
    if let Some(resumption) = unfinished.take() {
        run.resume(resumption, &mut out).await?;
    }
    run.checkpoint(batch, line_no.max(skip), &mut out).await?;
    run.bar.finish_and_clear();
    out.report(&run.counts);
    println!("{}", run.counts.summary(started));
    Ok(())
}

fn format_of(args: &ImportArgs) -> Result<ImportFormat, ImportError> {
    if let Some(format) = args.format {
        return Ok(format);
    }
    let extension = args.file.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("jsonl" | "ndjson") => Ok(ImportFormat::Jsonl),
        Some("csv") => Ok(ImportFormat::Csv),
        _ => Err(ImportError::Usage(
            "cannot tell the file's format from its extension: give --format jsonl or --format csv".into(),
        )),
    }
}

fn token_of(args: &ImportArgs) -> Result<String, ImportError> {
    let token = match (&args.token, &args.token_file) {
        (Some(token), _) => token.clone(),
        (None, Some(path)) => std::fs::read_to_string(path).map_err(|source| io(path, source))?,
        (None, None) => {
            return Err(ImportError::Usage("give an access token: BUNKER_TOKEN, --token-file or --token".into()));
        }
    };
    let token = token.trim();
    if token.is_empty() {
        return Err(ImportError::Usage("the access token is empty".into()));
    }
    Ok(token.to_owned())
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Opens an output file, owner-only: the tokens of the users created are not for everyone.
fn append_or_create(path: &Path, append: bool) -> Result<BufWriter<File>, ImportError> {
    state::private_file(path, append).map(BufWriter::new).map_err(|source| io(path, source))
}

fn io(path: &Path, source: std::io::Error) -> ImportError {
    ImportError::Io { path: path.to_path_buf(), source }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
