//! A file's validated parameters and how its metadata is kept at rest.
//!
//! - The filename, MIME type and tags are sealed together (`meta`) under the owner's data key.
//! - `name_idx` (lookup by filename) and `content_idx` (de-duplication, reported as
//!   `doublehash`) are HMAC-SHA256 under keys derived from the owner's data key: equal values
//!   match only within one user, nothing is comparable across users, and both become
//!   meaningless once the user (and so the data key) is erased. `content_idx` is the HMAC of
//!   the content's SHA-256 (a hash of a hash, hence the name), never a plain content hash.
//! - Each tag also gets a tenant-wide blind index (`file_tags`), for tag filters across users;
//!   it reveals which files share a tag within a tenant, not the tag.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::crypto::index::{IndexValue, digest};
use crate::crypto::keyring::{open_user, seal_user};
use crate::crypto::secrets::is_uuid_shaped;
use crate::crypto::{CryptoError, DataKey, TenantKeys};
use crate::http::lenient::{Text, text};
use crate::http::{ApiError, ApiResult};
use crate::tenants::TenantId;

/// Table name bound into the associated data of sealed metadata.
const FILES: &str = "files";
/// Most tags a file may carry.
pub const MAX_TAGS: usize = 16;
/// The tag rule, for error messages.
const TAG_RULE: &str = "^[a-z0-9][a-z0-9._-]{0,49}$";

/// A validated filename: 1 to 255 characters, no control characters; kept exactly as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName(String);

impl FileName {
    /// Validates the request's `filename`.
    pub fn parse(value: Option<Text>) -> ApiResult<FileName> {
        let name = text(value).ok_or_else(|| ApiError::bad_request("Missing API request parameters: filename"))?;
        let chars = name.chars().count();
        // Control characters have no place in a name and could only hurt in a header.
        if (1..=255).contains(&chars) && !name.trim().is_empty() && !name.chars().any(char::is_control) {
            Ok(FileName(name))
        } else {
            Err(ApiError::bad_request("The filename parameter has an incorrect format"))
        }
    }

    /// The name as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The optional `mimetype`, kept exactly as sent: printable ASCII with a `/`, at most 255
/// characters, no surrounding space (it becomes the raw download's `Content-Type`). Empty is
/// absent (the type is then detected).
pub fn parse_mimetype(value: Option<Text>) -> ApiResult<Option<String>> {
    let Some(mimetype) = text(value).filter(|m| !m.is_empty()) else {
        return Ok(None);
    };
    let printable = mimetype.bytes().all(|b| (0x20..0x7f).contains(&b));
    let trimmed = mimetype.trim() == mimetype;
    if printable && trimmed && mimetype.len() <= 255 && mimetype.contains('/') {
        Ok(Some(mimetype))
    } else {
        Err(ApiError::bad_request("The mimetype parameter has an incorrect format"))
    }
}

/// A normalised tag set: lower-cased, de-duplicated, sorted, at most [`MAX_TAGS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tags(Vec<String>);

impl Tags {
    /// Reads `tags`: an array of strings, or one string that may list several tags separated
    /// by commas (`"kyc, passport"`; empty entries are skipped, so `""` is no tag). Absent is
    /// no tag.
    pub fn parse(value: Option<Value>) -> ApiResult<Tags> {
        let raw: Vec<String> = match value {
            None => Vec::new(),
            Some(Value::String(list)) => {
                list.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()
            }
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(tag) => Ok(tag.trim().to_owned()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(ApiError::bad_request("The tags parameter has an incorrect format")),
                })
                .collect::<ApiResult<_>>()?,
            Some(_) => return Err(ApiError::bad_request("The tags parameter has an incorrect format")),
        };
        let mut tags = Vec::with_capacity(raw.len());
        for tag in raw {
            let tag = tag.to_lowercase();
            if !is_valid_tag(&tag) {
                return Err(ApiError::bad_request(format!("The tags parameter has an incorrect format: {TAG_RULE}")));
            }
            tags.push(tag);
        }
        tags.sort();
        tags.dedup();
        if tags.len() > MAX_TAGS {
            return Err(ApiError::bad_request(format!("The tags parameter has more than {MAX_TAGS} tags")));
        }
        Ok(Tags(tags))
    }

    /// Reads a required `tags` (an empty list is allowed: it clears the set).
    pub fn required(value: Option<Value>) -> ApiResult<Tags> {
        match value {
            None => Err(ApiError::bad_request("Missing API request parameters: tags")),
            some => Tags::parse(some),
        }
    }

    /// The tags, sorted.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The tenant-wide blind index of each tag.
    pub fn indexes(&self, keys: &TenantKeys) -> Vec<IndexValue> {
        self.0.iter().map(|tag| keys.file_tag_index(tag)).collect()
    }
}

fn is_valid_tag(tag: &str) -> bool {
    let bytes = tag.as_bytes();
    let first = bytes.first().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let rest = bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    first && rest && bytes.len() <= 50
}

/// One tag to filter by (a single tag: a comma is not a separator here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag(String);

impl Tag {
    /// Reads an optional `tag` filter: trimmed and lower-cased; empty is no filter.
    pub fn parse(value: Option<Text>) -> ApiResult<Option<Tag>> {
        let Some(tag) = text(value).map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if is_valid_tag(&tag) {
            Ok(Some(Tag(tag)))
        } else {
            Err(ApiError::bad_request(format!("The tag parameter has an incorrect format: {TAG_RULE}")))
        }
    }

    /// The tenant-wide blind index of the tag.
    pub fn index(&self, keys: &TenantKeys) -> IndexValue {
        keys.file_tag_index(&self.0)
    }

    /// True when `tags` (a file's opened tags) carry this tag: the check that a file found
    /// through the tag's blind index has it.
    pub fn is_in(&self, tags: &Tags) -> bool {
        tags.as_slice().contains(&self.0)
    }
}

/// Validates a `fileuuid`: present and UUID-shaped; returns it lower-cased.
pub fn parse_fileuuid(value: Option<Text>) -> ApiResult<String> {
    let uuid = text(value)
        .ok_or_else(|| ApiError::bad_request("Missing API request parameters: fileuuid"))?
        .trim()
        .to_ascii_lowercase();
    if is_uuid_shaped(&uuid) { Ok(uuid) } else { Err(ApiError::bad_request("Bad UUID")) }
}

/// The sealed part of a file row.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// The filename as sent.
    pub filename: String,
    /// The MIME type, as sent or detected.
    pub mimetype: String,
    /// The normalised tags.
    pub tags: Tags,
}

/// Seals a file's metadata under its owner's data key, bound to the tenant and file.
pub fn seal_meta(owner: &DataKey, tenant: TenantId, fileuuid: &str, meta: &Meta) -> Vec<u8> {
    let plain = zeroize::Zeroizing::new(serde_json::to_vec(meta).unwrap_or_default());
    seal_user(owner, tenant, FILES, fileuuid.as_bytes(), &plain)
}

/// Opens metadata sealed by [`seal_meta`].
pub fn open_meta(owner: &DataKey, tenant: TenantId, fileuuid: &str, blob: &[u8]) -> Result<Meta, CryptoError> {
    let plain = zeroize::Zeroizing::new(open_user(owner, tenant, FILES, fileuuid.as_bytes(), blob)?);
    serde_json::from_slice(&plain).map_err(|_| CryptoError)
}

/// The owner-keyed index of a filename (exact bytes).
pub fn name_index(owner: &DataKey, filename: &str) -> IndexValue {
    digest(&owner.derive(b"file-name-index"), filename)
}

/// The owner-keyed digest of a content's SHA-256: the de-duplication key and `doublehash`.
pub fn content_index(owner: &DataKey, sha256: &[u8; 32]) -> IndexValue {
    digest(&owner.derive(b"file-content-index"), &hex::encode(sha256))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key256;
    use serde_json::json;

    fn tags(value: Value) -> Result<Vec<String>, String> {
        Tags::parse(Some(value)).map(|t| t.0).map_err(|e| e.to_string())
    }

    #[test]
    fn tags_are_normalised() {
        assert_eq!(
            tags(json!(["passport", "KYC", "kyc", " id-card "])),
            Ok(vec!["id-card".into(), "kyc".into(), "passport".into()])
        );
        assert_eq!(tags(json!("passport")), Ok(vec!["passport".into()]));
        assert_eq!(tags(json!("b, a,,A")), Ok(vec!["a".into(), "b".into()]));
        assert_eq!(tags(json!("")), Ok(vec![]));
        assert_eq!(tags(json!([2024, "v1.2_x"])), Ok(vec!["2024".into(), "v1.2_x".into()]));
        assert_eq!(Tags::parse(None).map(|t| t.0).ok(), Some(vec![]));
        let max: Vec<String> = (0..16).map(|i| format!("t{i}")).collect();
        assert_eq!(tags(json!(max)).map(|t| t.len()), Ok(16));
        let fifty = format!("a{}", "b".repeat(49));
        assert_eq!(tags(json!([fifty.clone()])), Ok(vec![fifty]));
    }

    #[test]
    fn bad_tags_are_refused_without_echo() {
        let format = format!("The tags parameter has an incorrect format: {TAG_RULE}");
        for bad in [
            json!(["-x"]),
            json!(["a b"]),
            json!([""]),
            json!(["é"]),
            json!([format!("a{}", "b".repeat(50))]),
            json!(["a,b"]),
        ] {
            assert_eq!(tags(bad.clone()), Err(format.clone()), "{bad}");
        }
        for bad in [json!({"a": 1}), json!([true]), json!(3)] {
            assert_eq!(tags(bad), Err("The tags parameter has an incorrect format".into()));
        }
        let many: Vec<String> = (0..17).map(|i| format!("t{i}")).collect();
        assert_eq!(tags(json!(many)), Err("The tags parameter has more than 16 tags".into()));
        assert_eq!(Tags::required(None).map_err(|e| e.to_string()), Err("Missing API request parameters: tags".into()));
    }

    #[test]
    fn filenames_and_mimetypes() {
        let name = |s: &str| FileName::parse(Some(Text(s.into()))).map(|n| n.0).map_err(|e| e.to_string());
        assert_eq!(name("passport john.PDF"), Ok("passport john.PDF".into()));
        assert_eq!(name(&"é".repeat(255)).map(|n| n.chars().count()), Ok(255));
        for bad in ["", "  ", "a\r\nSet-Cookie: x", "tab\there", &"a".repeat(256)] {
            assert_eq!(name(bad), Err("The filename parameter has an incorrect format".into()), "{bad:?}");
        }
        let mime = |s: &str| parse_mimetype(Some(Text(s.into()))).map_err(|e| e.to_string());
        assert_eq!(mime("text/plain; charset=utf-8"), Ok(Some("text/plain; charset=utf-8".into())));
        assert_eq!(mime(""), Ok(None));
        for bad in ["text", "text/plain\r\nX: y", " text/plain", "tëxt/plain"] {
            assert_eq!(mime(bad), Err("The mimetype parameter has an incorrect format".into()), "{bad:?}");
        }
    }

    #[test]
    fn filter_tag_is_a_single_tag() {
        let tag = |s: &str| Tag::parse(Some(Text(s.into()))).map(|t| t.map(|t| t.0)).map_err(|e| e.to_string());
        assert_eq!(tag(" KYC "), Ok(Some("kyc".into())));
        assert_eq!(tag(""), Ok(None));
        assert!(tag("kyc,passport").is_err());
    }

    #[test]
    fn indexes_are_per_owner_and_meta_is_bound() {
        let (alice, bob) = (Key256::random(), Key256::random());
        assert_eq!(name_index(&alice, "a.pdf"), name_index(&alice, "a.pdf"));
        assert_ne!(name_index(&alice, "a.pdf"), name_index(&bob, "a.pdf"));
        assert_ne!(name_index(&alice, "a.pdf"), name_index(&alice, "A.pdf"));
        let sha = [3u8; 32];
        assert_ne!(content_index(&alice, &sha), content_index(&bob, &sha));
        let meta = Meta { filename: "a.pdf".into(), mimetype: "application/pdf".into(), tags: Tags::default() };
        let uuid = "0b6f6a52-8d1c-4c39-9a0e-4f5d7c2e1a10";
        let sealed = seal_meta(&alice, TenantId::new(1), uuid, &meta);
        assert_eq!(
            open_meta(&alice, TenantId::new(1), uuid, &sealed).map(|m| m.filename).ok().as_deref(),
            Some("a.pdf")
        );
        assert!(open_meta(&bob, TenantId::new(1), uuid, &sealed).is_err());
        assert!(open_meta(&alice, TenantId::new(1), "1b6f6a52-8d1c-4c39-9a0e-4f5d7c2e1a10", &sealed).is_err());
    }
}
