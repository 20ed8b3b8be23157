//! Administrator accounts (issue 18): invitations and activation, login sessions that act as a
//! role or as the tenant's administrator, lockout, disabling, password resets, the TOTP second
//! factor, tenants, what is stored, and invitations and resets mailed through SMTP.

use serde_json::{Value, json};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::access_support::{ACCESS_DENIED, API_DENIED, allow, by_token, call_with, role_with};
use crate::both;
use crate::common::{Answer, TestVault, assert_absent};

/// A password every test account gets unless a test says otherwise.
const PASSWORD: &str = "correct horse battery staple";
/// The answer of every refused login.
const BAD_LOGIN: &str = "Invalid username or password";
/// The answer of a login with TOTP on and no valid code.
const CODE_NEEDED: &str = "A valid one-time code is required";
/// The answer of an unknown, used, expired or other-tenant token.
const BAD_TOKEN: &str = "The token is not valid or has expired";
/// The answer of a refused password.
const BAD_PASSWORD: &str = "The password must be 12 to 128 characters and not contain the username";
/// An account's session lifetime by default (8 h).
const SESSION_SECS: i64 = 8 * 3_600;
/// An invitation's lifetime (72 h).
const INVITATION_SECS: i64 = 72 * 3_600;

/// Calls a public operation: no token, the tenant named by `tenant` (none: the main tenant).
async fn public(v: &TestVault, op: &str, tenant: Option<&str>, body: Value) -> Answer {
    v.call_as(op, None, tenant, body).await
}

/// Asserts an error envelope with this HTTP status, whatever its message.
#[track_caller]
fn refused(answer: Answer, status: u16) {
    assert_eq!(answer.status.as_u16(), status, "body: {}", answer.body);
    assert_eq!(answer.body["status"], "error", "body: {}", answer.body);
}

/// The body of an `AccountCreate` that succeeded, with its `accountid`.
#[track_caller]
pub fn invited(answer: Answer) -> Value {
    let body = answer.ok();
    assert!(body["accountid"].is_string(), "body: {body}");
    body
}

/// Invites an account with `body` as `token` (root when `None`) in `tenant`; the id and the
/// activation token answered.
async fn invite_as(v: &TestVault, token: Option<&str>, body: Value) -> (String, String) {
    let answer = invited(v.call_as("AccountCreate", Some(token.unwrap_or(&v.root)), None, body).await);
    assert_eq!(answer["mailed"], false, "{answer}");
    let id = answer["accountid"].as_str().unwrap_or_else(|| panic!("accountid: {answer}")).to_owned();
    let activation = answer["activationtoken"].as_str().unwrap_or_else(|| panic!("activationtoken: {answer}"));
    (id, activation.to_owned())
}

/// Invites an account as root.
async fn invite(v: &TestVault, body: Value) -> (String, String) {
    invite_as(v, None, body).await
}

/// Activates with `token` and `password` in the main tenant; the account id answered.
async fn activate(v: &TestVault, token: &str, password: &str) -> String {
    let answer = public(v, "AccountActivate", None, json!({"token": token, "password": password})).await.ok();
    answer["accountid"].as_str().unwrap_or_else(|| panic!("accountid: {answer}")).to_owned()
}

/// An active account of the main tenant named `username` (email `<username>@accounts.test`)
/// with `extra` (its role or `admin`), its password [`PASSWORD`]; its id.
async fn account(v: &TestVault, username: &str, extra: Value) -> String {
    let mut body = json!({"username": username, "email": format!("{username}@accounts.test")});
    body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    let (id, token) = invite(v, body).await;
    assert_eq!(activate(v, &token, PASSWORD).await, id);
    id
}

/// Logs in to the main tenant.
async fn login(v: &TestVault, username: &str, password: &str) -> Answer {
    public(v, "AccountLogin", None, json!({"username": username, "password": password})).await
}

/// Logs in with [`PASSWORD`]; the session's xtoken.
async fn session(v: &TestVault, username: &str) -> String {
    let answer = login(v, username, PASSWORD).await.ok();
    answer["xtoken"].as_str().unwrap_or_else(|| panic!("xtoken: {answer}")).to_owned()
}

/// The account row, as root reads it.
async fn get(v: &TestVault, accountid: &str) -> Value {
    v.call("AccountGet", json!({"accountid": accountid})).await.ok()["account"].clone()
}

/// Asserts `when` (unix seconds) is `seconds` from now, within a few seconds.
#[track_caller]
fn assert_in(v: &TestVault, when: &Value, seconds: i64) {
    let when = when.as_i64().unwrap_or_else(|| panic!("not unix seconds: {when}"));
    let delta = when - v.clock().now() - seconds;
    assert!((-5..=1).contains(&delta), "{delta} s off {seconds} s from now");
}

/// A role that may read any user and nothing else, and a user to read; the role id and the
/// user's token.
async fn reader(v: &TestVault) -> (i64, String) {
    let (roleid, _) = role_with(v, "reader", &[allow(&["UserGet"], &["*"])]).await;
    (roleid, v.create_user(json!({"login": "alice", "name": "Alice"})).await)
}

/// The TOTP code of `secret` (base32) at unix time `at`.
fn code(secret: &str, at: i64) -> String {
    let bytes = Secret::Encoded(secret.to_owned()).to_bytes().expect("base32 secret");
    let totp = TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes).expect("TOTP");
    totp.generate(u64::try_from(at).expect("positive time"))
}

/// Moves the clock to the middle of a TOTP step, so that a code computed now is still of the
/// step the vault sees when the request arrives.
fn mid_step(v: &TestVault) {
    v.clock().advance((15 - v.clock().now().rem_euclid(30)).rem_euclid(30));
}

/// Whether a session still acts: `UserGet` of `user` answers 200, or 403 `Access denied`.
async fn acts(v: &TestVault, xtoken: &str, user: &str) -> bool {
    let answer = call_with(v, xtoken, "UserGet", by_token(user, json!({}))).await;
    match answer.status.as_u16() {
        200 => true,
        403 if answer.body["message"] == ACCESS_DENIED => false,
        _ => panic!("neither acting nor refused: {} {}", answer.status, answer.body),
    }
}

both!(an_invitation_is_activated_once_and_the_account_logs_in, |v| {
    let created = v
        .call(
            "AccountCreate",
            json!({"username": "Ada.Admin", "email": "Ada@Accounts.Test", "firstname": "Ada", "lastname": "Lovelace",
                   "admin": true}),
        )
        .await;
    let created = invited(created);
    assert_eq!(created["mailed"], false, "without SMTP the administrator hands the token over: {created}");
    let id = created["accountid"].as_str().expect("accountid").to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "accountid is a uuid: {created}");
    let token = created["activationtoken"].as_str().expect("activationtoken").to_owned();
    assert_in(v, &created["expiration"], INVITATION_SECS);

    let row = get(v, &id).await;
    let expected = json!({"accountid": id, "firstname": "Ada", "lastname": "Lovelace", "roleid": null,
                          "rolename": null, "admin": true, "status": "invited", "totp": false, "locked": false,
                          "lastlogin": null});
    for (key, value) in expected.as_object().expect("object") {
        assert_eq!(&row[key], value, "{key} of {row}");
    }
    // As given (the contract does not say whether they are answered in lower case).
    for (key, value) in [("username", "Ada.Admin"), ("email", "Ada@Accounts.Test")] {
        assert!(row[key].as_str().is_some_and(|v| v.eq_ignore_ascii_case(value)), "{key} of {row}");
    }
    assert_in(v, &row["created"], 0);
    assert!(!row.to_string().contains(&token), "the row never holds the token: {row}");

    // Not before its activation.
    login(v, "Ada.Admin", PASSWORD).await.error(403, BAD_LOGIN);
    assert_eq!(activate(v, &token, PASSWORD).await, id);
    assert_eq!(get(v, &id).await["status"], "active");
    // Single use; an unknown token answers the same.
    public(v, "AccountActivate", None, json!({"token": token, "password": "another long password"}))
        .await
        .error(400, BAD_TOKEN);
    public(v, "AccountActivate", None, json!({"token": "no-such-token-4711", "password": "another long password"}))
        .await
        .error(400, BAD_TOKEN);

    // The username is found whatever its case.
    let logged = login(v, "ada.admin", PASSWORD).await.ok();
    assert_eq!(logged["accountid"], id.as_str());
    assert_eq!(logged["admin"], true);
    assert_eq!(logged["roleid"], Value::Null);
    assert_in(v, &logged["expiration"], SESSION_SECS);
    let xtoken = logged["xtoken"].as_str().expect("xtoken").to_owned();
    let row = get(v, &id).await;
    assert_in(v, &row["lastlogin"], 0);
    for secret in [PASSWORD, &token, &xtoken] {
        assert!(!row.to_string().contains(secret), "the row holds a secret: {row}");
    }
    let listed = v.call("AccountList", json!({})).await.ok();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["rows"][0], row);
});

both!(an_invitation_answers_the_ok_envelope, |v| {
    // One `status` key, the envelope's: the account's own status is in its row.
    let body = json!({"username": "envelope", "email": "envelope@accounts.test", "admin": true});
    let answer = v.call("AccountCreate", body).await;
    let created = answer.ok();
    assert!(created["accountid"].is_string(), "{created}");
    let id = created["accountid"].as_str().expect("accountid");
    assert_eq!(get(v, id).await["status"], "invited");
});

both!(an_invitation_expires_after_72_hours, |v| {
    let (early, early_token) =
        invite(v, json!({"username": "early", "email": "early@accounts.test", "admin": true})).await;
    let (_, late_token) = invite(v, json!({"username": "late", "email": "late@accounts.test", "admin": true})).await;
    v.clock().advance(INVITATION_SECS - 60);
    assert_eq!(activate(v, &early_token, PASSWORD).await, early);
    v.clock().advance(120);
    public(v, "AccountActivate", None, json!({"token": late_token, "password": PASSWORD})).await.error(400, BAD_TOKEN);
    login(v, "late", PASSWORD).await.error(403, BAD_LOGIN);
    login(v, "early", PASSWORD).await.ok();
});

both!(a_password_is_12_to_128_characters_without_the_username, |v| {
    let (id, token) = invite(v, json!({"username": "Grace", "email": "grace@accounts.test", "admin": true})).await;
    let long = "x".repeat(129);
    for bad in ["eleven-char", "my-grace-password", "MYGRACEPASSWORD", long.as_str()] {
        public(v, "AccountActivate", None, json!({"token": token, "password": bad})).await.error(400, BAD_PASSWORD);
    }
    public(v, "AccountActivate", None, json!({"token": token})).await.error(400, BAD_PASSWORD);
    // A refused password does not use the invitation up.
    let longest = "y".repeat(128);
    assert_eq!(activate(v, &token, &longest).await, id);
    login(v, "grace", &longest).await.ok();

    let (_, token) = invite(v, json!({"username": "hopper", "email": "hopper@accounts.test", "admin": true})).await;
    activate(v, &token, "twelve-chars").await;
    login(v, "hopper", "twelve-chars").await.ok();
    login(v, "hopper", "twelve-charS").await.error(403, BAD_LOGIN);
});

both!(usernames_and_emails_are_unique_and_checked, |v| {
    let (roleid, _) = reader(v).await;
    let (first, _) = invite(v, json!({"username": "Sam", "email": "Sam@Accounts.Test", "roleid": roleid})).await;
    v.call("AccountCreate", json!({"username": "sAM", "email": "other@accounts.test", "roleid": roleid}))
        .await
        .error(409, "Duplicate index: username");
    v.call("AccountCreate", json!({"username": "other", "email": "sam@ACCOUNTS.test", "admin": true}))
        .await
        .error(409, "Duplicate index: email");
    // Taken by an update too.
    let (second, _) = invite(v, json!({"username": "kim", "email": "kim@accounts.test", "rolename": "reader"})).await;
    v.call("AccountUpdate", json!({"accountid": second, "email": "SAM@accounts.test"}))
        .await
        .error(409, "Duplicate index: email");

    let long = "a".repeat(65);
    for body in [
        json!({"username": "ab", "email": "ab@accounts.test", "admin": true}),
        json!({"username": long, "email": "long@accounts.test", "admin": true}),
        json!({"username": "with space", "email": "space@accounts.test", "admin": true}),
        json!({"username": "semi;colon", "email": "semi@accounts.test", "admin": true}),
        json!({"email": "nobody@accounts.test", "admin": true}),
        json!({"username": "noemail", "admin": true}),
        json!({"username": "bademail", "email": "not-an-address", "admin": true}),
        json!({"username": "neither", "email": "neither@accounts.test"}),
        json!({"username": "both", "email": "both@accounts.test", "admin": true, "roleid": roleid}),
        json!({"username": "both", "email": "both@accounts.test", "admin": true, "rolename": "reader"}),
    ] {
        refused(v.call("AccountCreate", body).await, 400);
    }
    for body in [
        json!({"username": "ghost", "email": "ghost@accounts.test", "roleid": 999_999}),
        json!({"username": "ghost", "email": "ghost@accounts.test", "rolename": "no-such-role"}),
    ] {
        v.call("AccountCreate", body).await.error(404, "The role record was not found");
    }
    let a = "a".repeat(64);
    invite(v, json!({"username": a, "email": "a.b_c-d@accounts.test", "admin": true})).await;
    invite(v, json!({"username": "x.y_z-1@host", "email": "xyz@accounts.test", "admin": true})).await;

    // Found by id or username (any case); listed in order of creation.
    assert_eq!(v.call("AccountGet", json!({"username": "SAM"})).await.ok()["account"]["accountid"], first.as_str());
    let row = v.call("AccountGet", json!({"username": "kim"})).await.ok()["account"].clone();
    assert_eq!(
        (row["roleid"].clone(), row["rolename"].clone(), row["admin"].clone()),
        (json!(roleid), json!("reader"), json!(false))
    );
    for body in [json!({"accountid": uuid::Uuid::new_v4().to_string()}), json!({"username": "nobody"})] {
        v.call("AccountGet", body.clone()).await.error(404, "The account record was not found");
        v.call("AccountUpdate", with(&body, json!({"firstname": "x"})))
            .await
            .error(404, "The account record was not found");
        v.call("AccountDelete", body).await.error(404, "The account record was not found");
    }
    let all = v.call("AccountList", json!({})).await.ok();
    assert_eq!(all["total"], 4);
    let rows = all["rows"].as_array().expect("rows");
    let mut names: Vec<String> = rows.iter().map(|r| r["username"].as_str().expect("name").to_lowercase()).collect();
    let order: Vec<(i64, &str)> =
        rows.iter().map(|r| (r["created"].as_i64().expect("created"), r["accountid"].as_str().expect("id"))).collect();
    assert!(order.is_sorted(), "ordered by creation, then id: {order:?}");
    names.sort();
    assert_eq!(names, [a.as_str(), "kim", "sam", "x.y_z-1@host"]);
    let page = v.call("AccountList", json!({"offset": 1, "limit": 2})).await.ok();
    assert_eq!(page["total"], 4);
    assert_eq!(page["rows"], json!([all["rows"][1], all["rows"][2]]));
});

/// `base` with the fields of `extra`.
fn with(base: &Value, extra: Value) -> Value {
    let mut body = base.clone();
    body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    body
}

both!(a_session_acts_as_the_accounts_role_and_is_recorded_as_the_account, |v| {
    let (roleid, alice) = reader(v).await;
    let id = account(v, "reader1", json!({"roleid": roleid})).await;
    let logged = login(v, "reader1", PASSWORD).await.ok();
    assert_eq!((logged["admin"].clone(), logged["roleid"].clone()), (json!(false), json!(roleid)));
    let xtoken = logged["xtoken"].as_str().expect("xtoken").to_owned();
    let got = call_with(v, &xtoken, "UserGet", by_token(&alice, json!({}))).await.ok();
    assert_eq!(got["profile"]["name"], "Alice");
    call_with(v, &xtoken, "UserDelete", by_token(&alice, json!({}))).await.error(403, API_DENIED);
    call_with(v, &xtoken, "UserCreate", json!({"profile": {"login": "bob"}})).await.error(403, API_DENIED);
    // An account that is not its tenant's administrator administers no account.
    for (op, body) in [
        ("AccountList", json!({})),
        ("AccountGet", json!({"accountid": id})),
        ("AccountCreate", json!({"username": "mallory", "email": "mallory@accounts.test", "admin": true})),
        ("AccountUpdate", json!({"accountid": id, "admin": true})),
        ("AccountDelete", json!({"accountid": id})),
    ] {
        call_with(v, &xtoken, op, body).await.error(403, ACCESS_DENIED);
    }
    assert_eq!(get(v, &id).await["admin"], false);

    // The events of its calls name the account (the refused ones are not in the user's trail:
    // they were refused before the user was looked up).
    let mut seen = Vec::new();
    for full in all_events(v).await {
        let title = full["title"].as_str().expect("title");
        if title != "UserGet" && title != "UserDelete" {
            continue;
        }
        assert_eq!(full["principalkind"], "account", "{full}");
        assert_eq!(full["principalid"], id.as_str(), "{full}");
        assert!(!full.to_string().contains(&xtoken), "an event holds the session token: {full}");
        seen.push((title.to_owned(), full["httpstatus"].as_i64().expect("httpstatus")));
    }
    seen.sort();
    assert_eq!(seen, [("UserDelete".to_owned(), 403), ("UserGet".to_owned(), 200)]);

    // A session lasts 8 hours.
    v.clock().advance(SESSION_SECS - 60);
    assert!(acts(v, &xtoken, &alice).await);
    v.clock().advance(120);
    assert!(!acts(v, &xtoken, &alice).await, "a session outlived its 8 hours");
});

both!(an_admin_account_acts_as_its_tenants_administrator, |v| {
    // In a tenant of its own: the same as the tenant's admin token, and no more.
    let tenant = v.call("TenantCreate", json!({"tenantname": "acme"})).await.ok();
    let admin = tenant["xtoken"].as_str().expect("xtoken").to_owned();
    let (id, token) =
        invite_as(v, Some(&admin), json!({"username": "boss", "email": "boss@acme.test", "admin": true})).await;
    let body = json!({"token": token, "password": PASSWORD});
    assert_eq!(public(v, "AccountActivate", Some("acme"), body).await.ok()["accountid"], id.as_str());
    let logged = public(v, "AccountLogin", Some("acme"), json!({"username": "boss", "password": PASSWORD})).await.ok();
    assert_eq!(logged["admin"], true);
    let xtoken = logged["xtoken"].as_str().expect("xtoken").to_owned();
    let user = call_with(v, &xtoken, "UserCreate", json!({"profile": {"login": "carol"}})).await.ok();
    let carol = user["token"].as_str().expect("token").to_owned();
    call_with(v, &admin, "UserGet", by_token(&carol, json!({}))).await.ok();
    call_with(v, &xtoken, "RoleCreate", json!({"rolename": "clerk"})).await.ok();
    let (other, _) =
        invite_as(v, Some(&xtoken), json!({"username": "clerk1", "email": "clerk1@acme.test", "rolename": "clerk"}))
            .await;
    assert_eq!(call_with(v, &xtoken, "AccountList", json!({})).await.ok()["total"], 2);
    call_with(v, &xtoken, "AccountGet", json!({"accountid": other})).await.ok();
    call_with(v, &xtoken, "TenantGet", json!({})).await.ok();
    for (op, body) in [
        ("TenantCreate", json!({"tenantname": "evil"})),
        ("TenantListTenants", json!({})),
        ("SystemGenerateWrappingKey", json!({"key1": "00", "key2": "00", "key3": "00"})),
    ] {
        call_with(v, &xtoken, op, body).await.error(403, ACCESS_DENIED);
    }
    // It mints no token that would outlive the account's disabling or deletion.
    call_with(v, &xtoken, "XTokenCreateForRole", json!({"rolename": "clerk"})).await.error(403, ACCESS_DENIED);
    call_with(v, &xtoken, "XTokenCreateForUser", by_token(&carol, json!({}))).await.error(403, ACCESS_DENIED);
    // Its own tenant only.
    v.call_as("UserGet", Some(&xtoken), Some("main"), by_token(&carol, json!({}))).await.error(403, ACCESS_DENIED);
    v.call_as("UserGet", Some(&xtoken), Some("acme"), by_token(&carol, json!({}))).await.ok();
});

// In the main tenant, an admin account is the tenant's administrator, not the vault's: the
// vault-wide operations stay the root token's, as for every tenant admin token.
both!(an_admin_account_of_the_main_tenant_is_not_the_vaults_root, |v| {
    account(v, "mainboss", json!({"admin": true})).await;
    let xtoken = session(v, "mainboss").await;
    call_with(v, &xtoken, "UserCreate", json!({"profile": {"login": "dave"}})).await.ok();
    call_with(v, &xtoken, "AccountList", json!({})).await.ok();
    let mut failures = Vec::new();
    for (op, body) in [
        ("TenantListTenants", json!({})),
        ("TenantCreate", json!({"tenantname": "evil"})),
        ("SystemRotateRecoveryKey", json!({"key1": "00", "key2": "00", "key3": "00"})),
    ] {
        let answer = call_with(v, &xtoken, op, body).await;
        if answer.status.as_u16() != 403 || answer.body["message"] != ACCESS_DENIED {
            failures.push(format!("{op}: {} {}", answer.status, answer.body));
        }
    }
    assert!(failures.is_empty(), "a main-tenant admin account acts as root:\n{}", failures.join("\n"));
});

both!(logout_ends_the_session_at_once, |v| {
    let (roleid, alice) = reader(v).await;
    account(v, "leaver", json!({"roleid": roleid})).await;
    let kept = session(v, "leaver").await;
    let xtoken = session(v, "leaver").await;
    assert_ne!(kept, xtoken);
    assert!(acts(v, &xtoken, &alice).await);
    call_with(v, &xtoken, "AccountLogout", json!({})).await.ok();
    assert!(!acts(v, &xtoken, &alice).await, "a session worked after its logout");
    call_with(v, &xtoken, "AccountLogout", json!({})).await.error(403, ACCESS_DENIED);
    assert!(acts(v, &kept, &alice).await, "a logout ended another session of the account");
    // Not an account's session.
    public(v, "AccountLogout", None, json!({})).await.error(403, ACCESS_DENIED);
    call_with(v, &v.root, "AccountLogout", json!({})).await.error(403, ACCESS_DENIED);
    let role = crate::access_support::role_token(v, roleid).await;
    call_with(v, &role, "AccountLogout", json!({})).await.error(403, ACCESS_DENIED);
    assert!(acts(v, &role, &alice).await, "a logout ended a role token");
});

both!(five_wrong_passwords_lock_an_account_for_15_minutes, |v| {
    let id = account(v, "forgetful", json!({"admin": true})).await;
    // Failures count while consecutive: a success starts again.
    for _ in 0..4 {
        login(v, "forgetful", "wrong password, surely").await.error(403, BAD_LOGIN);
    }
    login(v, "forgetful", PASSWORD).await.ok();
    for _ in 0..4 {
        login(v, "forgetful", "wrong password, surely").await.error(403, BAD_LOGIN);
    }
    login(v, "forgetful", PASSWORD).await.ok();
    assert_eq!(get(v, &id).await["locked"], false);

    for _ in 0..5 {
        login(v, "forgetful", "wrong password, surely").await.error(403, BAD_LOGIN);
    }
    login(v, "forgetful", PASSWORD).await.error(403, BAD_LOGIN);
    assert_eq!(get(v, &id).await["locked"], true);
    v.clock().advance(14 * 60);
    assert_eq!(get(v, &id).await["locked"], true);
    v.clock().advance(60 + 5);
    login(v, "forgetful", PASSWORD).await.ok();
    assert_eq!(get(v, &id).await["locked"], false);

    // Unknown usernames answer alike.
    login(v, "nobody-at-all", PASSWORD).await.error(403, BAD_LOGIN);
});

// Attempts are counted before their password is checked: attempts that never finish (the
// client went away, the vault shed them for load) still count, and the one reaching the
// maximum locks the account for 15 minutes, never for good.
both!(attempts_that_never_finish_lock_for_15_minutes_only, |v| {
    let id = account(v, "abandoned", json!({"admin": true})).await;
    let accounts = v.db().tenant(bunker::tenants::TenantId::MAIN).accounts();
    let now = v.clock().now();
    for attempt in 1..=5 {
        assert!(accounts.take_attempt(&id, now, 5, now + 900).await.expect("store"), "attempt {attempt}");
    }
    assert!(!accounts.take_attempt(&id, now, 5, now + 900).await.expect("store"), "a sixth attempt in flight");
    login(v, "abandoned", PASSWORD).await.error(403, BAD_LOGIN);
    assert_eq!(get(v, &id).await["locked"], true);
    v.clock().advance(15 * 60 + 5);
    login(v, "abandoned", PASSWORD).await.ok();
    assert_eq!(get(v, &id).await["locked"], false);
});

both!(a_disabled_account_cannot_log_in_and_its_sessions_end, |v| {
    let (roleid, alice) = reader(v).await;
    let id = account(v, "temp", json!({"roleid": roleid})).await;
    let xtoken = session(v, "temp").await;
    assert!(acts(v, &xtoken, &alice).await);
    let updated = v.call("AccountUpdate", json!({"accountid": id, "status": "disabled"})).await.ok();
    assert_eq!(updated["account"]["status"], "disabled");
    assert!(!acts(v, &xtoken, &alice).await, "a disabled account's session still acts");
    login(v, "temp", PASSWORD).await.error(403, BAD_LOGIN);
    v.call("AccountUpdate", json!({"username": "temp", "status": "active"})).await.ok();
    assert!(!acts(v, &xtoken, &alice).await, "re-enabling brought an ended session back");
    let xtoken = session(v, "temp").await;
    assert!(acts(v, &xtoken, &alice).await);

    // An invitation is not enabled by hand.
    let (invited, _) = invite(v, json!({"username": "newbie", "email": "newbie@accounts.test", "admin": true})).await;
    v.call("AccountUpdate", json!({"accountid": invited, "status": "active"}))
        .await
        .error(400, "The account has not been activated");
    assert_eq!(get(v, &invited).await["status"], "invited");
    refused(v.call("AccountUpdate", json!({"accountid": id, "status": "invited"})).await, 400);

    // A change of role ends the sessions; so does the deletion.
    let (other, _) = role_with(v, "other", &[allow(&["UserGet"], &["*"])]).await;
    let updated = v.call("AccountUpdate", json!({"accountid": id, "roleid": other, "firstname": "Tempo"})).await.ok();
    assert_eq!(
        (updated["account"]["roleid"].clone(), updated["account"]["firstname"].clone()),
        (json!(other), json!("Tempo"))
    );
    assert!(!acts(v, &xtoken, &alice).await, "a session outlived its account's change of role");
    let xtoken = session(v, "temp").await;
    let updated = v.call("AccountUpdate", json!({"accountid": id, "admin": true})).await.ok();
    assert_eq!((updated["account"]["roleid"].clone(), updated["account"]["admin"].clone()), (Value::Null, json!(true)));
    assert!(!acts(v, &xtoken, &alice).await, "a session outlived its account's change to admin");
    let xtoken = session(v, "temp").await;
    v.call("AccountDelete", json!({"accountid": id})).await.ok();
    assert!(!acts(v, &xtoken, &alice).await, "a deleted account's session still acts");
    v.call("AccountGet", json!({"accountid": id})).await.error(404, "The account record was not found");
    login(v, "temp", PASSWORD).await.error(403, BAD_LOGIN);
    // The username is free again.
    invite(v, json!({"username": "temp", "email": "temp@accounts.test", "admin": true})).await;
});

both!(a_password_reset_request_says_nothing_about_accounts, |v| {
    account(v, "known", json!({"admin": true})).await;
    invite(v, json!({"username": "pending", "email": "pending@accounts.test", "admin": true})).await;
    let mut answers = Vec::new();
    for email in ["known@accounts.test", "KNOWN@accounts.test", "pending@accounts.test", "unknown@accounts.test"] {
        let answer = public(v, "AccountRequestPasswordReset", None, json!({"email": email})).await;
        answers.push((answer.status.as_u16(), answer.body));
    }
    assert!(answers.iter().all(|a| *a == (200, json!({"status": "ok"}))), "{answers:?}");
    // Nothing changed for the account.
    login(v, "known", PASSWORD).await.ok();
});

both!(an_administrator_resets_a_password, |v| {
    let (roleid, alice) = reader(v).await;
    let id = account(v, "lost", json!({"roleid": roleid})).await;
    let xtoken = session(v, "lost").await;
    for _ in 0..5 {
        login(v, "lost", "wrong password, surely").await;
    }
    assert_eq!(get(v, &id).await["locked"], true);

    let updated = v.call("AccountUpdate", json!({"accountid": id, "resetpassword": true})).await.ok();
    assert_eq!(updated["mailed"], false, "{updated}");
    let reset = updated["resettoken"].as_str().expect("resettoken").to_owned();
    assert_eq!(updated["account"]["accountid"], id.as_str());
    public(v, "AccountResetPassword", None, json!({"token": reset, "password": "lost"})).await.error(400, BAD_PASSWORD);
    public(v, "AccountResetPassword", None, json!({"token": "not-a-reset-token", "password": "a new long password"}))
        .await
        .error(400, BAD_TOKEN);
    public(v, "AccountResetPassword", None, json!({"token": reset, "password": "a new long password"})).await.ok();
    public(v, "AccountResetPassword", None, json!({"token": reset, "password": "yet another password"}))
        .await
        .error(400, BAD_TOKEN);
    assert!(!acts(v, &xtoken, &alice).await, "a session outlived its password's reset");
    // The lockout is cleared, the old password gone.
    assert_eq!(get(v, &id).await["locked"], false);
    login(v, "lost", PASSWORD).await.error(403, BAD_LOGIN);
    login(v, "lost", "a new long password").await.ok();

    // A reset token lasts an hour.
    let updated = v.call("AccountUpdate", json!({"username": "lost", "resetpassword": true})).await.ok();
    let reset = updated["resettoken"].as_str().expect("resettoken").to_owned();
    v.clock().advance(3_600 + 60);
    public(v, "AccountResetPassword", None, json!({"token": reset, "password": "too late a password"}))
        .await
        .error(400, BAD_TOKEN);
    login(v, "lost", "a new long password").await.ok();
});

both!(with_totp_a_login_needs_a_code, |v| {
    let (roleid, alice) = reader(v).await;
    let id = account(v, "careful", json!({"roleid": roleid})).await;
    let xtoken = session(v, "careful").await;
    call_with(v, &xtoken, "AccountTotpEnroll", json!({"password": "wrong password, surely"}))
        .await
        .error(403, BAD_LOGIN);
    refused(public(v, "AccountTotpEnroll", None, json!({"password": PASSWORD})).await, 403);
    refused(call_with(v, &v.root, "AccountTotpEnroll", json!({"password": PASSWORD})).await, 403);
    let enrolled = call_with(v, &xtoken, "AccountTotpEnroll", json!({"password": PASSWORD})).await.ok();
    let secret = enrolled["secret"].as_str().expect("secret").to_owned();
    let url = enrolled["otpauthurl"].as_str().expect("otpauthurl");
    assert!(url.starts_with("otpauth://totp/"), "{url}");
    assert!(url.contains(&format!("secret={secret}")), "{url}");
    // Pending until confirmed.
    assert_eq!(get(v, &id).await["totp"], false);
    session(v, "careful").await;

    let now = v.clock().now();
    let wrong = format!("{:06}", (code(&secret, now).parse::<u32>().expect("digits") + 500_000) % 1_000_000);
    let answer = call_with(v, &xtoken, "AccountTotpConfirm", json!({"code": wrong})).await;
    assert_ne!(answer.status.as_u16(), 200, "a wrong code confirmed TOTP: {}", answer.body);
    assert_eq!(get(v, &id).await["totp"], false);
    call_with(v, &xtoken, "AccountTotpConfirm", json!({"code": code(&secret, now)})).await.ok();
    assert_eq!(get(v, &id).await["totp"], true);
    assert!(acts(v, &xtoken, &alice).await, "confirming ended the session");

    login(v, "careful", PASSWORD).await.error(403, CODE_NEEDED);
    let body = |code: &str| json!({"username": "careful", "password": PASSWORD, "code": code});
    public(v, "AccountLogin", None, body(&wrong)).await.error(403, CODE_NEEDED);
    // The code does not stand for the password.
    let with_bad_password =
        json!({"username": "careful", "password": "wrong password, surely", "code": code(&secret, v.clock().now())});
    public(v, "AccountLogin", None, with_bad_password).await.error(403, BAD_LOGIN);
    // Each code below is of a step no login used before (a replay may be refused).
    mid_step(v);
    v.clock().advance(30);
    public(v, "AccountLogin", None, body(&code(&secret, v.clock().now()))).await.ok();
    // One step either side is accepted, no more.
    mid_step(v);
    v.clock().advance(60);
    public(v, "AccountLogin", None, body(&code(&secret, v.clock().now() - 30))).await.ok();
    mid_step(v);
    v.clock().advance(60);
    public(v, "AccountLogin", None, body(&code(&secret, v.clock().now() + 30))).await.ok();
    mid_step(v);
    v.clock().advance(90);
    public(v, "AccountLogin", None, body(&code(&secret, v.clock().now() - 90))).await.error(403, CODE_NEEDED);
    public(v, "AccountLogin", None, body(&code(&secret, v.clock().now() + 90))).await.error(403, CODE_NEEDED);

    // An administrator removes the second factor.
    let updated = v.call("AccountUpdate", json!({"accountid": id, "totp": false})).await.ok();
    assert_eq!(updated["account"]["totp"], false);
    login(v, "careful", PASSWORD).await.ok();
});

both!(accounts_stay_in_their_tenant, |v| {
    let mut admins = Vec::new();
    for name in ["tenant-a", "tenant-b"] {
        let created = v.call("TenantCreate", json!({"tenantname": name})).await.ok();
        admins.push(created["xtoken"].as_str().expect("xtoken").to_owned());
    }
    let (a, b) = (&admins[0], &admins[1]);
    let body = json!({"username": "bea", "email": "bea@b.test", "admin": true});
    let (id, token) = invite_as(v, Some(b), body.clone()).await;
    let activation = json!({"token": token, "password": PASSWORD});
    public(v, "AccountActivate", None, activation.clone()).await.error(400, BAD_TOKEN);
    public(v, "AccountActivate", Some("tenant-a"), activation.clone()).await.error(400, BAD_TOKEN);
    public(v, "AccountActivate", Some("tenant-b"), activation).await.ok();

    // The same username and email are free in another tenant.
    let (other, _) = invite_as(v, Some(a), body).await;
    assert_ne!(id, other);

    let credentials = json!({"username": "bea", "password": PASSWORD});
    public(v, "AccountLogin", None, credentials.clone()).await.error(403, BAD_LOGIN);
    public(v, "AccountLogin", Some("tenant-a"), credentials.clone()).await.error(403, BAD_LOGIN);
    let logged = public(v, "AccountLogin", Some("tenant-b"), credentials).await.ok();
    assert_eq!(logged["accountid"], id.as_str());
    let xtoken = logged["xtoken"].as_str().expect("xtoken").to_owned();
    call_with(v, &xtoken, "AccountList", json!({})).await.ok();
    v.call_as("AccountList", Some(&xtoken), Some("tenant-a"), json!({})).await.error(403, ACCESS_DENIED);
    v.call_as("AccountList", Some(&xtoken), Some("main"), json!({})).await.error(403, ACCESS_DENIED);

    // Tenant A's administrator, and root in the main tenant, find nothing of B's.
    for token in [a.as_str(), v.root.as_str()] {
        for target in [json!({"accountid": id}), json!({"username": "bea", "accountid": id})] {
            for (op, extra) in [
                ("AccountGet", json!({})),
                ("AccountUpdate", json!({"status": "disabled"})),
                ("AccountUpdate", json!({"resetpassword": true})),
                ("AccountDelete", json!({})),
            ] {
                call_with(v, token, op, with(&target, extra)).await.error(404, "The account record was not found");
            }
        }
    }
    let listed = call_with(v, a, "AccountList", json!({})).await.ok();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["rows"][0]["accountid"], other.as_str());
    assert_eq!(v.call("AccountList", json!({})).await.ok()["total"], 0);
    // Root acts in B through the header.
    v.call_as("AccountGet", Some(&v.root), Some("tenant-b"), json!({"accountid": id})).await.ok();
    // B's account is untouched.
    let row = call_with(v, b, "AccountGet", json!({"accountid": id})).await.ok()["account"].clone();
    assert_eq!((row["status"].clone(), row["locked"].clone()), (json!("active"), json!(false)));
    call_with(v, &xtoken, "UserCreate", json!({"profile": {"login": "b-user"}})).await.ok();
});

/// Every audit event of the main tenant, as root reads it.
async fn all_events(v: &TestVault) -> Vec<Value> {
    let unlock = v.call("BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    let listed = v.call("BulkListAllAuditEvents", json!({"unlockuuid": unlock, "limit": 1000})).await.ok();
    let mut events = Vec::new();
    for row in listed["rows"].as_array().expect("rows") {
        events.push(v.call("AuditGetEvent", json!({"auditeventuuid": row["auditeventuuid"]})).await.ok());
    }
    events
}

both!(no_password_token_or_account_detail_is_stored_in_clear, |v| {
    let (username, email) = ("Quillon.Vexmoor_77", "Quillon.Vexmoor@Ximbrel-Accounts.TEST");
    let (first, second) = ("Orthwen-Zappledore-x1", "Pellucid-Bramblewick-y2");
    let created = v
        .call("AccountCreate", json!({"username": username, "email": email, "firstname": "Yselda", "admin": true}))
        .await;
    let created = invited(created);
    let id = created["accountid"].as_str().expect("accountid").to_owned();
    let activation = created["activationtoken"].as_str().expect("activationtoken").to_owned();
    assert_eq!(activate(v, &activation, first).await, id);
    let session = login(v, username, first).await.ok()["xtoken"].as_str().expect("xtoken").to_owned();
    let enrolled = call_with(v, &session, "AccountTotpEnroll", json!({"password": first})).await.ok();
    let secret = enrolled["secret"].as_str().expect("secret").to_owned();
    mid_step(v);
    let code_now = code(&secret, v.clock().now());
    call_with(v, &session, "AccountTotpConfirm", json!({"code": code_now})).await.ok();
    login(v, username, "a wrong password here").await.error(403, BAD_LOGIN);
    let updated = v.call("AccountUpdate", json!({"accountid": id, "resetpassword": true})).await.ok();
    let reset = updated["resettoken"].as_str().expect("resettoken").to_owned();
    public(v, "AccountResetPassword", None, json!({"token": reset, "password": second})).await.ok();
    mid_step(v);
    v.clock().advance(30);
    let code_later = code(&secret, v.clock().now());
    let body = json!({"username": username, "password": second, "code": code_later});
    let session2 = public(v, "AccountLogin", None, body).await.ok()["xtoken"].as_str().expect("xtoken").to_owned();
    public(v, "AccountRequestPasswordReset", None, json!({"email": email})).await.ok();

    let raw_secret = hex::encode(Secret::Encoded(secret.clone()).to_bytes().expect("base32"));
    let lower = (username.to_lowercase(), email.to_lowercase());
    let secrets: Vec<&str> = vec![
        username,
        email,
        &lower.0,
        &lower.1,
        "Ximbrel-Accounts",
        "Yselda",
        first,
        second,
        &activation,
        &reset,
        &session,
        &session2,
        &secret,
        &raw_secret,
    ];
    assert_absent(&v.dump().await, &secrets);

    // Nor in the details of any event, nor in any answer about the account.
    let events = all_events(v).await;
    assert!(events.iter().any(|e| e["title"] == "AccountLogin"), "logins are audited");
    let account_events: Vec<&Value> =
        events.iter().filter(|e| e["title"].as_str().is_some_and(|t| t.starts_with("Account"))).collect();
    assert!(account_events.len() >= 8, "{account_events:?}");
    let text = serde_json::to_string(&events).expect("json");
    let codes = [format!("\"{code_now}\""), format!("\"{code_later}\"")];
    for value in [first, second, &activation, &reset, &session, &session2, &secret, &codes[0], &codes[1]] {
        assert!(!text.contains(value), "an audit event holds a secret: {value}");
    }
    let administered = ["AccountCreate", "AccountGet", "AccountList", "AccountUpdate", "AccountDelete"];
    for event in &account_events {
        let kind = event["principalkind"].as_str().expect("principalkind");
        if administered.iter().any(|op| event["title"] == *op) {
            assert_eq!(kind, "root", "{event}");
        } else if kind == "account" {
            assert_eq!(event["principalid"], id.as_str(), "{event}");
        } else {
            assert_eq!(kind, "public", "{event}");
        }
    }
    let row = get(v, &id).await;
    let listed = v.call("AccountList", json!({})).await.ok();
    for value in [first, second, &activation, &reset, &session, &session2, &secret] {
        assert!(!row.to_string().contains(value) && !listed.to_string().contains(value), "answered: {value}");
    }
});

/// Invitations and resets mailed through a fake SMTP server.
mod mailed {
    use std::time::Duration;

    use base64::Engine as _;
    use bunker::state::Settings;
    use serde_json::json;

    use super::{BAD_LOGIN, BAD_TOKEN, PASSWORD, login, public};
    use crate::common::{Backend, TestVault};
    use crate::fake_smtp::{Inbox, Mail};

    /// The text of a message with its transfer encodings undone (quoted-printable, base64).
    fn decoded(mail: &Mail) -> String {
        let mut text = mail.text.replace("=\r\n", "").replace("=3D", "=");
        // Base64 parts: every run of base64 lines that decodes to UTF-8.
        let mut decoded = String::new();
        let mut block = String::new();
        for line in mail.text.lines() {
            let line = line.trim();
            if !line.is_empty() && line.bytes().all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)) {
                block.push_str(line);
            } else {
                let part = base64::engine::general_purpose::STANDARD.decode(&block).ok();
                if let Some(part) = part.and_then(|bytes| String::from_utf8(bytes).ok()) {
                    decoded.push_str(&part);
                    decoded.push('\n');
                }
                block.clear();
            }
        }
        text.push('\n');
        text.push_str(&decoded);
        text
    }

    /// The words of a message that could be a token (runs of URL-safe characters, 16 or more).
    fn candidates(mail: &Mail) -> Vec<String> {
        let text = decoded(mail);
        let mut words: Vec<String> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .filter(|w| w.len() >= 16)
            .map(str::to_owned)
            .collect();
        words.dedup();
        words
    }

    /// Waits up to 10 s for the inbox to hold `count` messages.
    async fn wait_for(inbox: &Inbox, count: usize) -> Vec<Mail> {
        for _ in 0..100 {
            let mails = inbox.lock().expect("inbox").clone();
            if mails.len() >= count {
                return mails;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{count} mails expected, got {:?}", inbox.lock().expect("inbox"));
    }

    /// Tries each candidate of `mail` with `op` until one is accepted; the token that was.
    async fn use_token(v: &TestVault, mail: &Mail, op: &str, password: &str) -> String {
        for word in candidates(mail) {
            let answer = public(v, op, None, json!({"token": word, "password": password})).await;
            if answer.status.as_u16() == 200 {
                return word;
            }
            assert_eq!(answer.body["message"], BAD_TOKEN, "{op} with {word}: {}", answer.body);
        }
        panic!("no token in the mail that {op} accepts:\n{}", decoded(mail));
    }

    async fn body(v: &TestVault, inbox: Inbox) {
        let created = v
            .call("AccountCreate", json!({"username": "mailed", "email": "Mailed@Accounts.Test", "admin": true}))
            .await;
        let created = super::invited(created);
        assert_eq!(created["mailed"], true, "{created}");
        assert!(created.get("activationtoken").is_none(), "a mailed token is not answered: {created}");
        let id = created["accountid"].as_str().expect("accountid").to_owned();
        let mails = wait_for(&inbox, 1).await;
        let invitation = &mails[0];
        assert!(invitation.from.contains("bunker@vault.test"), "{invitation:?}");
        assert_eq!(invitation.to.len(), 1, "{invitation:?}");
        assert!(invitation.to[0].to_lowercase().contains("mailed@accounts.test"), "{invitation:?}");
        assert!(decoded(invitation).contains("https://console.vault.test"), "{}", decoded(invitation));
        login(v, "mailed", PASSWORD).await.error(403, BAD_LOGIN);
        let token = use_token(v, invitation, "AccountActivate", PASSWORD).await;
        public(v, "AccountActivate", None, json!({"token": token, "password": PASSWORD})).await.error(400, BAD_TOKEN);
        assert_eq!(login(v, "mailed", PASSWORD).await.ok()["accountid"], id.as_str());

        // An administrator's reset is mailed.
        let updated = v.call("AccountUpdate", json!({"accountid": id, "resetpassword": true})).await.ok();
        assert_eq!(updated["mailed"], true, "{updated}");
        assert!(updated.get("resettoken").is_none(), "{updated}");
        let mails = wait_for(&inbox, 2).await;
        use_token(v, &mails[1], "AccountResetPassword", "the second password").await;
        login(v, "mailed", "the second password").await.ok();

        // A reset asked for by address: mailed to an active account's address only.
        for email in ["nobody@accounts.test", "MAILED@accounts.test"] {
            let answer = public(v, "AccountRequestPasswordReset", None, json!({"email": email})).await.ok();
            assert_eq!(answer, json!({"status": "ok"}));
        }
        let mails = wait_for(&inbox, 3).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(inbox.lock().expect("inbox").len(), 3, "mail for an unknown address: {:?}", inbox.lock());
        assert!(mails[2].to[0].to_lowercase().contains("mailed@accounts.test"), "{:?}", mails[2]);
        use_token(v, &mails[2], "AccountResetPassword", "the third password").await;
        login(v, "mailed", "the third password").await.ok();
        login(v, "mailed", "the second password").await.error(403, BAD_LOGIN);
    }

    /// A mail server that cannot be reached: the token is answered for the administrator to
    /// hand over, as without a mail server.
    async fn unreachable(v: &TestVault) {
        let created = v
            .call("AccountCreate", json!({"username": "unmailed", "email": "unmailed@accounts.test", "admin": true}))
            .await;
        let created = super::invited(created);
        assert_eq!(created["mailed"], false, "{created}");
        let token = created["activationtoken"].as_str().expect("activationtoken").to_owned();
        public(v, "AccountActivate", None, json!({"token": token, "password": PASSWORD})).await.ok();
        let id = created["accountid"].as_str().expect("accountid");
        let updated = v.call("AccountUpdate", json!({"accountid": id, "resetpassword": true})).await.ok();
        assert_eq!(updated["mailed"], false, "{updated}");
        assert!(updated["resettoken"].is_string(), "{updated}");
        // Asked for by the owner, nothing can be handed over: the same answer all the same.
        let body = json!({"email": "unmailed@accounts.test"});
        assert_eq!(public(v, "AccountRequestPasswordReset", None, body).await.ok(), json!({"status": "ok"}));
    }

    async fn run_unreachable(backend: Backend) {
        use futures::FutureExt;
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
        let mut settings = Settings::default();
        settings.accounts.mail = Some(bunker::accounts::MailSettings {
            url: format!("smtp://127.0.0.1:{port}"),
            from: "bunker@vault.test".to_owned(),
            console_url: "https://console.vault.test".to_owned(),
        });
        let vault = TestVault::with_settings(backend, settings).await;
        let outcome = std::panic::AssertUnwindSafe(unreachable(&vault)).catch_unwind().await;
        vault.cleanup().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_sqlite() {
        run_unreachable(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_postgres() {
        run_unreachable(Backend::Postgres).await;
    }

    async fn run(backend: Backend) {
        use futures::FutureExt;
        let (port, inbox) = crate::fake_smtp::start();
        let mut settings = Settings::default();
        settings.accounts.mail = Some(bunker::accounts::MailSettings {
            url: format!("smtp://127.0.0.1:{port}"),
            from: "bunker@vault.test".to_owned(),
            console_url: "https://console.vault.test".to_owned(),
        });
        let vault = TestVault::with_settings(backend, settings).await;
        let outcome = std::panic::AssertUnwindSafe(body(&vault, inbox)).catch_unwind().await;
        vault.cleanup().await;
        if let Err(panic) = outcome {
            std::panic::resume_unwind(panic);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

both!(a_deleted_role_ends_its_accounts_sessions_until_it_gets_another, |v| {
    let (roleid, alice) = reader(v).await;
    let id = account(v, "orphan", json!({"roleid": roleid})).await;
    let xtoken = session(v, "orphan").await;
    assert!(acts(v, &xtoken, &alice).await);
    v.call("RoleDelete", json!({"roleid": roleid})).await.ok();
    assert!(!acts(v, &xtoken, &alice).await, "a session outlived its role");
    let row = get(v, &id).await;
    assert_eq!(
        (row["roleid"].clone(), row["rolename"].clone(), row["admin"].clone()),
        (Value::Null, Value::Null, json!(false))
    );
    assert_eq!(login(v, "orphan", PASSWORD).await.status.as_u16(), 403);
    let (other, _) = role_with(v, "other-reader", &[allow(&["UserGet"], &["*"])]).await;
    v.call("AccountUpdate", json!({"accountid": id, "roleid": other})).await.ok();
    let xtoken = session(v, "orphan").await;
    assert!(acts(v, &xtoken, &alice).await);
});

both!(another_replica_ends_the_sessions_too, |v| {
    use std::collections::HashMap;
    let (roleid, alice) = reader(v).await;
    let id = account(v, "roamer", json!({"roleid": roleid})).await;
    let replica = v.reopen(&v.wrapping).await.expect("second replica");
    let mut applied = HashMap::new();
    // Each way a session ends, made through this replica, holds on the other once it reads the
    // change feed (every 250 ms in a server), although it had just verified the session.
    for way in ["disabled", "reset", "logout", "deleted"] {
        let password = if way == "disabled" || way == "reset" { PASSWORD.to_owned() } else { PASSWORD.to_uppercase() };
        let xtoken = login(v, "roamer", &password).await.ok()["xtoken"].as_str().expect("xtoken").to_owned();
        assert!(acts(&replica, &xtoken, &alice).await, "{way}: the replica does not see a new session");
        match way {
            "disabled" => {
                v.call("AccountUpdate", json!({"accountid": id, "status": "disabled"})).await.ok();
            }
            "reset" => {
                let updated = v.call("AccountUpdate", json!({"accountid": id, "resetpassword": true})).await.ok();
                let body = json!({"token": updated["resettoken"], "password": PASSWORD.to_uppercase()});
                public(v, "AccountResetPassword", None, body).await.ok();
            }
            "logout" => {
                call_with(v, &xtoken, "AccountLogout", json!({})).await.ok();
            }
            _ => {
                v.call("AccountDelete", json!({"accountid": id})).await.ok();
            }
        }
        bunker::tenants::changes::apply_new(&replica.state, &mut applied).await.expect("feed");
        assert!(!acts(&replica, &xtoken, &alice).await, "{way}: the other replica still serves the session");
        if way == "disabled" {
            v.call("AccountUpdate", json!({"accountid": id, "status": "active"})).await.ok();
        }
    }
    replica.close().await;
});

/// Login sessions of an hour.
fn hour_sessions(_: &std::path::Path) -> bunker::state::Settings {
    let mut settings = bunker::state::Settings::default();
    settings.accounts.session = std::time::Duration::from_secs(3_600);
    settings
}

both!(the_session_lifetime_is_configured, settings = hour_sessions, |v| {
    let (roleid, alice) = reader(v).await;
    account(v, "hourly", json!({"roleid": roleid})).await;
    let logged = login(v, "hourly", PASSWORD).await.ok();
    assert_in(v, &logged["expiration"], 3_600);
    let xtoken = logged["xtoken"].as_str().expect("xtoken").to_owned();
    v.clock().advance(3_540);
    assert!(acts(v, &xtoken, &alice).await);
    v.clock().advance(120);
    assert!(!acts(v, &xtoken, &alice).await, "a session outlived its configured hour");
});

/// A TOTP account, its confirmed secret, and a login with the current code done: the id, the
/// secret and that login's request.
async fn replayer(v: &TestVault) -> (String, String, Value) {
    let id = account(v, "replayer", json!({"admin": true})).await;
    let xtoken = session(v, "replayer").await;
    let enrolled = call_with(v, &xtoken, "AccountTotpEnroll", json!({"password": PASSWORD})).await.ok();
    let secret = enrolled["secret"].as_str().expect("secret").to_owned();
    mid_step(v);
    call_with(v, &xtoken, "AccountTotpConfirm", json!({"code": code(&secret, v.clock().now())})).await.ok();
    // Enrolling again over an active factor is refused.
    let again = call_with(v, &xtoken, "AccountTotpEnroll", json!({"password": PASSWORD})).await;
    again.error(409, "A second factor is on: an administrator removes it first");
    v.clock().advance(30);
    let body = json!({"username": "replayer", "password": PASSWORD, "code": code(&secret, v.clock().now())});
    public(v, "AccountLogin", None, body.clone()).await.ok();
    (id, secret, body)
}

both!(a_one_time_code_is_used_once, |v| {
    let (id, secret, body) = replayer(v).await;
    // The same code again, and the code of the step before, which the window would admit.
    let earlier = json!({"username": "replayer", "password": PASSWORD, "code": code(&secret, v.clock().now() - 30)});
    for replay in [body, earlier] {
        let answer = public(v, "AccountLogin", None, replay).await;
        assert_eq!(answer.status.as_u16(), 403, "a used code logged in: {}", answer.body);
    }
    // The next step's code still works, and the refusals did not lock the account.
    v.clock().advance(30);
    let next = json!({"username": "replayer", "password": PASSWORD, "code": code(&secret, v.clock().now())});
    public(v, "AccountLogin", None, next).await.ok();
    assert_eq!(get(v, &id).await["locked"], false);
});

// The contract's answer to a login without a valid code, for a code used already too.
both!(a_used_code_answers_that_a_valid_code_is_required, |v| {
    let (_, _, body) = replayer(v).await;
    public(v, "AccountLogin", None, body).await.error(403, CODE_NEEDED);
});
