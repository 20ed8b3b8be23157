//! One policy decision: a UserGet with a known target against a role linked to 100 policies.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use bunker::access::policy::{Compiled, Facts, Membership, Part, Target, parse};
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};

const OPERATIONS: &[&str] = &[
    "UserCreate",
    "UserGet",
    "UserUpdate",
    "UserPatch",
    "UserDelete",
    "UserSearch",
    "UserCreateBulk",
    "UserDeleteBulk",
    "UserUpdateRequest",
    "UserPatchRequest",
    "UserDeleteRequest",
    "AppdataCreate",
    "AppdataGet",
    "AppdataUpdate",
    "AppdataListUserAppNames",
    "AgreementAccept",
    "AgreementGet",
    "AgreementCancel",
    "AgreementListUserAgreements",
    "GroupCreate",
    "GroupGet",
    "GroupUpdate",
    "GroupDelete",
    "GroupAddUser",
    "GroupDeleteUser",
    "GroupListUserGroups",
    "GroupListAllGroups",
    "SessionUpsert",
    "SessionGet",
    "SessionDelete",
    "SessionListUserSessions",
    "FileCreate",
    "FileGet",
    "FileDelete",
    "TokenCreate",
    "TokenGet",
    "TokenDelete",
    "BulkListUnlock",
    "BulkListUsers",
    "BulkListAllUsers",
    "BulkListGroupUsers",
    "BulkListAuditEvents",
    "BulkDeleteTokens",
    "AuditListUserEvents",
    "AuditGetEvent",
    "UserRequestGet",
    "UserRequestApprove",
    "UserRequestCancel",
    "UserRequestListUserRequests",
];

/// 100 policies: exact and wildcard actions over many operations, a share of them on UserGet,
/// field resources, group-relative subjects, a field-level Deny and a few conditions.
fn policies() -> Vec<Value> {
    let fields = ["name", "email", "phone", "address.city", "address.zip", "birthdate", "country", "login"];
    let mut policies = Vec::with_capacity(100);
    for i in 0..100 {
        let op = OPERATIONS[(i * 7) % OPERATIONS.len()];
        let policy = match i % 10 {
            0 => {
                json!({"Effect": "Allow", "Action": ["UserGet"], "Resource": [format!("users.profile.{}", fields[i % fields.len()])]})
            }
            1 => {
                json!({"Effect": "Allow", "Action": [op, "Group*"], "Resource": ["${target_group_members:role/child}.*"]})
            }
            2 => json!({"Effect": "Allow", "Action": ["Bulk*"], "Resource": "*",
                        "Condition": {"StringEquals": {"${request_metadata:purpose}": ["audit", "support"]}}}),
            3 => json!({"Effect": "Allow", "Action": [op], "Resource": ["users.appdata", "users.session"]}),
            4 => {
                json!({"Effect": "Allow", "Action": ["User*"], "Resource": ["${user_group_members:role/child}.profile"],
                        "Condition": {"IpAddress": {"${source_ip}": ["10.0.0.0/8", "192.168.0.0/16"]}}})
            }
            5 => json!({"Effect": "Deny", "Action": ["UserGet", "UserSearch"], "Resource": ["users.profile.ssn"]}),
            6 => json!({"Effect": "Allow", "Action": [op, "Session*"], "Resource": "users.session"}),
            7 => json!({"Effect": "Deny", "Action": [op], "Resource": "users",
                        "Condition": {"Bool": {"${request_metadata:blocked}": true}}}),
            8 => {
                json!({"Effect": "Allow", "Principal": {"Role": "clerk"}, "Action": ["Agreement*", op], "Resource": "users.consent"})
            }
            _ => {
                json!({"Effect": "Allow", "Action": [op], "Resource": [format!("users.profile.{}", fields[i % fields.len()])]})
            }
        };
        policies.push(policy);
    }
    policies
}

fn decide(c: &mut Criterion) {
    let compiled = Compiled::new(
        "clerk",
        policies().iter().zip(1..).map(|(p, id)| (id, parse(p, OPERATIONS).expect("the bench's policies parse"))),
    );
    let attributes = Arc::new(serde_json::Map::new());
    let memberships = vec![Membership { group_id: 7, role: Some("child".into()), attributes: attributes.clone() }];
    let principal = vec![Membership { group_id: 7, role: Some("parent".into()), attributes }];
    let profile = json!({"name": "Ann", "email": "ann@x.io", "phone": "+4712345678", "ssn": "123-45",
                         "address": {"city": "Oslo", "zip": "0150"}, "age": 41});
    let agreements = HashMap::from([("marketing".to_owned(), "yes".to_owned())]);
    let target = Target { profile: Some(&profile), memberships: &memberships, agreements: Some(&agreements) };
    let metadata = json!({"purpose": "support"});
    let facts = Facts {
        operation: "UserGet",
        part: Part::Profile,
        principal_groups: &principal,
        group: None,
        target: Some(&target),
        metadata: Some(&metadata),
        source_ip: "10.1.2.3".parse().ok(),
        now: 1_700_000_000,
    };
    let decision = compiled.decide(&facts);
    assert!(decision.allowed && !decision.view.is_all(), "the bench decides an allow with a field-level view");

    c.bench_function("decide UserGet, 100 policies", |b| b.iter(|| compiled.decide(black_box(&facts))));
    c.bench_function("decide and mask UserGet, 100 policies", |b| {
        b.iter(|| {
            let decision = compiled.decide(black_box(&facts));
            decision.view.mask(black_box(&profile))
        })
    });
}

criterion_group!(benches, decide);
criterion_main!(benches);
