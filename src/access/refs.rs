//! How requests name groups, roles and policies: by id (a number or a numeric string; the
//! clients turn a numeric name into an id) or by name, and the rules names follow.

use crate::http::lenient::{Int, Text, int, text};
use crate::http::{ApiError, ApiResult};
use crate::store::roles::Ref;

/// Longest group, role or policy name.
pub const MAX_NAME: usize = 128;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 1024;

/// The record named by `id` or `name`; `None` when neither is given. An id of 0 is absent (the
/// JS client sends `Number('')`, which is 0, for an empty reference).
pub fn optional(id: Option<Int>, name: Option<Text>) -> Option<Ref> {
    match int(id).filter(|id| *id != 0) {
        Some(id) => Some(Ref::Id(id)),
        None => text(name).map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).map(Ref::Name),
    }
}

/// The record named by `id` or `name`; 400 naming both parameters when neither is given.
pub fn required(id: Option<Int>, name: Option<Text>, params: &'static str) -> ApiResult<Ref> {
    optional(id, name).ok_or_else(|| ApiError::bad_request(format!("Missing API request parameters: {params}")))
}

/// A name: trimmed, 1 to [`MAX_NAME`] characters, no control characters, not all digits (a
/// numeric name could not be told from an id by the clients).
pub fn name(param: &'static str, value: Option<Text>) -> ApiResult<String> {
    let value = text(value).map(|v| v.trim().to_owned()).unwrap_or_default();
    if value.is_empty() {
        return Err(ApiError::bad_request(format!("Missing API request parameters: {param}")));
    }
    if value.chars().count() > MAX_NAME
        || value.chars().any(char::is_control)
        || value.chars().all(|c| c.is_ascii_digit())
    {
        return Err(ApiError::bad_request(format!("The {param} parameter has an incorrect format")));
    }
    Ok(value)
}

/// An optional free-text field of at most `max` characters, without NUL (which PostgreSQL's text
/// cannot hold).
pub fn description(param: &'static str, value: Option<Text>, max: usize) -> ApiResult<Option<String>> {
    match text(value) {
        Some(v) if v.chars().count() > max => Err(ApiError::bad_request(format!("The {param} is too long"))),
        Some(v) if v.contains('\0') => {
            Err(ApiError::bad_request(format!("The {param} parameter has an incorrect format")))
        }
        other => Ok(other),
    }
}
