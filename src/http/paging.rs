//! `offset` / `limit` paging of listing operations.

use serde::Serialize;
use serde_json::Value;

use super::lenient::{Int, int};

/// `offset`/`limit` as Databunker pages: limit defaults to 10; below 1 or above 100 means 100.
pub fn page(offset: Option<Int>, limit: Option<Int>) -> (i64, i64) {
    let offset = int(offset).unwrap_or(0).max(0);
    let limit = match int(limit) {
        None => 10,
        Some(l) if !(1..=100).contains(&l) => 100,
        Some(l) => l,
    };
    (offset, limit)
}

/// A page of a listing: its rows and how many there are in all.
#[derive(Debug, Serialize)]
pub struct Page {
    /// Rows in the whole listing.
    pub total: i64,
    /// This page's rows (`[]` past the end).
    pub rows: Vec<Value>,
}
