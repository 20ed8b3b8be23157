//! The uploaded `filedata`: standard base64 decoded a chunk at a time, never whole.
//!
//! A base64 run of 65 536 characters decodes to exactly one [`CHUNK`] of content, so the request's
//! string is read twice, slice by slice: once to validate it, measure it, hash it and sniff its
//! type ([`scan`]), then again to encrypt and store it ([`chunks`]). Only the request's own string
//! and one chunk are in memory at a time.

use base64::Engine;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest, Sha256};

use super::cipher::{CHUNK, TAG};

/// Standard alphabet (`+`, `/`); padding optional, so `"QQ"` and `"QQ=="` both read as `A`.
/// Line breaks, URL-safe characters and non-canonical trailing bits are refused.
const STANDARD: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 characters per chunk.
const RUN: usize = CHUNK / 3 * 4;

/// `filedata` is not standard base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("The filedata parameter is not valid base64")]
pub struct NotBase64;

/// The decoded length of `text`, from its length and padding alone (`None`: impossible length).
/// Lets a too large file be refused before any decoding.
pub fn decoded_len(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let padding = bytes.iter().rev().take_while(|b| **b == b'=').count();
    if padding > 2 {
        return None;
    }
    let unpadded = (bytes.len() - padding) as u64;
    if padding > 0 && bytes.len() % 4 != 0 {
        return None;
    }
    match unpadded % 4 {
        1 => None,
        rest => Some(unpadded / 4 * 3 + rest.saturating_sub(1)),
    }
}

/// What the first reading of an upload learnt.
#[derive(Debug, Clone)]
pub struct Scanned {
    /// Decoded size in bytes.
    pub size: u64,
    /// SHA-256 of the content (only ever stored keyed, see `record::content_index`).
    pub sha256: [u8; 32],
    /// The MIME type the content's magic bytes suggest, if any.
    pub sniffed: Option<&'static str>,
}

/// Validates, measures and hashes `text` without holding the decoded content.
pub fn scan(text: &str) -> Result<Scanned, NotBase64> {
    // Padding is optional, but when present it must be complete ("QQ=" is refused).
    decoded_len(text).ok_or(NotBase64)?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut sniffed = None;
    for (index, chunk) in chunks(text).enumerate() {
        let chunk = chunk?;
        if index == 0 {
            sniffed = infer::get(&chunk).map(|kind| kind.mime_type());
        }
        hasher.update(&chunk);
        size += chunk.len() as u64;
    }
    Ok(Scanned { size, sha256: hasher.finalize().into(), sniffed })
}

/// The decoded content, chunk by chunk (each with room for its tag); at least one chunk, empty
/// for an empty file.
pub fn chunks(text: &str) -> impl Iterator<Item = Result<Vec<u8>, NotBase64>> + '_ {
    let runs = text.len().div_ceil(RUN).max(1);
    (0..runs).map(move |index| {
        let run = text.get(index * RUN..((index + 1) * RUN).min(text.len())).ok_or(NotBase64)?;
        let mut chunk = Vec::with_capacity(CHUNK + TAG);
        STANDARD.decode_vec(run, &mut chunk).map_err(|_| NotBase64)?;
        Ok(chunk)
    })
}

/// Base64 of one chunk, appended to `out` (chunks are whole base64 runs, so appending the
/// chunks one after the other gives the base64 of the file).
pub fn encode_into(chunk: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + base64::encoded_len(chunk.len(), true).unwrap_or(0), 0);
    let written = base64::engine::general_purpose::STANDARD.encode_slice(chunk, &mut out[start..]).unwrap_or(0);
    out.truncate(start + written);
}

/// Base64 length of `size` bytes, padded.
pub fn encoded_len(size: u64) -> u64 {
    size.div_ceil(3) * 4
}

/// The MIME type of a file stored without one: from the filename's extension first (as
/// Databunker does: `passport.jpg` is `image/jpeg`), else from the content's magic bytes, else
/// `application/octet-stream`.
pub fn detect_mimetype(filename: &str, sniffed: Option<&str>) -> String {
    mime_guess::from_path(filename).first_raw().or(sniffed).unwrap_or("application/octet-stream").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    fn decode(text: &str) -> Result<Vec<u8>, NotBase64> {
        let mut out = Vec::new();
        for chunk in chunks(text) {
            out.extend(chunk?);
        }
        Ok(out)
    }

    #[test]
    fn decodes_every_byte_value_and_sizes_around_chunks() {
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&b64(&all)), Ok(all.clone()));
        for size in [0, 1, 2, 3, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 2] {
            let data: Vec<u8> = (0..size).map(|i| (i * 7 % 256) as u8).collect();
            let text = b64(&data);
            assert_eq!(decoded_len(&text), Some(size as u64), "size {size}");
            assert_eq!(decode(&text).map(|d| d.len()), Ok(size));
            assert_eq!(decode(&text), Ok(data.clone()));
            let sizes: Vec<usize> = chunks(&text).map(|c| c.map(|c| c.len()).unwrap_or(0)).collect();
            assert!(sizes[..sizes.len() - 1].iter().all(|s| *s == CHUNK), "{sizes:?}");
            let mut encoded = Vec::new();
            for chunk in chunks(&text) {
                encode_into(&chunk.expect("chunk"), &mut encoded);
            }
            assert_eq!(encoded, text.as_bytes());
            assert_eq!(encoded_len(size as u64), text.len() as u64);
        }
    }

    #[test]
    fn refuses_what_is_not_standard_base64() {
        for bad in ["Q", "QQ=", "QQ===", "Q===", "a-b_", "QUJD\nREVG", "QU JD", "QQ==QQ==", "QR==", "é"] {
            assert_eq!(scan(bad).map(|s| s.size), Err(NotBase64), "{bad:?}");
        }
        assert_eq!(scan("QQ").map(|s| s.size), Ok(1), "padding is optional");
        assert_eq!(scan("").map(|s| s.size), Ok(0), "an empty file is a file");
        assert_eq!(decoded_len("Q"), None);
        assert_eq!(decoded_len("QUJD="), None);
    }

    #[test]
    fn scan_hashes_and_sniffs() {
        let png = [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13];
        let scanned = scan(&b64(&png)).expect("scan");
        assert_eq!(scanned.sniffed, Some("image/png"));
        assert_eq!(scanned.sha256, <[u8; 32]>::from(Sha256::digest(png)));
        assert_eq!(scan(&b64(b"plain words")).expect("scan").sniffed, None);
    }

    #[test]
    fn mimetype_from_extension_then_magic() {
        assert_eq!(detect_mimetype("passport.jpg", None), "image/jpeg");
        assert_eq!(detect_mimetype("bill.PDF", Some("image/png")), "application/pdf");
        assert_eq!(detect_mimetype("scan", Some("image/png")), "image/png");
        assert_eq!(detect_mimetype("notes.unknownext", None), "application/octet-stream");
        assert_eq!(detect_mimetype("README", None), "application/octet-stream");
    }
}
