//! Catalogue names (a legal basis `brief`, a processing `activity`) and the small enums.

use crate::http::ApiError;
use crate::http::lenient::Text;

/// Reads a required name: trimmed, lower-cased, then `^[a-z][a-z0-9-]{1,64}$`.
///
/// `field` is the parameter's name, used in the error message (never the value).
pub fn required(field: &'static str, value: Option<Text>) -> Result<String, ApiError> {
    optional(field, value)?.ok_or_else(|| ApiError::bad_request(format!("Missing API request parameters: {field}")))
}

/// Reads an optional name as [`required`] does; absent, `null` and blank are `None`.
pub fn optional(field: &'static str, value: Option<Text>) -> Result<Option<String>, ApiError> {
    let Some(Text(raw)) = value else { return Ok(None) };
    let name = raw.trim().to_lowercase();
    if name.is_empty() {
        return Ok(None);
    }
    if is_valid(&name) {
        Ok(Some(name))
    } else {
        Err(ApiError::bad_request(format!("The {field} parameter has an incorrect format")))
    }
}

fn is_valid(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
    let rest = chars.as_str();
    first_ok
        && (1..=64).contains(&rest.len())
        && rest.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Reads an optional legal basis `status`: `active` or `inactive`, in any case.
pub fn status(value: Option<Text>) -> Result<Option<String>, ApiError> {
    match value.map(|Text(s)| s.trim().to_ascii_lowercase()) {
        None => Ok(None),
        Some(s) if s == "active" || s == "inactive" => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request("The status parameter has an incorrect format")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Option<Text> {
        Some(Text(s.to_owned()))
    }

    #[test]
    fn names_follow_the_pattern_after_lower_casing() {
        assert_eq!(required("brief", text(" Marketing-2 ")).ok().as_deref(), Some("marketing-2"));
        assert_eq!(required("brief", text(&format!("a{}", "b".repeat(64)))).map(|n| n.len()).ok(), Some(65));
        for bad in ["a", "1abc", "-ab", "ab_c", "ab c", "ab.c", "é-ab"] {
            let err = required("brief", text(bad)).expect_err(bad).to_string();
            assert_eq!(err, "The brief parameter has an incorrect format", "{bad}");
        }
        let too_long = format!("a{}", "b".repeat(65));
        assert!(required("activity", text(&too_long)).is_err());
        assert_eq!(required("brief", None).expect_err("missing").to_string(), "Missing API request parameters: brief");
        assert_eq!(optional("newbrief", text("  ")).ok(), Some(None));
    }

    #[test]
    fn status_is_active_or_inactive() {
        assert_eq!(status(text("Inactive")).ok(), Some(Some("inactive".to_owned())));
        assert_eq!(status(None).ok(), Some(None));
        assert!(status(text("on")).is_err());
    }
}
