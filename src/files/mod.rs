//! Files: a user's documents, each encrypted under its own key, itself sealed under the owner's
//! data key, so erasing the user shreds the files.
//!
//! Content arrives base64 in JSON and is decoded, encrypted and stored chunk by chunk (STREAM
//! over AES-256-GCM, see [`cipher`]); it lives in the database (`file_chunks`) by default, or as
//! ciphertext blobs in `BUNKER_FILE_DIR` (see [`blobs`]). Metadata at rest is described in
//! [`record`].

pub mod blobs;
pub mod cipher;
pub mod download;
pub mod reader;
pub mod record;
pub mod routes;
pub mod service;
pub mod upload;

pub use routes::operations;
