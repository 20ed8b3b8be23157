//! Why a policy document was refused.

/// How much policy text an error message quotes.
const QUOTE_CHARS: usize = 64;

/// A policy document that cannot be accepted; the message names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The document is neither a statement, a `Statement` list nor an array of statements.
    #[error("The policy must be a statement object, an object with a Statement list, or an array of statements")]
    Shape,
    /// The document holds no statement.
    #[error("The policy needs at least one statement")]
    NoStatement,
    /// `Effect` is missing or neither Allow nor Deny.
    #[error("The policy Effect must be Allow or Deny")]
    Effect,
    /// `Action` is missing or empty.
    #[error("The policy needs at least one Action")]
    NoAction,
    /// `Resource` is missing or empty.
    #[error("The policy needs at least one Resource")]
    NoResource,
    /// A field has the wrong JSON type.
    #[error("The policy {0} must be {1}")]
    Type(&'static str, &'static str),
    /// A key appears twice, differing only in case.
    #[error("Duplicate key in policy: {0}")]
    DuplicateKey(String),
    /// A statement or principal key the engine does not know; refused rather than ignored, since
    /// ignoring `NotAction` or `NotPrincipal` would widen what the policy grants.
    #[error("Unknown key in policy: {0}")]
    UnknownKey(String),
    /// An action that names no known operation.
    #[error("Unknown action in policy: {0}")]
    UnknownAction(String),
    /// A resource outside the resource grammar.
    #[error("Unknown resource in policy: {0}")]
    UnknownResource(String),
    /// A condition operator the engine does not know.
    #[error("Unknown condition operator in policy: {0}")]
    UnknownOperator(String),
    /// A `${...}` that does not parse.
    #[error("Malformed variable in policy: {0}")]
    MalformedVariable(String),
    /// A well-formed `${name}` whose name is not a known variable.
    #[error("Unknown variable in policy: {0}")]
    UnknownVariable(String),
    /// A literal condition value that does not fit its operator (a number for `NumericEquals`, ...).
    #[error("Invalid condition value in policy: {0}")]
    InvalidValue(String),
    /// A document larger than the engine evaluates.
    #[error("The policy exceeds a limit: {0}")]
    Limit(&'static str),
}

/// Policy text for an error message, cut to a short prefix.
pub(crate) fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_cut_to_64_chars() {
        assert_eq!(quote("UserGett"), "UserGett");
        let long = "é".repeat(100);
        assert_eq!(quote(&long), format!("{}...", "é".repeat(64)));
    }
}
