//! Policy documents: JSON as sent in `PolicyCreate`, validated into typed statements.

use serde_json::{Map, Value};

use super::condition::Condition;
use super::error::{PolicyError, quote};
use super::pattern::Pattern;
use super::resource::Resource;

/// At most this many statements in a document.
const MAX_STATEMENTS: usize = 64;
/// At most this many actions, resources or principal roles in a statement.
const MAX_ENTRIES: usize = 64;
/// At most this many characters in any string or key of a document.
const MAX_STRING: usize = 256;

/// Whether a statement grants or refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Statement {
    pub(crate) effect: Effect,
    /// Role name patterns the statement is limited to; `None` applies to every role.
    pub(crate) principal: Option<Vec<Pattern>>,
    /// Operation name patterns, case-insensitive.
    pub(crate) actions: Vec<Pattern>,
    pub(crate) resources: Vec<Resource>,
    pub(crate) condition: Condition,
}

/// A validated policy document.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub(crate) statements: Vec<Statement>,
}

/// Parses and validates a policy document against the known operation names.
pub fn parse(value: &Value, operations: &[&str]) -> Result<Document, PolicyError> {
    check_strings(value)?;
    let items = match value {
        Value::Array(items) => items.as_slice(),
        // An object with a `Statement` key wraps the list; any other object is one statement.
        Value::Object(object) if object.keys().any(|k| k.eq_ignore_ascii_case("statement")) => {
            match keys(object, ["statement", "version", "id"])? {
                [Some(Value::Array(items)), ..] => items.as_slice(),
                [Some(single @ Value::Object(_)), ..] => std::slice::from_ref(single),
                _ => return Err(PolicyError::Type("Statement", "an array of statements")),
            }
        }
        Value::Object(_) => std::slice::from_ref(value),
        _ => return Err(PolicyError::Shape),
    };
    if items.is_empty() {
        return Err(PolicyError::NoStatement);
    }
    if items.len() > MAX_STATEMENTS {
        return Err(PolicyError::Limit("more than 64 statements"));
    }
    let statements = items.iter().map(|item| statement(item, operations)).collect::<Result<_, _>>()?;
    Ok(Document { statements })
}

/// Refuses any string or key longer than [`MAX_STRING`] characters, anywhere in the document.
fn check_strings(value: &Value) -> Result<(), PolicyError> {
    let too_long = |s: &str| s.len() > MAX_STRING && s.chars().count() > MAX_STRING;
    let error = PolicyError::Limit("a string longer than 256 characters");
    match value {
        Value::String(s) if too_long(s) => Err(error),
        Value::Array(items) => items.iter().try_for_each(check_strings),
        Value::Object(object) => object.iter().try_for_each(|(key, value)| match too_long(key) {
            true => Err(error.clone()),
            false => check_strings(value),
        }),
        _ => Ok(()),
    }
}

/// The values of the `known` keys (lowercase), matched ignoring case; an unknown key or one
/// given twice in different cases is refused.
fn keys<'a, const N: usize>(
    object: &'a Map<String, Value>,
    known: [&str; N],
) -> Result<[Option<&'a Value>; N], PolicyError> {
    let mut found = [None; N];
    for (key, value) in object {
        let lower = key.to_ascii_lowercase();
        let Some(slot) = known.iter().position(|k| *k == lower) else {
            return Err(PolicyError::UnknownKey(quote(key)));
        };
        if found[slot].replace(value).is_some() {
            return Err(PolicyError::DuplicateKey(quote(key)));
        }
    }
    // `null` means absent, as everywhere in the API.
    Ok(found.map(|v| v.filter(|v| !v.is_null())))
}

/// Parses one statement object.
fn statement(value: &Value, operations: &[&str]) -> Result<Statement, PolicyError> {
    let object = value.as_object().ok_or(PolicyError::Type("statement", "an object"))?;
    let [effect, principal, action, resource, condition, _sid] =
        keys(object, ["effect", "principal", "action", "resource", "condition", "sid"])?;
    let effect = match effect.and_then(Value::as_str) {
        Some(e) if e.eq_ignore_ascii_case("allow") => Effect::Allow,
        Some(e) if e.eq_ignore_ascii_case("deny") => Effect::Deny,
        _ => return Err(PolicyError::Effect),
    };
    let actions = strings(action, "Action", PolicyError::NoAction)?;
    let actions = actions.into_iter().map(|a| parse_action(a, operations)).collect::<Result<_, _>>()?;
    let resources = strings(resource, "Resource", PolicyError::NoResource)?;
    let resources = resources.into_iter().map(Resource::parse).collect::<Result<_, _>>()?;
    let principal = principal.map(parse_principal).transpose()?.flatten();
    let condition = condition.map(Condition::parse).transpose()?.unwrap_or_default();
    Ok(Statement { effect, principal, actions, resources, condition })
}

/// A string or an array of strings, non-empty and within [`MAX_ENTRIES`].
fn strings<'a>(value: Option<&'a Value>, name: &'static str, empty: PolicyError) -> Result<Vec<&'a str>, PolicyError> {
    let wrong = PolicyError::Type(name, "a string or an array of strings");
    let list: Vec<&str> = match value {
        None => return Err(empty),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(items)) => items.iter().map(|i| i.as_str().ok_or(wrong.clone())).collect::<Result<_, _>>()?,
        Some(_) => return Err(wrong),
    };
    match list.len() {
        0 => Err(empty),
        n if n > MAX_ENTRIES => Err(PolicyError::Limit("more than 64 entries in an Action, Resource or Role list")),
        _ => Ok(list),
    }
}

/// An action: a known operation name, or a wildcard pattern matching at least one.
fn parse_action(text: &str, operations: &[&str]) -> Result<Pattern, PolicyError> {
    let pattern = Pattern::ignoring_case(text);
    if text.is_empty() || !operations.iter().any(|op| pattern.matches(op)) {
        return Err(PolicyError::UnknownAction(quote(text)));
    }
    Ok(pattern)
}

/// `"*"`, `{"Role": "name"}` or `{"Role": [...]}`; `None` when it names every role.
fn parse_principal(value: &Value) -> Result<Option<Vec<Pattern>>, PolicyError> {
    let wrong = PolicyError::Type("Principal", "\"*\" or an object with a Role");
    let roles = match value {
        Value::String(s) if s == "*" => return Ok(None),
        Value::Object(object) => match keys(object, ["role"])? {
            [Some(roles)] => strings(Some(roles), "Principal Role", wrong)?,
            [None] => return Err(wrong),
        },
        _ => return Err(wrong),
    };
    if roles.iter().any(|r| r.is_empty()) {
        return Err(PolicyError::Type("Principal Role", "a role name"));
    }
    let patterns: Vec<Pattern> = roles.into_iter().map(Pattern::ignoring_case).collect();
    Ok((!patterns.iter().any(Pattern::is_any)).then_some(patterns))
}
