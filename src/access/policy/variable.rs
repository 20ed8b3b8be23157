//! Condition variables (`${user:email}`, `${source_ip}`, ...) and what they resolve to.

use std::borrow::Cow;
use std::net::IpAddr;

use serde_json::Value;

use super::error::{PolicyError, quote};
use super::facts::{Facts, Membership};

/// A `${...}` variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Variable {
    /// `${request_metadata:KEY}`: a top-level key of the call's request metadata.
    Metadata(String),
    /// `${user:FIELD}`: a field of the target's profile, dotted path allowed.
    User(Vec<String>),
    /// `${agreement:BRIEF}`: the target's agreement status for a brief.
    Agreement(String),
    /// `${user_group_id}`: the target user's groups.
    UserGroupId,
    /// `${target_group_id}`: the group the call names, else the target user's groups.
    TargetGroupId,
    /// `${principal_group_id}`: the principal's groups.
    PrincipalGroupId,
    /// `${principal_group:ATTR}`: a custom attribute across the principal's groups.
    PrincipalGroup(String),
    /// `${target_group:ATTR}`: a custom attribute across the target groups.
    TargetGroup(String),
    /// `${source_ip}`: the client address.
    SourceIp,
    /// `${current_time}`: the request time, unix seconds.
    CurrentTime,
}

/// One value a variable resolved to.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fact<'a> {
    Json(&'a Value),
    Int(i64),
    Text(&'a str),
    Ip(IpAddr),
}

/// What a variable resolved to.
#[derive(Debug)]
pub(crate) enum Resolved<'a> {
    /// The facts it reads are not known for this call (no target, no client address).
    Unavailable,
    /// Its values; empty when the key is absent.
    Values(Vec<Fact<'a>>),
}

impl Variable {
    /// Parses a condition key: a `${...}` variable, or a bare name meaning `${request_metadata:name}`.
    pub(crate) fn parse_key(text: &str) -> Result<Self, PolicyError> {
        if text.contains(['$', '{', '}']) {
            return Self::parse(text);
        }
        if text.is_empty() {
            return Err(PolicyError::MalformedVariable(String::new()));
        }
        Ok(Self::Metadata(text.to_owned()))
    }

    /// Parses a condition value: `Some` variable when it is written `${...}`, `None` for a literal.
    pub(crate) fn parse_value(text: &str) -> Result<Option<Self>, PolicyError> {
        // A literal holding `${` would read like a template the engine never expands.
        if text.contains("${") { Self::parse(text).map(Some) } else { Ok(None) }
    }

    fn parse(text: &str) -> Result<Self, PolicyError> {
        let malformed = || PolicyError::MalformedVariable(quote(text));
        let inner = text.strip_prefix("${").and_then(|t| t.strip_suffix('}')).ok_or_else(malformed)?;
        if inner.is_empty() || inner.contains(['$', '{', '}']) {
            return Err(malformed());
        }
        let (name, arg) = match inner.split_once(':') {
            None => (inner, None),
            Some((_, "")) => return Err(malformed()),
            Some((name, arg)) => (name, Some(arg)),
        };
        let with_arg = |wrap: fn(String) -> Self| arg.map(|a| wrap(a.to_owned())).ok_or_else(malformed);
        let bare = |variable: Self| if arg.is_none() { Ok(variable) } else { Err(malformed()) };
        match name.to_ascii_lowercase().as_str() {
            "request_metadata" => with_arg(Self::Metadata),
            "user" => {
                let path = arg.filter(|p| !p.split('.').any(str::is_empty)).ok_or_else(malformed)?;
                Ok(Self::User(path.split('.').map(str::to_owned).collect()))
            }
            "agreement" => with_arg(Self::Agreement),
            "principal_group" => with_arg(Self::PrincipalGroup),
            "target_group" => with_arg(Self::TargetGroup),
            "user_group_id" => bare(Self::UserGroupId),
            "target_group_id" => bare(Self::TargetGroupId),
            "principal_group_id" => bare(Self::PrincipalGroupId),
            "source_ip" => bare(Self::SourceIp),
            "current_time" => bare(Self::CurrentTime),
            _ => Err(PolicyError::UnknownVariable(quote(text))),
        }
    }

    /// The variable's values for this call.
    pub(crate) fn resolve<'a>(&self, facts: &Facts<'a>) -> Resolved<'a> {
        let mut values = Vec::new();
        let target = facts.target;
        match self {
            Self::Metadata(key) => {
                push_json(&mut values, facts.metadata.and_then(|m| m.get(key.as_str())));
            }
            Self::User(path) => {
                let Some(profile) = target.and_then(|t| t.profile) else { return Resolved::Unavailable };
                push_json(&mut values, path.iter().try_fold(profile, |node, key| node.get(key.as_str())));
            }
            Self::Agreement(brief) => {
                let Some(agreements) = target.and_then(|t| t.agreements) else { return Resolved::Unavailable };
                values.extend(agreements.get(brief).map(|status| Fact::Text(status)));
            }
            Self::UserGroupId => {
                let Some(target) = target else { return Resolved::Unavailable };
                values.extend(target.memberships.iter().map(|m| Fact::Int(m.group_id)));
            }
            Self::TargetGroupId => match (facts.group, target) {
                (Some(group), _) => values.push(Fact::Int(group)),
                (None, Some(target)) => values.extend(target.memberships.iter().map(|m| Fact::Int(m.group_id))),
                (None, None) => return Resolved::Unavailable,
            },
            Self::PrincipalGroupId => values.extend(facts.principal_groups.iter().map(|m| Fact::Int(m.group_id))),
            Self::PrincipalGroup(attribute) => push_attributes(&mut values, facts.principal_groups.iter(), attribute),
            Self::TargetGroup(attribute) => match (facts.group, target) {
                (Some(group), _) => {
                    // The named group's attributes travel with any membership of it the call knows.
                    let target_groups = target.map_or(&[][..], |t| t.memberships);
                    let mut named = target_groups.iter().chain(facts.principal_groups).filter(|m| m.group_id == group);
                    let Some(first) = named.next() else { return Resolved::Unavailable };
                    push_attributes(&mut values, std::iter::once(first), attribute);
                }
                (None, Some(target)) => push_attributes(&mut values, target.memberships.iter(), attribute),
                (None, None) => return Resolved::Unavailable,
            },
            Self::SourceIp => match facts.source_ip {
                Some(ip) => values.push(Fact::Ip(ip)),
                None => return Resolved::Unavailable,
            },
            Self::CurrentTime => values.push(Fact::Int(facts.now)),
        }
        Resolved::Values(values)
    }
}

/// Adds a JSON value's facts: an array gives its elements, `null` (absent) gives nothing.
fn push_json<'a>(values: &mut Vec<Fact<'a>>, value: Option<&'a Value>) {
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => values.extend(items.iter().filter(|v| !v.is_null()).map(Fact::Json)),
        Some(value) => values.push(Fact::Json(value)),
    }
}

/// Adds one custom attribute's values across several groups.
fn push_attributes<'a>(values: &mut Vec<Fact<'a>>, groups: impl Iterator<Item = &'a Membership>, attribute: &str) {
    for group in groups {
        push_json(values, group.attributes.get(attribute));
    }
}

impl<'a> Fact<'a> {
    /// The value when it is a string.
    pub(crate) fn as_str(&self) -> Option<&'a str> {
        match *self {
            Self::Json(Value::String(s)) => Some(s),
            Self::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The value as text: strings as they are, numbers and booleans as JSON writes them.
    pub(crate) fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Json(Value::String(s)) => Some(Cow::Borrowed(s)),
            Self::Text(s) => Some(Cow::Borrowed(s)),
            Self::Json(v @ (Value::Number(_) | Value::Bool(_))) => Some(Cow::Owned(v.to_string())),
            Self::Int(n) => Some(Cow::Owned(n.to_string())),
            Self::Ip(ip) => Some(Cow::Owned(ip.to_string())),
            Self::Json(_) => None,
        }
    }

    /// The value as a finite number.
    pub(crate) fn number(&self) -> Option<f64> {
        let n = match self {
            Self::Json(Value::Number(n)) => n.as_f64(),
            Self::Json(Value::String(_)) | Self::Text(_) => self.as_str().and_then(|s| s.trim().parse().ok()),
            #[expect(clippy::cast_precision_loss, reason = "ids and times compared as numbers fit f64 well enough")]
            Self::Int(n) => Some(*n as f64),
            _ => None,
        };
        n.filter(|n: &f64| n.is_finite())
    }

    /// The value as unix seconds: a number, or an RFC 3339 or integer string.
    pub(crate) fn date(&self) -> Option<i64> {
        match self {
            Self::Json(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().and_then(seconds)),
            Self::Json(Value::String(_)) | Self::Text(_) => self.as_str().and_then(|s| {
                s.parse().ok().or_else(|| chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp()))
            }),
            Self::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The value as a boolean: `true`/`false` or those words in any case.
    pub(crate) fn boolean(&self) -> Option<bool> {
        match self {
            Self::Json(Value::Bool(b)) => Some(*b),
            _ => match self.as_str()? {
                s if s.eq_ignore_ascii_case("true") => Some(true),
                s if s.eq_ignore_ascii_case("false") => Some(false),
                _ => None,
            },
        }
    }

    /// The value as an address; IPv4-mapped IPv6 counts as IPv4.
    pub(crate) fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Ip(ip) => Some(ip.to_canonical()),
            _ => self.as_str()?.parse::<IpAddr>().ok().map(|ip| ip.to_canonical()),
        }
    }
}

/// Whole seconds of a finite float, when they fit.
fn seconds(f: f64) -> Option<i64> {
    #[expect(clippy::cast_possible_truncation, reason = "range checked just before")]
    (f.is_finite() && f.abs() < 9.0e15).then(|| f.floor() as i64)
}
