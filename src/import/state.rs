//! The resumption state: which file, how many of its lines are done, and the batch whose users
//! are created but whose app records may not all be written yet. Written atomically
//! (a temporary file renamed over the old one) after every committed batch, so that a kill at
//! any moment leaves either the previous state or the new one. The state names no value, but it
//! holds the tokens of users created in a batch not yet finished: it is written owner-only.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ImportError;

/// How much of the file's head identifies it, with its size.
const HEAD: u64 = 64 * 1024;

/// What identifies the file a state belongs to: its size and a digest of its first 64 KiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    size: u64,
    head_sha256: String,
}

impl Identity {
    /// The identity of the file at `path`.
    pub fn of(path: &Path) -> Result<Identity, ImportError> {
        let io = |source| ImportError::Io { path: path.to_path_buf(), source };
        let file = std::fs::File::open(path).map_err(io)?;
        let size = file.metadata().map_err(io)?.len();
        let mut head = Vec::new();
        file.take(HEAD).read_to_end(&mut head).map_err(io)?;
        Ok(Identity { size, head_sha256: hex::encode(Sha256::digest(&head)) })
    }
}

/// Progress as saved: lines 1..=`lines_done` are handled (created, refused or blank).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Saved {
    pub file: Identity,
    pub lines_done: u64,
    /// Users created by every run so far.
    pub created: u64,
    /// Lines refused by every run so far.
    pub refused: u64,
    /// A batch whose users were created and whose app records may not all be written: a resumed
    /// import writes them before it reads on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unfinished: Option<Unfinished>,
}

/// A batch between the creation of its users and the end of their app records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Unfinished {
    /// The last line the batch covers (the lines after `lines_done` up to it).
    pub through: u64,
    /// The batch's users that have app records: their lines and the tokens UserCreateBulk
    /// answered (the records themselves are read from the file again, never kept here).
    pub users: Vec<CreatedUser>,
    /// The batch's refusals so far, reported when it is finished (reasons never hold values).
    pub refusals: Vec<Refusal>,
}

/// A user created from a line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedUser {
    /// The line.
    pub line: u64,
    /// The token UserCreateBulk answered for the user.
    pub token: String,
}

/// A line refused, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refusal {
    /// The line.
    pub line: u64,
    /// Why, without any value of the line.
    pub reason: String,
}

/// The state file of one import.
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The state kept at `path`.
    pub fn new(path: PathBuf) -> StateFile {
        StateFile { path }
    }

    /// Where the state is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved state, if there is one.
    pub fn load(&self) -> Result<Option<Saved>, ImportError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|_| {
                ImportError::State(format!(
                    "{} is not an import state file: remove it or give --restart",
                    self.path.display()
                ))
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ImportError::Io { path: self.path.clone(), source }),
        }
    }

    /// Replaces the saved state, atomically and durably.
    pub fn save(&self, saved: &Saved) -> Result<(), ImportError> {
        let io = |source| ImportError::Io { path: self.path.clone(), source };
        let mut temp = self.path.clone().into_os_string();
        temp.push(".tmp");
        let temp = PathBuf::from(temp);
        let mut file = private_file(&temp, false).map_err(io)?;
        let text = serde_json::to_vec(saved).map_err(|err| ImportError::State(err.to_string()))?;
        file.write_all(&text).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temp, &self.path).map_err(io)
    }
}

/// Opens `path` for writing, owner-only (0600) whatever the umask and whatever mode an existing
/// file had: truncated, or appended to with `append`.
pub fn private_file(path: &Path, append: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn import_state_is_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("users.jsonl.import-state");
        // A leftover temporary file readable by others is tightened, not reused as it was.
        std::fs::write(dir.path().join("users.jsonl.import-state.tmp"), "x").expect("write");
        let mode = |path: &Path| std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777;
        std::fs::set_permissions(
            dir.path().join("users.jsonl.import-state.tmp"),
            std::fs::Permissions::from_mode(0o644),
        )
        .expect("chmod");
        let state = StateFile::new(path.clone());
        let identity = Identity { size: 1, head_sha256: String::new() };
        state.save(&Saved { file: identity, lines_done: 1, created: 1, refused: 0, unfinished: None }).expect("save");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(state.load().expect("load").map(|saved| saved.lines_done), Some(1));
    }
}
