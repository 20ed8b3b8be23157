//! `SystemGetSystemStats`: record counts per tenant and for the vault, kept by the database's
//! triggers through every way a row comes or goes (operations, cascades, the retention sweeper,
//! a tenant's purge, a profile held), exact under concurrent writers on two replicas.

use bunker::crypto::secrets::random_uuid_string;
use bunker::store::counts::{self, Counts};
use futures::future::join_all;
use serde_json::{Value, json};

use crate::access_support::{ACCESS_DENIED, role_xtoken, user_xtoken};
use crate::both;
use crate::common::{Backend, TestVault};
use crate::files::b64;

/// The counts a `SystemGetSystemStats` answer reports, checking the licence fields on the way.
#[track_caller]
fn reported(answer: &Value) -> (Counts, i64) {
    let stats = &answer["stats"];
    let n = |field: &str| stats[field].as_i64().unwrap_or_else(|| panic!("{field} in {answer}"));
    let counts = Counts {
        users: n("numusers"),
        tokens: n("numtokens"),
        sessions: n("numsessions"),
        files: n("numfiles"),
        agreements: n("numagreements"),
        open_requests: n("numrequests"),
    };
    assert_eq!(n("totalnumrecords"), counts.users + counts.tokens, "{answer}");
    for field in ["totalnumrecords", "licensemaxrecords", "licensefinalexpiration"] {
        assert_eq!(answer[field], stats[field], "{field} is answered in stats and beside it: {answer}");
    }
    (counts, n("numtenants"))
}

/// Stats as `token` (root when `None`) with an optional tenant header.
async fn stats(v: &TestVault, token: Option<&str>, tenant: Option<&str>) -> (Counts, i64) {
    let token = token.unwrap_or(&v.root);
    reported(&v.call_as("SystemGetSystemStats", Some(token), tenant, json!({})).await.ok())
}

/// A caller acting in one tenant: its admin token (root in the main tenant).
struct Caller<'a> {
    v: &'a TestVault,
    token: String,
}

impl Caller<'_> {
    async fn call(&self, op: &str, body: Value) -> Value {
        self.v.call_as(op, Some(&self.token), None, body).await.ok()
    }

    async fn user(&self, email: &str) -> String {
        let body = self.call("UserCreate", json!({"profile": {"email": email}})).await;
        body["token"].as_str().expect("token").to_owned()
    }
}

fn who(token: &str, extra: Value) -> Value {
    let mut body = json!({"mode": "token", "identity": token});
    body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    body
}

/// Seeds `users` users in the caller's tenant, then on the first ones: a session and a file each
/// for `files` users, an agreement each for `agreements`, an open request each for `requests`
/// (plus one cancelled, which is not counted); and `tokens` tokens. Returns the user tokens.
async fn seed(
    c: &Caller<'_>,
    tag: &str,
    users: usize,
    files: usize,
    agreements: usize,
    requests: usize,
    tokens: usize,
) -> Vec<String> {
    let mut made = Vec::new();
    for i in 0..users {
        made.push(c.user(&format!("{tag}{i}@stats.test")).await);
    }
    c.call("LegalBasisCreate", json!({"brief": "marketing", "basistype": "consent"})).await;
    for user in &made[..files] {
        // A session names its user in its data, and goes with it.
        c.call("SessionUpsert", json!({"sessionuuid": random_uuid_string(), "sessiondata": {"token": user}})).await;
        c.call("FileCreate", who(user, json!({"filename": "a.txt", "filedata": b64(user.as_bytes())}))).await;
    }
    for user in &made[..agreements] {
        c.call("AgreementAccept", who(user, json!({"brief": "marketing"}))).await;
    }
    for user in &made[..requests] {
        c.call("UserUpdateRequest", who(user, json!({"profile": {"city": "Leeds"}}))).await;
    }
    let cancelled = c.call("UserUpdateRequest", who(&made[0], json!({"profile": {"city": "York"}}))).await;
    c.call("UserRequestCancel", json!({"requestuuid": cancelled["requestuuid"], "reason": "no"})).await;
    for i in 0..tokens {
        c.call("TokenCreate", json!({"tokentype": "creditcard", "record": luhn(&format!("41111111111{i:04}"))})).await;
    }
    made
}

/// A card number with its check digit.
fn luhn(payload: &str) -> String {
    let sum: u32 = payload
        .chars()
        .rev()
        .enumerate()
        .map(|(i, c)| {
            let d = c.to_digit(10).expect("digit");
            if i % 2 == 0 {
                let d = d * 2;
                if d > 9 { d - 9 } else { d }
            } else {
                d
            }
        })
        .sum();
    format!("{payload}{}", (10 - sum % 10) % 10)
}

fn counts(users: i64, tokens: i64, sessions: i64, files: i64, agreements: i64, open_requests: i64) -> Counts {
    Counts { users, tokens, sessions, files, agreements, open_requests }
}

fn sum(a: Counts, b: Counts) -> Counts {
    counts(
        a.users + b.users,
        a.tokens + b.tokens,
        a.sessions + b.sessions,
        a.files + b.files,
        a.agreements + b.agreements,
        a.open_requests + b.open_requests,
    )
}

/// Creates tenant `name`; its id and admin token.
async fn tenant(v: &TestVault, name: &str) -> (i64, String) {
    let body = v.call("TenantCreate", json!({"tenantname": name})).await.ok();
    (body["tenantid"].as_i64().expect("tenantid"), body["xtoken"].as_str().expect("xtoken").to_owned())
}

both!(stats_count_each_tenant_and_the_vault, |v| {
    let (_, a_token) = tenant(v, "stats-a").await;
    let a = Caller { v, token: a_token.clone() };
    let main = Caller { v, token: v.root.clone() };
    seed(&a, "a", 3, 1, 2, 1, 2).await;
    seed(&main, "m", 2, 2, 1, 2, 1).await;
    // Each tenant's seed: users, tokens, sessions, files, agreements, open requests.
    let a_counts = counts(3, 2, 1, 1, 2, 1);
    let main_counts = counts(2, 1, 2, 2, 1, 2);

    assert_eq!(stats(v, Some(&a_token), None).await, (a_counts, 1), "tenant A's admin sees A");
    assert_eq!(stats(v, Some(&a_token), Some("stats-a")).await, (a_counts, 1));
    assert_eq!(stats(v, None, Some("stats-a")).await, (a_counts, 1), "root acting in A sees A");
    assert_eq!(stats(v, None, None).await, (sum(a_counts, main_counts), 2), "root in the main tenant sees the vault");
    assert_eq!(counts::tenant(&v.state.db, bunker::tenants::TenantId::MAIN).await.expect("counts"), main_counts);
    assert_eq!(counts::vault_records(&v.state.db).await.expect("records"), 5 + 3);
    let answer = v.call("SystemGetSystemStats", json!({})).await.ok();
    assert_eq!((answer["licensemaxrecords"].as_i64(), answer["licensefinalexpiration"].as_i64()), (Some(0), Some(0)));
    // An empty tenant counts zero of everything; it still counts as a tenant of the vault.
    let (_, empty) = tenant(v, "stats-empty").await;
    assert_eq!(stats(v, Some(&empty), None).await, (Counts::default(), 1));
    assert_eq!(stats(v, None, None).await.1, 3);
    // The read is audited like any other.
    let events = v.scalar("SELECT COUNT(*) FROM audit_events WHERE operation = 'SystemGetSystemStats'").await;
    assert!(events >= 5, "{events} events");
});

both!(counts_follow_cascades_expiry_holds_and_tenant_purge, |v| {
    let (a_id, a_token) = tenant(v, "stats-a").await;
    let a = Caller { v, token: a_token.clone() };
    let users = seed(&a, "a", 3, 2, 2, 2, 1).await;
    assert_eq!(stats(v, Some(&a_token), None).await.0, counts(3, 1, 2, 2, 2, 2));

    // Deleting a user takes its session, file, agreement and request with it (cascade).
    a.call("UserDelete", who(&users[0], json!({}))).await;
    assert_eq!(stats(v, Some(&a_token), None).await.0, counts(2, 1, 1, 1, 1, 1));
    // Approving the open request closes it.
    let open = a.call("UserRequestListUserRequests", who(&users[1], json!({}))).await;
    let uuid = open["rows"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["status"] == "open"))
        .expect("open request")["requestuuid"]
        .clone();
    a.call("UserRequestApprove", json!({"requestuuid": uuid})).await;
    assert_eq!(stats(v, Some(&a_token), None).await.0, counts(2, 1, 1, 1, 1, 0));

    // A held profile is absent from the counts, back when restored, and not counted twice when
    // erased at the end of its hold.
    let held = format!(
        "UPDATE users SET held_until = 1 WHERE tenant_id = {a_id} AND rid IN \
         (SELECT rid FROM users WHERE tenant_id = {a_id} ORDER BY rid LIMIT 1)"
    );
    v.exec(&held).await;
    assert_eq!(stats(v, Some(&a_token), None).await.0.users, 1);
    v.exec(&format!("UPDATE users SET held_until = NULL WHERE tenant_id = {a_id}")).await;
    assert_eq!(stats(v, Some(&a_token), None).await.0.users, 2);
    v.exec(&held).await;
    v.exec(&format!("UPDATE users SET version = version + 1 WHERE tenant_id = {a_id}")).await;
    assert_eq!(stats(v, Some(&a_token), None).await.0.users, 1, "other updates leave the count alone");
    let before = stats(v, Some(&a_token), None).await.0;
    v.exec(&format!("DELETE FROM users WHERE tenant_id = {a_id} AND held_until IS NOT NULL")).await;
    let after = stats(v, Some(&a_token), None).await.0;
    assert_eq!(after.users, before.users, "the held profile was already uncounted");

    // Records past their lifetime go with the sweeper.
    a.call("UserCreate", json!({"profile": {"email": "brief@stats.test"}, "slidingtime": "1h"})).await;
    a.call("TokenCreate", json!({"tokentype": "creditcard", "record": luhn("455673758689985"), "slidingtime": "1h"}))
        .await;
    a.call("SessionUpsert", json!({"sessionuuid": random_uuid_string(), "sessiondata": {"s": 1}, "slidingtime": "1h"}))
        .await;
    let grown = stats(v, Some(&a_token), None).await.0;
    assert_eq!((grown.users, grown.tokens, grown.sessions), (after.users + 1, after.tokens + 1, after.sessions + 1));
    v.clock().advance(2 * 3600);
    bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock taken");
    let swept = stats(v, Some(&a_token), None).await.0;
    assert_eq!((swept.users, swept.tokens), (after.users, after.tokens), "{swept:?}");
    assert!(swept.sessions < grown.sessions, "{swept:?}");
    assert_eq!(swept, exact(v, a_id).await, "the counts agree with the rows");

    // A deleted tenant leaves the vault's counts, and its purge leaves no count rows behind.
    let main_before = stats(v, None, None).await;
    v.call("TenantDelete", json!({"tenantid": a_id})).await.ok();
    assert_eq!(stats(v, None, None).await, (counts(0, 0, 0, 0, 0, 0), 1));
    assert_ne!(main_before.0, Counts::default());
    counts::compact(&v.state.db).await.expect("compact");
    for table in ["record_counts", "record_count_deltas"] {
        if v.backend == Backend::Sqlite && table == "record_count_deltas" {
            continue;
        }
        let left = v.scalar(&format!("SELECT COUNT(*) FROM {table} WHERE tenant_id = {a_id}")).await;
        assert_eq!(left, 0, "{table} keeps {left} rows of the purged tenant");
    }
});

/// The counts of tenant `id` by `COUNT(*)` over its rows.
async fn exact(v: &TestVault, id: i64) -> Counts {
    let count = |sql: &str| format!("SELECT COUNT(*) FROM {sql} AND tenant_id = {id}");
    counts(
        v.scalar(&count("users WHERE held_until IS NULL")).await,
        v.scalar(&count("tokens WHERE 1 = 1")).await,
        v.scalar(&count("sessions WHERE 1 = 1")).await,
        v.scalar(&count("files WHERE 1 = 1")).await,
        v.scalar(&count("agreements WHERE 1 = 1")).await,
        v.scalar(&count("user_requests WHERE status = 'open'")).await,
    )
}

both!(only_administrators_read_the_stats, |v| {
    let (_, a_token) = tenant(v, "stats-a").await;
    tenant(v, "stats-b").await;
    let user = v.create_user(json!({"email": "u@stats.test"})).await;
    let (role, _) = role_xtoken(v, "powerless", &[]).await;
    let user_token = user_xtoken(v, &user).await;
    for token in [role.as_str(), user_token.as_str(), "not-a-token", ""] {
        v.call_as("SystemGetSystemStats", Some(token), None, json!({})).await.error(403, ACCESS_DENIED);
    }
    v.call_as("SystemGetSystemStats", None, None, json!({})).await.error(403, ACCESS_DENIED);
    // A tenant's admin reads its own tenant only.
    v.call_as("SystemGetSystemStats", Some(&a_token), Some("stats-b"), json!({})).await.error(403, ACCESS_DENIED);
    v.call_as("SystemGetSystemStats", Some(&a_token), Some("main"), json!({})).await.error(403, ACCESS_DENIED);
    v.call_as("SystemGetSystemStats", Some(&v.root), Some("no-such-tenant"), json!({}))
        .await
        .error(404, "The tenant record was not found");
});

/// Concurrent creates and deletes of users and tokens through two replicas, with both replicas
/// compacting meanwhile: the counts are exact and no transaction fails (no deadlock, no
/// serialisation error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_on_two_replicas_keep_exact_counts_on_postgresql() {
    let v = TestVault::new(Backend::Postgres).await;
    let replica = v.reopen(&v.wrapping).await.expect("second replica");
    let vaults = [&v, &replica];
    let writer = |w: usize| {
        let node = vaults[w % 2];
        async move {
            for i in 0..12 {
                let token = node.create_user(json!({"email": format!("w{w}-{i}@stats.test")})).await;
                let card = luhn(&format!("4{w:03}{i:011}"));
                node.call("TokenCreate", json!({"tokentype": "creditcard", "record": card})).await.ok();
                if i % 3 == 0 {
                    node.call("UserDelete", json!({"mode": "token", "identity": token})).await.ok();
                }
            }
        }
    };
    let compactor = |w: usize| {
        let node = vaults[w % 2];
        async move {
            for _ in 0..30 {
                counts::compact(&node.state.db).await.expect("compaction never fails");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    };
    let writers = join_all((0..8).map(writer));
    let compactors = join_all((0..2).map(compactor));
    tokio::join!(writers, compactors);

    let expected = counts(8 * 8, 8 * 12, 0, 0, 0, 0);
    assert_eq!(stats(&v, None, None).await.0, expected);
    assert_eq!(stats(&replica, None, None).await.0, expected);
    assert_eq!(exact(&v, 1).await, expected);
    counts::compact(&v.state.db).await.expect("compact").expect("no other compaction now");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM record_count_deltas").await, 0, "every delta folded");
    assert_eq!(stats(&replica, None, None).await.0, expected);
    replica.close().await;
    v.cleanup().await;
}
