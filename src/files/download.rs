//! The two answers of `FileGet`: the raw bytes as a streamed body, or JSON with the content in
//! base64, built in one buffer as the chunks are decrypted.

use axum::body::Bytes;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::reader::{Content, ReadError};
use super::upload::{encode_into, encoded_len};

/// The JSON fields of a `FileGet` answer other than `filedata`.
#[derive(Debug, Serialize)]
pub struct FileFields<'a> {
    /// Always `"ok"`.
    pub status: &'static str,
    /// The file's id.
    pub fileuuid: &'a str,
    /// The filename as stored.
    pub filename: &'a str,
    /// The MIME type.
    pub mimetype: &'a str,
    /// Size in bytes.
    pub size: u64,
    /// The normalised tags.
    pub tags: &'a [String],
    /// The owner's user token.
    pub token: &'a str,
}

/// `{"status":"ok", ..., "filedata":"<base64>"}`: the content is decrypted chunk by chunk and
/// encoded straight into the answer, so the only full copy is the answer itself.
pub async fn json(mut content: Content, fields: &FileFields<'_>) -> Result<Response, ReadError> {
    let mut body = serde_json::to_vec(fields).unwrap_or_default();
    // The object's closing brace makes way for the last field.
    body.pop();
    body.reserve(usize::try_from(encoded_len(fields.size)).unwrap_or(0) + 16);
    body.extend_from_slice(b",\"filedata\":\"");
    while let Some(chunk) = content.next().await? {
        encode_into(&chunk, &mut body);
    }
    body.extend_from_slice(b"\"}");
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

/// The raw bytes, streamed as they are decrypted, with the file's type and name in the headers.
/// A chunk that fails to read or decrypt aborts the body (the length announced is not reached),
/// so a client never takes a partial file for a whole one.
pub fn raw(content: Content, filename: &str, mimetype: &str, size: u64) -> Response {
    let stream = futures::stream::try_unfold(content, |mut content| async move {
        match content.next().await {
            Ok(Some(chunk)) => Ok(Some((Bytes::from(chunk), content))),
            Ok(None) => Ok(None),
            Err(err) => {
                tracing::error!(error = %err, "file download stopped");
                Err(std::io::Error::other("file content unreadable"))
            }
        }
    });
    let content_type =
        HeaderValue::from_str(mimetype).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    let headers = [
        (header::CONTENT_TYPE, content_type),
        (header::CONTENT_DISPOSITION, content_disposition(filename)),
        (header::CONTENT_LENGTH, HeaderValue::from(size)),
        // Personal data: not for caches, not to be sniffed or rendered as a page of this origin.
        (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox")),
    ];
    (headers, axum::body::Body::from_stream(stream)).into_response()
}

/// `attachment; filename="<ASCII fallback>"` plus, when the name is not plain ASCII,
/// `filename*=UTF-8''<percent-encoded>` (RFC 6266, RFC 8187). Quotes, backslashes, `%`, control
/// and non-ASCII characters never reach the quoted form, so the header cannot be broken out of.
pub fn content_disposition(filename: &str) -> HeaderValue {
    let fallback: String = filename
        .chars()
        .map(|c| if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '%') || c == ' ' { c } else { '_' })
        .collect();
    let mut value = format!("attachment; filename=\"{fallback}\"");
    if fallback != filename {
        value.push_str("; filename*=UTF-8''");
        for byte in filename.bytes() {
            if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
                value.push(char::from(byte));
            } else {
                value.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disposition(name: &str) -> String {
        content_disposition(name).to_str().expect("ascii").to_owned()
    }

    #[test]
    fn plain_names_are_quoted_as_is() {
        assert_eq!(disposition("passport scan.pdf"), "attachment; filename=\"passport scan.pdf\"");
    }

    #[test]
    fn other_names_get_a_safe_fallback_and_an_encoded_form() {
        assert_eq!(
            disposition("Pässe 100%.pdf"),
            "attachment; filename=\"P_sse 100_.pdf\"; filename*=UTF-8''P%C3%A4sse%20100%25.pdf"
        );
        let hostile = disposition("a\"; filename=evil.exe\r\nSet-Cookie: x=1");
        assert!(
            hostile.starts_with("attachment; filename=\"a_; filename=evil.exe__Set-Cookie: x=1\"; filename*="),
            "{hostile}"
        );
        assert!(!hostile.contains('\r') && !hostile.contains('\n'));
        assert_eq!(hostile.matches('"').count(), 2, "{hostile}");
        assert_eq!(disposition("back\\slash"), "attachment; filename=\"back_slash\"; filename*=UTF-8''back%5Cslash");
    }
}
