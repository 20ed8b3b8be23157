//! Properties over random policies: a decision does not depend on the order of the policies or
//! of the statements within them.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{ROLE, World, document, membership};
use crate::access::policy::{Compiled, Part};

const ACTIONS: &[&str] = &["UserGet", "User*", "*", "U?erGet", "UserUpdate", "GroupCreate", "Appdata*"];
const RESOURCES: &[&str] = &[
    "*",
    "users",
    "users.profile",
    "users.profile.*",
    "users.profile.name",
    "users.profile.address",
    "users.profile.address.city",
    "users.appdata",
    "${target_group_members}.profile",
    "${target_group_members:role/child}",
    "${user_group_members}.profile.email",
];
const OPERATIONS: &[(&str, Part)] = &[
    ("UserGet", Part::Profile),
    ("UserUpdate", Part::Profile),
    ("GroupCreate", Part::None),
    ("AppdataGet", Part::Appdata),
];

fn conditions() -> Vec<Value> {
    vec![
        json!({"StringEquals": {"purpose": "support"}}),
        json!({"NumericLessThan": {"purpose": 5}}),
        json!({"Bool": {"urgent": true}}),
        json!({"StringEqualsIfExists": {"absent": "x"}}),
        json!({"IpAddress": {"${source_ip}": "10.0.0.0/8"}}),
        json!({"Null": {"${user:nick}": true}}),
        json!({"StringEquals": {"${user:name}": "Ann"}}),
    ]
}

fn statement() -> impl Strategy<Value = Value> {
    let principal = prop::option::of(prop::sample::select(vec![ROLE, "admin", "cl*"]));
    let condition = prop::option::of(prop::sample::select(conditions()));
    let actions = prop::collection::vec(prop::sample::select(ACTIONS), 1..3);
    let resources = prop::collection::vec(prop::sample::select(RESOURCES), 1..3);
    (any::<bool>(), principal, actions, resources, condition).prop_map(
        |(allow, principal, actions, resources, condition)| {
            let mut statement =
                json!({"Effect": if allow { "Allow" } else { "Deny" }, "Action": actions, "Resource": resources});
            if let Some(role) = principal {
                statement["Principal"] = json!({"Role": role});
            }
            if let Some(condition) = condition {
                statement["Condition"] = condition;
            }
            statement
        },
    )
}

fn world() -> impl Strategy<Value = World> {
    let principals = vec![vec![], vec![membership(7, "parent", json!({}))], vec![membership(9, "x", json!({}))]];
    (
        any::<bool>(),
        prop::sample::select(vec![None, Some(7), Some(8)]),
        prop::sample::select(principals),
        any::<bool>(),
        prop::sample::select(vec!["support", "sales"]),
    )
        .prop_map(|(has_target, group, principal, has_ip, purpose)| {
            let mut world = World { has_target, group, principal, ..World::default() };
            world.metadata["purpose"] = json!(purpose);
            if !has_ip {
                world.source_ip = None;
            }
            world
        })
}

/// A Fisher-Yates shuffle driven by a small xorshift generator, so proptest can shrink the seed.
fn shuffle<T>(items: &mut [T], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let j = usize::try_from(*seed % (i as u64 + 1)).unwrap_or(0);
        items.swap(i, j);
    }
}

proptest! {
    #[test]
    fn decisions_do_not_depend_on_order(
        policies in prop::collection::vec(prop::collection::vec(statement(), 1..4), 1..8),
        world in world(),
        operation in prop::sample::select(OPERATIONS),
        seed in 1..u64::MAX,
    ) {
        let numbered: Vec<(i64, Vec<Value>)> = policies.into_iter().zip(1..).map(|(p, id)| (id, p)).collect();
        let mut shuffled = numbered.clone();
        let mut seed = seed;
        shuffle(&mut shuffled, &mut seed);
        for (_, statements) in &mut shuffled {
            shuffle(statements, &mut seed);
        }
        let compile = |policies: &[(i64, Vec<Value>)]| {
            Compiled::new(ROLE, policies.iter().map(|(id, statements)| (*id, document(&json!({"Statement": statements})))))
        };
        let (operation, part) = operation;
        let before = world.decide(&compile(&numbered), operation, part);
        let after = world.decide(&compile(&shuffled), operation, part);
        prop_assert_eq!(before.allowed, after.allowed);
        prop_assert_eq!(&before.policies, &after.policies);
        prop_assert_eq!(before.view.mask(&world.profile), after.view.mask(&world.profile));
    }
}

proptest! {
    #[test]
    fn denies_only_take_away(
        policies in prop::collection::vec(prop::collection::vec(statement(), 1..4), 1..8),
        world in world(),
        operation in prop::sample::select(OPERATIONS),
    ) {
        let compile = |keep: &dyn Fn(&Value) -> bool, extra: Option<Value>| {
            let kept = policies.iter().map(|p| p.iter().filter(|s| keep(s)).cloned().collect::<Vec<_>>());
            let documents = kept.chain(extra.map(|s| vec![s])).zip(1..).filter(|(p, _)| !p.is_empty());
            Compiled::new(ROLE, documents.map(|(p, id)| (id, document(&Value::Array(p)))).collect::<Vec<_>>())
        };
        let (operation, part) = operation;
        let all = world.decide(&compile(&|_| true, None), operation, part);
        let allows_only = world.decide(&compile(&|s| s["Effect"] == "Allow", None), operation, part);
        prop_assert!(!all.allowed || allows_only.allowed, "removing Denies never refuses what was allowed");
        let deny_everything = json!({"Effect": "Deny", "Action": "*", "Resource": "*"});
        let last = i64::try_from(policies.len()).unwrap_or(0) + 1;
        let refused = world.decide(&compile(&|_| true, Some(deny_everything)), operation, part);
        prop_assert!(!refused.allowed);
        prop_assert!(refused.policies.contains(&last));
    }
}
