//! Two real `bunker serve` processes on one PostgreSQL database agree within a second: a tenant
//! deleted through one is refused by the other, although the other had just verified its token
//! (and would otherwise trust it for the principal cache's ten seconds).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::process::{PgDatabase, start};

#[test]
fn a_tenant_deleted_through_one_replica_is_refused_by_the_other_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = PgDatabase::create();
    let key = bunker::crypto::WrappingKey::generate().to_hex();
    let root = "replicas-root-token-for-the-two-process-test";
    let env = [("DATABUNKER_WRAPPINGKEY", key.as_str()), ("DATABUNKER_ROOTTOKEN", root)];
    let args = ["serve", "--database-url", db.url.as_str()];
    let mut first = start(dir.path(), "first", &args, &env);
    assert!(first.ready(), "first replica: {:?}", first.output());
    let mut second = start(dir.path(), "second", &args, &env);
    assert!(second.ready(), "second replica: {:?}", second.output());

    let (status, created) = first.call("TenantCreate", root, json!({"tenantname": "two-replicas"}));
    assert_eq!(status, 200, "{created}");
    let xtoken = created["xtoken"].as_str().expect("xtoken").to_owned();
    // The second replica verifies the new tenant's token, unlocks its keys and caches both.
    let (status, user) = second.call("UserCreate", &xtoken, json!({"profile": {"email": "r@example.com"}}));
    assert_eq!(status, 200, "{user}");
    let token = user["token"].as_str().expect("token").to_owned();
    let read = |p: &crate::process::Process| p.call("UserGet", &xtoken, json!({"mode": "token", "identity": token})).0;
    assert_eq!(read(&second), 200);

    let (status, deleted) = first.call("TenantDelete", root, json!({"tenantid": created["tenantid"]}));
    assert_eq!(status, 200, "{deleted}");
    let since = Instant::now();
    assert_eq!(read(&first), 403, "the replica that deleted refuses at once");
    while read(&second) != 403 {
        assert!(since.elapsed() < Duration::from_secs(1), "the other replica still serves the deleted tenant");
        std::thread::sleep(Duration::from_millis(20));
    }
    let waited = since.elapsed();
    // Both keep serving the main tenant.
    for replica in [&first, &second] {
        let (status, body) = replica.call("UserCreate", root, json!({"profile": {"email": "main@example.com"}}));
        assert!(status == 200 || body["message"] == "Duplicate index: email", "{status} {body}");
    }
    eprintln!("the second replica refused the deleted tenant after {waited:?}");
    first.stop();
    second.stop();
}

/// Waits until `check` holds, at most a second; how long it took.
fn within_a_second(what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let since = Instant::now();
    while !check() {
        assert!(since.elapsed() < Duration::from_secs(1), "{what}: not within a second");
        std::thread::sleep(Duration::from_millis(20));
    }
    since.elapsed()
}

/// Access control across replicas: a policy changed, a link taken away, a role deleted or a
/// user erased through one replica binds the role and user tokens the other has compiled and
/// cached, within a second.
#[test]
fn access_changes_through_one_replica_bind_the_other_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = PgDatabase::create();
    let key = bunker::crypto::WrappingKey::generate().to_hex();
    let root = "replicas-root-token-for-the-access-test";
    let env = [("DATABUNKER_WRAPPINGKEY", key.as_str()), ("DATABUNKER_ROOTTOKEN", root)];
    let args = ["serve", "--database-url", db.url.as_str()];
    let mut first = start(dir.path(), "first", &args, &env);
    assert!(first.ready(), "first replica: {:?}", first.output());
    let mut second = start(dir.path(), "second", &args, &env);
    assert!(second.ready(), "second replica: {:?}", second.output());
    let ok = |p: &crate::process::Process, op: &str, body: serde_json::Value| {
        let (status, reply) = p.call(op, root, body);
        assert_eq!(status, 200, "{op}: {reply}");
        reply
    };
    ok(&first, "UserCreate", json!({"profile": {"email": "ann@example.com", "name": "Ann", "phone": "4411"}}));
    ok(&first, "RoleCreate", json!({"rolename": "support"}));
    let allow = |fields: &[&str]| {
        json!({"Effect": "Allow", "Action": ["UserGet"],
               "Resource": fields.iter().map(|f| format!("users.profile.{f}")).collect::<Vec<_>>()})
    };
    ok(&first, "PolicyCreate", json!({"policyname": "see", "policy": allow(&["name"])}));
    ok(&first, "RoleLinkPolicy", json!({"rolename": "support", "policyname": "see"}));
    let role = ok(&first, "XTokenCreateForRole", json!({"rolename": "support"}))["xtoken"].as_str().map(str::to_owned);
    let role = role.expect("role xtoken");
    let user = ok(&first, "XTokenCreateForUser", json!({"mode": "email", "identity": "ann@example.com"}));
    let user = user["xtoken"].as_str().expect("user xtoken").to_owned();
    let get = |p: &crate::process::Process, token: &str| {
        p.call("UserGet", token, json!({"mode": "email", "identity": "ann@example.com"}))
    };
    // The second replica compiles the role and caches the tokens.
    let (status, seen) = get(&second, &role);
    assert_eq!(status, 200, "{seen}");
    assert_eq!((seen["profile"]["name"].as_str(), seen["profile"]["phone"].as_str()), (Some("Ann"), Some("***")));
    assert_eq!(get(&second, &user).0, 200);

    // A policy changed through the first: the second shows the phone within a second.
    ok(&first, "PolicyUpdate", json!({"policyname": "see", "policy": allow(&["name", "phone"])}));
    let waited = within_a_second("a changed policy", || get(&second, &role).1["profile"]["phone"] == "4411");
    eprintln!("a changed policy held on the other replica after {waited:?}");
    // The link taken away: the role grants nothing.
    ok(&first, "RoleLinkPolicy", json!({"rolename": "support", "policyname": "see", "unlink": true}));
    within_a_second("an unlinked policy", || get(&second, &role).0 == 403);
    // The role deleted: its token is refused outright.
    ok(&first, "RoleDelete", json!({"rolename": "support"}));
    within_a_second("a deleted role's token", || {
        second.call("PolicyGet", &role, json!({"policyname": "see"})).1["message"] == "Access denied"
    });
    // The user erased: its own token dies with it.
    ok(&first, "UserDelete", json!({"mode": "email", "identity": "ann@example.com"}));
    within_a_second("an erased user's token", || {
        second.call("UserGet", &user, json!({"mode": "email", "identity": "ann@example.com"})).1["message"]
            == "Access denied"
    });
    first.stop();
    second.stop();
}

/// The audit chain with two replicas chaining at once while both take writes and reads: every
/// event gets exactly one position, and the chain verifies through either.
#[test]
fn two_replicas_chain_one_audit_trail_that_verifies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = PgDatabase::create();
    let key = bunker::crypto::WrappingKey::generate().to_hex();
    let root = "replicas-root-token-for-the-audit-chain-test";
    let env = [("DATABUNKER_WRAPPINGKEY", key.as_str()), ("DATABUNKER_ROOTTOKEN", root)];
    let args = ["serve", "--database-url", db.url.as_str()];
    let mut first = start(dir.path(), "first", &args, &env);
    assert!(first.ready(), "first replica: {:?}", first.output());
    let mut second = start(dir.path(), "second", &args, &env);
    assert!(second.ready(), "second replica: {:?}", second.output());

    let until = Instant::now() + Duration::from_secs(3);
    let calls = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for worker in 0..4 {
            let (replica, calls) = (if worker % 2 == 0 { &first } else { &second }, &calls);
            scope.spawn(move || {
                let mut n = 0;
                while Instant::now() < until {
                    let email = format!("chain-{worker}-{n}@example.com");
                    let (status, user) = replica.call("UserCreate", root, json!({"profile": {"email": email}}));
                    assert_eq!(status, 200, "{user}");
                    let (status, _) = replica.call("UserGet", root, json!({"mode": "email", "identity": email}));
                    assert_eq!(status, 200);
                    calls.fetch_add(2, std::sync::atomic::Ordering::Relaxed);
                    n += 1;
                }
            });
        }
    });
    let calls = calls.into_inner();
    // Both chainers have had a second or more to catch up; either replica verifies the whole.
    std::thread::sleep(Duration::from_millis(1500));
    for replica in [&first, &second] {
        let (status, answer) = replica.call("AuditVerify", root, json!({"limit": 1_000_000}));
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["intact"], true, "{answer}");
        assert_eq!(answer["verified"], answer["head"]["seq"], "{answer}");
        assert!(answer["verified"].as_u64() >= Some(calls), "{calls} calls: {answer}");
    }
    eprintln!("{calls} calls chained by two replicas");
    first.stop();
    second.stop();
}

/// One raw HTTP/1.1 exchange with extra header lines: the status, the head and the body.
fn exchange(addr: std::net::SocketAddr, method: &str, path: &str, headers: &str, body: &str) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("head");
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).expect("status");
    (status, head.to_owned(), body.to_owned())
}

/// The value a `Set-Cookie` line of `head` gives `name`.
fn set_cookie(head: &str, name: &str) -> Option<String> {
    head.lines()
        .filter_map(|line| line.strip_prefix("set-cookie: ").or_else(|| line.strip_prefix("Set-Cookie: ")))
        .filter_map(|cookie| cookie.split(';').next()?.split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value.to_owned())
}

/// The first form token of a console page.
fn csrf_of(html: &str) -> String {
    let start = html.find(r#"name="csrf" value=""#).expect("a form token") + r#"name="csrf" value=""#.len();
    html[start..start + 64].to_owned()
}

#[test]
fn a_console_session_opened_on_one_replica_works_on_the_other_and_ends_on_both_at_logout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = PgDatabase::create();
    let key = bunker::crypto::WrappingKey::generate().to_hex();
    let root = "replicas-root-token-for-the-console-test";
    let env = [("DATABUNKER_WRAPPINGKEY", key.as_str()), ("DATABUNKER_ROOTTOKEN", root)];
    let args = ["serve", "--database-url", db.url.as_str()];
    let mut first = start(dir.path(), "first", &args, &env);
    assert!(first.ready(), "first replica: {:?}", first.output());
    let mut second = start(dir.path(), "second", &args, &env);
    assert!(second.ready(), "second replica: {:?}", second.output());

    // Log in on the first replica with the root token.
    let (status, head, page) = exchange(first.addr, "GET", "/console/login", "", "");
    assert_eq!(status, 200, "{head}");
    let form = set_cookie(&head, "bunker_console_form").expect("the login form's cookie");
    let cookie = format!("Cookie: bunker_console_form={form}\r\n");
    let body = format!("csrf={}&token={root}", csrf_of(&page));
    let (status, head, _) = exchange(first.addr, "POST", "/console/login/token", &cookie, &body);
    assert_eq!(status, 303, "{head}");
    let session = set_cookie(&head, "bunker_console").expect("a session cookie");
    let cookie = format!("Cookie: bunker_console={session}\r\n");

    // The second replica serves the session.
    let (status, head, page) = exchange(second.addr, "GET", "/console/users", &cookie, "");
    assert_eq!(status, 200, "{head}");
    assert!(page.contains("Find a user"), "{page}");
    let token = csrf_of(&page);

    // Logging out on the second replica ends it on the first at once (the sessions are in the
    // database, not in either process).
    let (status, head, _) = exchange(second.addr, "POST", "/console/logout", &cookie, &format!("csrf={token}"));
    assert_eq!(status, 303, "{head}");
    for replica in [&first, &second] {
        let (status, head, _) = exchange(replica.addr, "GET", "/console/users", &cookie, "");
        assert_eq!(status, 303, "{head}");
        assert!(head.contains("location: /console/login"), "{head}");
    }
    first.stop();
    second.stop();
}
