//! One import under way: each batch's users through UserCreateBulk, then their app records
//! through AppdataCreate, then the state saved; refusals and tokens to their outputs.
//!
//! A batch whose users carry app records is saved as unfinished (with its users' tokens)
//! between the two steps, so that an interruption there is finished on resumption: the app
//! records are written again, and those already there with the same data count as written.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

use serde_json::json;

use super::ImportError;
use super::apps::{self, User};
use super::batch::{Batch, Outcome};
use super::client::Client;
use super::formats::Parsed;
use super::progress::Counts;
use super::state::{CreatedUser, Refusal, Saved, StateFile, Unfinished};

/// Refusals listed in the summary; the rest are counted (and all go to `--refusals`).
const LISTED: usize = 100;

/// The import's connection to the vault and its progress.
pub struct Run {
    pub client: Client,
    pub state_file: StateFile,
    pub saved: Saved,
    pub counts: Counts,
    pub bar: indicatif::ProgressBar,
}

/// Where refusals and tokens go.
pub struct Outputs {
    pub refusals: Option<BufWriter<File>>,
    pub tokens: Option<BufWriter<File>>,
    /// The first refusals, for the summary.
    pub listed: Vec<(u64, String)>,
    /// Refusals of lines not yet covered by the state file.
    pub pending: Vec<(u64, String)>,
}

/// The unfinished batch of an interrupted import, being finished: its users' lines are read
/// again for their app records.
pub struct Resumption {
    batch: Unfinished,
    tokens: HashMap<u64, String>,
    users: Vec<User>,
}

impl Resumption {
    pub fn new(batch: Unfinished) -> Resumption {
        let tokens = batch.users.iter().map(|user| (user.line, user.token.clone())).collect();
        Resumption { batch, tokens, users: Vec::new() }
    }

    /// Whether `line` is that of one of the batch's users.
    pub fn wants(&self, line: u64) -> bool {
        self.tokens.contains_key(&line)
    }

    /// Takes the app records of a user's line, read again.
    pub fn found(&mut self, line: u64, parsed: Parsed) {
        if let (Some(token), Parsed::Record(record)) = (self.tokens.remove(&line), parsed)
            && !record.apps.is_empty()
        {
            self.users.push(User { line, token, apps: record.apps });
        }
    }
}

impl Run {
    /// Sends `batch`, writes the app records of the users it created, records the outcomes and
    /// the refusals pending, then saves the state: lines up to `done` are handled.
    pub async fn checkpoint(&mut self, batch: Batch, done: u64, out: &mut Outputs) -> Result<(), ImportError> {
        let mut refusals = std::mem::take(&mut out.pending);
        let mut users = Vec::new();
        if !batch.is_empty() {
            for outcome in batch.send(&self.client).await? {
                match outcome {
                    Outcome::Created(line, token, apps) => {
                        self.counts.created += 1;
                        self.saved.created += 1;
                        if let Some(tokens) = &mut out.tokens {
                            writeln!(tokens, "{}", json!({"line": line, "token": token})).map_err(write_failed)?;
                        }
                        if !apps.is_empty() {
                            users.push(User { line, token, apps });
                        }
                    }
                    Outcome::Refused(line, reason) => refusals.push((line, reason)),
                }
            }
        }
        if !users.is_empty() {
            // Saved before the first app record: a resumed import finishes them, where it would
            // otherwise skip these lines (their users exist). Their tokens are out first.
            sync(&mut out.tokens)?;
            self.saved.unfinished = Some(Unfinished {
                through: done,
                users: users.iter().map(|user| CreatedUser { line: user.line, token: user.token.clone() }).collect(),
                refusals: refusals
                    .iter()
                    .map(|(line, reason)| Refusal { line: *line, reason: reason.clone() })
                    .collect(),
            });
            self.state_file.save(&self.saved)?;
        }
        self.finish(users, refusals, done, out).await
    }

    /// Finishes the unfinished batch of an interrupted import.
    pub async fn resume(&mut self, resumption: Resumption, out: &mut Outputs) -> Result<(), ImportError> {
        let Resumption { batch, users, .. } = resumption;
        let refusals = batch.refusals.into_iter().map(|refusal| (refusal.line, refusal.reason)).collect();
        self.finish(users, refusals, batch.through, out).await
    }

    /// Writes the app records of a batch's users, reports its refusals, and records lines up to
    /// `done` as handled.
    async fn finish(
        &mut self,
        users: Vec<User>,
        mut refusals: Vec<(u64, String)>,
        done: u64,
        out: &mut Outputs,
    ) -> Result<(), ImportError> {
        let written = apps::write(&self.client, &users).await?;
        self.counts.apps += written.created;
        self.counts.apps_existing += written.existing;
        refusals.extend(written.refusals);
        refusals.sort_by_key(|(line, _)| *line);
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
        sync(&mut out.refusals)?;
        sync(&mut out.tokens)?;
        if done > self.saved.lines_done || self.saved.unfinished.is_some() {
            self.saved.lines_done = self.saved.lines_done.max(done);
            self.saved.unfinished = None;
            self.state_file.save(&self.saved)?;
        }
        self.bar.set_position(done);
        Ok(())
    }
}

impl Outputs {
    /// Lists the first refusals on standard output, then how many more there were.
    pub fn report(&self, counts: &Counts) {
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
                 as duplicates: they were created by the interrupted run (without their app records, if any)"
            );
        }
    }
}

/// Writes an output out to its disk.
fn sync(file: &mut Option<BufWriter<File>>) -> Result<(), ImportError> {
    if let Some(file) = file {
        file.flush().map_err(write_failed)?;
        file.get_ref().sync_data().map_err(write_failed)?;
    }
    Ok(())
}

fn write_failed(source: std::io::Error) -> ImportError {
    ImportError::Io { path: PathBuf::from("output"), source }
}
