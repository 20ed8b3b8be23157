//! Keyset paging behind `offset`/`limit`.
//!
//! For each unlock grant and listing, the key of the last row of every page served is
//! remembered in the database (so replicas share it) as a bookmark at that page's end. A page at
//! `offset` starts from the nearest bookmark at or before `offset` and passes over only the rows
//! between: none when the caller walks its pages in order, so page 900 costs what page 1 costs.
//! A first jump straight to a deep offset passes over rows once; the pages after it continue
//! from keys. Bookmarks go with their grant when it expires.
//!
//! Continuing from a key also keeps a walk consistent while the listing changes: rows added or
//! removed before the walk's position do not shift later pages (no row is served twice or
//! skipped because another was inserted ahead of it); `total` is counted afresh on each page.

use super::unlock::Unlock;
use crate::crypto::IndexValue;
use crate::http::ApiResult;
use crate::state::AppState;
use crate::store::bulk::Cursor;

/// A tenant-wide listing with its own bookmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// `BulkListAllUsers`.
    Users,
    /// `BulkListAllUserRequests`.
    Requests,
    /// `BulkListAllAuditEvents`.
    AuditEvents,
    /// `BulkListFilesByTag`, one listing per tag (by its blind index).
    FilesByTag(IndexValue),
}

impl Listing {
    fn name(self) -> String {
        match self {
            Listing::Users => "users".to_owned(),
            Listing::Requests => "requests".to_owned(),
            Listing::AuditEvents => "audit".to_owned(),
            Listing::FilesByTag(tag) => format!("files-by-tag/{}", hex::encode(tag)),
        }
    }
}

/// Where the page at `offset` starts.
pub async fn cursor(app: &AppState, unlock: Unlock, listing: Listing, offset: i64) -> ApiResult<Cursor> {
    Ok(app.db.tenant(unlock.tenant).bulk().cursor(unlock.id, &listing.name(), offset).await?)
}

/// Remembers the key of the last row of the page at `offset` that held `served` rows. A failure
/// costs only speed (the next page passes over rows instead), so it is logged, not answered.
pub async fn remember(app: &AppState, unlock: Unlock, listing: Listing, offset: i64, served: usize, last_key: &[u8]) {
    let Ok(served) = i64::try_from(served) else { return };
    if served == 0 {
        return;
    }
    let position = offset.saturating_add(served);
    if let Err(err) = app.db.tenant(unlock.tenant).bulk().remember(unlock.id, &listing.name(), position, last_key).await
    {
        tracing::warn!(error = %err, "bulk paging bookmark not stored");
    }
}
