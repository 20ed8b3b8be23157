//! The engine's semantics, case by case, and the properties that hold over random policies.

mod decisions;
mod masking;
mod properties;
mod validation;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{Value, json};

use super::{Compiled, Decision, Document, Facts, Membership, Part, Target, parse};

/// The operations the tests' policies may name.
const OPERATIONS: &[&str] = &[
    "UserCreate",
    "UserGet",
    "UserUpdate",
    "UserDelete",
    "AppdataGet",
    "AgreementGet",
    "GroupCreate",
    "GroupListUserGroups",
    "SessionGet",
    "UserRequestGet",
    "FileGet",
    "BulkListAllUsers",
    "BulkListGroupUsers",
];

/// The role the tests compile for.
const ROLE: &str = "clerk";

fn document(policy: &Value) -> Document {
    parse(policy, OPERATIONS).unwrap_or_else(|e| panic!("{policy} should parse: {e}"))
}

/// The role's policies, numbered from 1 in the order given.
fn compile(policies: &[Value]) -> Compiled {
    Compiled::new(ROLE, policies.iter().zip(1..).map(|(p, id)| (id, document(p))))
}

fn membership(group_id: i64, role: &str, attributes: Value) -> Membership {
    let attributes = match attributes {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    Membership { group_id, role: Some(role.to_owned()), attributes: Arc::new(attributes) }
}

/// Everything a decision may read, owned, with defaults every case starts from.
#[derive(Debug, Clone)]
struct World {
    profile: Value,
    memberships: Vec<Membership>,
    agreements: HashMap<String, String>,
    has_target: bool,
    principal: Vec<Membership>,
    group: Option<i64>,
    metadata: Value,
    source_ip: Option<IpAddr>,
    now: i64,
}

impl Default for World {
    fn default() -> Self {
        Self {
            profile: json!({
                "name": "Ann",
                "email": "ann@x.io",
                "age": 41,
                "address": {"city": "Oslo", "zip": "0150", "geo": [59, 10]},
                "ssn": "123-45",
                "tags": ["a", "b"],
            }),
            memberships: vec![membership(7, "child", json!({"region": "eu"}))],
            agreements: HashMap::from([("marketing".to_owned(), "yes".to_owned())]),
            has_target: true,
            principal: vec![membership(7, "parent", json!({"region": "eu", "tier": ["gold", "silver"]}))],
            group: None,
            metadata: json!({"purpose": "support", "ticket": "42", "urgent": "true"}),
            source_ip: "10.1.2.3".parse().ok(),
            now: 1_700_000_000,
        }
    }
}

impl World {
    fn decide(&self, compiled: &Compiled, operation: &str, part: Part) -> Decision {
        let target =
            Target { profile: Some(&self.profile), memberships: &self.memberships, agreements: Some(&self.agreements) };
        let facts = Facts {
            operation,
            part,
            principal_groups: &self.principal,
            group: self.group,
            target: self.has_target.then_some(&target),
            metadata: Some(&self.metadata),
            source_ip: self.source_ip,
            now: self.now,
        };
        compiled.decide(&facts)
    }
}

/// An Allow of `UserGet` on every user record, limited by `condition`.
fn allow_get_if(condition: Value) -> Value {
    json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users", "Condition": condition})
}
