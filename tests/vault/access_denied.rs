//! The denied path of every routed operation, for callers bound by policies: a role token whose
//! role has no policy, a user token aimed at another user's records (and at its own, where only
//! the operations a data subject may call on its record pass), and a role token allowed exactly
//! one operation. The operations come from the router's own list, so an operation added without
//! a row here fails the test by name.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::access_support::{
    ACCESS_DENIED, API_DENIED, Seeded, allow, call_with, changed_tables, policy, role, role_xtoken, seed_user,
    tenant_rows, user_xtoken,
};
use crate::both;
use crate::common::{Answer, TestVault};
use crate::files::b64;

// Operations no policy grants (administrators only, refused to any token bound by policies with
// "Access denied", as an administrator's rule refuses a non-administrator), and what a user's
// token may do on its own record without any policy (§1.7: reads, and the `*Request` variants of
// the changes a data subject must ask for): the vault's own lists, so the table checks them.
use bunker::access::catalogue::{ADMIN_ONLY, USER_OWN};

/// The checks of this file an operation can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    /// A user token on its own record.
    Own,
    /// A role allowed this one operation calls it.
    AllowedOne,
    /// A role limited to its group's members reaches nothing outside.
    GroupLimited,
}

/// Operations known to fail a check, with the ignored test that shows the bug (the check skips
/// them until the bug is fixed; every other check still covers them).
const KNOWN_BUGS: [(&str, Check, &str); 0] = [];

/// What the rows aim at besides the target user: the tenant's catalogue records.
struct World {
    unlock: String,
    groupid: i64,
    roleid: i64,
    policyid: i64,
    tokenuuid: String,
    activity: String,
    connectorid: i64,
    accountid: String,
}

/// Seeds the victim V, the caller U and the catalogue, every name ending in `tag`; both users
/// are members of the group.
async fn world(v: &TestVault, tag: &str) -> (World, Seeded, Seeded) {
    let victim = seed_user(v, &format!("victor{tag}")).await;
    let caller = seed_user(v, &format!("ursula{tag}")).await;
    let group = json!({"groupname": format!("club{tag}")});
    let groupid = v.call("GroupCreate", group).await.ok()["groupid"].as_i64().expect("groupid");
    let roleid = role(v, &format!("member{tag}")).await;
    for user in [&victim, &caller] {
        v.call("GroupAddUser", user.me(json!({"groupid": groupid}))).await.ok();
    }
    let policyid = policy(v, &format!("spare{tag}"), allow(&["UserGet"], &["users.profile.name"])).await;
    let created = v.call("TokenCreate", json!({"tokentype": "creditcard", "record": "4532015112830366"})).await.ok();
    let activity = format!("marketing{tag}");
    v.call("ProcessingActivityCreate", json!({"activity": activity})).await.ok();
    let unlock = v.call("BulkListUnlock", json!({})).await.ok()["unlockuuid"].as_str().expect("unlock").to_owned();
    // One connector serves every world (a tenant holds at most 100); one deleted is made again.
    let listed = v.call("ConnectorListConnectors", json!({})).await.ok();
    let connectorid = match listed["rows"][0]["connectorid"].as_i64() {
        Some(id) => id,
        None => {
            let connector = json!({"connectorname": format!("crm{tag}"), "connectortype": "postgresql",
                                   "dbhost": "127.0.0.1", "dbname": "crm", "tablename": "customers",
                                   "username": "crm", "apikey": "pw"});
            v.call("ConnectorCreate", connector).await.ok()["connectorid"].as_i64().expect("connectorid")
        }
    };
    let account =
        json!({"username": format!("clerk{tag}"), "email": format!("clerk{tag}@access.test"), "roleid": roleid});
    let account = crate::accounts::invited(v.call("AccountCreate", account).await);
    let world = World {
        unlock,
        groupid,
        roleid,
        policyid,
        tokenuuid: created["tokenuuid"].as_str().expect("tokenuuid").to_owned(),
        activity,
        connectorid,
        accountid: account["accountid"].as_str().expect("accountid").to_owned(),
    };
    (world, victim, caller)
}

/// Every routed operation with plausible requests aimed at `t`'s records (the first one is the
/// request of the single-operation round).
fn table(w: &World, t: &Seeded) -> Vec<(&'static str, Vec<Value>)> {
    let each = |extra: Value| t.each(&extra);
    let one = |body: Value| vec![body];
    let patch = json!([{"op": "add", "path": "/probe", "value": 1}]);
    let unlocked = |extra: Value| {
        let mut body = extra;
        body["unlockuuid"] = json!(w.unlock);
        vec![body]
    };
    vec![
        ("UserCreate", one(json!({"profile": {"login": "probe-login"}}))),
        ("UserGet", each(json!({}))),
        ("UserUpdate", each(json!({"profile": {"probe": 1}}))),
        ("UserPatch", each(json!({"patch": patch}))),
        ("UserDelete", each(json!({}))),
        ("UserListVersions", each(json!({}))),
        ("UserCreateBulk", one(json!({"records": [{"profile": {"login": "probe-bulk"}}]}))),
        ("UserDeleteBulk", one(json!({"users": [{"mode": "token", "identity": t.token}]}))),
        ("AppdataCreate", each(json!({"appname": "probe_app", "appdata": {"probe": 1}}))),
        ("AppdataGet", each(json!({"appname": t.appname}))),
        ("AppdataUpdate", each(json!({"appname": t.appname, "appdata": {"probe": 1}}))),
        ("AppdataDelete", each(json!({"appname": t.appname}))),
        ("AppdataListUserAppNames", each(json!({}))),
        ("AppdataListVersions", each(json!({"appname": t.appname}))),
        ("AppdataListAppNames", one(json!({}))),
        ("AgreementAccept", each(json!({"brief": t.brief, "agreementmethod": "probe"}))),
        ("AgreementGet", each(json!({"brief": t.brief}))),
        ("AgreementCancel", each(json!({"brief": t.brief}))),
        ("AgreementListUserAgreements", each(json!({}))),
        ("AgreementRevokeAll", one(json!({"brief": t.brief}))),
        ("LegalBasisCreate", one(json!({"brief": "probe-basis"}))),
        ("LegalBasisUpdate", one(json!({"brief": t.brief, "fulldesc": "probe"}))),
        ("LegalBasisDelete", one(json!({"brief": t.brief}))),
        ("LegalBasisListAgreements", one(json!({}))),
        ("ProcessingActivityCreate", one(json!({"activity": "probe-activity"}))),
        ("ProcessingActivityUpdate", one(json!({"activity": w.activity, "title": "probe"}))),
        ("ProcessingActivityDelete", one(json!({"activity": w.activity}))),
        ("ProcessingActivityListActivities", one(json!({}))),
        ("ProcessingActivityLinkLegalBasis", one(json!({"activity": w.activity, "brief": t.brief}))),
        ("ProcessingActivityUnlinkLegalBasis", one(json!({"activity": w.activity, "brief": t.brief}))),
        ("SessionGet", one(json!({"sessionuuid": t.sessionuuid}))),
        ("SessionDelete", one(json!({"sessionuuid": t.sessionuuid}))),
        ("SessionListUserSessions", each(json!({}))),
        ("SessionUpsert", one(json!({"sessionuuid": t.sessionuuid, "sessiondata": {"probe": 1}}))),
        ("SharedRecordCreate", each(json!({"fields": "name"}))),
        ("TokenCreate", one(json!({"tokentype": "creditcard", "record": "4111111111111111"}))),
        ("TokenCreateBulk", one(json!({"records": [{"tokentype": "creditcard", "record": "4111111111111111"}]}))),
        ("TokenGet", one(json!({"token": w.tokenuuid}))),
        ("TokenDelete", one(json!({"token": w.tokenuuid}))),
        ("UserUpdateRequest", each(json!({"profile": {"probe": 1}}))),
        ("UserPatchRequest", each(json!({"patch": patch}))),
        ("UserDeleteRequest", each(json!({}))),
        ("AppdataUpdateRequest", each(json!({"appname": t.appname, "appdata": {"probe": 1}}))),
        ("AgreementCancelRequest", each(json!({"brief": t.brief}))),
        ("UserRequestGet", one(json!({"requestuuid": t.requestuuid}))),
        ("UserRequestListUserRequests", each(json!({}))),
        ("UserRequestApprove", one(json!({"requestuuid": t.requestuuid}))),
        ("UserRequestCancel", one(json!({"requestuuid": t.requestuuid, "reason": "probe"}))),
        ("BulkListUnlock", one(json!({}))),
        ("BulkListUsers", unlocked(json!({"users": [{"mode": "token", "identity": t.token}]}))),
        ("BulkListAllUsers", unlocked(json!({}))),
        ("BulkListAllUserRequests", unlocked(json!({}))),
        ("BulkListAllAuditEvents", unlocked(json!({}))),
        ("BulkListTokens", unlocked(json!({"tokens": [w.tokenuuid]}))),
        ("BulkDeleteTokens", unlocked(json!({"tokens": [w.tokenuuid]}))),
        ("BulkListFilesByTag", unlocked(json!({"tag": "probe-tag"}))),
        (
            "BulkListGroupUsers",
            [unlocked(json!({"groupid": w.groupid})), unlocked(json!({"groupname": "club"}))].concat(),
        ),
        ("UserSearch", unlocked(json!({"identity": t.email}))),
        ("AuditListUserEvents", each(json!({}))),
        ("AuditGetEvent", one(json!({"auditeventuuid": t.events.last()}))),
        ("AuditVerify", one(json!({}))),
        ("SystemGetUserReport", each(json!({}))),
        ("SystemGetUserHTMLReport", each(json!({}))),
        ("SystemGenerateWrappingKey", one(json!({"key1": "00", "key2": "00", "key3": "00"}))),
        ("SystemRotateMasterKey", one(json!({}))),
        ("SystemGetMasterKeyStatus", one(json!({}))),
        ("SystemRotateRecoveryKey", one(json!({"key1": "00", "key2": "00", "key3": "00"}))),
        ("SystemGetUserProfiles", unlocked(json!({"mode": "email", "identity": t.email}))),
        ("SystemSearchUserProfiles", unlocked(json!({"identity": t.login}))),
        ("SystemDeleteUserProfiles", unlocked(json!({"mode": "email", "identity": t.email}))),
        ("SystemRestoreUserProfile", unlocked(json!({"token": t.token, "tenantid": 1}))),
        ("SystemGetSystemStats", one(json!({}))),
        ("SystemSetLicenseKey", one(json!({"licensekey": "test-license-key-probe"}))),
        ("FileCreate", each(json!({"filename": "probe.txt", "filedata": b64(b"probe")}))),
        ("FileGet", each(json!({"fileuuid": t.fileuuid}))),
        ("FileListUserFiles", each(json!({}))),
        ("FileReplaceTags", each(json!({"fileuuid": t.fileuuid, "tags": ["probe"]}))),
        ("FileDelete", each(json!({"fileuuid": t.fileuuid}))),
        ("TenantCreate", one(json!({"tenantname": "probe-tenant"}))),
        ("TenantGet", one(json!({"tenantid": 1}))),
        ("TenantUpdate", one(json!({"tenantid": 1, "tenantorg": "probe"}))),
        ("TenantDelete", one(json!({"tenantname": "probe-tenant"}))),
        ("TenantListTenants", one(json!({}))),
        ("GroupCreate", one(json!({"groupname": "probe-group"}))),
        ("GroupGet", one(json!({"groupid": w.groupid}))),
        ("GroupUpdate", one(json!({"groupid": w.groupid, "groupdesc": "probe"}))),
        ("GroupDelete", one(json!({"groupid": w.groupid, "cascade": true}))),
        ("GroupListAllGroups", one(json!({}))),
        ("GroupListUserGroups", each(json!({}))),
        ("GroupAddUser", each(json!({"groupid": w.groupid, "roleid": w.roleid}))),
        ("GroupDeleteUser", each(json!({"groupid": w.groupid}))),
        ("RoleCreate", one(json!({"rolename": "probe-role"}))),
        ("RoleUpdate", one(json!({"roleid": w.roleid, "roledesc": "probe"}))),
        ("RoleDelete", one(json!({"roleid": w.roleid}))),
        ("RoleLinkPolicy", one(json!({"roleid": w.roleid, "policyid": w.policyid}))),
        ("PolicyCreate", one(json!({"policyname": "probe-policy", "policy": allow(&["UserGet"], &["*"])}))),
        ("PolicyUpdate", one(json!({"policyid": w.policyid, "policydesc": "probe"}))),
        ("PolicyGet", one(json!({"policyid": w.policyid}))),
        ("PolicyListAllPolicies", one(json!({}))),
        ("PolicyDelete", one(json!({"policyid": w.policyid, "force": true}))),
        ("XTokenCreateForRole", one(json!({"roleid": w.roleid}))),
        ("XTokenCreateForUser", each(json!({}))),
        ("PolicySimulate", one(json!({"roleid": w.roleid, "operation": "UserGet"}))),
        ("PolicyListEffectivePermissions", one(json!({"roleid": w.roleid}))),
        ("ConnectorListSupportedConnectors", one(json!({}))),
        (
            "ConnectorCreate",
            one(json!({"connectorname": "probe-connector", "connectortype": "mysql", "dbhost": "127.0.0.1",
                       "dbname": "probe", "tablename": "probe", "username": "probe", "apikey": "probe"})),
        ),
        ("ConnectorUpdate", one(json!({"connectorid": w.connectorid, "connectordesc": "probe"}))),
        ("ConnectorDelete", one(json!({"connectorid": w.connectorid}))),
        ("ConnectorListConnectors", one(json!({}))),
        ("ConnectorValidateConnectivity", one(json!({"connectorid": w.connectorid}))),
        ("ConnectorGetTableMetaData", one(json!({"connectorid": w.connectorid}))),
        ("ConnectorGetUserData", each(json!({"connectorid": w.connectorid}))),
        ("ConnectorGetUserExtraData", each(json!({"connectorid": w.connectorid}))),
        ("ConnectorDeleteUser", each(json!({"connectorid": w.connectorid, "dryrun": true}))),
        ("AccountCreate", one(json!({"username": "probe-account", "email": "probe@account.test", "roleid": w.roleid}))),
        ("AccountGet", one(json!({"accountid": w.accountid}))),
        ("AccountList", one(json!({}))),
        ("AccountUpdate", one(json!({"accountid": w.accountid, "status": "disabled"}))),
        ("AccountDelete", one(json!({"accountid": w.accountid}))),
    ]
}

/// The authenticated operations the router serves.
fn routed() -> BTreeSet<&'static str> {
    bunker::app::operations().iter().map(|op| op.name).collect()
}

/// Fails with the names of routed operations the table lacks, and of listed ones not routed.
fn assert_table_covers_routes(rows: &[(&'static str, Vec<Value>)]) {
    let listed: BTreeSet<&str> = rows.iter().map(|(op, _)| *op).collect();
    let routed = routed();
    let missing: Vec<_> = routed.difference(&listed).collect();
    assert!(missing.is_empty(), "routed operations missing from the access table: {missing:?}");
    let stale: Vec<_> = listed.difference(&routed).collect();
    assert!(stale.is_empty(), "operations in the access table that are not routed: {stale:?}");
    for list in [ADMIN_ONLY, USER_OWN] {
        let unknown: Vec<_> = list.iter().filter(|op| !routed.contains(*op)).collect();
        assert!(unknown.is_empty(), "listed here but not routed: {unknown:?}");
    }
}

#[test]
fn every_routed_operation_is_in_the_access_table() {
    let world = World {
        unlock: String::new(),
        groupid: 1,
        roleid: 1,
        policyid: 1,
        tokenuuid: String::new(),
        activity: String::new(),
        connectorid: 1,
        accountid: String::new(),
    };
    let nobody = Seeded {
        token: String::new(),
        email: String::new(),
        login: String::new(),
        custom: String::new(),
        appname: String::new(),
        sessionuuid: String::new(),
        recorduuid: String::new(),
        fileuuid: String::new(),
        requestuuid: String::new(),
        brief: String::new(),
        events: vec![String::new()],
    };
    assert_table_covers_routes(&table(&world, &nobody));
}

fn known_bug(op: &str, check: Check) -> bool {
    KNOWN_BUGS.iter().any(|(known, failed, _)| *known == op && *failed == check)
}

/// The refusal a token bound by policies gets for `op`.
fn refusal(op: &str) -> &'static str {
    if ADMIN_ONLY.contains(&op) { ACCESS_DENIED } else { API_DENIED }
}

/// `None` when `answer` is the refusal of `op`; what it was otherwise.
fn unless_refused(op: &str, answer: &Answer) -> Option<String> {
    let refused = answer.status.as_u16() == 403 && answer.body["message"] == refusal(op);
    (!refused).then(|| format!("{} {}", answer.status, answer.body))
}

/// Sends every request of the table with `xtoken`; the failures of the requests not refused.
async fn expect_all_refused(v: &TestVault, xtoken: &str, rows: &[(&'static str, Vec<Value>)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (op, bodies) in rows {
        for body in bodies {
            let answer = call_with(v, xtoken, op, body.clone()).await;
            if let Some(what) = unless_refused(op, &answer) {
                failures.push(format!("{op} {body}: not refused: {what}"));
            }
        }
    }
    failures
}

/// The tables a refused request writes: its audit event, and the event's place in the queue for
/// the chain.
const AUDIT_TRAIL: &[&str] = &["audit_events", "audit_unchained"];

both!(a_role_without_policies_is_refused_everything_and_changes_nothing, |v| {
    let (w, victim, _) = world(v, "").await;
    let rows = table(&w, &victim);
    assert_table_covers_routes(&rows);
    let (xtoken, _) = role_xtoken(v, "powerless", &[]).await;
    let before = tenant_rows(v, 1, AUDIT_TRAIL).await;
    let failures = expect_all_refused(v, &xtoken, &rows).await;
    let changed = changed_tables(&before, &tenant_rows(v, 1, AUDIT_TRAIL).await);
    assert!(failures.is_empty(), "{} requests of a powerless role:\n{}", failures.len(), failures.join("\n"));
    assert!(changed.is_empty(), "refused requests changed {changed:?}");
});

both!(an_account_session_of_a_role_without_policies_is_refused_everything_and_changes_nothing, |v| {
    let (w, victim, _) = world(v, "").await;
    let rows = table(&w, &victim);
    let roleid = role(v, "powerless").await;
    let account = json!({"username": "powerless", "email": "powerless@access.test", "roleid": roleid});
    let token = crate::accounts::invited(v.call("AccountCreate", account).await)["activationtoken"].clone();
    let password = "a quiet account's secret";
    v.call_as("AccountActivate", None, None, json!({"token": token, "password": password})).await.ok();
    let login = json!({"username": "powerless", "password": password});
    let session = v.call_as("AccountLogin", None, None, login).await.ok();
    let xtoken = session["xtoken"].as_str().expect("xtoken").to_owned();
    let before = tenant_rows(v, 1, AUDIT_TRAIL).await;
    let failures = expect_all_refused(v, &xtoken, &rows).await;
    let changed = changed_tables(&before, &tenant_rows(v, 1, AUDIT_TRAIL).await);
    assert!(failures.is_empty(), "{} requests of a powerless account:\n{}", failures.len(), failures.join("\n"));
    assert!(changed.is_empty(), "refused requests changed {changed:?}");
});

both!(a_user_token_is_refused_everything_on_another_users_records, |v| {
    let (w, victim, caller) = world(v, "").await;
    let rows = table(&w, &victim);
    let xtoken = user_xtoken(v, &caller.token).await;
    let before = tenant_rows(v, 1, AUDIT_TRAIL).await;
    let failures = expect_all_refused(v, &xtoken, &rows).await;
    let changed = changed_tables(&before, &tenant_rows(v, 1, AUDIT_TRAIL).await);
    assert!(failures.is_empty(), "{} requests of U aimed at V:\n{}", failures.len(), failures.join("\n"));
    assert!(changed.is_empty(), "refused requests changed {changed:?}");
});

both!(a_user_token_on_its_own_record_calls_the_data_subjects_operations_only, |v| {
    let (w, _, caller) = world(v, "").await;
    let xtoken = user_xtoken(v, &caller.token).await;
    let mut failures = Vec::new();
    for (op, bodies) in table(&w, &caller) {
        if known_bug(op, Check::Own) {
            continue;
        }
        for body in bodies {
            let answer = call_with(v, &xtoken, op, body.clone()).await;
            if USER_OWN.contains(&op) {
                if answer.status.as_u16() != 200 {
                    failures.push(format!("{op} {body}: its own record refused: {} {}", answer.status, answer.body));
                }
            } else if let Some(what) = unless_refused(op, &answer) {
                failures.push(format!("{op} {body}: not refused: {what}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} requests of U on its own record:\n{}", failures.len(), failures.join("\n"));
});

/// The answer of a bulk call whose `unlockuuid` was issued to someone else (checked after the
/// access rules).
const FOREIGN_UNLOCK: &str = "The unlockuuid value was not found or is not valid";
/// The answer of a connector operation that passed the access rules and reached for a host the
/// vault's allow-list does not hold (the test vault lists none).
const HOST_REFUSED: &str = "The connector's host is not allowed";

both!(a_role_allowed_one_operation_calls_exactly_that_one, |v| {
    let mut failures = Vec::new();
    let (w, victim, _) = world(v, "").await;
    let operations: Vec<&str> = table(&w, &victim).into_iter().map(|(op, _)| op).collect();
    for (n, allowed) in operations.iter().enumerate() {
        // A world of its own: what the operations allowed before did to theirs is not in the way.
        let (w, victim, _) = world(v, &n.to_string()).await;
        let rows: Vec<(&str, Value)> =
            table(&w, &victim).into_iter().map(|(op, bodies)| (op, bodies[0].clone())).collect();
        let (xtoken, _) = role_xtoken(v, &format!("only-{allowed}"), &[allow(&[allowed], &["*"])]).await;
        for (op, body) in &rows {
            if op == allowed {
                continue;
            }
            let answer = call_with(v, &xtoken, op, body.clone()).await;
            if let Some(what) = unless_refused(op, &answer) {
                failures.push(format!("allowed {allowed} only, {op} {body}: not refused: {what}"));
            }
        }
        let request = &rows.iter().find(|(op, _)| op == allowed).expect("row").1;
        let answer = call_with(v, &xtoken, allowed, request.clone()).await;
        let passed = answer.status.as_u16() == 200
            || (answer.status.as_u16() == 403
                && [FOREIGN_UNLOCK, HOST_REFUSED].contains(&answer.body["message"].as_str().unwrap_or_default()));
        if ADMIN_ONLY.contains(allowed) {
            if let Some(what) = unless_refused(allowed, &answer) {
                failures.push(format!("{allowed} is for administrators, whatever a policy says: {what}"));
            }
        } else if !passed && !known_bug(allowed, Check::AllowedOne) {
            failures.push(format!("{allowed} {request}: allowed, but {} {}", answer.status, answer.body));
        }
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
});

/// The values of `t` that no answer to a caller refused its records may hold.
fn values_of(t: &Seeded) -> Vec<String> {
    let name = t.login.trim_end_matches("-login");
    vec![t.token.clone(), t.email.clone(), t.login.clone(), format!("{name} name"), format!("{name} note")]
}

/// What the vault holds about `t`, as root reads it (without what changes with every read).
async fn record_of(v: &TestVault, t: &Seeded) -> Value {
    let mut report = v.call("SystemGetUserReport", t.me(json!({}))).await.ok()["report"].clone();
    for volatile in ["generated", "audit"] {
        report.as_object_mut().expect("report").remove(volatile);
    }
    let groups = v.call("GroupListUserGroups", t.me(json!({}))).await.ok();
    json!({"report": report, "groups": groups["rows"]})
}

both!(a_role_limited_to_its_group_members_reaches_no_record_outside, |v| {
    let (w, victim, _) = world(v, "").await;
    let rows = table(&w, &victim);
    // Every operation, on the whole record of the members who hold the role "child" in a
    // group; the victim is in a group, but not as a child.
    let (xtoken, _) = role_xtoken(v, "guardian", &[allow(&["*"], &["${target_group_members:role/child}"])]).await;
    let handles = [&victim.token, &victim.sessionuuid, &victim.requestuuid, &victim.email, &victim.recorduuid];
    let handles: Vec<&String> = handles.into_iter().chain(victim.events.last()).collect();
    // The role may list: with a grant of its own, its listings are judged row by row.
    let unlock = call_with(v, &xtoken, "BulkListUnlock", json!({})).await.ok()["unlockuuid"].clone();
    let before = record_of(v, &victim).await;
    let secrets = values_of(&victim);
    let mut failures = Vec::new();
    for (op, bodies) in &rows {
        if known_bug(op, Check::GroupLimited) || ADMIN_ONLY.contains(op) {
            continue;
        }
        for body in bodies {
            let request = body.to_string();
            if !handles.iter().any(|handle| request.contains(handle.as_str())) {
                continue;
            }
            let mut body = body.clone();
            if body.get("unlockuuid").is_some() {
                body["unlockuuid"] = unlock.clone();
            }
            let answer = call_with(v, &xtoken, op, body.clone()).await;
            if unless_refused(op, &answer).is_none() {
                continue;
            }
            // A search or listing may answer, without the records outside the role's reach.
            let text = answer.body.to_string();
            let listing = ["BulkListUsers", "UserSearch"].contains(op);
            if !listing || answer.status.as_u16() != 200 || secrets.iter().any(|s| text.contains(s.as_str())) {
                failures.push(format!("{op} {body}: {} {text}", answer.status));
            }
        }
    }
    let after = record_of(v, &victim).await;
    for part in ["profile", "appdata", "agreements", "sessions", "sharedrecords", "requests", "files"] {
        if after["report"][part] != before["report"][part] {
            failures.push(format!(
                "the victim's {part} changed: {} became {}",
                before["report"][part], after["report"][part]
            ));
        }
    }
    if after != before {
        failures.push(format!("the victim's record changed:\n{before}\nbecame\n{after}"));
    }
    assert!(failures.is_empty(), "{} failures:\n{}", failures.len(), failures.join("\n"));
});

/// A role token that may do anything to the records of the members holding the role "child"
/// in a group (a user outside every group is beyond it).
async fn guardian(v: &TestVault) -> String {
    role_xtoken(v, "guardian", &[allow(&["*"], &["${target_group_members:role/child}"])]).await.0
}

both!(session_reads_and_writes_never_judge_the_sessions_user, |v| {
    let victim = seed_user(v, "victor").await;
    let sessions = || v.call("SessionListUserSessions", victim.me(json!({})));
    let before = sessions().await.ok();
    let session = json!({"sessionuuid": victim.sessionuuid});
    let own = user_xtoken(v, &victim.token).await;
    let got = call_with(v, &own, "SessionGet", session.clone()).await.ok();
    assert_eq!(got["sessiondata"]["secret"], "victor session");
    let (reader, _) = role_xtoken(v, "session-reader", &[allow(&["SessionGet"], &["*"])]).await;
    call_with(v, &reader, "SessionGet", session.clone()).await.ok();

    let guardian = guardian(v).await;
    let overwrite = json!({"sessionuuid": victim.sessionuuid, "sessiondata": {"login": victim.login}});
    for (op, body) in [("SessionUpsert", overwrite), ("SessionDelete", session)] {
        let answer = call_with(v, &guardian, op, body).await;
        assert_eq!(answer.status.as_u16(), 403, "{op} outside the role's group: {}", answer.body);
    }
    assert_eq!(sessions().await.ok(), before);
});

both!(an_audit_event_is_judged_as_a_read_of_its_user, |v| {
    let victim = seed_user(v, "victor").await;
    let created = victim.events.last().expect("the UserCreate event");
    let event = v.call("AuditGetEvent", json!({"auditeventuuid": created})).await.ok();
    assert_eq!(event["details"]["after"]["email"], victim.email, "the event holds the profile");
    let guardian = guardian(v).await;
    let answer = call_with(v, &guardian, "AuditGetEvent", json!({"auditeventuuid": created})).await;
    assert_eq!(answer.status.as_u16(), 403, "outside the role's group: {}", answer.body);
    let (names, _) = role_xtoken(v, "names", &[allow(&["AuditGetEvent"], &["users.profile.name"])]).await;
    let answer = call_with(v, &names, "AuditGetEvent", json!({"auditeventuuid": created})).await;
    assert!(!answer.body.to_string().contains(&victim.email), "a role seeing names reads emails: {}", answer.body);
});

both!(a_role_limited_to_its_group_mints_no_token_for_users_outside, |v| {
    let victim = seed_user(v, "victor").await;
    let guardian = guardian(v).await;
    let answer = call_with(v, &guardian, "XTokenCreateForUser", victim.me(json!({}))).await;
    assert_eq!(answer.status.as_u16(), 403, "a token for a user outside the role's group: {}", answer.body);
});
