//! Decisions, one named case at a time: actions, resources, principals, operators, variables.

use serde_json::{Value, json};

use super::{World, allow_get_if, compile, membership};
use crate::access::policy::{Decision, Part, Reach};

/// One named case: the role's policies, the call, the world it sees and the expected answer.
struct Case {
    name: &'static str,
    policies: Vec<Value>,
    operation: &'static str,
    part: Part,
    world: fn(&mut World),
    allowed: bool,
    ids: &'static [i64],
}

fn case(name: &'static str, policies: Vec<Value>) -> Case {
    Case { name, policies, operation: "UserGet", part: Part::Profile, world: |_| {}, allowed: false, ids: &[] }
}

impl Case {
    fn on(mut self, operation: &'static str, part: Part) -> Self {
        (self.operation, self.part) = (operation, part);
        self
    }
    fn when(mut self, world: fn(&mut World)) -> Self {
        self.world = world;
        self
    }
    fn allows(mut self, ids: &'static [i64]) -> Self {
        (self.allowed, self.ids) = (true, ids);
        self
    }
    fn denies(mut self, ids: &'static [i64]) -> Self {
        (self.allowed, self.ids) = (false, ids);
        self
    }
}

fn allow(action: &str, resource: &str) -> Value {
    json!({"Effect": "Allow", "Action": [action], "Resource": [resource]})
}

fn deny(action: &str, resource: &str) -> Value {
    json!({"Effect": "Deny", "Action": action, "Resource": resource})
}

/// An Allow of `UserGet` on the record if `operator` holds for `key` against `value`.
fn allow_if(operator: &str, key: &str, value: Value) -> Value {
    allow_get_if(json!({ operator: { key: value } }))
}

fn run(cases: Vec<Case>) {
    for case in cases {
        let mut world = World::default();
        (case.world)(&mut world);
        let decision: Decision = world.decide(&compile(&case.policies), case.operation, case.part);
        assert_eq!((decision.allowed, decision.policies.as_slice()), (case.allowed, case.ids), "case {:?}", case.name);
    }
}

#[test]
fn actions_resources_and_principals() {
    run(vec![
        case("an allow grants", vec![allow("UserGet", "users")]).allows(&[1]),
        case("default deny", vec![allow("UserUpdate", "users")]).denies(&[]),
        case("deny beats allow", vec![allow("UserGet", "users.profile"), deny("UserGet", "users")]).denies(&[2]),
        case("deny beats allow whatever the order", vec![deny("UserGet", "*"), allow("UserGet", "*")]).denies(&[1]),
        case("both allows are cited", vec![allow("UserGet", "*"), allow("User*", "users.profile")]).allows(&[1, 2]),
        case("wildcard action", vec![allow("User*", "users")]).allows(&[1]),
        case(
            "exact and wildcard in one statement",
            vec![json!({"Effect": "Allow", "Action": ["UserGet", "User*", "*Get"], "Resource": "users"})],
        )
        .allows(&[1]),
        case("question mark action", vec![allow("User?et", "users")]).allows(&[1]),
        case("action ignores case", vec![allow("userGET", "users")]).allows(&[1]),
        case("star action", vec![allow("*", "*")]).allows(&[1]),
        case("wildcard for other operations", vec![allow("Bulk*", "users")]).denies(&[]),
        case("resource ignores case", vec![allow("UserGet", "USERS.Profile")]).allows(&[1]),
        case("consent is agreement", vec![allow("AgreementGet", "users.consent")])
            .on("AgreementGet", Part::Agreement)
            .allows(&[1]),
        case("other part", vec![allow("UserGet", "users.appdata")]).denies(&[]),
        case("every part", vec![allow("AppdataGet", "users.*")]).on("AppdataGet", Part::Appdata).allows(&[1]),
        case("field resource on another part", vec![allow("AppdataGet", "users.profile.name")])
            .on("AppdataGet", Part::Appdata)
            .denies(&[]),
        case("no user record: any resource", vec![allow("GroupCreate", "users.appdata")])
            .on("GroupCreate", Part::None)
            .allows(&[1]),
        case(
            "no user record: a field deny does not deny",
            vec![allow("*", "*"), deny("GroupCreate", "users.profile.ssn")],
        )
        .on("GroupCreate", Part::None)
        .allows(&[1, 2]),
        case("users covers an unknown target", vec![allow("UserGet", "users")])
            .when(|w| w.has_target = false)
            .allows(&[1]),
        case("group subject needs a target", vec![allow("UserGet", "${target_group_members}.profile")])
            .when(|w| w.has_target = false)
            .denies(&[]),
        case("group deny needs a target too", vec![allow("UserGet", "*"), deny("UserGet", "${user_group_members}")])
            .when(|w| w.has_target = false)
            .allows(&[1]),
        case("target group member with role", vec![allow("UserGet", "${target_group_members:role/child}.profile")])
            .allows(&[1]),
        case("target group member, other role", vec![allow("UserGet", "${target_group_members:role/admin}.profile")])
            .denies(&[]),
        case("target group role wildcard", vec![allow("UserGet", "${target_group_members:role/CH*}.*")]).allows(&[1]),
        case("target group: a role token's named group", vec![allow("UserGet", "${target_group_members}.profile")])
            .when(|w| {
                w.group = Some(8);
                w.principal.clear();
            })
            .denies(&[]),
        case("target group: the named group holds the target", vec![allow("UserGet", "${target_group_members}")])
            .when(|w| {
                w.group = Some(7);
                w.principal.clear();
            })
            .allows(&[1]),
        case(
            "target group: a user's own groups, whatever group is named",
            vec![allow("UserGet", "${target_group_members}")],
        )
        .when(|w| w.group = Some(8))
        .allows(&[1]),
        case("target group: a named group the user is not in", vec![allow("UserGet", "${target_group_members}")])
            .when(|w| {
                w.group = Some(7);
                w.principal = vec![membership(9, "parent", json!({}))];
            })
            .denies(&[]),
        case("target group: the principal's groups", vec![allow("UserGet", "${target_group_members}")])
            .when(|w| w.principal = vec![membership(9, "parent", json!({}))])
            .denies(&[]),
        case("target group: a role token sees any group", vec![allow("UserGet", "${target_group_members:role/child}")])
            .when(|w| w.principal.clear())
            .allows(&[1]),
        case("user group members share a group", vec![allow("UserGet", "${user_group_members:role/child}.profile")])
            .allows(&[1]),
        case("user group members: no shared group", vec![allow("UserGet", "${user_group_members}.profile")])
            .when(|w| w.principal = vec![membership(9, "parent", json!({}))])
            .denies(&[]),
        case("user group members: a role token has no group", vec![allow("UserGet", "${user_group_members}")])
            .when(|w| w.principal.clear())
            .denies(&[]),
        case(
            "principal names another role",
            vec![json!({"Effect": "Allow", "Principal": {"Role": "admin"}, "Action": "*", "Resource": "*"})],
        )
        .denies(&[]),
        case(
            "principal role patterns",
            vec![json!({"Effect": "Allow", "Principal": {"role": ["adm*", "CL?RK"]}, "Action": "*", "Resource": "*"})],
        )
        .allows(&[1]),
        case("principal star", vec![json!({"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"})])
            .allows(&[1]),
        case(
            "a deny for another role does not deny",
            vec![
                allow("*", "*"),
                json!({"Effect": "Deny", "Principal": {"Role": "x"}, "Action": "*", "Resource": "*"}),
            ],
        )
        .allows(&[1]),
    ]);
}

#[test]
fn operators() {
    let num = |op: &str, value: Value| allow_if(op, "${user:age}", value);
    let date = |op: &str, value: Value| allow_if(op, "${current_time}", value);
    run(vec![
        case("StringEquals", vec![allow_if("StringEquals", "${request_metadata:purpose}", json!("support"))])
            .allows(&[1]),
        case("StringEquals, other value", vec![allow_if("StringEquals", "purpose", json!("audit"))]).denies(&[]),
        case("StringEquals, values are or-ed", vec![allow_if("StringEquals", "purpose", json!(["x", "support"]))])
            .allows(&[1]),
        case("StringEquals, case matters", vec![allow_if("StringEquals", "purpose", json!("SUPPORT"))]).denies(&[]),
        case("StringNotEquals", vec![allow_if("StringNotEquals", "purpose", json!(["audit", "sales"]))]).allows(&[1]),
        case("StringNotEquals, equal", vec![allow_if("StringNotEquals", "purpose", json!(["audit", "support"]))])
            .denies(&[]),
        case("StringEqualsIgnoreCase", vec![allow_if("StringEqualsIgnoreCase", "${user:name}", json!("aNN"))])
            .allows(&[1]),
        case("StringNotEqualsIgnoreCase", vec![allow_if("StringNotEqualsIgnoreCase", "${user:name}", json!("ANN"))])
            .denies(&[]),
        case("StringLike", vec![allow_if("StringLike", "${user:email}", json!("*@x.?o"))]).allows(&[1]),
        case("StringNotLike", vec![allow_if("StringNotLike", "${user:email}", json!("*@x.io"))]).denies(&[]),
        case("NumericEquals on a string key", vec![allow_if("NumericEquals", "ticket", json!(42))]).allows(&[1]),
        case("NumericNotEquals", vec![num("NumericNotEquals", json!(41))]).denies(&[]),
        case("NumericLessThan", vec![num("NumericLessThan", json!(50))]).allows(&[1]),
        case("NumericLessThanEquals", vec![num("NumericLessThanEquals", json!(40))]).denies(&[]),
        case("NumericGreaterThan", vec![num("NumericGreaterThan", json!("40.5"))]).allows(&[1]),
        case("NumericGreaterThanEquals", vec![num("NumericGreaterThanEquals", json!(41))]).allows(&[1]),
        case("DateEquals", vec![date("DateEquals", json!(1_700_000_000))]).allows(&[1]),
        case("DateNotEquals", vec![date("DateNotEquals", json!("2023-11-14T22:13:20Z"))]).denies(&[]),
        case("DateLessThan RFC 3339", vec![date("DateLessThan", json!("2030-01-01T00:00:00+01:00"))]).allows(&[1]),
        case("DateLessThanEquals", vec![date("DateLessThanEquals", json!(1_699_999_999))]).denies(&[]),
        case("DateGreaterThan", vec![date("DateGreaterThan", json!("1800000000"))]).denies(&[]),
        case("DateGreaterThanEquals", vec![date("DateGreaterThanEquals", json!("2023-11-14T22:13:20Z"))]).allows(&[1]),
        case("Bool", vec![allow_if("Bool", "urgent", json!(true))]).allows(&[1]),
        case("Bool, false", vec![allow_if("Bool", "urgent", json!("false"))]).denies(&[]),
        case("IpAddress CIDR", vec![allow_if("IpAddress", "${source_ip}", json!("10.0.0.0/8"))]).allows(&[1]),
        case("IpAddress plain", vec![allow_if("IpAddress", "${source_ip}", json!(["192.0.2.1", "10.1.2.3"]))])
            .allows(&[1]),
        case("IpAddress v6", vec![allow_if("IpAddress", "${source_ip}", json!("2001:db8::/32"))])
            .when(|w| w.source_ip = "2001:db8::7".parse().ok())
            .allows(&[1]),
        case("IpAddress v4-mapped", vec![allow_if("IpAddress", "${source_ip}", json!("10.0.0.0/8"))])
            .when(|w| w.source_ip = "::ffff:10.1.2.3".parse().ok())
            .allows(&[1]),
        case("NotIpAddress", vec![allow_if("NotIpAddress", "${source_ip}", json!("10.0.0.0/8"))]).denies(&[]),
        case(
            "ForAnyValue:ListIntersect",
            vec![allow_if("ForAnyValue:ListIntersect", "${principal_group:tier}", json!(["bronze", "gold"]))],
        )
        .allows(&[1]),
        case(
            "ForAnyValue:ListIntersect, disjoint",
            vec![allow_if("ForAnyValue:ListIntersect", "${principal_group:tier}", json!(["bronze"]))],
        )
        .denies(&[]),
        case("missing key is false", vec![allow_if("StringEquals", "absent", json!("x"))]).denies(&[]),
        case("missing key is false for Not too", vec![allow_if("StringNotEquals", "absent", json!("x"))]).denies(&[]),
        case("IfExists, missing key", vec![allow_if("StringEqualsIfExists", "absent", json!("x"))]).allows(&[1]),
        case("IfExists, present key", vec![allow_if("StringEqualsIfExists", "purpose", json!("x"))]).denies(&[]),
        case("NumericLessThanIfExists, missing", vec![allow_if("NumericLessThanIfExists", "${user:height}", json!(1))])
            .allows(&[1]),
        case("null counts as missing", vec![allow_if("StringEqualsIfExists", "${user:nick}", json!("x"))])
            .when(|w| w.profile["nick"] = Value::Null)
            .allows(&[1]),
        case("Null true, absent", vec![allow_if("Null", "absent", json!(true))]).allows(&[1]),
        case("Null true, present", vec![allow_if("Null", "purpose", json!(true))]).denies(&[]),
        case("Null false, present", vec![allow_if("Null", "purpose", json!(false))]).allows(&[1]),
        case(
            "operators and keys are and-ed",
            vec![allow_get_if(
                json!({"StringEquals": {"purpose": "support", "ticket": "42"}, "Bool": {"urgent": false}}),
            )],
        )
        .denies(&[]),
    ]);
}

#[test]
fn unevaluable_conditions() {
    let not_a_number = json!({"NumericLessThan": {"purpose": 5}});
    run(vec![
        case("an unevaluable allow does not apply", vec![allow_get_if(not_a_number.clone())]).denies(&[]),
        case(
            "an unevaluable deny denies",
            vec![allow("UserGet", "users"), json!({"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": not_a_number})],
        )
        .denies(&[2]),
        case(
            "a deny on target facts with no target denies",
            vec![
                allow("UserGet", "users"),
                json!({"Effect": "Deny", "Action": "*", "Resource": "users", "Condition": {"StringEquals": {"${user:name}": "Bo"}}}),
            ],
        )
        .when(|w| w.has_target = false)
        .denies(&[2]),
        case("an allow on target facts with no target", vec![allow_if("StringEquals", "${user:name}", json!("Ann"))])
            .when(|w| w.has_target = false)
            .denies(&[]),
        case("no client address", vec![allow_if("IpAddressIfExists", "${source_ip}", json!("10.0.0.0/8"))])
            .when(|w| w.source_ip = None)
            .denies(&[]),
        case(
            "a definitely false clause outweighs an unevaluable one",
            vec![
                allow("UserGet", "users"),
                json!({"Effect": "Deny", "Action": "UserGet", "Resource": "*",
                       "Condition": {"NumericLessThan": {"purpose": 5}, "StringEquals": {"purpose": "sales"}}}),
            ],
        )
        .allows(&[1]),
        case("a deny whose condition is false", vec![allow("UserGet", "users"), {
            json!({"Effect": "Deny", "Action": "UserGet", "Resource": "*", "Condition": {"Bool": {"urgent": false}}})
        }])
        .allows(&[1]),
    ]);
}

#[test]
fn variables() {
    let eq = |key: &str, value: Value| allow_if("StringEquals", key, value);
    run(vec![
        case("request_metadata", vec![eq("${request_metadata:ticket}", json!(42))]).allows(&[1]),
        case("user field path", vec![eq("${user:address.city}", json!("Oslo"))]).allows(&[1]),
        case("user array field", vec![eq("${user:tags}", json!("b"))]).allows(&[1]),
        case("agreement", vec![eq("${agreement:marketing}", json!("yes"))]).allows(&[1]),
        case("agreement not given", vec![eq("${agreement:newsletter}", json!("no"))]).denies(&[]),
        case("user_group_id", vec![eq("${user_group_id}", json!(7))]).allows(&[1]),
        case("target_group_id from the target", vec![eq("${target_group_id}", json!("7"))]).allows(&[1]),
        case("target_group_id from the call", vec![eq("${target_group_id}", json!(8))])
            .when(|w| w.group = Some(8))
            .allows(&[1]),
        case("principal_group_id", vec![eq("${principal_group_id}", json!(7))]).allows(&[1]),
        case("principal_group attribute", vec![eq("${principal_group:region}", json!("eu"))]).allows(&[1]),
        case("target_group attribute", vec![eq("${target_group:region}", json!("eu"))]).allows(&[1]),
        case("source_ip", vec![eq("${source_ip}", json!("10.1.2.3"))]).allows(&[1]),
        case("current_time", vec![allow_if("NumericEquals", "${current_time}", json!(1_700_000_000))]).allows(&[1]),
        case("a variable as the value", vec![eq("${principal_group:region}", json!("${target_group:region}"))])
            .allows(&[1]),
        case("a variable value that differs", vec![eq("${user:name}", json!(["${request_metadata:purpose}"]))])
            .denies(&[]),
    ]);
}

#[test]
fn several_roles_combine() {
    let world = World::default();
    let reader = world.decide(&compile(&[allow("UserGet", "users.profile.name")]), "UserGet", Part::Profile);
    let other = world.decide(&compile(&[allow("UserGet", "users.profile.email")]), "UserGet", Part::Profile);
    let silent = world.decide(&compile(&[]), "UserGet", Part::Profile);
    let combined = Decision::combine([reader.clone(), silent.clone(), other]);
    assert!(combined.allowed, "an allow and a silent role allow");
    let (shown, _) = combined.view.mask(&world.profile);
    assert_eq!((&shown["name"], &shown["email"], &shown["ssn"]), (&json!("Ann"), &json!("ann@x.io"), &json!("***")));

    let refuser = world.decide(&compile(&[allow("*", "*"), deny("UserGet", "users")]), "UserGet", Part::Profile);
    let combined = Decision::combine([reader, refuser, silent]);
    assert_eq!((combined.allowed, combined.policies), (false, vec![2]), "any role's deny denies");
    assert!(!Decision::combine([]).allowed);
}

#[test]
fn reach_is_an_operation_level_precheck() {
    let compiled = compile(&[
        allow("User*", "${target_group_members}"),
        json!({"Effect": "Deny", "Action": "UserDelete", "Resource": "*"}),
        json!({"Effect": "Deny", "Action": "UserUpdate", "Resource": "*", "Condition": {"Bool": {"urgent": true}}}),
        deny("UserCreate", "users.profile.ssn"),
    ]);
    assert_eq!(compiled.reach("UserGet"), Reach::Maybe);
    assert_eq!(compiled.reach("userget"), Reach::Maybe);
    assert_eq!(compiled.reach("UserDelete"), Reach::Never, "an unconditional deny of everything");
    assert_eq!(compiled.reach("UserUpdate"), Reach::Maybe, "a conditional deny may not apply");
    assert_eq!(compiled.reach("UserCreate"), Reach::Maybe, "a field deny does not refuse");
    assert_eq!(compiled.reach("BulkListAllUsers"), Reach::Never);
}

#[test]
fn compiled_roles_can_be_shared_between_threads() {
    fn shared<T: Send + Sync>() {}
    shared::<crate::access::policy::Compiled>();
    shared::<Decision>();
}
