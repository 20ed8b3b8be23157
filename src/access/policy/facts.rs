//! What a decision is asked about: the operation, the principal and the record it concerns.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Map, Value};

/// One group a user belongs to (callers add the ancestor groups themselves).
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    /// The group's id.
    pub group_id: i64,
    /// The user's role in that group, if any.
    pub role: Option<String>,
    /// The group's custom attributes, read by `${principal_group:ATTR}` and `${target_group:ATTR}`.
    pub attributes: Arc<Map<String, Value>>,
}

/// The part of a user record an operation reads or writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The profile (the only part with field-level resources).
    Profile,
    /// App data.
    Appdata,
    /// Agreements (resources may also say `consent`).
    Agreement,
    /// Group memberships.
    Group,
    /// Sessions.
    Session,
    /// User requests.
    Request,
    /// Files.
    File,
    /// The operation concerns no user record.
    None,
}

/// The user record an operation concerns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    /// The decrypted profile, when read.
    pub profile: Option<&'a Value>,
    /// The groups the user belongs to.
    pub memberships: &'a [Membership],
    /// Agreement status by brief (`"yes"`, `"no"`), when read.
    pub agreements: Option<&'a HashMap<String, String>>,
}

/// Everything one decision may look at.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The operation's PascalCase name.
    pub operation: &'a str,
    /// The part of the user record it concerns.
    pub part: Part,
    /// The principal user's memberships (empty for a role token).
    pub principal_groups: &'a [Membership],
    /// The group the call names, if any.
    pub group: Option<i64>,
    /// The user record the call concerns, when known.
    pub target: Option<&'a Target<'a>>,
    /// The call's `request_metadata` object.
    pub metadata: Option<&'a Value>,
    /// The client's address.
    pub source_ip: Option<IpAddr>,
    /// The request time, unix seconds.
    pub now: i64,
}
