//! Bulk operations: tenant-wide listings guarded by a short-lived unlock.
//!
//! `BulkListUnlock` issues an `unlockuuid` ([`unlock`]) that every `BulkList*` call (and
//! `UserSearch`, `BulkDeleteTokens`) must present: a listing of many people's data takes two
//! deliberate steps, both audited. Each bulk call leaves one audit event naming the caller and
//! how many records it returned, never who they were; each user whose record a listing or a
//! search returned gets an event of its own in its trail ([`disclosed`]). Bulk reads do not extend sliding
//! lifetimes: an operator's export is not the data subject's access.
//!
//! The listings page with `offset`/`limit` as Databunker does, but never count past `offset`
//! rows when the caller walks its pages in order: see [`keyset`].

pub mod by_domain;
pub mod disclosed;
pub mod keyset;
pub mod routes;
pub mod unlock;
pub mod view;

pub use routes::operations;
