//! The data subject's portal at `/portal/` (issue 19), driven as a browser would (the console
//! tests' cookie jar and forms): logging in with a captcha and a mailed code, the person's own
//! pages, asking for changes, erasure and a consent's withdrawal, downloads, and the session's
//! and forms' guards (cookie, CSRF and origin, another person's record, timeouts, erasure).

use bunker::tenants::TenantId;
use serde_json::json;

use crate::both;
use crate::common::TestVault;
use crate::console::{Browser, ORIGIN, Page};
use crate::portal_login::{ANSWER, new_email, settings, wait_codes};

/// The portal's session cookie.
const COOKIE: &str = "bunker_portal";
/// What the person is told after asking for a code, known address or not.
const CODE_SENT: &str = "If we know this address, a code is on its way. It works once, within 5 minutes.";

/// The value of the page's hidden field `name`.
fn field(page: &Page, name: &str) -> String {
    let marker = format!(r#"name="{name}" value=""#);
    let start = page.html.find(&marker).unwrap_or_else(|| panic!("no {name} field: {}", page.html)) + marker.len();
    let end = page.html[start..].find('"').expect("closing quote");
    page.html[start..start + end].to_owned()
}

/// Asks for a code for `email` through the login page, answering its captcha (whose answer the
/// test sets through the store, the image being unreadable here): the page answered.
async fn ask_code(browser: &mut Browser<'_>, v: &TestVault, email: &str) -> Page {
    let page = browser.get("/portal/login").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("data:image/png;base64,"), "no captcha image: {}", page.html);
    let id = field(&page, "captchaid");
    let portal = v.state.db.tenant(TenantId::MAIN).portal();
    let (_, expires_at) = portal.take_captcha(&id).await.expect("store").expect("the page's captcha is stored");
    let keys = v.state.tenant_keys(TenantId::MAIN).await.expect("keys");
    let digest = bunker::portal::captcha::answer_digest(&keys, &id, ANSWER);
    portal.insert_captcha(&id, &digest, v.clock().now(), expires_at, 10_000).await.expect("captcha");
    browser
        .submit(
            "/portal/login/code",
            &[("mode", "email"), ("identity", email), ("captchaid", &id), ("captcha", ANSWER)],
        )
        .await
}

/// Logs `email` in through the portal's pages: the person's browser, on their profile.
async fn log_in<'v>(v: &'v TestVault, email: &str) -> Browser<'v> {
    let mut browser = Browser::new(v);
    let before = crate::portal_login::codes_to(email).len();
    let sent = ask_code(&mut browser, v, email).await;
    assert_eq!(sent.status, 200, "{}", sent.html);
    assert_eq!(sent.notice(), Some(CODE_SENT), "{}", sent.html);
    let code = wait_codes(email, before + 1).await.pop().expect("a code");
    let page = browser.submit("/portal/login", &[("mode", "email"), ("identity", email), ("code", &code)]).await;
    page.redirects_to("/portal/profile");
    let profile = browser.get("/portal/profile").await;
    assert_eq!(profile.status, 200, "{}", profile.html);
    browser
}

/// A user with `email` and a name, and a consent to a fresh legal basis: (user token, brief).
async fn person(v: &TestVault, email: &str) -> (String, String) {
    let token = v.create_user(json!({"email": email, "name": "Ada Lovelace", "city": "London"})).await;
    let brief = format!("news{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let basis = json!({"brief": brief, "basistype": "consent", "status": "active", "shortdesc": "News by mail"});
    v.call("LegalBasisCreate", basis).await.ok();
    v.call("AgreementAccept", json!({"mode": "token", "identity": token, "brief": brief})).await.ok();
    (token, brief)
}

/// The person's requests as the root token sees them.
async fn requests_of(v: &TestVault, token: &str) -> Vec<serde_json::Value> {
    let answer = v.call("UserRequestListUserRequests", json!({"mode": "token", "identity": token})).await.ok();
    answer["rows"].as_array().cloned().unwrap_or_default()
}

both!(a_person_logs_in_with_a_mailed_code_and_sees_their_own_data, settings = settings, |v| {
    let email = new_email();
    let (token, _) = person(v, &email).await;
    // An address no user has gets the same page, and no code.
    let mut stranger = Browser::new(v);
    let unknown = new_email();
    let page = ask_code(&mut stranger, v, &unknown).await;
    assert_eq!((page.status, page.notice()), (200, Some(CODE_SENT)), "{}", page.html);
    // A wrong captcha is refused, and sends nothing.
    let page = stranger.get("/portal/login").await;
    let id = field(&page, "captchaid");
    let page = stranger
        .submit(
            "/portal/login/code",
            &[("mode", "email"), ("identity", &email), ("captchaid", &id), ("captcha", "nope")],
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.html);
    assert!(page.alert().is_some_and(|a| a.contains("did not match")), "{}", page.html);

    let mut browser = log_in(v, &email).await;
    assert!(crate::portal_login::codes_to(&unknown).is_empty(), "a code went to an unknown address");
    let cookie = page_cookie(&browser);
    let set = browser.get("/portal/profile").await;
    assert_eq!(set.status, 200);
    assert!(set.html.contains("Ada Lovelace") && set.html.contains(&email), "{}", set.html);
    // The session's secret opens nothing through the API: the portal alone may present it.
    let secret = cookie.split_once('.').expect("secret.token").0.to_owned();
    let direct = v.call_as("UserGet", Some(&secret), None, json!({"mode": "token", "identity": token})).await;
    assert!(matches!(direct.status.as_u16(), 401 | 403), "{}", direct.body);
    // Every page of theirs answers.
    for path in [
        "/portal/consents",
        "/portal/apps",
        "/portal/files",
        "/portal/sessions",
        "/portal/shared",
        "/portal/requests",
        "/portal/report",
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.html);
        assert!(page.html.contains(r#"aria-label="Your data""#), "{path}");
    }
    // The report downloads as JSON and HTML, with the person's data.
    let report = browser.get("/portal/report.json").await;
    assert_eq!(report.status, 200);
    let disposition = report.headers.get("content-disposition").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let parsed: serde_json::Value = serde_json::from_str(&report.html).expect("JSON report");
    assert_eq!(parsed["profile"]["email"], json!(email));
    let html = browser.get("/portal/report.html").await;
    assert!(html.html.contains("<html") && html.html.contains("Ada Lovelace"));
    // Logging out ends the session on the vault's side.
    browser.submit("/portal/logout", &[]).await.redirects_to("/portal/login?done=out");
    browser.cookies.insert(COOKIE.into(), cookie);
    browser.get("/portal/profile").await.redirects_to("/portal/login");
});

/// The session cookie of a logged-in browser, checked for its flags on the way.
fn page_cookie(browser: &Browser<'_>) -> String {
    browser.cookies.get(COOKIE).cloned().expect("the portal's session cookie")
}

both!(a_person_asks_for_changes_erasure_and_withdrawal_and_erasure_ends_the_portal, settings = settings, |v| {
    let email = new_email();
    let (token, brief) = person(v, &email).await;
    let mut browser = log_in(v, &email).await;

    // Withdrawing a consent files a request; the consent stays until it is approved.
    let consents = browser.get("/portal/consents").await;
    assert!(consents.html.contains(&format!(r#"aria-label="Withdraw consent {brief}""#)), "{}", consents.html);
    browser
        .submit("/portal/consents/withdraw", &[("brief", &brief)])
        .await
        .redirects_to("/portal/requests?done=withdraw");
    let page = browser.get("/portal/requests?done=withdraw").await;
    assert_eq!(page.notice(), Some("Your withdrawal is waiting for approval."));
    assert!(page.html.contains(&format!("Withdraw consent {brief}")), "{}", page.html);
    let agreement = v.call("AgreementGet", json!({"mode": "token", "identity": token, "brief": brief})).await.ok();
    assert_eq!(agreement["agreement"]["status"], "active");

    // A change of a field, and only of the fields changed.
    let profile = browser.get("/portal/profile").await;
    let city = profile.html.find(r#"name="field.city""#).expect("the city is offered for change");
    assert!(city > 0);
    let page = browser
        .submit(
            "/portal/profile/change",
            &[("field.name", "Ada Lovelace"), ("field.city", "Paris"), ("field.role", "admin")],
        )
        .await;
    page.redirects_to("/portal/requests?done=change");
    let rows = requests_of(v, &token).await;
    let change = rows.iter().find(|r| r["action"] == "change-profile").expect("a change request");
    let uuid = change["requestuuid"].as_str().expect("uuid").to_owned();
    let detail = v.call("UserRequestGet", json!({"requestuuid": uuid})).await.ok();
    let asked = detail.to_string();
    assert!(asked.contains("Paris") && !asked.contains("\"role\""), "{asked}");
    // The person can cancel a request of theirs.
    let page = browser.submit("/portal/requests/cancel", &[("requestuuid", &uuid)]).await;
    assert_eq!(page.notice(), Some("Your request is canceled."), "{}", page.html);

    // Erasure needs the box ticked, then waits for an administrator.
    let page = browser.submit("/portal/erase", &[]).await;
    assert!(page.alert().is_some_and(|a| a.starts_with("Tick the box")), "{}", page.html);
    assert!(!requests_of(v, &token).await.iter().any(|r| r["action"] == "forget-me"));
    browser.submit("/portal/erase", &[("confirm", "on")]).await.redirects_to("/portal/requests?done=erasure");
    let page = browser.get("/portal/requests?done=erasure").await;
    assert_eq!(page.notice(), Some("Your request to erase your data is waiting for approval."));
    assert!(page.html.contains("Erase my data"));
    let erasure = requests_of(v, &token).await.into_iter().find(|r| r["action"] == "forget-me").expect("forget-me");
    assert_eq!(erasure["status"], "open");
    v.call("UserRequestApprove", json!({"requestuuid": erasure["requestuuid"]})).await.ok();
    // The user is gone, and their session with them.
    browser.get("/portal/profile").await.redirects_to("/portal/login");
    assert!(!browser.cookies.contains_key(COOKIE), "the dead session's cookie is cleared");
});

both!(forms_need_their_token_and_origin_and_a_session_is_its_persons_alone, settings = settings, |v| {
    let email = new_email();
    let (token, _) = person(v, &email).await;
    let mut browser = log_in(v, &email).await;
    let csrf = browser.csrf.clone().expect("csrf");
    // No token, a wrong one, another origin: refused, nothing filed.
    browser.post("/portal/erase", &[("confirm", "on")], &[("origin", ORIGIN)]).await.refused_form();
    browser.post("/portal/erase", &[("csrf", "forged"), ("confirm", "on")], &[("origin", ORIGIN)]).await.refused_form();
    let elsewhere = [("origin", "http://evil.example")];
    browser.post("/portal/erase", &[("csrf", &csrf), ("confirm", "on")], &elsewhere).await.refused_form();
    assert!(requests_of(v, &token).await.is_empty());
    // The login's forms too.
    let mut stranger = Browser::new(v);
    stranger
        .post("/portal/login/code", &[("mode", "email"), ("identity", &email)], &[("origin", ORIGIN)])
        .await
        .refused_form();

    // A cookie naming another person's record gets nothing of theirs.
    let other_email = new_email();
    let (other, _) = person(v, &other_email).await;
    let cookie = page_cookie(&browser);
    let secret = cookie.split_once('.').expect("secret.token").0;
    browser.cookies.insert(COOKIE.into(), format!("{secret}.{other}"));
    let page = browser.get("/portal/profile").await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(!page.html.contains(&other_email));
    browser.cookies.insert(COOKIE.into(), cookie.clone());

    // A console session is no portal session, and a portal session no console one.
    let mut admin = Browser::root(v).await;
    let console_secret = admin.session().expect("console session");
    let mut forged = Browser::new(v);
    forged.cookies.insert(COOKIE.into(), format!("{console_secret}.{token}"));
    forged.get("/portal/profile").await.redirects_to("/portal/login");
    admin.cookies.insert("bunker_console".into(), secret.to_owned());
    admin.get("/console/users").await.redirects_to("/console/login");

    // The session ends after sitting unused, and at the login token's expiry.
    v.clock().advance(15 * 60 + 5);
    browser.get("/portal/profile").await.redirects_to("/portal/login");
    let mut again = log_in(v, &email).await;
    v.clock().advance(600 + 5);
    again.get("/portal/profile").await.redirects_to("/portal/login");
});

both!(the_portal_answers_with_strict_headers_and_cookies, settings = settings, |v| {
    let email = new_email();
    person(v, &email).await;
    let mut browser = Browser::new(v);
    let page = browser.get("/portal/login").await;
    let header = |name: &str| page.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert!(header("content-security-policy").starts_with("default-src 'none'"));
    assert_eq!(header("x-frame-options"), "DENY");
    assert_eq!(header("cache-control"), "no-store");
    let form_cookie = page.set_cookies("bunker_portal_form");
    assert!(form_cookie.iter().any(|c| c.contains("Path=/portal; HttpOnly; SameSite=Strict")), "{form_cookie:?}");
    let sent = ask_code(&mut browser, v, &email).await;
    assert_eq!(sent.status, 200);
    let code = wait_codes(&email, 1).await.pop().expect("code");
    let page = browser.submit("/portal/login", &[("mode", "email"), ("identity", &email), ("code", &code)]).await;
    let session = page.set_cookies(COOKIE);
    assert!(session.iter().any(|c| c.contains("Path=/portal; HttpOnly; SameSite=Strict; Max-Age=")), "{session:?}");
    // A wrong code is refused on the code page, with the vault's message.
    let mut other = Browser::new(v);
    ask_code(&mut other, v, &email).await;
    let page = other.submit("/portal/login", &[("mode", "email"), ("identity", &email), ("code", "000000")]).await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert_eq!(page.alert(), Some("The code is not valid or has expired"));
});
