//! Cross-site request forgery: every form carries a token the console derived from the session's
//! secret (or, before a session, a value it also set in a cookie: "double submit"), and a POST
//! that names another origin is refused whatever it carries.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::layout::{self, Notice};
use crate::crypto::secrets::digests_match;

/// The form field.
pub const FIELD: &str = "csrf";
/// The cookie of the forms shown before a session (login, activation, password reset).
pub const FORM_COOKIE: &str = "bunker_console_form";
/// What a refused form is told.
pub const REFUSED: &str = "The form has expired or did not come from this console: reload the page and try again.";

/// The token of a session's forms: a MAC of a fixed label under the session's secret, so that
/// only who holds the secret (the browser, in its HttpOnly cookie) can know it.
pub fn of_session(secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(b"bunker console csrf");
    hex::encode(mac.finalize().into_bytes())
}

/// A fresh value for the forms shown before a session.
pub fn fresh() -> String {
    let mut bytes = [0u8; 32];
    crate::crypto::random::fill(&mut bytes);
    hex::encode(bytes)
}

/// Checks a POST: its origin, then its token against `expected`; the refusal to answer if any.
pub fn check(headers: &HeaderMap, expected: Option<&str>, given: Option<&str>) -> Option<Response> {
    if passes(headers, expected, given) {
        None
    } else {
        Some(layout::respond(
            StatusCode::FORBIDDEN,
            layout::page(
                "Refused",
                None,
                &Notice::Error(REFUSED.into()),
                maud::html! {
                    p { a href="/console/login" { "Back to the console" } }
                },
            ),
        ))
    }
}

/// Whether a POST came from a page of this origin and carries the token `expected`.
pub fn passes(headers: &HeaderMap, expected: Option<&str>, given: Option<&str>) -> bool {
    let matches = match (expected, given) {
        (Some(expected), Some(given)) => !expected.is_empty() && digests_match(expected.as_bytes(), given.as_bytes()),
        _ => false,
    };
    same_origin(headers) && matches
}

/// False when the browser says the request came from another site, or its `Origin` is not the
/// host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site == Some("cross-site") {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN) else { return true };
    let origin = origin.to_str().unwrap_or_default();
    // A browser hides the origin ("null") under some referrer policies; then only its own word
    // that the request came from this very origin will do.
    if origin == "null" {
        return site == Some("same-origin");
    }
    // The host the browser addressed: `Host`, or behind a proxy that rewrites it, the
    // `X-Forwarded-Host` it passes on (a page of another site cannot set either on a form post).
    let bare = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    [header::HOST.as_str(), "x-forwarded-host"]
        .iter()
        .filter_map(|name| headers.get(*name).and_then(|v| v.to_str().ok()))
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|host| !host.is_empty() && bare == Some(host))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().expect("header"));
        }
        headers
    }

    #[test]
    fn a_session_token_is_needed_and_the_origin_must_be_the_console() {
        let token = of_session("secret");
        assert_ne!(token, of_session("other secret"));
        let here = headers(&[("host", "vault:3000"), ("origin", "http://vault:3000")]);
        assert!(check(&here, Some(&token), Some(&token)).is_none());
        assert!(check(&here, Some(&token), Some("forged")).is_some());
        assert!(check(&here, Some(&token), None).is_some());
        assert!(check(&here, None, Some("")).is_some());
        let elsewhere = headers(&[("host", "vault:3000"), ("origin", "http://evil.example")]);
        assert!(check(&elsewhere, Some(&token), Some(&token)).is_some());
        let hidden = headers(&[("host", "vault:3000"), ("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert!(check(&hidden, Some(&token), Some(&token)).is_none());
        let hidden_elsewhere = headers(&[("host", "vault:3000"), ("origin", "null")]);
        assert!(check(&hidden_elsewhere, Some(&token), Some(&token)).is_some());
        let proxied = headers(&[
            ("host", "127.0.0.1:3000"),
            ("x-forwarded-host", "vault.example.com"),
            ("origin", "https://vault.example.com"),
        ]);
        assert!(check(&proxied, Some(&token), Some(&token)).is_none());
        let cross = headers(&[("host", "vault:3000"), ("sec-fetch-site", "cross-site")]);
        assert!(check(&cross, Some(&token), Some(&token)).is_some());
        assert!(check(&headers(&[("host", "vault:3000")]), Some(&token), Some(&token)).is_none());
    }
}
