//! The data subject portal's login (issue 19): `CaptchaCreate`, `UserPrelogin` and `UserLogin`.
//! Codes are read from a fake SMTP server; captchas whose answer a test must know are stored
//! through the store, as `CaptchaCreate` stores them (the image cannot be read here).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use base64::Engine as _;
use bunker::state::Settings;
use bunker::tenants::TenantId;
use serde_json::{Value, json};

use crate::both;
use crate::common::{Answer, TestVault, assert_absent};
use crate::fake_smtp::Inbox;

/// The answer of the captchas the tests store.
pub(crate) const ANSWER: &str = "Zq7xK";
/// The refusal of a wrong, used, expired or exhausted code.
const INVALID_CODE: &str = "The code is not valid or has expired";
/// A wrong, used or expired captcha: HTTP 200 with this error.
const CAPTCHA_ERROR: &str = "captcha-error";

/// The fake SMTP server shared by the tests of this process.
fn sink() -> &'static (u16, Inbox) {
    static SINK: OnceLock<(u16, Inbox)> = OnceLock::new();
    SINK.get_or_init(crate::fake_smtp::start)
}

/// The codes mailed to `email` so far, oldest first (a line of six digits, in the text or in a
/// base64 body).
pub(crate) fn codes_to(email: &str) -> Vec<String> {
    let mails = sink().1.lock().expect("inbox").clone();
    let email = email.to_lowercase();
    mails
        .iter()
        .filter(|mail| mail.to.iter().any(|t| t.to_lowercase().contains(&email)))
        .map(|mail| &mail.text)
        .filter_map(|text| {
            let body = text.split_once("\r\n\r\n").map_or(text.as_str(), |(_, body)| body);
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(body.lines().map(str::trim).filter(|l| *l != ".").collect::<String>())
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .unwrap_or_default();
            [body, decoded.as_str()]
                .iter()
                .flat_map(|t| t.lines())
                .map(str::trim)
                .find(|l| is_code(l))
                .map(str::to_owned)
        })
        .collect()
}

fn is_code(line: &str) -> bool {
    line.len() == 6 && line.bytes().all(|b| b.is_ascii_digit())
}

/// Waits up to 10 s for `count` codes mailed to `email`; all of them.
pub(crate) async fn wait_codes(email: &str, count: usize) -> Vec<String> {
    for _ in 0..100 {
        let codes = codes_to(email);
        if codes.len() >= count {
            return codes;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{count} codes expected for {email}, got {:?}", codes_to(email));
}

/// A fake SMS webhook shared by the tests of this process: every JSON body posted to it kept.
fn sms_sink() -> &'static (u16, Arc<Mutex<Vec<Value>>>) {
    static SINK: OnceLock<(u16, Arc<Mutex<Vec<Value>>>)> = OnceLock::new();
    SINK.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let posted = Arc::new(Mutex::new(Vec::new()));
        let kept = posted.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().route(
                    "/sms",
                    axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                        let kept = kept.clone();
                        async move {
                            kept.lock().expect("posted").push(body);
                            "queued"
                        }
                    }),
                );
                axum::serve(listener, app).await.expect("serve");
            });
        });
        (port, posted)
    })
}

pub(crate) fn settings(_: &std::path::Path) -> Settings {
    let mut settings = Settings::default();
    settings.accounts.mail = Some(bunker::accounts::MailSettings {
        url: format!("smtp://127.0.0.1:{}", sink().0),
        from: "portal@vault.test".to_owned(),
        console_url: "https://vault.test".to_owned(),
    });
    settings.portal.sms_webhook = Some(format!("http://127.0.0.1:{}/sms", sms_sink().0));
    settings.portal.per_address_per_minute = 20;
    settings.portal.codes_per_hour = 3;
    settings
}

/// An address no other test uses (the mail sink is shared).
pub(crate) fn new_email() -> String {
    format!("p{}@portal.test", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Stores a captcha in `tenant` whose answer is [`ANSWER`]; its id.
pub(crate) async fn captcha_in(v: &TestVault, tenant: TenantId) -> String {
    let keys = v.state.tenant_keys(tenant).await.expect("keys");
    let id = uuid::Uuid::new_v4().to_string();
    let digest = bunker::portal::captcha::answer_digest(&keys, &id, ANSWER);
    let now = v.clock().now();
    v.state.db.tenant(tenant).portal().insert_captcha(&id, &digest, now, now + 300, 10_000).await.expect("captcha");
    id
}

async fn prelogin(v: &TestVault, tenant: Option<&str>, mode: &str, identity: &str, id: &str, answer: &str) -> Answer {
    let body = json!({"mode": mode, "identity": identity, "code": answer, "captchacode": id});
    v.call_as("UserPrelogin", None, tenant, body).await
}

/// Asks for a code for `email` in the main tenant, with a right captcha.
async fn ask_code(v: &TestVault, email: &str) -> Value {
    let id = captcha_in(v, TenantId::MAIN).await;
    prelogin(v, None, "email", email, &id, ANSWER).await.ok()
}

async fn login(v: &TestVault, tenant: Option<&str>, email: &str, code: &str) -> Answer {
    v.call_as("UserLogin", None, tenant, json!({"mode": "email", "identity": email, "smscode": code})).await
}

#[track_caller]
fn captcha_refused(answer: Answer) {
    assert_eq!(answer.status.as_u16(), 200, "body: {}", answer.body);
    assert_eq!(answer.body, json!({"status": "error", "message": CAPTCHA_ERROR}));
}

/// Calls `op` from client address `peer`.
async fn from(v: &TestVault, peer: &str, op: &str, body: Option<Value>) -> Answer {
    let builder = Request::builder().method("POST").uri(format!("/v2/{op}")).header("content-type", "application/json");
    let mut request = builder.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).expect("request");
    let peer: SocketAddr = format!("{peer}:40000").parse().expect("peer");
    request.extensions_mut().insert(ConnectInfo(peer));
    v.send(request).await
}

both!(captchas_are_single_use_and_short_lived, settings = settings, |v| {
    let created = v.request("/v2/CaptchaCreate", None, None, None).await.ok();
    let id = created["captchaid"].as_str().expect("captchaid").to_owned();
    let png = base64::engine::general_purpose::STANDARD.decode(created["image"].as_str().expect("image")).expect("b64");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG image");
    let expiration = created["expiration"].as_i64().expect("expiration") - 300;
    assert!((v.clock().now() - 2..=v.clock().now()).contains(&expiration), "{created}");
    // Its answer is unknown here: a guess uses it up, and so does the right answer afterwards.
    captcha_refused(prelogin(v, None, "email", &new_email(), &id, "guess").await);
    captcha_refused(prelogin(v, None, "email", &new_email(), &id, "guess").await);

    // A right answer once only.
    let id = captcha_in(v, TenantId::MAIN).await;
    prelogin(v, None, "email", &new_email(), &id, &ANSWER.to_lowercase()).await.ok();
    captcha_refused(prelogin(v, None, "email", &new_email(), &id, ANSWER).await);

    // Expired after five minutes.
    let id = captcha_in(v, TenantId::MAIN).await;
    v.clock().advance(301);
    captcha_refused(prelogin(v, None, "email", &new_email(), &id, ANSWER).await);

    // Unknown or missing.
    captcha_refused(prelogin(v, None, "email", &new_email(), &uuid::Uuid::new_v4().to_string(), ANSWER).await);
    captcha_refused(v.call_as("UserPrelogin", None, None, json!({"mode": "email", "identity": "a@b.test"})).await);

    // Only email and phone, checked before the captcha is used.
    let id = captcha_in(v, TenantId::MAIN).await;
    for mode in ["login", "token", "custom"] {
        prelogin(v, None, mode, "someone", &id, ANSWER).await.error(400, "The mode parameter has an incorrect format");
    }
    let long = format!("{}@portal.test", "a".repeat(300));
    prelogin(v, None, "email", &long, &id, ANSWER).await.error(400, "The identity parameter has an incorrect format");
    prelogin(v, None, "email", &new_email(), &id, ANSWER).await.ok();
});

both!(a_code_logs_in_once, settings = settings, |v| {
    let email = new_email();
    let token = v.create_user(json!({"email": email, "name": "Portal Person"})).await;
    ask_code(v, &email).await;
    let code = wait_codes(&email, 1).await.remove(0);
    let logged = login(v, None, &email.to_uppercase(), &code).await.ok();
    assert_eq!(logged["token"], token.as_str());
    let xtoken = logged["xtoken"].as_str().expect("xtoken").to_owned();
    let expiration = logged["expiration"].as_i64().expect("expiration") - 600;
    assert!((v.clock().now() - 2..=v.clock().now()).contains(&expiration), "{logged}");
    // The login token reads its own record.
    let own = v.call_as("UserGet", Some(&xtoken), None, json!({"mode": "token", "identity": token})).await.ok();
    assert_eq!(own["profile"]["email"], email.as_str());
    // Used up.
    login(v, None, &email, &code).await.error(403, INVALID_CODE);
    // The user's trail has the code's issue and the login, never the code.
    let trail = v.call("AuditListUserEvents", json!({"mode": "token", "identity": token, "limit": 100})).await.ok();
    let text = trail.to_string();
    assert!(text.contains("UserPrelogin") && text.contains("UserLogin"), "{trail}");
    assert!(!text.contains(&code), "{trail}");
    // A code is required, and the mode must be one a code can go to.
    v.call_as("UserLogin", None, None, json!({"mode": "email", "identity": email}))
        .await
        .error(400, "Missing API request parameters: smscode");
    v.call_as("UserLogin", None, None, json!({"mode": "login", "identity": "x", "smscode": "123456"}))
        .await
        .error(400, "The mode parameter has an incorrect format");
});

both!(unknown_identities_get_the_same_answer, settings = settings, |v| {
    let (known, unknown) = (new_email(), new_email());
    v.create_user(json!({"email": known})).await;
    let a = ask_code(v, &known).await;
    let b = ask_code(v, &unknown).await;
    assert_eq!(a, b);
    wait_codes(&known, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(codes_to(&unknown).is_empty(), "nothing is sent for an unknown identity");
    // Logging in as an unknown identity is refused as a wrong code is.
    login(v, None, &unknown, "123456").await.error(403, INVALID_CODE);
});

both!(a_code_expires_after_five_minutes, settings = settings, |v| {
    let email = new_email();
    v.create_user(json!({"email": email})).await;
    ask_code(v, &email).await;
    let code = wait_codes(&email, 1).await.remove(0);
    v.clock().advance(301);
    login(v, None, &email, &code).await.error(403, INVALID_CODE);
});

both!(five_wrong_attempts_kill_a_code, settings = settings, |v| {
    let email = new_email();
    v.create_user(json!({"email": email})).await;
    ask_code(v, &email).await;
    let code = wait_codes(&email, 1).await.remove(0);
    let wrong = format!("{:06}", (code.parse::<u32>().expect("digits") + 1) % 1_000_000);
    for attempt in [wrong.as_str(), "12345", "abcdef", wrong.as_str(), wrong.as_str()] {
        login(v, None, &email, attempt).await.error(403, INVALID_CODE);
    }
    login(v, None, &email, &code).await.error(403, INVALID_CODE);
    // A new code replaces it, with its own attempts.
    ask_code(v, &email).await;
    let codes = wait_codes(&email, 2).await;
    login(v, None, &email, &wrong).await.error(403, INVALID_CODE);
    login(v, None, &email, &codes[1]).await.ok();
});

both!(codes_and_calls_are_rate_limited, settings = settings, |v| {
    // Per identity (3 codes an hour here), whether or not a user has it.
    let (known, unknown) = (new_email(), new_email());
    v.create_user(json!({"email": known})).await;
    for email in [&known, &unknown] {
        for _ in 0..3 {
            ask_code(v, email).await;
        }
        let id = captcha_in(v, TenantId::MAIN).await;
        let refused = prelogin(v, None, "email", email, &id, ANSWER).await;
        assert_eq!(refused.status.as_u16(), 429, "{}", refused.body);
    }
    ask_code(v, &new_email()).await;
    // Per client address (20 calls a minute here).
    for _ in 0..20 {
        from(v, "192.0.2.10", "CaptchaCreate", None).await.ok();
    }
    let refused = from(v, "192.0.2.10", "CaptchaCreate", None).await;
    assert_eq!(refused.status.as_u16(), 429, "{}", refused.body);
    let body = json!({"mode": "email", "identity": known, "smscode": "123456"});
    assert_eq!(from(v, "192.0.2.10", "UserLogin", Some(body)).await.status.as_u16(), 429);
    from(v, "192.0.2.11", "CaptchaCreate", None).await.ok();
});

both!(a_code_does_not_log_in_another_tenant, settings = settings, |v| {
    let name = format!("portal-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let tenant = v.call("TenantCreate", json!({"tenantname": name, "tenantorg": "Portal"})).await.ok();
    let admin = tenant["xtoken"].as_str().expect("xtoken").to_owned();
    let email = new_email();
    v.create_user(json!({"email": email})).await;
    v.call_as("UserCreate", Some(&admin), Some(&name), json!({"profile": {"email": email}})).await.ok();
    ask_code(v, &email).await;
    let code = wait_codes(&email, 1).await.remove(0);
    login(v, Some(&name), &email, &code).await.error(403, INVALID_CODE);
    // A captcha of one tenant is not one of another.
    let id = captcha_in(v, TenantId::MAIN).await;
    captcha_refused(prelogin(v, Some(&name), "email", &email, &id, ANSWER).await);
    login(v, None, &email, &code).await.ok();
});

both!(nothing_is_stored_in_clear, settings = settings, |v| {
    let email = new_email();
    v.create_user(json!({"email": email})).await;
    let pending = captcha_in(v, TenantId::MAIN).await;
    ask_code(v, &email).await;
    let code = wait_codes(&email, 1).await.remove(0);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM portal_codes").await, 1);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM portal_captchas").await, 1);
    let dump = v.dump().await;
    assert_absent(&dump, &[&code, ANSWER, &ANSWER.to_lowercase(), &email]);
    let _ = pending;
    login(v, None, &email, &code).await.ok();
    assert_eq!(v.scalar("SELECT COUNT(*) FROM portal_codes").await, 0);
    // The sweep removes what expired.
    captcha_in(v, TenantId::MAIN).await;
    v.clock().advance(301);
    bunker::store::portal::sweep_expired(v.db(), v.clock().now()).await.expect("sweep");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM portal_captchas").await, 0);
});

both!(a_code_goes_to_a_phone_through_the_sms_webhook, settings = settings, |v| {
    let digits: String = uuid::Uuid::new_v4().as_u128().to_string().chars().take(9).collect();
    let phone = format!("+447{digits}");
    let token = v.create_user(json!({"phone": phone})).await;
    let id = captcha_in(v, TenantId::MAIN).await;
    prelogin(v, None, "phone", &phone, &id, ANSWER).await.ok();
    let mut text = None;
    for _ in 0..100 {
        let posted = sms_sink().1.lock().expect("posted").clone();
        text = posted.iter().find(|p| p["to"] == phone.as_str()).and_then(|p| p["text"].as_str().map(str::to_owned));
        if text.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = text.expect("an SMS for the phone");
    let code = text.split(|c: char| !c.is_ascii_digit()).find(|w| is_code(w)).expect("a code").to_owned();
    let body = json!({"mode": "phone", "identity": phone, "smscode": code});
    assert_eq!(v.call_as("UserLogin", None, None, body.clone()).await.ok()["token"], token.as_str());
    v.call_as("UserLogin", None, None, body).await.error(403, INVALID_CODE);
});

both!(a_code_sent_twice_at_once_logs_in_once, settings = settings, |v| {
    let email = new_email();
    v.create_user(json!({"email": email})).await;
    ask_code(v, &email).await;
    let code = wait_codes(&email, 1).await.remove(0);
    let answers = futures::future::join_all((0..4).map(|_| login(v, None, &email, &code))).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status.as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 403), "{statuses:?}");
});
