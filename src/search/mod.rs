//! Fuzzy user search (`UserSearch`) without a plaintext index.
//!
//! Each user's login, e-mail (local part and domain apart), phone (digits) and custom id are
//! folded (case, accents and spacing ignored), cut into trigrams framed by spaces, and each
//! trigram is stored only as the first 8 bytes of an HMAC-SHA256 digest under a per-tenant key
//! mixed with the field name ([`grams`]). The digests are written in the same transaction as the
//! user row on every create, update, patch and bulk create, and go with the row on every delete,
//! bulk delete, approved erasure and retention sweep (`ON DELETE CASCADE` on PostgreSQL, a
//! trigger on SQLite).
//!
//! A query is cut and keyed the same way. The database counts, per user, the digests it shares
//! with the query and hands back the users above a threshold (the fewest digests any real
//! match must share), most shared first. Those candidates are opened, and the query is judged
//! against their decrypted values in memory: a query part matches a value that contains it with
//! at most one edit (two from twelve characters; phones one, from seven digits), which covers
//! partial values and small typos alike — see [`query`]. Results are ranked by edits, then by
//! shared digests.
//!
//! # Privacy trade-off
//!
//! Blind indexes for equality reveal only which users share a whole value. Trigram digests
//! reveal more, and an operator enabling search accepts it:
//! - **Frequency**: within a tenant and field, the same trigram always has the same digest, so
//!   someone holding the database can count how many users share each digest. Common trigrams
//!   of a language or of popular e-mail domains stand out, and matching frequencies against
//!   public statistics can guess what some digests stand for; chaining guessed trigrams that
//!   overlap can then rebuild parts of values (most easily common domains and name fragments).
//! - **Similarity**: two users sharing many digests have similar values, without the key.
//! - **Length**: the number of digests a user has grows with the length of its values.
//!
//! What it does not reveal: no value, no trigram, no digest without the tenant key (a copy of
//! the table alone cannot be tested against guessed values); nothing across tenants or across
//! fields (different keys); and no order of trigrams. Rare trigrams, the ones that identify a
//! person, are also the ones frequency analysis cannot name. The final judgement uses values
//! decrypted for the request only, as any read does; nothing searchable is stored in clear.

pub mod grams;
pub mod query;
pub mod routes;
pub mod service;

pub use routes::operations;
