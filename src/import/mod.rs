//! `bunker import FILE`: users from JSON Lines or CSV, loaded through `UserCreateBulk` on the
//! vault's own router (in-process, no network), so that authentication, policies, licence
//! limits, checks and audit events are that operation's own.
//!
//! The file is read one bounded line at a time; memory holds one batch. After each batch
//! commits (UserCreateBulk writes its users and their events in one transaction), the state
//! file records the lines done, so an interrupted import resumes after the last committed batch.
//! Refusals are reported by line number and reason, never by value.

mod batch;
mod client;
mod formats;
mod progress;
mod state;

use std::fs::File;
use std::io::{BufReader, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::{Value, json};

use self::batch::{Batch, Outcome};
use self::client::Client;
use self::formats::{Line, Parsed, Parser};
use self::progress::Counts;
use self::state::{Identity, Saved, StateFile};
use crate::cli::{ImportArgs, ImportFormat};
use crate::expiry::Expiry;
use crate::state::AppState;

/// Refusals listed in the summary; the rest are counted (and all go to `--refusals`).
const LISTED: usize = 100;

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
    // A profile may take twice the record limit as sent (escapes); the rest is the record's keys.
    let line_cap = settings.max_record_size.saturating_mul(2).saturating_add(64 * 1024);
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
    let skip = resumed.as_ref().map_or(0, |saved| saved.lines_done);
    if skip > 0 {
        eprintln!("resuming after line {skip} (from {})", state_file.path().display());
    }

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
        saved: resumed.unwrap_or(Saved { file: identity, lines_done: 0, created: 0, refused: 0 }),
        counts: Counts { skipped: skip, ..Counts::default() },
        bar: progress::bar(total, skip),
    };
    let started = Instant::now();
    let mut parser = Parser::new(format);
    let mut batch = Batch::default();
    let mut line_no = 0;
    loop {
        let line = formats::next_line(&mut reader, line_cap).map_err(|source| io(&args.file, source))?;
        let Some(line) = line else { break };
        line_no += 1;
        let parsed = match line {
            Line::TooLong if parser.wants_header() => {
                return Err(ImportError::Usage("the CSV header row is longer than a record may be".into()));
            }
            Line::Text(text) if parser.wants_header() => {
                parser.header(&text).map_err(ImportError::Usage)?;
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
                if !batch.fits(&lifetime, &record) || batch.bytes() + record.json.len() > body_cap {
                    run.checkpoint(std::mem::take(&mut batch), line_no - 1, &mut out).await?;
                }
                batch.push(line_no, lifetime, &record);
                if batch.len() >= batch_size {
                    run.checkpoint(std::mem::take(&mut batch), line_no, &mut out).await?;
                }
            }
        }
    }
    if parser.wants_header() && line_no > 0 {
        return Err(ImportError::Usage("the CSV file has no header row".into()));
    }
    run.checkpoint(batch, line_no.max(skip), &mut out).await?;
    run.bar.finish_and_clear();
    out.report(&run.counts);
    println!("{}", run.counts.summary(started));
    Ok(())
}

/// The import's connection to the vault and its progress.
struct Run {
    client: Client,
    state_file: StateFile,
    saved: Saved,
    counts: Counts,
    bar: indicatif::ProgressBar,
}

/// Where refusals and tokens go.
struct Outputs {
    refusals: Option<BufWriter<File>>,
    tokens: Option<BufWriter<File>>,
    /// The first refusals, for the summary.
    listed: Vec<(u64, String)>,
    /// Refusals of lines not yet covered by the state file.
    pending: Vec<(u64, String)>,
}

impl Run {
    /// Sends `batch`, records its outcomes and the refusals pending, then saves the state:
    /// lines up to `done` are handled.
    async fn checkpoint(&mut self, batch: Batch, done: u64, out: &mut Outputs) -> Result<(), ImportError> {
        let mut refusals = std::mem::take(&mut out.pending);
        let created_before = self.counts.created;
        if !batch.is_empty() {
            for outcome in batch.send(&self.client).await? {
                match outcome {
                    Outcome::Created(line, token) => {
                        self.counts.created += 1;
                        if let Some(tokens) = &mut out.tokens {
                            writeln!(tokens, "{}", json!({"line": line, "token": token})).map_err(write_failed)?;
                        }
                    }
                    Outcome::Refused(line, reason) => refusals.push((line, reason)),
                }
            }
        }
        refusals.sort_by_key(|(line, _)| *line);
        self.saved.created += self.counts.created - created_before;
        self.saved.refused += refusals.len() as u64;
        for (line, reason) in refusals {
            self.counts.refused += 1;
            if reason.starts_with("Duplicate ") {
                self.counts.duplicates += 1;
            }
            if let Some(file) = &mut out.refusals {
                writeln!(file, "{}", json!({"line": line, "reason": reason})).map_err(write_failed)?;
            }
            if out.listed.len() < LISTED {
                out.listed.push((line, reason));
            }
        }
        for file in [&mut out.refusals, &mut out.tokens].into_iter().flatten() {
            file.flush().map_err(write_failed)?;
            file.get_ref().sync_data().map_err(write_failed)?;
        }
        if done > self.saved.lines_done {
            self.saved.lines_done = done;
            self.state_file.save(&self.saved)?;
        }
        self.bar.set_position(done);
        Ok(())
    }
}

impl Outputs {
    /// Lists the first refusals on standard output, then how many more there were.
    fn report(&self, counts: &Counts) {
        for (line, reason) in &self.listed {
            println!("line {line}: {reason}");
        }
        let more = counts.refused.saturating_sub(self.listed.len() as u64);
        if more > 0 {
            println!("... and {more} more refusals (--refusals FILE lists them all)");
        }
        if counts.skipped > 0 && counts.duplicates > 0 {
            println!(
                "note: after an interruption, the records of a batch that committed just before it are refused \
                 as duplicates: they were created by the interrupted run"
            );
        }
    }
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

fn write_failed(source: std::io::Error) -> ImportError {
    ImportError::Io { path: PathBuf::from("output"), source }
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
