//! Reading a file's content back, one decrypted chunk at a time, from the database or from its
//! blob. The reader owns what it needs, so a response body can drive it after the handler
//! returned.

use std::collections::VecDeque;
use std::path::PathBuf;

use tokio::io::AsyncReadExt;

use super::blobs;
use super::cipher::{ChunkOpener, FileKey, sealed_len};
use crate::store::files::FileRow;
use crate::store::{Db, StoreError};
use crate::tenants::TenantId;

/// Chunks fetched from the database per query (768 KiB of content).
const BATCH: i64 = 16;

/// Why content could not be read. Carries no content.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blob could not be read.
    #[error("file blob: {0}")]
    Io(#[from] std::io::Error),
    /// A chunk is missing, or the blob has the wrong length.
    #[error("file content is incomplete")]
    Incomplete,
    /// A chunk did not decrypt.
    #[error("file content does not decrypt")]
    Crypto,
    /// The file's blob is in a directory that is not configured.
    #[error("file content is in a file directory, but none is configured")]
    NoDirectory,
}

enum Source {
    Db { db: Db, tenant: TenantId, file_id: i64, next_seq: i64, buffered: VecDeque<Vec<u8>> },
    Dir { blob: tokio::fs::File },
}

/// The decrypted content of one file, chunk by chunk.
pub struct Content {
    source: Source,
    opener: ChunkOpener,
}

impl Content {
    /// Prepares to read `row`'s content with its opened file key.
    pub async fn open(
        db: &Db,
        file_dir: Option<&PathBuf>,
        tenant: TenantId,
        row: &FileRow,
        key: &FileKey,
    ) -> Result<Content, ReadError> {
        let size = u64::try_from(row.size).map_err(|_| ReadError::Incomplete)?;
        let opener = key.opener(tenant, &row.fileuuid, size);
        let source = if row.in_dir {
            let dir = file_dir.ok_or(ReadError::NoDirectory)?;
            let blob = blobs::open(dir, tenant, &row.fileuuid).await?;
            if blob.metadata().await?.len() != sealed_len(size) {
                return Err(ReadError::Incomplete);
            }
            Source::Dir { blob }
        } else {
            Source::Db { db: db.clone(), tenant, file_id: row.id, next_seq: 0, buffered: VecDeque::new() }
        };
        Ok(Content { source, opener })
    }

    /// The next decrypted chunk; `None` after the last one.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, ReadError> {
        let Some(len) = self.opener.next_sealed_len() else {
            return Ok(None);
        };
        let mut chunk = match &mut self.source {
            Source::Db { db, tenant, file_id, next_seq, buffered } => {
                if buffered.is_empty() {
                    let fetched = db.tenant(*tenant).files().chunks(*file_id, *next_seq, BATCH).await?;
                    *next_seq += fetched.len() as i64;
                    buffered.extend(fetched);
                }
                buffered.pop_front().ok_or(ReadError::Incomplete)?
            }
            Source::Dir { blob } => {
                let mut chunk = vec![0u8; len];
                blob.read_exact(&mut chunk).await?;
                chunk
            }
        };
        self.opener.open(&mut chunk).map_err(|_| ReadError::Crypto)?;
        Ok(Some(chunk))
    }
}
