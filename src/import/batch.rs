//! One UserCreateBulk call through the router, and its answer mapped back to line numbers.

use std::collections::{HashMap, HashSet};

use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use super::ImportError;
use super::client::{Client, message};
use super::formats::{App, Record};

/// Records gathered for one call: all with the same lifetimes and each with a profile text of
/// its own, so that the answer (which echoes each profile, in order, without its position) maps
/// back to lines exactly. Their app records wait beside them, for when their users exist.
#[derive(Default)]
pub struct Batch {
    lifetime: [Option<Value>; 2],
    lines: HashMap<[u8; 32], u64>,
    body: String,
    apps: HashMap<u64, Vec<App>>,
    app_bytes: usize,
}

/// What became of one line sent.
pub enum Outcome {
    /// Its user was created: the token UserCreateBulk answered, and the line's app records.
    Created(u64, String, Vec<App>),
    Refused(u64, String),
}

impl Batch {
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Bytes the batch holds: the call's body and the app records.
    pub fn bytes(&self) -> usize {
        self.body.len() + self.app_bytes
    }

    /// Whether `record`, with these lifetimes, can join this call.
    pub fn fits(&self, lifetime: &[Option<Value>; 2], record: &Record) -> bool {
        self.is_empty() || (&self.lifetime == lifetime && !self.lines.contains_key(&digest(&record.profile)))
    }

    /// Adds a record read at `line`, with its lifetimes (checked by [`Batch::fits`]).
    pub fn push(&mut self, line: u64, lifetime: [Option<Value>; 2], record: Record) {
        if self.is_empty() {
            self.lifetime = lifetime;
        } else {
            self.body.push(',');
        }
        self.body.push_str(&record.json);
        self.lines.insert(digest(&record.profile), line);
        if !record.apps.is_empty() {
            self.app_bytes += record.app_bytes();
            self.apps.insert(line, record.apps);
        }
    }

    /// Sends the call and returns each line's outcome, in line order.
    pub async fn send(self, client: &Client) -> Result<Vec<Outcome>, ImportError> {
        let mut body = format!("{{\"records\":[{}]", self.body);
        for (name, value) in ["slidingtime", "finaltime"].iter().zip(&self.lifetime) {
            if let Some(value) = value {
                body.push_str(&format!(",\"{name}\":{value}"));
            }
        }
        body.push('}');
        let (status, bytes) = client.call("UserCreateBulk", body).await?;
        if status != StatusCode::OK {
            let message = message(&bytes);
            return Err(ImportError::Vault(format!("UserCreateBulk answered {status}: {message}")));
        }
        let answer: Answer = serde_json::from_slice(&bytes)
            .map_err(|_| ImportError::Vault("UserCreateBulk answered an unexpected body".into()))?;
        self.outcomes(answer)
    }

    fn outcomes(mut self, answer: Answer) -> Result<Vec<Outcome>, ImportError> {
        let mut seen = HashSet::new();
        let mut line_of = |profile: Option<&RawValue>| {
            profile
                .and_then(|profile| self.lines.remove(&digest(profile.get())))
                .filter(|line| seen.insert(*line))
                .ok_or_else(|| ImportError::Vault("UserCreateBulk answered a record that was not sent".into()))
        };
        let mut outcomes = Vec::with_capacity(answer.created.len() + answer.errors.len());
        for created in answer.created {
            let line = line_of(created.profile.as_deref())?;
            outcomes.push(Outcome::Created(line, created.token, self.apps.remove(&line).unwrap_or_default()));
        }
        for refused in answer.errors {
            outcomes.push(Outcome::Refused(line_of(refused.profile.as_deref())?, refused.reason));
        }
        if !self.lines.is_empty() {
            return Err(ImportError::Vault("UserCreateBulk did not answer for every record".into()));
        }
        outcomes.sort_by_key(Outcome::line);
        Ok(outcomes)
    }
}

impl Outcome {
    pub fn line(&self) -> u64 {
        match self {
            Outcome::Created(line, ..) | Outcome::Refused(line, _) => *line,
        }
    }
}

#[derive(Deserialize)]
struct Answer {
    created: Vec<Created>,
    errors: Vec<Refused>,
}

#[derive(Deserialize)]
struct Created {
    token: String,
    profile: Option<Box<RawValue>>,
}

#[derive(Deserialize)]
struct Refused {
    profile: Option<Box<RawValue>>,
    reason: String,
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}
