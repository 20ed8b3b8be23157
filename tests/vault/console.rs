//! The web console at `/console/` (issue 18), driven as a browser would: a cookie jar, forms
//! posted form-urlencoded with their `csrf` field and the console's own `Origin`. Sessions
//! (cookie, headers, idle and absolute timeouts, logout), the CSRF and origin checks, logins with
//! the root token and with accounts, masking and audit through the pages, tenants, the approval
//! queue, the policy editor and simulator, the statistics chart, and escaping.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{HeaderMap, Request, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::access_support::{API_DENIED, allow, by_token, call_with, policy, role_with};
use crate::both;
use crate::common::TestVault;

/// The host the browser reaches the vault at.
const HOST: &str = "vault.test";
/// The console's own origin.
pub(crate) const ORIGIN: &str = "http://vault.test";
/// The session cookie.
const COOKIE: &str = "bunker_console";
/// The content security policy of every console answer.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'";
/// What a refused form is told.
const REFUSED: &str = "The form has expired or did not come from this console: reload the page and try again.";
/// The answer of every refused account login.
const BAD_LOGIN: &str = "Invalid username or password";
/// A password for the test accounts.
const PASSWORD: &str = "correct horse battery staple";
/// The idle timeout by default (15 min) and a session's lifetime (8 h).
const IDLE_SECS: i64 = 15 * 60;
const SESSION_SECS: i64 = 8 * 3_600;

/// One answer of the console.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) html: String,
}

impl Page {
    /// Where a redirect points.
    #[track_caller]
    pub(crate) fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("no Location: {self:?}"))
    }

    /// Asserts a 303 to `to`.
    #[track_caller]
    pub(crate) fn redirects_to(&self, to: &str) {
        assert_eq!(self.status, 303, "{}", self.html);
        assert_eq!(self.location(), to);
    }

    /// The value of the first `csrf` field of the page's forms.
    pub(crate) fn csrf(&self) -> Option<String> {
        let start = self.html.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
        let end = self.html[start..].find('"')?;
        Some(self.html[start..start + end].to_owned())
    }

    /// The text of the page's `role="alert"` element.
    pub(crate) fn alert(&self) -> Option<&str> {
        let start = self.html.find(r#"role="alert">"#)? + r#"role="alert">"#.len();
        let end = self.html[start..].find('<')?;
        Some(&self.html[start..start + end])
    }

    /// The text of the page's `role="status"` element.
    pub(crate) fn notice(&self) -> Option<&str> {
        let start = self.html.find(r#"role="status">"#)? + r#"role="status">"#.len();
        let end = self.html[start..].find('<')?;
        Some(&self.html[start..start + end])
    }

    /// Asserts the refusal of a form: 403 and the console's message.
    #[track_caller]
    pub(crate) fn refused_form(&self) {
        assert_eq!(self.status, 403, "{}", self.html);
        assert_eq!(self.alert(), Some(REFUSED), "{}", self.html);
    }

    /// The `Set-Cookie` headers naming `name`.
    pub(crate) fn set_cookies(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
            .collect()
    }
}

/// A browser: a cookie jar, the `csrf` value of the last page with a form, and the vault.
pub(crate) struct Browser<'v> {
    v: &'v TestVault,
    pub(crate) cookies: BTreeMap<String, String>,
    pub(crate) csrf: Option<String>,
}

impl<'v> Browser<'v> {
    pub(crate) fn new(v: &'v TestVault) -> Browser<'v> {
        Browser { v, cookies: BTreeMap::new(), csrf: None }
    }

    /// The session cookie's value, if any.
    pub(crate) fn session(&self) -> Option<String> {
        self.cookies.get(COOKIE).cloned()
    }

    pub(crate) async fn get(&mut self, path: &str) -> Page {
        self.send("GET", path, Vec::new(), &[]).await
    }

    /// Posts `fields` with the current `csrf` value and the console's origin.
    pub(crate) async fn submit(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let csrf = self.csrf.clone().unwrap_or_else(|| panic!("no form seen before posting to {path}"));
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(path, &all, &[("origin", ORIGIN)]).await
    }

    /// Posts exactly `fields` with exactly `headers` (besides the host and cookies).
    pub(crate) async fn post(&mut self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let body = fields.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&");
        let mut all = vec![("content-type", "application/x-www-form-urlencoded")];
        all.extend_from_slice(headers);
        self.send("POST", path, body.into_bytes(), &all).await
    }

    pub(crate) async fn send(&mut self, method: &str, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> Page {
        let mut request = Request::builder().method(method).uri(path).header(header::HOST, HOST);
        if !self.cookies.is_empty() {
            let jar = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
            request = request.header(header::COOKIE, jar);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).expect("request");
        let response = self.v.app.clone().oneshot(request).await.expect("infallible");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let page = Page { status, headers, html: String::from_utf8_lossy(&bytes).into_owned() };
        for set in page.headers.get_all(header::SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            if value.is_empty() || set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        if let Some(csrf) = page.csrf() {
            self.csrf = Some(csrf);
        }
        page
    }

    /// Logs in with an access token through the login page: the answer of the form.
    pub(crate) async fn login_token(&mut self, token: &str) -> Page {
        assert_eq!(self.get("/console/login").await.status, 200);
        self.submit("/console/login/token", &[("token", token)]).await
    }

    /// Logs in with an account of tenant `tenant` (empty: the main tenant).
    pub(crate) async fn login_account(&mut self, tenant: &str, username: &str, password: &str) -> Page {
        assert_eq!(self.get("/console/login").await.status, 200);
        self.submit("/console/login/account", &[("tenant", tenant), ("username", username), ("password", password)])
            .await
    }

    /// Logs in with the root token and opens the users page (for its forms' `csrf`).
    pub(crate) async fn root(v: &'v TestVault) -> Browser<'v> {
        let mut browser = Browser::new(v);
        browser.login_token(&v.root).await.redirects_to("/console/users");
        assert_eq!(browser.get("/console/users").await.status, 200);
        browser
    }
}

/// A form value, percent-encoded.
pub(crate) fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Text as HTML shows it.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A form posted wrongly: what is wrong, its `csrf` value (if any), its headers.
type Attempt<'a> = (&'a str, Option<&'a str>, &'a [(&'a str, &'a str)]);

/// Console sessions in the database.
async fn sessions(v: &TestVault) -> i64 {
    v.scalar("SELECT COUNT(*) FROM access_tokens WHERE console_seen_at IS NOT NULL").await
}

/// Invites an account as root with `extra` (its role or `admin`) and activates it with
/// [`PASSWORD`]; its id.
async fn account(v: &TestVault, username: &str, extra: Value) -> String {
    let mut body = json!({"username": username, "email": format!("{username}@console.test")});
    body.as_object_mut().expect("object").extend(extra.as_object().expect("object").clone());
    let created = v.call("AccountCreate", body).await.ok();
    let token = created["activationtoken"].as_str().expect("activationtoken");
    v.call_as("AccountActivate", None, None, json!({"token": token, "password": PASSWORD})).await.ok();
    created["accountid"].as_str().expect("accountid").to_owned()
}

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

both!(the_root_token_opens_a_session_in_a_strict_cookie, |v| {
    // A wrong token: refused, and no session.
    let mut browser = Browser::new(v);
    let refused = browser.login_token("not-the-root-token").await;
    assert_eq!(refused.status, 403, "{}", refused.html);
    assert_eq!(refused.alert(), Some("This access token is not one that can open the console"));
    assert!(refused.set_cookies(COOKIE).is_empty(), "{:?}", refused.headers);
    assert_eq!(browser.session(), None);
    assert_eq!(sessions(v).await, 0);
    browser.get("/console/users").await.redirects_to("/console/login");

    let logged = browser.login_token(&v.root).await;
    logged.redirects_to("/console/users");
    let set = logged.set_cookies(COOKIE);
    assert_eq!(set.len(), 1, "{set:?}");
    let secret = browser.session().expect("a session cookie");
    assert_ne!(secret, v.root, "the cookie holds the root token");
    assert!(!set[0].contains(&v.root));
    assert_eq!(set[0], format!("{COOKIE}={secret}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={SESSION_SECS}"));
    assert_eq!(sessions(v).await, 1);

    for path in ["/console/users", "/console/requests", "/console/access", "/console/stats", "/console/tokens"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.html);
        assert_eq!(page.headers[header::CONTENT_SECURITY_POLICY], CSP, "{path}");
        assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
        assert_eq!(page.headers[header::CACHE_CONTROL], "no-store", "{path}");
        assert!(page.html.contains("<h1>"), "{path}: {}", page.html);
    }
    // The refusal had the same headers.
    assert_eq!(refused.headers[header::CONTENT_SECURITY_POLICY], CSP);
    assert_eq!(refused.headers[header::CACHE_CONTROL], "no-store");
});

both!(a_session_secret_is_refused_by_the_api_but_works_in_the_console, |v| {
    let alice = v.create_user(json!({"login": "alice", "name": "Alice Console"})).await;
    let mut browser = Browser::root(v).await;
    let secret = browser.session().expect("session");

    let direct = call_with(v, &secret, "UserGet", by_token(&alice, json!({}))).await;
    assert!(matches!(direct.status.as_u16(), 401 | 403), "{} {}", direct.status, direct.body);
    assert_eq!(direct.body["status"], "error", "{}", direct.body);
    assert!(!direct.body.to_string().contains("Alice Console"), "{}", direct.body);

    let found = browser.submit("/console/users/find", &[("mode", "token"), ("identity", &alice)]).await;
    found.redirects_to(&format!("/console/users/{alice}"));
    let profile = browser.get(&format!("/console/users/{alice}")).await;
    assert_eq!(profile.status, 200, "{}", profile.html);
    assert!(profile.html.contains("Alice Console"), "{}", profile.html);
    // Still refused directly after the console used it.
    let again = call_with(v, &secret, "UserGet", by_token(&alice, json!({}))).await;
    assert!(matches!(again.status.as_u16(), 401 | 403), "{} {}", again.status, again.body);

    // An account's console session: nor the account's own operations, which read the session
    // token themselves.
    account(v, "holder", json!({"admin": true})).await;
    let mut browser = Browser::new(v);
    browser.login_account("", "holder", PASSWORD).await.redirects_to("/console/users");
    let secret = browser.session().expect("session");
    for (op, body) in [
        ("UserGet", by_token(&alice, json!({}))),
        ("AccountTotpEnroll", json!({"password": PASSWORD})),
        ("AccountTotpConfirm", json!({"code": "123456"})),
        ("AccountLogout", json!({})),
    ] {
        let direct = call_with(v, &secret, op, body).await;
        assert!(matches!(direct.status.as_u16(), 401 | 403), "{op}: {} {}", direct.status, direct.body);
        assert_eq!(direct.body["status"], "error", "{op}: {}", direct.body);
    }
    assert_eq!(browser.get("/console/users").await.status, 200, "the session ended");
    let row = v.call("AccountList", json!({})).await.ok()["rows"][0].clone();
    assert_eq!(row["totp"], false, "{row}");
});

both!(forms_without_the_sessions_token_or_from_elsewhere_are_refused, |v| {
    let alice = v.create_user(json!({"login": "alice"})).await;
    let mut browser = Browser::root(v).await;
    let csrf = browser.csrf.clone().expect("csrf");
    let events = v.scalar("SELECT COUNT(*) FROM audit_events").await;
    let attempts: [Attempt<'_>; 5] = [
        ("no csrf", None, &[("origin", ORIGIN)]),
        ("wrong csrf", Some("0123456789abcdef"), &[("origin", ORIGIN)]),
        ("empty csrf", Some(""), &[("origin", ORIGIN)]),
        ("foreign origin", Some(&csrf), &[("origin", "https://evil.example")]),
        ("cross-site", Some(&csrf), &[("origin", ORIGIN), ("sec-fetch-site", "cross-site")]),
    ];
    for (what, token, headers) in attempts {
        let posted: Vec<(&str, &str)> = token.map(|t| ("csrf", t)).into_iter().collect();
        let mut find = posted.clone();
        find.extend([("mode", "token"), ("identity", alice.as_str())]);
        let page = browser.post("/console/users/find", &find, headers).await;
        assert_eq!(page.status, 403, "{what}: {}", page.html);
        assert_eq!(page.alert(), Some(REFUSED), "{what}: {}", page.html);
        let page = browser.post("/console/logout", &posted, headers).await;
        assert_eq!(page.status, 403, "logout, {what}: {}", page.html);
        assert_eq!(page.alert(), Some(REFUSED), "logout, {what}: {}", page.html);
    }
    // Nothing was looked up, the session goes on.
    assert_eq!(v.scalar("SELECT COUNT(*) FROM audit_events").await, events, "a refused form called the vault");
    assert_eq!(sessions(v).await, 1);
    assert_eq!(browser.get("/console/users").await.status, 200);
    // The right token from the console's origin is accepted (the refusals were for their cause).
    let find = [("csrf", csrf.as_str()), ("mode", "token"), ("identity", alice.as_str())];
    browser
        .post("/console/users/find", &find, &[("origin", ORIGIN)])
        .await
        .redirects_to(&format!("/console/users/{alice}"));

    // Before a session: the login form needs its cookie as well as its field.
    let mut stranger = Browser::new(v);
    stranger.get("/console/login").await;
    let form = stranger.csrf.clone().expect("login form csrf");
    assert!(stranger.cookies.contains_key("bunker_console_form"), "{:?}", stranger.cookies);
    stranger.cookies.clear();
    let page =
        stranger.post("/console/login/token", &[("csrf", &form), ("token", &v.root)], &[("origin", ORIGIN)]).await;
    page.refused_form();
    assert!(page.set_cookies(COOKIE).is_empty());
    assert_eq!(sessions(v).await, 1, "a login without its form cookie opened a session");
});

both!(a_session_ends_when_idle_or_at_its_lifetime, |v| {
    // Idle beyond 15 minutes: ended, the cookie cleared.
    let mut idle = Browser::root(v).await;
    v.clock().advance(IDLE_SECS - 60);
    assert_eq!(idle.get("/console/users").await.status, 200);
    v.clock().advance(IDLE_SECS + 5);
    let page = idle.get("/console/users").await;
    page.redirects_to("/console/login");
    assert!(page.set_cookies(COOKIE).iter().any(|c| c.contains("Max-Age=0")), "{:?}", page.headers);
    assert_eq!(sessions(v).await, 0, "the idle session's token is still there");

    // Activity every 10 minutes keeps it alive past 15 minutes; at 8 hours it ends anyway.
    let mut busy = Browser::root(v).await;
    let mut elapsed = 0;
    while elapsed + 600 < SESSION_SECS {
        v.clock().advance(600);
        elapsed += 600;
        let page = busy.get("/console/users").await;
        assert_eq!(page.status, 200, "after {elapsed} s of activity: {}", page.html);
    }
    assert!(elapsed > IDLE_SECS);
    v.clock().advance(SESSION_SECS - elapsed + 5);
    busy.get("/console/users").await.redirects_to("/console/login");
    assert_eq!(sessions(v).await, 0, "the expired session's token is still there");
});

both!(logout_ends_the_session_and_an_accounts_login, |v| {
    let mut browser = Browser::root(v).await;
    let secret = browser.session().expect("session");
    let out = browser.submit("/console/logout", &[]).await;
    out.redirects_to("/console/login?done=out");
    assert!(out.set_cookies(COOKIE).iter().any(|c| c.contains("Max-Age=0")), "{:?}", out.headers);
    assert_eq!(browser.session(), None);
    assert_eq!(sessions(v).await, 0);
    // The old cookie opens nothing.
    browser.cookies.insert(COOKIE.into(), secret);
    browser.get("/console/users").await.redirects_to("/console/login");
    assert_eq!(browser.get("/console/login?done=out").await.notice(), Some("You are logged out."));

    // An account's session: its login token is revoked.
    account(v, "leaver", json!({"admin": true})).await;
    let mut browser = Browser::new(v);
    browser.login_account("", "leaver", PASSWORD).await.redirects_to("/console/users");
    let secret = browser.session().expect("session");
    assert_eq!(browser.get("/console/users").await.status, 200);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM access_tokens WHERE account_id IS NOT NULL").await, 1);
    browser.submit("/console/logout", &[]).await.redirects_to("/console/login?done=out");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM access_tokens WHERE account_id IS NOT NULL").await, 0);
    browser.cookies.insert(COOKIE.into(), secret);
    browser.get("/console/users").await.redirects_to("/console/login");
    assert!(all_events(v).await.iter().any(|e| e["title"] == "AccountLogout" && e["httpstatus"] == 200));
});

both!(an_account_activates_and_logs_in_and_sees_what_its_role_may, |v| {
    // The role reads profiles with the email clear and the rest masked, and nothing else.
    let (roleid, _) = role_with(v, "support", &[allow(&["UserGet"], &["users.profile.email"])]).await;
    let created =
        v.call("AccountCreate", json!({"username": "sam", "email": "sam@console.test", "roleid": roleid})).await.ok();
    let id = created["accountid"].as_str().expect("accountid").to_owned();
    let activation = created["activationtoken"].as_str().expect("activationtoken").to_owned();

    let mut browser = Browser::new(v);
    let page = browser.get(&format!("/console/activate?token={activation}")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("Activate your account"), "{}", page.html);
    let differ = [("token", activation.as_str()), ("tenant", ""), ("password", PASSWORD), ("repeat", "another one")];
    let page = browser.submit("/console/activate", &differ).await;
    assert_eq!(page.status, 400, "{}", page.html);
    assert_eq!(page.alert(), Some("The two passwords differ"));
    let same = [("token", activation.as_str()), ("tenant", ""), ("password", PASSWORD), ("repeat", PASSWORD)];
    browser.submit("/console/activate", &same).await.redirects_to("/console/login?done=activated");
    assert_eq!(browser.get("/console/login?done=activated").await.notice(), Some("Your account is active: log in."));

    let pat = v.create_user(json!({"email": "pat@console.test", "phone": "+447700900555", "name": "Pat"})).await;
    browser.login_account("", "sam", PASSWORD).await.redirects_to("/console/users");
    assert_eq!(browser.get("/console/users").await.status, 200);
    let found = browser.submit("/console/users/find", &[("mode", "email"), ("identity", "pat@console.test")]).await;
    found.redirects_to(&format!("/console/users/{pat}"));
    let profile = browser.get(&format!("/console/users/{pat}")).await;
    assert_eq!(profile.status, 200, "{}", profile.html);
    assert!(profile.html.contains("pat@console.test"), "{}", profile.html);
    assert!(profile.html.contains(r#"title="Masked by policy">***</span>"#), "{}", profile.html);
    assert!(!profile.html.contains("447700900555"), "the masked phone is shown: {}", profile.html);

    // The reads are recorded as the account's.
    let listed = v.call("AuditListUserEvents", by_token(&pat, json!({"limit": 100}))).await.ok();
    let mut reads = Vec::new();
    for row in listed["rows"].as_array().expect("rows") {
        let event = v.call("AuditGetEvent", json!({"auditeventuuid": row["auditeventuuid"]})).await.ok();
        if event["title"] == "UserGet" {
            reads.push((event["principalkind"].clone(), event["principalid"].clone()));
        }
    }
    assert!(!reads.is_empty(), "no UserGet event in the user's trail");
    assert!(reads.iter().all(|read| *read == (json!("account"), json!(id))), "{reads:?}");

    // Administrators' pages are refused; a call its policies refuse is refused and audited.
    let access = browser.get("/console/access").await;
    assert_eq!(access.status, 403, "{}", access.html);
    assert_eq!(access.alert(), Some("Only an administrator may use this page"));
    let stats = browser.get("/console/stats").await;
    assert_eq!(stats.status, 403, "{}", stats.html);
    let files = browser.get(&format!("/console/users/{pat}/files")).await;
    assert_eq!(files.status, 403, "{}", files.html);
    assert_eq!(files.alert(), Some(API_DENIED));
    let refused: Vec<Value> = all_events(v)
        .await
        .into_iter()
        .filter(|e| e["title"] == "FileListUserFiles" && e["httpstatus"] == 403)
        .collect();
    assert!(!refused.is_empty(), "the refused call was not audited");
    for event in &refused {
        assert_eq!((&event["principalkind"], &event["principalid"]), (&json!("account"), &json!(id)), "{event}");
    }
});

both!(a_wrong_password_is_refused_and_five_lock_the_account, |v| {
    let id = account(v, "forgetful", json!({"admin": true})).await;
    let mut browser = Browser::new(v);
    for attempt in 1..=5 {
        let page = browser.login_account("", "forgetful", "wrong password, surely").await;
        assert_eq!(page.status, 403, "attempt {attempt}: {}", page.html);
        assert_eq!(page.alert(), Some(BAD_LOGIN), "attempt {attempt}");
        assert!(page.set_cookies(COOKIE).is_empty());
    }
    let page = browser.login_account("", "forgetful", PASSWORD).await;
    assert_eq!(page.status, 403, "a locked account logged in: {}", page.html);
    assert_eq!(page.alert(), Some(BAD_LOGIN));
    assert_eq!(browser.session(), None);
    assert_eq!(sessions(v).await, 0);
    assert_eq!(v.call("AccountGet", json!({"accountid": id})).await.ok()["account"]["locked"], true);
    // The username is kept in the form, the password is not.
    assert!(page.html.contains(r#"value="forgetful""#), "{}", page.html);
    assert!(!page.html.contains(PASSWORD));
});

both!(a_tenants_administrator_sees_no_user_of_another_tenant, |v| {
    let main_user = v.create_user(json!({"login": "maindweller", "name": "Main Tenant Person"})).await;
    let tenant = v.call("TenantCreate", json!({"tenantname": "acme"})).await.ok();
    let admin = tenant["xtoken"].as_str().expect("xtoken").to_owned();
    let profile = format!("/console/users/{main_user}");

    // Root's session sees the user (the refusals below are the tenant's).
    let mut root = Browser::root(v).await;
    assert!(root.get(&profile).await.html.contains("Main Tenant Person"));

    let mut other = Browser::new(v);
    other.login_token(&admin).await.redirects_to("/console/users");
    let page = other.get(&profile).await;
    assert_eq!(page.status, 404, "{}", page.html);
    assert!(!page.html.contains("Main Tenant Person"), "{}", page.html);
    other.get("/console/users").await;
    let found = other.submit("/console/users/find", &[("mode", "login"), ("identity", "maindweller")]).await;
    assert_eq!(found.status, 404, "{}", found.html);
    assert!(!found.html.contains(&main_user), "{}", found.html);

    // An admin account of that tenant: the same.
    let created =
        call_with(v, &admin, "AccountCreate", json!({"username": "boss", "email": "boss@acme.test", "admin": true}))
            .await
            .ok();
    let token = created["activationtoken"].as_str().expect("activationtoken");
    v.call_as("AccountActivate", None, Some("acme"), json!({"token": token, "password": PASSWORD})).await.ok();
    let mut boss = Browser::new(v);
    boss.login_account("acme", "boss", PASSWORD).await.redirects_to("/console/users");
    let page = boss.get(&profile).await;
    assert_eq!(page.status, 404, "{}", page.html);
    assert!(!page.html.contains("Main Tenant Person"), "{}", page.html);
});

both!(an_open_request_is_approved_from_the_queue, |v| {
    let ann = v.create_user(json!({"login": "ann", "name": "Ann"})).await;
    let filed = v.call("UserUpdateRequest", by_token(&ann, json!({"profile": {"name": "Ann B."}}))).await.ok();
    let uuid = filed["requestuuid"].as_str().expect("requestuuid").to_owned();
    let mut browser = Browser::root(v).await;
    let queue = browser.get("/console/requests").await;
    assert_eq!(queue.status, 200, "{}", queue.html);
    assert!(queue.html.contains(&uuid), "{}", queue.html);
    assert!(queue.html.contains(&format!(r#"action="/console/requests/{uuid}/decide""#)), "{}", queue.html);
    assert!(queue.html.contains(">Approve</button>") && queue.html.contains(">Cancel</button>"), "{}", queue.html);
    assert_eq!(v.call("UserGet", by_token(&ann, json!({}))).await.ok()["profile"]["name"], "Ann");

    let decided = browser
        .submit(&format!("/console/requests/{uuid}/decide"), &[("decision", "approve"), ("reason", "checked by phone")])
        .await;
    decided.redirects_to("/console/requests?done=approved");
    assert_eq!(v.call("UserGet", by_token(&ann, json!({}))).await.ok()["profile"]["name"], "Ann B.");
    let request = v.call("UserRequestGet", json!({"requestuuid": uuid})).await.ok()["request"].clone();
    assert_eq!((&request["status"], &request["reason"]), (&json!("approved"), &json!("checked by phone")));
    let queue = browser.get("/console/requests?done=approved").await;
    assert_eq!(queue.notice(), Some("Request approved"));
    assert!(!queue.html.contains(&format!("/console/requests/{uuid}/decide")), "still open: {}", queue.html);
});

both!(the_policy_editor_keeps_what_the_vault_refuses_and_simulates, |v| {
    let original = allow(&["UserGet"], &["users.profile.name"]);
    let id = policy(v, "editable", original.clone()).await;
    let roleid = crate::access_support::role(v, "clerk").await;
    crate::access_support::link(v, roleid, id).await;
    let pat = v.create_user(json!({"email": "pat@console.test", "phone": "+447700900777", "name": "Pat"})).await;
    let path = format!("/console/access/policies/{id}");
    let mut browser = Browser::root(v).await;
    let editor = browser.get(&path).await;
    assert_eq!(editor.status, 200, "{}", editor.html);
    assert!(editor.html.contains("users.profile.name"), "{}", editor.html);

    let typed = "{Effect: Allow, oops";
    let page = browser.submit(&path, &[("policy", typed), ("policydesc", "draft")]).await;
    assert_eq!(page.status, 400, "{}", page.html);
    let alert = page.alert().expect("alert");
    assert!(alert.starts_with("The policy document is not valid JSON"), "{alert}");
    assert!(page.html.contains(&format!("{}</textarea>", escaped(typed))), "the typed text is lost: {}", page.html);

    let maybe = json!({"Effect": "Maybe", "Action": ["UserGet"], "Resource": ["users.profile.email"]});
    let direct = v.call("PolicyUpdate", json!({"policyid": id, "policy": maybe})).await;
    assert_eq!(direct.status.as_u16(), 400, "{}", direct.body);
    let message = direct.body["message"].as_str().expect("message").to_owned();
    let page = browser.submit(&path, &[("policy", &maybe.to_string()), ("policydesc", "")]).await;
    assert_eq!(page.status, 400, "{}", page.html);
    assert_eq!(page.alert(), Some(escaped(&message).as_str()), "{}", page.html);
    assert!(page.html.contains(&escaped(&maybe.to_string())), "the typed text is lost: {}", page.html);
    assert_eq!(v.call("PolicyGet", json!({"policyid": id})).await.ok()["policy"], original);

    let valid = allow(&["UserGet"], &["users.profile.email"]);
    let page = browser.submit(&path, &[("policy", &valid.to_string()), ("policydesc", "emails")]).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert_eq!(page.notice(), Some("Policy saved"));
    let stored = v.call("PolicyGet", json!({"policyid": id})).await.ok();
    assert_eq!(stored["policy"], valid, "{stored}");

    let simulated = browser
        .post(
            "/console/access/simulate",
            &[
                ("csrf", &browser.csrf.clone().expect("csrf")),
                ("rolename", "clerk"),
                ("operation", "UserGet"),
                ("targetmode", "token"),
                ("targetidentity", &pat),
            ],
            &[("origin", ORIGIN), ("hx-request", "true")],
        )
        .await;
    assert_eq!(simulated.status, 200, "{}", simulated.html);
    assert!(!simulated.html.contains("<html"), "not a fragment: {}", simulated.html);
    assert!(simulated.html.contains(r#"aria-label="Simulation result""#), "{}", simulated.html);
    assert!(simulated.html.contains("<strong>allow</strong>"), "{}", simulated.html);
    let masked = simulated.html.split("Masked fields: ").nth(1).and_then(|s| s.split('<').next()).expect("masked");
    let masked: Vec<&str> = masked.split(", ").collect();
    assert!(masked.contains(&"phone") && masked.contains(&"name"), "{masked:?}");
    assert!(!masked.contains(&"email"), "{masked:?}");
});

both!(the_statistics_chart_counts_todays_events, |v| {
    for n in 0..3 {
        v.create_user(json!({"login": format!("counted{n}")})).await;
    }
    let mut browser = Browser::root(v).await;
    let page = browser.get("/console/stats").await;
    assert_eq!(page.status, 200, "{}", page.html);
    let svg = page.html.split("<svg").nth(1).and_then(|s| s.split("</svg>").next()).expect("an svg chart");
    assert!(svg.contains(r#"role="img""#) && svg.contains(r#"aria-label="Audit events per day""#), "{svg}");
    let today = bunker::audit::event::rfc3339(v.clock().now_ms());
    let today = &today[..10];
    let title = svg.rsplit("<title>").next().and_then(|s| s.split("</title>").next()).expect("a bar");
    let count: i64 = title
        .strip_prefix(&format!("{today}: "))
        .unwrap_or_else(|| panic!("the last bar is not today's ({today}): {title}"))
        .parse()
        .expect("a count");
    assert!(count >= 3, "{title}");
});

both!(values_are_escaped_in_every_page, |v| {
    let script = "<script>alert(1)</script>";
    let token = v.create_user(json!({"login": "mallory", "name": script, "note\"><b>": "x"})).await;
    let mut browser = Browser::root(v).await;
    let page = browser.get(&format!("/console/users/{token}")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", page.html);
    assert!(!page.html.contains(script), "{}", page.html);
    assert!(!page.html.contains("\"><b>"), "{}", page.html);

    // An identity the form shows again is escaped in its attribute.
    let typed = "\"><script>alert(2)</script>";
    let found = browser.submit("/console/users/find", &[("mode", "login"), ("identity", typed)]).await;
    assert_eq!(found.status, 404, "{}", found.html);
    assert!(!found.html.contains("<script>alert(2)"), "{}", found.html);
    assert!(found.html.contains(&escaped(typed)), "{}", found.html);
});
