//! Format-preserving tokens: shapes of tokenbases, unique tokens, lookups and deletes by either
//! handle, lifetimes, bulk creation, collisions, validation, access and encryption at rest.

use bunker::tenants::TenantId;
use std::sync::Arc;

use bunker::http::RequestContext;
use bunker::http::context::{Principal, PrincipalKind};
use bunker::tokens::service::{self, Options};
use bunker::tokens::{TokenType, TokenValue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::both;
use crate::common::{TestVault, assert_absent};

/// Luhn check, written independently of the vault's.
fn luhn(number: &str) -> bool {
    let sum: u32 = number
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 { [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][d as usize] } else { d }
        })
        .sum();
    sum % 10 == 0
}

/// `payload` followed by the digit that makes it pass the Luhn check.
fn with_check_digit(payload: &str) -> String {
    (0..10u8).map(|d| format!("{payload}{}", char::from(b'0' + d))).find(|n| luhn(n)).expect("a digit")
}

/// Random Luhn-valid card numbers of 12 to 19 digits (seeded: a failure can be replayed).
fn random_cards(count: usize, seed: u64) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|_| {
            let len = rng.gen_range(12..=19);
            let payload: String = (0..len - 1).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect();
            with_check_digit(&payload)
        })
        .collect()
}

/// Creates a token and returns `(tokenuuid, tokenbase)`.
async fn tokenize(v: &TestVault, body: Value) -> (String, String) {
    let answer = v.call("TokenCreate", body).await.ok();
    let field = |name: &str| answer[name].as_str().unwrap_or_else(|| panic!("{name}: {answer}")).to_owned();
    (field("tokenuuid"), field("tokenbase"))
}

/// A request context of the main tenant's root, for calling the service directly.
async fn root_context(v: &TestVault, operation: &'static str) -> RequestContext {
    let keys = v.state.tenant_keys(TenantId::new(1)).await.expect("keys");
    let principal = Arc::new(Principal::admin("test".into(), PrincipalKind::Root, TenantId::new(1)));
    RequestContext::new(TenantId::new(1), principal, operation, keys, v.clock().now_ms())
}

/// The uuids of the audit events of an operation, oldest first.
async fn event_uuids(v: &TestVault, operation: &str) -> Vec<String> {
    use sqlx::Row;
    let sql = "SELECT uuid FROM audit_events WHERE operation = $1 ORDER BY id";
    let rows = match v.db() {
        bunker::store::Db::Sqlite(pool) => sqlx::query(sql).bind(operation).fetch_all(pool).await.expect("events"),
        bunker::store::Db::Postgres(pool) => {
            let rows = sqlx::query(sql).bind(operation).fetch_all(pool).await.expect("events");
            return rows.iter().map(|row| row.try_get(0).expect("uuid")).collect();
        }
    };
    rows.iter().map(|row| row.try_get(0).expect("uuid")).collect()
}

/// The sealed details of an event, opened through the API.
async fn event_details(v: &TestVault, uuid: &str) -> Value {
    v.call("AuditGetEvent", json!({"auditeventuuid": uuid})).await.ok()["details"].clone()
}

fn card_value(card: &str) -> TokenValue {
    TokenValue::parse(TokenType::CreditCard, Some(bunker::http::lenient::Text(card.to_owned()))).expect("card")
}

both!(card_tokenbases_keep_length_pass_luhn_and_differ_from_the_card, |v| {
    let cards = random_cards(2_000, 0x5eed);
    let records: Vec<Value> = cards.iter().map(|c| json!({"tokentype": "creditcard", "record": c})).collect();
    let body = v.call("TokenCreateBulk", json!({"records": records})).await.ok();
    assert_eq!(body["num"], 2_000);
    assert_eq!(body["summary"], json!({"created": 2_000, "duplicates": 0, "errors": 0, "total": 2_000}));
    let created = body["created"].as_array().expect("created");
    let mut bases = std::collections::HashSet::new();
    for (card, token) in cards.iter().zip(created) {
        let base = token["tokenbase"].as_str().expect("tokenbase");
        assert_eq!(base.len(), card.len(), "{token}");
        assert!(base.bytes().all(|b| b.is_ascii_digit()), "{token}");
        assert!(luhn(base), "{base} fails the Luhn check");
        assert_ne!(base, card);
        assert_eq!(token["record"], card.as_str());
        assert_eq!(token["tokentype"], "creditcard");
        assert!(bases.insert(base.to_owned()), "tokenbase {base} given twice");
    }
    // Every token resolves to its card, by tokenbase (2,000 references: more than one query).
    let ctx = root_context(v, "BulkListTokens").await;
    let references: Vec<String> = created.iter().map(|t| t["tokenbase"].as_str().expect("base").to_owned()).collect();
    let listed = service::list(&v.state, &ctx, &references).await.expect("list");
    let records: Vec<&str> = listed.iter().map(|t| t.record.as_str()).collect();
    assert_eq!(records, cards.iter().map(String::as_str).collect::<Vec<_>>());
    // Single creates too, at both ends of the length range.
    for card in [with_check_digit("41111111111"), with_check_digit("411111111111111111")] {
        let (_, base) = tokenize(v, json!({"tokentype": "creditcard", "record": card})).await;
        assert_eq!(base.len(), card.len());
        assert!(luhn(&base) && base != card, "{base}");
    }
});

both!(tokens_resolve_by_either_handle_and_email_tokens_look_like_addresses, |v| {
    let (uuid, base) = tokenize(v, json!({"tokentype": "creditcard", "record": "4111 1111 1111 1111"})).await;
    assert!(bunker::crypto::secrets::is_uuid_shaped(&uuid), "{uuid}");
    for handle in [uuid.as_str(), base.as_str(), &uuid.to_uppercase(), &format!(" {base} ")] {
        let got = v.call("TokenGet", json!({"token": handle})).await.ok();
        // Separators are dropped: the record is the card's digits.
        assert_eq!(got["record"], "4111111111111111");
        assert_eq!((got["tokenuuid"].as_str(), got["tokenbase"].as_str()), (Some(uuid.as_str()), Some(base.as_str())));
        assert_eq!(got["tokentype"], "creditcard");
        assert_eq!(got["expirationtime"], 0);
    }
    let (email_uuid, email_base) =
        tokenize(v, json!({"tokentype": "email", "record": " Alice.Smith@Example.com "})).await;
    let (local, domain) = email_base.split_once('@').expect("an address");
    assert_eq!(domain, "token.invalid");
    assert!(!local.is_empty() && !local.contains("alice"), "{email_base}");
    let got = v.call("TokenGet", json!({"token": email_base.to_uppercase()})).await.ok();
    assert_eq!(
        (got["record"].as_str(), got["tokenuuid"].as_str()),
        (Some("Alice.Smith@Example.com"), Some(email_uuid.as_str()))
    );
    assert_eq!(got["tokentype"], "email");
    // Without `unique`, the same value gets a new token each time.
    let (again, again_base) = tokenize(v, json!({"tokentype": "creditcard", "record": "4111111111111111"})).await;
    assert_ne!((again.as_str(), again_base.as_str()), (uuid.as_str(), base.as_str()));
    for unknown in ["invalid-token", "5d3c1a2b-7e8f-4a9b-8c0d-1e2f3a4b5c6d", "4111111111111111", "nobody@token.invalid"]
    {
        v.call("TokenGet", json!({"token": unknown})).await.error(404, "Token not found");
    }
});

both!(unique_returns_the_same_token_and_restarts_its_lifetime, |v| {
    let card = "5467047429390590";
    let body = json!({"tokentype": "creditcard", "record": card, "unique": true, "finaltime": "1h"});
    let (uuid, base) = tokenize(v, body.clone()).await;
    let first = v.call("TokenGet", json!({"token": uuid})).await.ok()["expirationtime"].as_i64().expect("expiry");
    v.clock().advance(1_800);
    // The same card, written differently, is the same value.
    let mut grouped = body.clone();
    grouped["record"] = json!(format!("{} {} {} {}", &card[..4], &card[4..8], &card[8..12], &card[12..]));
    assert_eq!(tokenize(v, grouped).await, (uuid.clone(), base.clone()));
    let reset = v.call("TokenGet", json!({"token": base})).await.ok()["expirationtime"].as_i64().expect("expiry");
    assert!((reset - first - 1_800).abs() <= 2, "expiry {first} was not restarted: {reset}");
    // Past the first expiry, within the restarted one: still there.
    v.clock().advance(2_700);
    v.call("TokenGet", json!({"token": uuid})).await.ok();
    // A repeat in the same bulk call, and the existing token: duplicates answered with it.
    let records = json!([{"tokentype": "creditcard", "record": card}, {"tokentype": "creditcard", "record": card},
        {"tokentype": "email", "record": "bo@x.io"}, {"tokentype": "email", "record": "BO@x.io"}]);
    let bulk = v.call("TokenCreateBulk", json!({"records": records, "unique": true})).await.ok();
    assert_eq!(bulk["summary"], json!({"created": 1, "duplicates": 3, "errors": 0, "total": 4}), "{bulk}");
    assert_eq!(bulk["num"], 4);
    let created = bulk["created"].as_array().expect("created");
    assert!(created[..2].iter().all(|t| t["tokenuuid"] == uuid.as_str() && t["tokenbase"] == base.as_str()), "{bulk}");
    assert_eq!(created[2]["tokenuuid"], created[3]["tokenuuid"]);
    assert_eq!(created[3]["record"], "bo@x.io", "the existing token keeps its own record");
    // Not unique: a fresh token even though a unique one exists.
    let (other, _) = tokenize(v, json!({"tokentype": "creditcard", "record": card})).await;
    assert_ne!(other, uuid);
});

both!(deleting_by_either_handle_frees_the_value, |v| {
    let card = "5467047429390590";
    let unique = json!({"tokentype": "creditcard", "record": card, "unique": true});
    let (uuid, base) = tokenize(v, unique.clone()).await;
    v.call("TokenDelete", json!({"token": uuid})).await.ok();
    for handle in [&uuid, &base] {
        v.call("TokenGet", json!({"token": handle})).await.error(404, "Token not found");
        v.call("TokenDelete", json!({"token": handle})).await.error(404, "Token not found");
    }
    // The value can be tokenized afresh, in bulk too: no duplicate left behind.
    let bulk = v
        .call("TokenCreateBulk", json!({"records": [{"tokentype": "creditcard", "record": card}], "unique": true}))
        .await
        .ok();
    assert_eq!(bulk["summary"], json!({"created": 1, "duplicates": 0, "errors": 0, "total": 1}));
    let fresh = bulk["created"][0].clone();
    assert_ne!(fresh["tokenuuid"], uuid.as_str());
    assert_ne!(fresh["tokenbase"], base.as_str());
    // Deleting by tokenbase works the same way.
    v.call("TokenDelete", json!({"token": fresh["tokenbase"]})).await.ok();
    v.call("TokenGet", json!({"token": fresh["tokenuuid"]})).await.error(404, "Token not found");
    let (third, _) = tokenize(v, unique).await;
    assert_ne!(third, fresh["tokenuuid"].as_str().expect("uuid"));
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tokens").await, 1);
});

both!(lifetimes_expire_tokens_and_the_sweeper_erases_them, |v| {
    let (sliding, _) =
        tokenize(v, json!({"tokentype": "creditcard", "record": "4111111111111111", "slidingtime": "1h"})).await;
    let (fixed, fixed_base) =
        tokenize(v, json!({"tokentype": "email", "record": "eve@x.io", "unique": true, "finaltime": "2h"})).await;
    let (capped, _) =
        tokenize(v, json!({"tokentype": "creditcard", "record": "4111111111111111", "finaltime": "50y"})).await;
    let lasting = v.call("TokenGet", json!({"token": capped})).await.ok();
    let ten_years = 10 * 365 * 86_400;
    assert!((lasting["expirationtime"].as_i64().expect("expiry") - v.clock().now() - ten_years).abs() <= 2);
    assert_eq!(lasting["finaltime"], lasting["expirationtime"]);
    // Reading a sliding token restarts its period.
    v.clock().advance(3_000);
    let read = v.call("TokenGet", json!({"token": sliding})).await.ok();
    assert_eq!(read["slidingtime"], 3_600);
    v.clock().advance(3_000);
    v.call("TokenGet", json!({"token": sliding})).await.ok();
    v.clock().advance(3_601);
    v.call("TokenGet", json!({"token": sliding})).await.error(404, "Token not found");
    v.call("TokenDelete", json!({"token": sliding})).await.error(404, "Token not found");
    // The fixed token is gone too; its value gets a new unique token although the sweeper has
    // not run yet.
    v.call("TokenGet", json!({"token": fixed_base})).await.error(404, "Token not found");
    let (renewed, _) = tokenize(v, json!({"tokentype": "email", "record": "eve@x.io", "unique": true})).await;
    assert_ne!(renewed, fixed);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tokens").await, 3);
    let erased = bunker::retention::sweep_once(&v.state).await.expect("sweep").expect("lock");
    assert_eq!(erased.get(&TenantId::MAIN).map(|e| e.tokens), Some(1), "{erased:?}");
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tokens").await, 2);
    let sweeps = event_uuids(v, "RetentionSweep").await;
    assert_eq!(event_details(v, &sweeps[0]).await["extra"]["erased_tokens"], 1);
    let replaced = event_uuids(v, "TokenCreate").await;
    let details = event_details(v, replaced.last().expect("event")).await;
    assert_eq!(details["extra"]["expired_replaced"], 1, "{details}");
    v.call("TokenGet", json!({"token": renewed})).await.ok();
    v.call("TokenGet", json!({"token": capped})).await.ok();
});

both!(bulk_reports_errors_by_position_without_values, |v| {
    let body = v
        .call(
            "TokenCreateBulk",
            json!({"records": [
                {"tokentype": "creditcard", "record": "4532015112830366"},
                {"tokentype": "creditcard", "record": "4532-0151-1283-036x"},
                "4532015112830366",
                {"tokentype": "iban", "record": "DE89370400440532013000"},
                {"tokentype": "email", "record": "carol@x.io"},
                {"tokentype": "email", "record": "carol.x.io"},
                {"record": "4916338506082832"},
                {"tokentype": "creditcard", "record": 4916338506082832_u64},
            ], "finaltime": "30d"}),
        )
        .await
        .ok();
    assert_eq!(body["summary"], json!({"created": 3, "duplicates": 0, "errors": 5, "total": 8}), "{body}");
    assert_eq!(body["num"], 3);
    let created = body["created"].as_array().expect("created");
    let records: Vec<&str> = created.iter().filter_map(|t| t["record"].as_str()).collect();
    assert_eq!(records, ["4532015112830366", "carol@x.io", "4916338506082832"]);
    let errors = body["errors"].as_array().expect("errors");
    let indexes: Vec<u64> = errors.iter().filter_map(|e| e["index"].as_u64()).collect();
    assert_eq!(indexes, [1, 2, 3, 5, 6]);
    assert_eq!(errors[3]["reason"], "The record parameter is not an email address");
    assert_eq!(errors[4]["reason"], "Missing API request parameters: tokentype");
    let text = body["errors"].to_string();
    for value in ["4532", "DE89", "carol", "4916"] {
        assert!(!text.contains(value), "errors echo a value: {text}");
    }
    let got = v.call("TokenGet", json!({"token": created[2]["tokenbase"]})).await.ok();
    assert!(got["expirationtime"].as_i64().expect("expiry") > v.clock().now() + 29 * 86_400);
    // One event for the call, naming the tokens but not the values.
    let events = event_uuids(v, "TokenCreateBulk").await;
    assert_eq!(events.len(), 1);
    let details = event_details(v, &events[0]).await;
    assert_eq!((details["extra"]["records"].as_u64(), details["extra"]["errors"].as_u64()), (Some(8), Some(5)));
    assert_eq!(details["extra"]["tokens"][0]["tokenuuid"], created[0]["tokenuuid"]);
    assert!(!details.to_string().contains("4532015112830366"), "{details}");
    // A batch where nothing is valid is still answered, and audited.
    let none = v.call("TokenCreateBulk", json!({"records": [{"tokentype": "creditcard", "record": "12"}]})).await.ok();
    assert_eq!(none["summary"], json!({"created": 0, "duplicates": 0, "errors": 1, "total": 1}));
    assert_eq!(none["created"], json!([]));
    assert_eq!(event_uuids(v, "TokenCreateBulk").await.len(), 2);
});

both!(invalid_requests_are_400_and_never_echo_the_value, |v| {
    let cases = [
        ("TokenCreate", json!({"record": "4111111111111111"}), "Missing API request parameters: tokentype"),
        (
            "TokenCreate",
            json!({"tokentype": "ssn", "record": "078051120"}),
            "The tokentype parameter must be creditcard or email",
        ),
        ("TokenCreate", json!({"tokentype": "creditcard"}), "Missing API request parameters: record"),
        ("TokenCreate", json!({"tokentype": "creditcard", "record": ""}), "Missing API request parameters: record"),
        (
            "TokenCreate",
            json!({"tokentype": "email", "record": "dave.example.com"}),
            "The record parameter is not an email address",
        ),
        (
            "TokenCreate",
            json!({"tokentype": "creditcard", "record": "4111111111111111", "slidingtime": "soon"}),
            "The slidingtime parameter has an incorrect format",
        ),
        (
            "TokenCreate",
            json!({"tokentype": "creditcard", "record": "4111111111111111", "finaltime": "2020-01-01"}),
            "The finaltime parameter is in the past",
        ),
        (
            "TokenCreate",
            json!({"tokentype": "creditcard", "record": "4111111111111111", "unique": "perhaps"}),
            "The unique parameter has an incorrect format",
        ),
        (
            "TokenCreate",
            json!({"tokentype": "creditcard", "record": {"pan": "4111111111111111"}}),
            "The record parameter has an incorrect format",
        ),
        ("TokenGet", json!({}), "Missing API request parameters: token"),
        ("TokenGet", json!({"token": "  "}), "Missing API request parameters: token"),
        ("TokenDelete", json!({"token": null}), "Missing API request parameters: token"),
        ("TokenCreateBulk", json!({"records": []}), "Missing API request parameters: records"),
        ("TokenCreateBulk", json!({}), "Missing API request parameters: records"),
        (
            "TokenCreateBulk",
            json!({"records": {"tokentype": "creditcard"}}),
            "The records parameter has an incorrect format",
        ),
    ];
    for (op, body, message) in cases {
        v.call(op, body).await.error(400, message);
    }
    let card_message =
        "The record parameter is not a card number: 12 to 19 digits, optionally grouped by spaces or dashes";
    for bad in ["41111111111", "41111111111111111111", "4111x11111111111", "4111--1111-1111-1111", "٤١١١١١١١١١١١١١١١"]
    {
        let answer = v.call("TokenCreate", json!({"tokentype": "creditcard", "record": bad})).await;
        assert!(!answer.body.to_string().contains("1111"), "{}", answer.body);
        answer.error(400, card_message);
    }
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tokens").await, 0);
});

both!(token_operations_need_an_access_token, |v| {
    let (uuid, _) = tokenize(v, json!({"tokentype": "creditcard", "record": "4111111111111111"})).await;
    let calls = [
        ("TokenCreate", json!({"tokentype": "creditcard", "record": "4111111111111111"})),
        ("TokenCreateBulk", json!({"records": [{"tokentype": "creditcard", "record": "4111111111111111"}]})),
        ("TokenGet", json!({"token": uuid})),
        ("TokenDelete", json!({"token": uuid})),
    ];
    for (op, body) in calls {
        v.call_as(op, None, None, body.clone()).await.error(403, "Access denied");
        v.call_as(op, Some("5d3c1a2b-7e8f-4a9b-8c0d-1e2f3a4b5c6d"), None, body).await.error(403, "Access denied");
    }
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tokens").await, 1);
    v.call("TokenGet", json!({"token": uuid})).await.ok();
});

both!(values_and_handles_are_never_stored_in_clear, |v| {
    let cards = random_cards(5, 0xc1ea5);
    let mut handles = Vec::new();
    for (i, card) in cards.iter().enumerate() {
        handles.push(tokenize(v, json!({"tokentype": "creditcard", "record": card, "unique": i % 2 == 0})).await);
    }
    let records: Vec<Value> = cards.iter().map(|c| json!({"tokentype": "creditcard", "record": c})).collect();
    let bulk = v.call("TokenCreateBulk", json!({"records": records, "unique": true})).await.ok();
    assert_eq!(bulk["summary"]["duplicates"], 3);
    for token in bulk["created"].as_array().expect("created") {
        let field = |name: &str| token[name].as_str().expect("handle").to_owned();
        handles.push((field("tokenuuid"), field("tokenbase")));
    }
    let (email_uuid, email_base) = tokenize(v, json!({"tokentype": "email", "record": "zed.quist@x.io"})).await;
    handles.push((email_uuid, email_base));
    // Reads and deletes leave nothing in clear either.
    v.call("TokenGet", json!({"token": handles[0].1})).await.ok();
    v.call("TokenDelete", json!({"token": handles[1].0})).await.ok();
    let dump = v.dump().await;
    let mut secrets: Vec<&str> = cards.iter().map(String::as_str).collect();
    secrets.push("zed.quist@x.io");
    for (uuid, base) in &handles {
        secrets.push(uuid);
        secrets.push(base);
    }
    assert_absent(&dump, &secrets);
    // The audit trail holds handles and types, sealed: the values are nowhere in it.
    for op in ["TokenCreate", "TokenCreateBulk", "TokenGet", "TokenDelete"] {
        for uuid in event_uuids(v, op).await {
            let details = event_details(v, &uuid).await.to_string();
            assert!(cards.iter().all(|c| !details.contains(c.as_str())), "{op}: {details}");
            assert!(!details.contains("zed.quist"), "{op}: {details}");
        }
    }
    let get = event_uuids(v, "TokenGet").await;
    assert_eq!(event_details(v, &get[0]).await["extra"]["tokenuuid"], handles[0].0.as_str());
});

/// A generator that hands out a scripted sequence of tokenbases, then random ones.
fn scripted(script: Vec<&'static str>) -> impl FnMut(TokenType, usize) -> String + Send {
    let mut script = script.into_iter();
    move |kind, digits| script.next().map_or_else(|| bunker::tokens::base::random(kind, digits), str::to_owned)
}

both!(colliding_tokenbases_are_drawn_again, |v| {
    let options = Options { unique: false, lifetime: Default::default() };
    let ctx = root_context(v, "TokenCreate").await;
    let first = card_value("4111111111111111");
    let taken = "4000056655665556";
    let placed =
        service::create_many(&v.state, &ctx, std::slice::from_ref(&first), options, &mut scripted(vec![taken]))
            .await
            .expect("create");
    let original = placed[0].clone().expect("placed").token;
    assert_eq!(original.tokenbase, taken);
    // The next draw collides with it, and a draw equal to the card itself is never used.
    let second = card_value("5555555555554444");
    let ctx = root_context(v, "TokenCreate").await;
    let mut generator = scripted(vec![taken, "5555555555554444", "5105105105105100"]);
    let placed = service::create_many(&v.state, &ctx, std::slice::from_ref(&second), options, &mut generator)
        .await
        .expect("create");
    let redrawn = placed[0].clone().expect("placed").token;
    assert_eq!(redrawn.tokenbase, "5105105105105100");
    assert_eq!(redrawn.record, "5555555555554444");
    let got = v.call("TokenGet", json!({"token": taken})).await.ok();
    assert_eq!(
        (got["record"].as_str(), got["tokenuuid"].as_str()),
        (Some("4111111111111111"), Some(original.tokenuuid.as_str()))
    );
    assert_eq!(v.call("TokenGet", json!({"token": "5105105105105100"})).await.ok()["record"], "5555555555554444");
    // Within one batch, rows drawn alike are told apart too.
    let ctx = root_context(v, "TokenCreateBulk").await;
    let batch = [card_value("6011111111111117"), card_value("6011000990139424"), card_value("3530111333300000")];
    let mut generator = scripted(vec!["6011000000000004", "6011000000000004", "6011000000000004", taken]);
    let placed = service::create_many(&v.state, &ctx, &batch, options, &mut generator).await.expect("create");
    let bases: std::collections::HashSet<String> =
        placed.iter().map(|p| p.clone().expect("placed").token.tokenbase).collect();
    assert_eq!(bases.len(), 3);
    assert!(bases.contains("6011000000000004") && !bases.contains(taken), "{bases:?}");
    // A generator stuck on a taken tokenbase gives up: nothing is written, the call says so.
    let ctx = root_context(v, "TokenCreate").await;
    let mut stuck = move |_: TokenType, _: usize| taken.to_owned();
    let before = v.scalar("SELECT COUNT(*) FROM tokens").await;
    let placed = service::create_many(&v.state, &ctx, &[card_value("4242424242424242")], options, &mut stuck)
        .await
        .expect("create");
    assert!(placed[0].is_none());
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tokens").await, before);
});

both!(tokens_created_at_once_share_commits_each_with_its_own_event, |v| {
    // Concurrent TokenCreate calls go through the group commit: each gets its own token, every
    // one resolves to its own value, and each creation has its own event.
    let emails: Vec<String> = (0..48).map(|i| format!("person{i}@example.com")).collect();
    let calls = emails.iter().map(|email| {
        let body = json!({"tokentype": "email", "record": email});
        async move { (email.clone(), v.call("TokenCreate", body).await) }
    });
    let answers = futures::future::join_all(calls).await;
    let mut uuids = std::collections::HashSet::new();
    for (email, answer) in answers {
        let answer = answer.ok();
        let uuid = answer["tokenuuid"].as_str().expect("tokenuuid").to_owned();
        assert!(uuids.insert(uuid.clone()), "a tokenuuid handed out twice");
        let got = v.call("TokenGet", json!({"token": uuid})).await.ok();
        assert_eq!(got["record"], json!(email));
    }
    let sql = "SELECT COUNT(*) FROM audit_events WHERE operation = 'TokenCreate' AND http_status = 200";
    assert_eq!(v.scalar(sql).await, 48);
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tokens").await, 48);
});

both!(listing_and_deleting_by_references_through_the_service, |v| {
    let mut tokens = Vec::new();
    for card in ["4111111111111111", "5500005555555559", "378282246310005"] {
        tokens.push(tokenize(v, json!({"tokentype": "creditcard", "record": card})).await);
    }
    let (short, _) = tokenize(v, json!({"tokentype": "email", "record": "flo@x.io", "finaltime": "1h"})).await;
    v.clock().advance(3_601);
    let ctx = root_context(v, "BulkListTokens").await;
    let references: Vec<String> = vec![
        tokens[2].1.clone(),
        "not-a-token".into(),
        tokens[0].0.to_uppercase(),
        String::new(),
        tokens[2].0.clone(),
        short,
        tokens[1].1.clone(),
    ];
    let listed = service::list(&v.state, &ctx, &references).await.expect("list");
    let records: Vec<&str> = listed.iter().map(|t| t.record.as_str()).collect();
    assert_eq!(records, ["378282246310005", "4111111111111111", "5500005555555559"]);
    assert!(listed.iter().all(|t| t.tokentype == TokenType::CreditCard));
    assert_eq!(
        (listed[1].tokenuuid.as_str(), listed[1].tokenbase.as_str()),
        (tokens[0].0.as_str(), tokens[0].1.as_str())
    );
    assert!(service::list(&v.state, &ctx, &[]).await.expect("list").is_empty());

    let ctx = root_context(v, "BulkDeleteTokens").await;
    let gone = vec![tokens[0].1.clone(), tokens[1].0.clone(), tokens[1].1.clone(), "unknown".into()];
    assert_eq!(service::delete_list(&v.state, &ctx, &gone).await.expect("delete"), 2);
    let ctx = root_context(v, "BulkListTokens").await;
    let left = service::list(&v.state, &ctx, &references).await.expect("list");
    assert_eq!(left.iter().map(|t| t.record.as_str()).collect::<Vec<_>>(), ["378282246310005"]);
    let ctx = root_context(v, "BulkDeleteTokens").await;
    assert_eq!(service::delete_list(&v.state, &ctx, &gone).await.expect("delete"), 0);
    let deletes = event_uuids(v, "BulkDeleteTokens").await;
    assert_eq!(deletes.len(), 2);
    let details = event_details(v, &deletes[0]).await;
    assert_eq!((details["extra"]["tokens"].as_u64(), details["extra"]["deleted"].as_u64()), (Some(4), Some(2)));
});

both!(card_tokens_can_fail_luhn_and_start_with_a_reserved_prefix, |v| {
    // Today's shape stays the default.
    let cards = random_cards(20, 12);
    for card in &cards {
        let (_, base) = tokenize(v, json!({"tokentype": "creditcard", "record": card})).await;
        assert!(luhn(&base) && base.len() == card.len(), "{base}");
    }
    // Per token: Luhn-invalid, with or without a prefix; the length is the card's.
    for card in &cards {
        let (uuid, base) = tokenize(v, json!({"tokentype": "creditcard", "record": card, "luhn": "invalid"})).await;
        assert!(!luhn(&base) && base.len() == card.len(), "{base}");
        assert_eq!(v.call("TokenGet", json!({"token": base})).await.ok()["tokenuuid"], uuid.as_str());
        let body = json!({"tokentype": "creditcard", "record": card, "luhn": "Invalid", "prefix": "9990"});
        let (_, base) = tokenize(v, body).await;
        assert!(!luhn(&base) && base.len() == card.len() && base.starts_with("9990"), "{base}");
        let (_, base) = tokenize(v, json!({"tokentype": "creditcard", "record": card, "prefix": 81})).await;
        assert!(luhn(&base) && base.len() == card.len() && base.starts_with("81"), "{base}");
    }
    // The bulk call applies them to its card records; email records are unaffected.
    let mut records: Vec<Value> = cards.iter().map(|c| json!({"tokentype": "creditcard", "record": c})).collect();
    records.push(json!({"tokentype": "email", "record": "ann@example.com"}));
    let created = v
        .call("TokenCreateBulk", json!({"records": records, "luhn": "invalid", "prefix": "123456"}))
        .await
        .ok()["created"]
        .clone();
    for (token, card) in created.as_array().expect("created").iter().zip(&cards) {
        let base = token["tokenbase"].as_str().expect("tokenbase");
        assert!(!luhn(base) && base.len() == card.len() && base.starts_with("123456"), "{base}");
        assert_eq!(token["record"], card.as_str());
    }
    assert!(created[cards.len()]["tokenbase"].as_str().expect("email").ends_with("@token.invalid"));
    // Bad option values are 400, and nothing is created.
    let before = v.scalar("SELECT COUNT(*) FROM tokens").await;
    let luhn_message = "The luhn parameter must be valid or invalid";
    let prefix_message = "The prefix parameter must be 1 to 6 digits, not starting with 0";
    for (field, value, message) in [
        ("luhn", json!("no"), luhn_message),
        ("luhn", json!(""), luhn_message),
        ("prefix", json!("0999"), prefix_message),
        ("prefix", json!("1234567"), prefix_message),
        ("prefix", json!("12a"), prefix_message),
    ] {
        let mut body = json!({"tokentype": "creditcard", "record": "4111111111111111"});
        body[field] = value.clone();
        v.call("TokenCreate", body).await.error(400, message);
        let mut body = json!({"records": [{"tokentype": "creditcard", "record": "4111111111111111"}]});
        body[field] = value;
        v.call("TokenCreateBulk", body).await.error(400, message);
    }
    assert_eq!(v.scalar("SELECT COUNT(*) FROM tokens").await, before);
});

fn luhn_invalid_vault(_: &std::path::Path) -> bunker::state::Settings {
    use bunker::tokens::shape::{CardShape, Luhn, Prefix};
    let card_tokens = CardShape { luhn: Luhn::Invalid, prefix: Prefix::parse("99") };
    bunker::state::Settings { card_tokens, ..Default::default() }
}

both!(a_vault_setting_shapes_card_tokens_unless_a_call_overrides_it, settings = luhn_invalid_vault, |v| {
    for card in random_cards(30, 13) {
        let (_, base) = tokenize(v, json!({"tokentype": "creditcard", "record": card})).await;
        assert!(!luhn(&base) && base.len() == card.len() && base.starts_with("99"), "{base}");
        let body = json!({"tokentype": "creditcard", "record": card, "luhn": "valid", "prefix": "7"});
        let (_, base) = tokenize(v, body).await;
        assert!(luhn(&base) && base.len() == card.len() && base.starts_with('7'), "{base}");
    }
});
