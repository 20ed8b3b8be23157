//! Resources: which user records, and which parts and profile fields of them, a statement covers.

use std::sync::Arc;

use super::error::{PolicyError, quote};
use super::facts::{Facts, Membership, Part, Target};
use super::pattern::Pattern;

/// Whose records a resource covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Subject {
    /// `users`: any user record.
    Users,
    /// `${target_group_members[:role/X]}`: members of the call's context group.
    TargetGroupMembers(Option<Pattern>),
    /// `${user_group_members[:role/X]}`: users who share a group with the principal.
    UserGroupMembers(Option<Pattern>),
}

/// A dotted path into the profile, each segment a pattern over one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldPath {
    pub(crate) segments: Vec<Pattern>,
    /// The path as written, for listings.
    pub(crate) text: String,
}

impl FieldPath {
    /// True when this path names `path` or one of its ancestors (it covers all of `path`).
    pub(crate) fn covers(&self, path: &[&str]) -> bool {
        self.segments.len() <= path.len() && self.segments.iter().zip(path).all(|(s, key)| s.matches(key))
    }

    /// True when this path names something strictly inside `path`.
    pub(crate) fn reaches_into(&self, path: &[&str]) -> bool {
        self.segments.len() > path.len() && self.segments.iter().zip(path).all(|(s, key)| s.matches(key))
    }
}

/// One parsed `Resource` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Resource {
    /// `*`: everything.
    Everything,
    /// `<subject>[.<part>[.<field path>]]`.
    Record {
        subject: Subject,
        /// `None` for `*` or an absent part: every part.
        part: Option<Part>,
        /// Only for the profile; `None` is the whole part. Shared with the views that cite it.
        fields: Option<Arc<FieldPath>>,
    },
}

impl Resource {
    /// Parses one resource string.
    pub(crate) fn parse(text: &str) -> Result<Self, PolicyError> {
        let unknown = || PolicyError::UnknownResource(quote(text));
        if text == "*" {
            return Ok(Self::Everything);
        }
        let (subject, rest) = split_subject(text).ok_or_else(unknown)?;
        let subject = parse_subject(subject).ok_or_else(unknown)?;
        let Some(rest) = rest else { return Ok(Self::Record { subject, part: None, fields: None }) };
        let (part, path) = rest.split_once('.').map_or((rest, None), |(p, f)| (p, Some(f)));
        let part = match part.to_ascii_lowercase().as_str() {
            "*" => None,
            "profile" => Some(Part::Profile),
            "appdata" => Some(Part::Appdata),
            "agreement" | "consent" => Some(Part::Agreement),
            "group" => Some(Part::Group),
            "session" => Some(Part::Session),
            "request" => Some(Part::Request),
            "file" => Some(Part::File),
            _ => return Err(unknown()),
        };
        let fields = match path {
            None => None,
            Some(_) if part != Some(Part::Profile) => return Err(unknown()),
            Some(path) => parse_fields(path).ok_or_else(unknown)?,
        };
        Ok(Self::Record { subject, part, fields })
    }

    /// True when the resource covers every part of every record, with or without a target.
    pub(crate) fn covers_everything(&self) -> bool {
        matches!(self, Self::Everything | Self::Record { subject: Subject::Users, part: None, fields: None })
    }

    /// True when the resource covers `part` (all of it or some of its fields).
    pub(crate) fn covers_part(&self, part: Part) -> bool {
        match self {
            Self::Everything => true,
            Self::Record { part: None, .. } => true,
            Self::Record { part: Some(p), .. } => *p == part,
        }
    }

    /// The profile fields the resource is limited to; `None` covers the whole record part.
    pub(crate) fn fields(&self) -> Option<&Arc<FieldPath>> {
        match self {
            Self::Record { fields, .. } => fields.as_ref(),
            Self::Everything => None,
        }
    }

    /// True when the subject depends on group memberships.
    pub(crate) fn is_group_relative(&self) -> bool {
        matches!(self, Self::Record { subject: Subject::TargetGroupMembers(_) | Subject::UserGroupMembers(_), .. })
    }

    /// True when the resource covers the call's part and its target (`users` also covers a call
    /// whose target is not known yet; a group-relative subject needs the target).
    pub(crate) fn applies(&self, facts: &Facts) -> bool {
        if facts.part == Part::None {
            return true;
        }
        if !self.covers_part(facts.part) {
            return false;
        }
        match self {
            Self::Everything | Self::Record { subject: Subject::Users, .. } => true,
            Self::Record { subject, .. } => facts.target.is_some_and(|target| subject_has(subject, facts, target)),
        }
    }
}

/// True when the group-relative `subject` covers `target`.
fn subject_has(subject: &Subject, facts: &Facts, target: &Target) -> bool {
    let shares_with_principal = |m: &Membership| facts.principal_groups.iter().any(|p| p.group_id == m.group_id);
    match subject {
        Subject::Users => true,
        Subject::TargetGroupMembers(role) => {
            let in_role = |m: &&Membership| has_role(m, role.as_ref());
            let mut members = target.memberships.iter().filter(in_role);
            // The context group: a principal in groups (a user token) reaches the members of its
            // own groups (and, through the target's inherited memberships, of the groups below
            // them) whatever group the call names; a role token, the group the call names, else
            // any group at all.
            match facts.group {
                _ if !facts.principal_groups.is_empty() => members.any(shares_with_principal),
                Some(group) => members.any(|m| m.group_id == group),
                None => members.next().is_some(),
            }
        }
        Subject::UserGroupMembers(role) => {
            target.memberships.iter().any(|m| has_role(m, role.as_ref()) && shares_with_principal(m))
        }
    }
}

/// True when the membership carries a role matching `role` (any membership when there is no filter).
fn has_role(membership: &Membership, role: Option<&Pattern>) -> bool {
    role.is_none_or(|pattern| membership.role.as_deref().is_some_and(|name| pattern.matches(name)))
}

/// Splits `text` into the subject and what follows its dot.
fn split_subject(text: &str) -> Option<(&str, Option<&str>)> {
    let end = if text.starts_with("${") { text.find('}')? + 1 } else { text.find('.').unwrap_or(text.len()) };
    let (subject, rest) = text.split_at(end);
    match rest {
        "" => Some((subject, None)),
        _ => Some((subject, Some(rest.strip_prefix('.')?))),
    }
}

/// Parses `users` or a `${...}` group-relative subject.
fn parse_subject(text: &str) -> Option<Subject> {
    if text.eq_ignore_ascii_case("users") {
        return Some(Subject::Users);
    }
    let inner = text.strip_prefix("${")?.strip_suffix('}')?;
    let (name, role) = match inner.split_once(':') {
        None => (inner, None),
        Some((name, filter)) => {
            let role = filter.get(..5).filter(|p| p.eq_ignore_ascii_case("role/")).and(filter.get(5..))?;
            if role.is_empty() {
                return None;
            }
            (name, Some(Pattern::ignoring_case(role)))
        }
    };
    match name.to_ascii_lowercase().as_str() {
        "target_group_members" => Some(Subject::TargetGroupMembers(role)),
        "user_group_members" => Some(Subject::UserGroupMembers(role)),
        _ => None,
    }
}

/// Parses a profile field path; `*` alone is the whole profile (`Ok(None)`).
fn parse_fields(path: &str) -> Option<Option<Arc<FieldPath>>> {
    if path == "*" {
        return Some(None);
    }
    let segments = path.split('.').map(|s| (!s.is_empty() && !s.contains("${")).then(|| Pattern::exact(s)));
    let segments = segments.collect::<Option<Vec<_>>>()?;
    Some(Some(Arc::new(FieldPath { segments, text: path.to_owned() })))
}
