//! Field-level Allows and Denies: what the caller sees of a profile, and the effective listing.

use serde_json::{Value, json};

use super::{World, compile};
use crate::access::policy::{Effective, Part, View};

/// The profile UserGet shows under `policies`, the masked names, and the deciding policies.
fn shown(policies: &[Value]) -> (Value, Vec<String>, Vec<i64>) {
    let world = World::default();
    let decision = world.decide(&compile(policies), "UserGet", Part::Profile);
    assert!(decision.allowed, "{policies:?} should allow");
    let (shown, masked) = decision.view.mask(&world.profile);
    (shown, masked, decision.policies)
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn field_allows_show_only_those_fields() {
    let policy = json!({"Effect": "Allow", "Action": "UserGet", "Resource": ["users.profile.name", "users.profile.address.city"]});
    let (profile, masked, ids) = shown(&[policy]);
    assert_eq!(
        profile,
        json!({"name": "Ann", "email": "***", "address": {"city": "Oslo", "zip": "***"}, "ssn": "***"}),
        "hidden strings show ***, other hidden values are left out"
    );
    assert_eq!(masked, names(&["email", "age", "address.zip", "address.geo", "ssn", "tags"]));
    assert_eq!(ids, vec![1]);
}

#[test]
fn field_denies_hide_fields_of_a_whole_allow() {
    let allow = json!({"Effect": "Allow", "Action": "*", "Resource": "*"});
    let deny =
        json!({"Effect": "Deny", "Action": "UserGet", "Resource": ["users.profile.ssn", "users.profile.address"]});
    let (profile, masked, ids) = shown(&[allow, deny]);
    assert_eq!(profile, json!({"name": "Ann", "email": "ann@x.io", "age": 41, "ssn": "***", "tags": ["a", "b"]}));
    assert_eq!(masked, names(&["address", "ssn"]));
    assert_eq!(ids, vec![1, 2], "the masking deny is cited with the allow");
}

#[test]
fn a_nested_deny_inside_an_allowed_object() {
    let allow = json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile.address"});
    let deny = json!({"Effect": "Deny", "Action": "UserGet", "Resource": "users.profile.address.zip"});
    let (profile, masked, _) = shown(&[allow, deny]);
    assert_eq!(
        profile,
        json!({"name": "***", "email": "***", "address": {"city": "Oslo", "zip": "***", "geo": [59, 10]}, "ssn": "***"})
    );
    assert_eq!(masked, names(&["name", "email", "age", "address.zip", "ssn", "tags"]));
}

#[test]
fn field_wildcards_and_whole_profile_resources() {
    let star = json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile.address.*"});
    let (profile, _, _) = shown(&[star]);
    assert_eq!(profile["address"], json!({"city": "Oslo", "zip": "0150", "geo": [59, 10]}));
    assert_eq!(profile["name"], json!("***"));
    let key_pattern = json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile.*.c?ty"});
    assert_eq!(shown(&[key_pattern]).0["address"], json!({"city": "Oslo", "zip": "***"}));

    let world = World::default();
    for resource in ["*", "users", "users.*", "users.profile", "users.profile.*", "${user_group_members}.profile.*"] {
        let policy = json!({"Effect": "Allow", "Action": "UserGet", "Resource": resource});
        let decision = world.decide(&compile(&[policy]), "UserGet", Part::Profile);
        assert!(decision.view.is_all(), "{resource} covers the whole profile");
    }
}

#[test]
fn a_partly_visible_object_that_shows_nothing_is_left_out() {
    let policy = json!({"Effect": "Allow", "Action": "UserGet", "Resource": "users.profile.address.geo.lat"});
    let (profile, masked, _) = shown(&[policy]);
    assert_eq!(profile, json!({"name": "***", "email": "***", "address": {"city": "***", "zip": "***"}, "ssn": "***"}));
    assert!(masked.contains(&"address.geo".to_owned()));
}

#[test]
fn views_all_and_none() {
    let profile = World::default().profile;
    assert_eq!(View::all().mask(&profile), (profile.clone(), Vec::new()));
    let (nothing, masked) = View::none().mask(&profile);
    assert_eq!(nothing, json!({"name": "***", "email": "***", "ssn": "***"}));
    assert_eq!(masked.len(), 6);
    assert!(View::all().is_all() && !View::none().is_all());
}

#[test]
fn effective_lists_what_the_role_may_call() {
    let compiled = compile(&[
        json!({"Effect": "Allow", "Action": ["UserGet", "UserUpdate"], "Resource": ["users.profile.name", "users.profile.email"]}),
        json!({"Effect": "Allow", "Action": "Appdata*", "Resource": "${target_group_members:role/child}.appdata"}),
        json!({"Effect": "Allow", "Action": "GroupCreate", "Resource": "*", "Condition": {"Bool": {"urgent": true}}}),
        json!({"Effect": "Allow", "Action": "UserDelete", "Resource": "*"}),
        json!({"Effect": "Deny", "Action": "UserDelete", "Resource": "users"}),
        json!({"Effect": "Deny", "Action": "UserGet", "Resource": "users.profile.email"}),
        json!({"Effect": "Allow", "Action": "SessionGet", "Resource": "users.profile"}),
    ]);
    let part_of = |op: &str| match op {
        "AppdataGet" => Part::Appdata,
        "GroupCreate" => Part::None,
        "SessionGet" => Part::Session,
        _ => Part::Profile,
    };
    let listed = compiled.effective(super::OPERATIONS, part_of);
    let fields = Some(names(&["email", "name"]));
    assert_eq!(
        listed,
        vec![
            Effective {
                operation: "UserGet".into(),
                conditional: false,
                fields: fields.clone(),
                hidden: names(&["email"])
            },
            Effective { operation: "UserUpdate".into(), conditional: false, fields, hidden: Vec::new() },
            Effective { operation: "AppdataGet".into(), conditional: true, fields: None, hidden: Vec::new() },
            Effective { operation: "GroupCreate".into(), conditional: true, fields: None, hidden: Vec::new() },
        ]
    );
}
