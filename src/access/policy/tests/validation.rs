//! What a policy document must look like, and the messages that say what is wrong.

use serde_json::{Value, json};

use super::{OPERATIONS, document};
use crate::access::policy::parse;

fn statement_with(key: &str, value: Value) -> Value {
    let mut statement = json!({"Effect": "Allow", "Action": ["UserGet"], "Resource": ["users"]});
    statement[key] = value;
    statement
}

fn many(n: usize, item: Value) -> Value {
    Value::Array(vec![item; n])
}

#[test]
fn the_three_shapes_and_any_key_case_parse() {
    let statement = json!({"effect": "allow", "ACTION": "UserGet", "resource": "users", "Sid": "read"});
    assert_eq!(document(&statement).statements.len(), 1);
    assert_eq!(document(&json!([statement, statement])).statements.len(), 2);
    assert_eq!(document(&json!({"Version": "2012-10-17", "Statement": [statement]})).statements.len(), 1);
    assert_eq!(document(&json!({"statement": statement})).statements.len(), 1);
    assert_eq!(document(&statement_with("Principal", Value::Null)).statements[0].principal, None);
}

#[test]
fn refused_documents_say_why() {
    let long = "x".repeat(257);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("unknown action", statement_with("Action", json!(["UserGett"])), "Unknown action in policy: UserGett"),
        ("pattern matching nothing", statement_with("Action", json!("Foo*")), "Unknown action in policy: Foo*"),
        ("empty action", statement_with("Action", json!("")), "Unknown action in policy: "),
        ("no action", json!({"Effect": "Allow", "Resource": "*"}), "The policy needs at least one Action"),
        ("empty actions", statement_with("Action", json!([])), "The policy needs at least one Action"),
        (
            "action type",
            statement_with("Action", json!([1])),
            "The policy Action must be a string or an array of strings",
        ),
        ("no resource", json!({"Effect": "Allow", "Action": "*"}), "The policy needs at least one Resource"),
        ("bad effect", statement_with("Effect", json!("Maybe")), "The policy Effect must be Allow or Deny"),
        ("no effect", json!({"Action": "*", "Resource": "*"}), "The policy Effect must be Allow or Deny"),
        (
            "unknown operator",
            statement_with("Condition", json!({"StringEq": {"a": "b"}})),
            "Unknown condition operator in policy: StringEq",
        ),
        (
            "Null has no IfExists",
            statement_with("Condition", json!({"NullIfExists": {"a": true}})),
            "Unknown condition operator in policy: NullIfExists",
        ),
        (
            "unclosed variable",
            statement_with("Condition", json!({"StringEquals": {"${user_group": "1"}})),
            "Malformed variable in policy: ${user_group",
        ),
        (
            "variable without its argument",
            statement_with("Condition", json!({"StringEquals": {"${user}": "1"}})),
            "Malformed variable in policy: ${user}",
        ),
        (
            "argument on a bare variable",
            statement_with("Condition", json!({"StringEquals": {"${source_ip:x}": "1"}})),
            "Malformed variable in policy: ${source_ip:x}",
        ),
        (
            "template in a value",
            statement_with("Condition", json!({"StringEquals": {"a": "id-${user:id}"}})),
            "Malformed variable in policy: id-${user:id}",
        ),
        (
            "unknown variable",
            statement_with("Condition", json!({"StringEquals": {"${nobody}": "1"}})),
            "Unknown variable in policy: ${nobody}",
        ),
        (
            "number that is not",
            statement_with("Condition", json!({"NumericLessThan": {"a": "abc"}})),
            "Invalid condition value in policy: NumericLessThan \"abc\"",
        ),
        (
            "bad CIDR",
            statement_with("Condition", json!({"IpAddress": {"${source_ip}": "10.0.0.0/33"}})),
            "Invalid condition value in policy: IpAddress \"10.0.0.0/33\"",
        ),
        (
            "nested value",
            statement_with("Condition", json!({"StringEquals": {"a": [["b"]]}})),
            "Invalid condition value in policy: StringEquals [\"b\"]",
        ),
        ("unknown part", statement_with("Resource", json!("users.profil")), "Unknown resource in policy: users.profil"),
        (
            "fields of appdata",
            statement_with("Resource", json!("users.appdata.x")),
            "Unknown resource in policy: users.appdata.x",
        ),
        (
            "empty field",
            statement_with("Resource", json!("users.profile.")),
            "Unknown resource in policy: users.profile.",
        ),
        (
            "unknown subject",
            statement_with("Resource", json!("people.profile")),
            "Unknown resource in policy: people.profile",
        ),
        (
            "unknown group subject",
            statement_with("Resource", json!("${group_members}.profile")),
            "Unknown resource in policy: ${group_members}.profile",
        ),
        (
            "role filter without role/",
            statement_with("Resource", json!("${target_group_members:child}")),
            "Unknown resource in policy: ${target_group_members:child}",
        ),
        ("unknown key", statement_with("NotAction", json!("UserGet")), "Unknown key in policy: NotAction"),
        ("duplicate key", statement_with("effect", json!("Deny")), "Duplicate key in policy: effect"),
        ("principal", statement_with("Principal", json!({"AWS": "x"})), "Unknown key in policy: AWS"),
        (
            "not a document",
            json!(5),
            "The policy must be a statement object, an object with a Statement list, or an array of statements",
        ),
        ("no statement", json!({"Statement": []}), "The policy needs at least one statement"),
        (
            "65 statements",
            many(65, statement_with("Sid", json!("s"))),
            "The policy exceeds a limit: more than 64 statements",
        ),
        (
            "65 actions",
            statement_with("Action", many(65, json!("UserGet"))),
            "The policy exceeds a limit: more than 64 entries in an Action, Resource or Role list",
        ),
        (
            "65 resources",
            statement_with("Resource", many(65, json!("users"))),
            "The policy exceeds a limit: more than 64 entries in an Action, Resource or Role list",
        ),
        (
            "33 condition keys",
            statement_with(
                "Condition",
                json!({"StringEquals": (0..33).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
            ),
            "The policy exceeds a limit: more than 32 condition keys in a statement",
        ),
        (
            "33 values",
            statement_with("Condition", json!({"StringEquals": {"k": many(33, json!("v"))}})),
            "The policy exceeds a limit: more than 32 values for a condition key",
        ),
        (
            "257 characters",
            statement_with("Sid", json!(long)),
            "The policy exceeds a limit: a string longer than 256 characters",
        ),
    ];
    for (name, policy, message) in cases {
        let error = parse(&policy, OPERATIONS).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some(message), "case {name:?}");
    }
}

#[test]
fn quoted_policy_text_is_cut_short() {
    let action = format!("User{}", "x".repeat(200));
    let error = parse(&statement_with("Action", json!(action)), OPERATIONS).err().map(|e| e.to_string());
    assert_eq!(error, Some(format!("Unknown action in policy: {}...", &action[..64])));
}
