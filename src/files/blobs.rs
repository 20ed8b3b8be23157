//! File content as blobs in the configured file directory: `<dir>/<tenant id>/<fileuuid>`,
//! ciphertext only (the STREAM chunks one after the other), owner-only permissions.
//!
//! A blob is written completely under a temporary name and renamed into place before its row
//! is committed; if the row is not committed, the blob is removed again. A row deleted by any
//! path (FileDelete, the owner's erasure, expiry) queues its blob in `file_blobs_gone` in the
//! same transaction, and [`purge`] removes queued blobs: after each deletion and on every
//! retention sweep. A blob left behind by a crash is unreadable all the same: its file key was
//! sealed only in the row, under the owner's data key (crypto-shredding).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::crypto::secrets::is_uuid_shaped;
use crate::state::AppState;
use crate::store::files as store;
use crate::tenants::TenantId;

/// Blobs removed per query of the queue.
const PURGE_BATCH: i64 = 500;

/// Where the blob of a file lives; `None` for an id that is not a UUID (never a path from input).
pub fn path(dir: &Path, tenant: TenantId, fileuuid: &str) -> Option<PathBuf> {
    is_uuid_shaped(fileuuid).then(|| dir.join(tenant.to_string()).join(fileuuid))
}

fn invalid_id() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "file id is not a UUID")
}

/// Writes a blob from its sealed chunks (blocking: run it off the async workers). Nothing is
/// left behind on failure.
pub fn write(
    dir: &Path,
    tenant: TenantId,
    fileuuid: &str,
    chunks: impl Iterator<Item = io::Result<Vec<u8>>>,
) -> io::Result<()> {
    let target = path(dir, tenant, fileuuid).ok_or_else(invalid_id)?;
    let parent = target.parent().ok_or_else(invalid_id)?;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(parent)?;
    let partial = parent.join(format!("{fileuuid}.partial"));
    let written = write_new(&partial, chunks).and_then(|()| std::fs::rename(&partial, &target));
    if let Err(err) = written {
        let _ = std::fs::remove_file(&partial);
        return Err(err);
    }
    // The rename is durable once the directory is synced.
    std::fs::File::open(parent)?.sync_all()
}

fn write_new(path: &Path, chunks: impl Iterator<Item = io::Result<Vec<u8>>>) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = io::BufWriter::new(options.open(path)?);
    for chunk in chunks {
        file.write_all(&chunk?)?;
    }
    file.into_inner().map_err(io::IntoInnerError::into_error)?.sync_all()
}

/// Opens a blob for reading.
pub async fn open(dir: &Path, tenant: TenantId, fileuuid: &str) -> io::Result<tokio::fs::File> {
    tokio::fs::File::open(path(dir, tenant, fileuuid).ok_or_else(invalid_id)?).await
}

/// Removes a blob; one already gone is fine.
pub async fn remove(dir: &Path, tenant: TenantId, fileuuid: &str) -> io::Result<()> {
    match tokio::fs::remove_file(path(dir, tenant, fileuuid).ok_or_else(invalid_id)?).await {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// Removes the blobs queued by deleted rows; returns how many. Never fails the caller: a blob
/// that cannot be removed now stays queued for the next sweep (and is unreadable meanwhile).
pub async fn purge(app: &AppState) -> usize {
    let Some(dir) = app.settings.file_dir.as_deref() else {
        return 0;
    };
    let mut purged = 0;
    loop {
        let queued = match store::gone_blobs(&app.db, PURGE_BATCH).await {
            Ok(queued) => queued,
            Err(err) => {
                tracing::error!(error = %err, "cannot read the queue of deleted file blobs");
                return purged;
            }
        };
        let mut removed = Vec::with_capacity(queued.len());
        for (tenant, fileuuid) in &queued {
            match remove(dir, *tenant, fileuuid).await {
                Ok(()) => removed.push((*tenant, fileuuid.clone())),
                Err(err) => tracing::error!(error = %err, tenant = tenant.get(), "cannot remove a deleted file's blob"),
            }
        }
        if let Err(err) = store::forget_gone(&app.db, &removed).await {
            tracing::error!(error = %err, "cannot update the queue of deleted file blobs");
            return purged;
        }
        purged += removed.len();
        // A short batch is the end of the queue; a failed removal waits for the next sweep.
        if queued.len() < PURGE_BATCH as usize || removed.len() < queued.len() {
            return purged;
        }
    }
}
