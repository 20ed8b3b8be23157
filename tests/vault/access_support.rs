//! Helpers of the access control tests: roles with their policies, role and user access tokens,
//! and users seeded with a record of every kind.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::common::{Answer, TestVault};
use crate::files::b64;

/// The answer of a call a caller's policies refuse.
pub const API_DENIED: &str = "API access denied";
/// The answer of a call by a credential that does not authenticate (or that is not an
/// administrator's where one is needed).
pub const ACCESS_DENIED: &str = "Access denied";

/// Creates a policy as root; its id.
pub async fn policy(v: &TestVault, name: &str, document: Value) -> i64 {
    let body = json!({"policyname": name, "policydesc": format!("{name} (test)"), "policy": document});
    v.call("PolicyCreate", body).await.ok()["policyid"].as_i64().expect("policyid")
}

/// Creates a role as root; its id.
pub async fn role(v: &TestVault, name: &str) -> i64 {
    v.call("RoleCreate", json!({"rolename": name})).await.ok()["roleid"].as_i64().expect("roleid")
}

/// Links a policy to a role as root.
pub async fn link(v: &TestVault, roleid: i64, policyid: i64) {
    v.call("RoleLinkPolicy", json!({"roleid": roleid, "policyid": policyid})).await.ok();
}

/// A role named `name` with one policy per document (named `<name>-<n>`); the role id and the
/// policy ids.
pub async fn role_with(v: &TestVault, name: &str, documents: &[Value]) -> (i64, Vec<i64>) {
    let roleid = role(v, name).await;
    let mut policies = Vec::new();
    for (n, document) in documents.iter().enumerate() {
        let policyid = policy(v, &format!("{name}-{n}"), document.clone()).await;
        link(v, roleid, policyid).await;
        policies.push(policyid);
    }
    (roleid, policies)
}

/// A role access token (default lifetime) for `roleid`, created as root.
pub async fn role_token(v: &TestVault, roleid: i64) -> String {
    let body = v.call("XTokenCreateForRole", json!({"roleid": roleid})).await.ok();
    body["xtoken"].as_str().expect("xtoken").to_owned()
}

/// A role with these policies and an access token acting as it: `(token, policy ids)`.
pub async fn role_xtoken(v: &TestVault, name: &str, documents: &[Value]) -> (String, Vec<i64>) {
    let (roleid, policies) = role_with(v, name, documents).await;
    (role_token(v, roleid).await, policies)
}

/// A user access token of the user whose token is `user`, created as root.
pub async fn user_xtoken(v: &TestVault, user: &str) -> String {
    let body = v.call("XTokenCreateForUser", json!({"mode": "token", "identity": user})).await.ok();
    assert_eq!(body["token"], user, "{body}");
    body["xtoken"].as_str().expect("xtoken").to_owned()
}

/// One Allow statement.
pub fn allow(actions: &[&str], resources: &[&str]) -> Value {
    json!({"Effect": "Allow", "Action": actions, "Resource": resources})
}

/// One Deny statement.
pub fn deny(actions: &[&str], resources: &[&str]) -> Value {
    json!({"Effect": "Deny", "Action": actions, "Resource": resources})
}

/// Calls `op` with `xtoken` (no tenant header).
pub async fn call_with(v: &TestVault, xtoken: &str, op: &str, body: Value) -> Answer {
    v.call_as(op, Some(xtoken), None, body).await
}

/// Asserts the answer of a call refused by policy.
#[track_caller]
pub fn assert_denied(answer: Answer) {
    answer.error(403, API_DENIED);
}

/// `{"mode": "token", "identity": token}` with the fields of `extra`.
pub fn by_token(token: &str, extra: Value) -> Value {
    let mut body = json!({"mode": "token", "identity": token});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body
}

/// A user with a record of every kind, and the handles that name them.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub token: String,
    pub email: String,
    pub login: String,
    pub custom: String,
    pub appname: String,
    pub sessionuuid: String,
    pub recorduuid: String,
    pub fileuuid: String,
    pub requestuuid: String,
    pub brief: String,
    /// Audit events of the user (newest first).
    pub events: Vec<String>,
}

impl Seeded {
    /// The user named by each of its identities, with `extra`.
    pub fn each(&self, extra: &Value) -> Vec<Value> {
        [("token", &self.token), ("email", &self.email), ("login", &self.login), ("custom", &self.custom)]
            .into_iter()
            .map(|(mode, identity)| {
                let mut body = extra.clone();
                body["mode"] = json!(mode);
                body["identity"] = json!(identity);
                body
            })
            .collect()
    }

    /// The user by token, with `extra`.
    pub fn me(&self, extra: Value) -> Value {
        by_token(&self.token, extra)
    }
}

/// Creates a user named `prefix` as root, with app data, a session, a shared record, a file,
/// an open update request and an agreement under its own legal basis.
pub async fn seed_user(v: &TestVault, prefix: &str) -> Seeded {
    let call = |op: &'static str, body: Value| async move { v.call(op, body).await.ok() };
    // Phone numbers are unique per tenant: each seeded user gets the next one.
    static PHONES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let phone = format!("+4477009{:05}", PHONES.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let (email, login, custom) = (format!("{prefix}@access.test"), format!("{prefix}-login"), format!("CUST-{prefix}"));
    let profile = json!({"email": email, "login": login, "phone": phone, "custom": custom,
                         "name": format!("{prefix} name"), "note": format!("{prefix} note")});
    let token = v.create_user(profile).await;
    let me = |extra: Value| by_token(&token, extra);
    let appname = format!("{prefix}_app");
    call("AppdataCreate", me(json!({"appname": appname, "appdata": {"secret": format!("{prefix} appdata")}}))).await;
    let sessionuuid = bunker::crypto::secrets::random_uuid_string();
    let sessiondata = json!({"login": login, "secret": format!("{prefix} session")});
    call("SessionUpsert", json!({"sessionuuid": sessionuuid, "sessiondata": sessiondata, "finaltime": "1h"})).await;
    let shared = call("SharedRecordCreate", me(json!({"fields": "name"}))).await;
    let filename = format!("{prefix}-file.pdf");
    let file = call("FileCreate", me(json!({"filename": filename, "filedata": b64(b"file content")}))).await;
    let request = call("UserUpdateRequest", me(json!({"profile": {"note": format!("{prefix} request")}}))).await;
    let brief = format!("{prefix}-basis");
    call("LegalBasisCreate", json!({"brief": brief, "basistype": "consent"})).await;
    call("AgreementAccept", me(json!({"brief": brief, "agreementmethod": "web"}))).await;
    let events = call("AuditListUserEvents", me(json!({"limit": 100}))).await;
    let events = events["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| row["auditeventuuid"].as_str().expect("uuid").to_owned())
        .collect();
    Seeded {
        token: token.clone(),
        email,
        login,
        custom,
        appname,
        sessionuuid,
        recorduuid: shared["recorduuid"].as_str().expect("recorduuid").to_owned(),
        fileuuid: file["fileuuid"].as_str().expect("fileuuid").to_owned(),
        requestuuid: request["requestuuid"].as_str().expect("requestuuid").to_owned(),
        brief,
        events,
    }
}

/// Every row of tenant `id` in every table that has a `tenant_id` (except `skip`), as text.
pub async fn tenant_rows(v: &TestVault, id: i64, skip: &[&str]) -> BTreeMap<String, Vec<String>> {
    use bunker::store::Db;
    use sqlx::Row as _;
    let mut rows = BTreeMap::new();
    for table in crate::tenants::tenant_tables(v).await {
        if skip.contains(&table.as_str()) {
            continue;
        }
        let text: Vec<String> = match v.db() {
            Db::Postgres(pool) => {
                let sql = format!("SELECT t::text FROM {table} t WHERE tenant_id = $1 ORDER BY 1");
                sqlx::query(&sql).bind(id).fetch_all(pool).await.expect("rows").iter().map(|r| r.get(0)).collect()
            }
            Db::Sqlite(pool) => {
                let columns: Vec<String> = sqlx::query("SELECT name FROM pragma_table_info($1)")
                    .bind(&table)
                    .fetch_all(pool)
                    .await
                    .expect("columns")
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                let row = columns.iter().map(|c| format!("quote(\"{c}\")")).collect::<Vec<_>>().join(" || '|' || ");
                let sql = format!("SELECT {row} FROM {table} WHERE tenant_id = $1 ORDER BY 1");
                sqlx::query(&sql).bind(id).fetch_all(pool).await.expect("rows").iter().map(|r| r.get(0)).collect()
            }
        };
        rows.insert(table, text);
    }
    rows
}

/// The names of the tables whose rows differ between two [`tenant_rows`] snapshots.
pub fn changed_tables(before: &BTreeMap<String, Vec<String>>, after: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    before.iter().filter(|(table, rows)| after.get(*table) != Some(rows)).map(|(table, _)| table.clone()).collect()
}
