//! The embedded database's files: owner-only whatever the umask.
//!
//! SQLite creates a database file with mode 0644 less the umask, and its `-wal` and `-shm`
//! files with the mode of the database file. Creating the (empty) database file with 0600
//! before SQLite opens it therefore makes all three owner-only; the directory is created 0700.
//! Files left readable by others by an earlier start are tightened.

use std::path::Path;

use super::StartError;
use crate::store::Location;

/// Prepares the directory and files of an embedded SQLite database; nothing for other locations.
/// The directory is created owner-only; an existing one is tightened only when it is the
/// embedded default (`bunker-data/`), never a directory the operator named.
pub fn secure(location: &Location, embedded_default: bool) -> Result<(), StartError> {
    let Location::SqliteFile(path) = location else {
        return Ok(());
    };
    let fail = |path: &Path| {
        let path = path.to_path_buf();
        move |source| StartError::Files { path, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            create_private_dir(dir).map_err(fail(dir))?;
        } else if embedded_default {
            tighten(dir, 0o700).map_err(fail(dir))?;
        }
    }
    if !path.exists() {
        create_private_file(path).map_err(fail(path))?;
    }
    let mut companions = vec![path.to_path_buf()];
    for suffix in ["-wal", "-shm", "-journal", ".wrapping-key"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        companions.push(name.into());
    }
    for file in companions.iter().filter(|f| f.exists()) {
        tighten(file, 0o600).map_err(fail(file))?;
    }
    Ok(())
}

#[cfg(unix)]
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
    // The umask may have taken bits from 0700 too: set it exactly.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

#[cfg(not(unix))]
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path).map(drop)
}

/// Removes group and other permissions from an existing file or directory.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    tracing::warn!(path = %path.display(), was = format!("{current:o}"), now = format!("{mode:o}"), "made owner-only");
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_: &Path, _: u32) -> std::io::Result<()> {
    Ok(())
}

/// Creates a new owner-only (0600) file for a secret; an existing file is never overwritten.
pub(super) fn new_secret_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The umask may have taken bits from 0600 (never added any): set it exactly.
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(file)
}
