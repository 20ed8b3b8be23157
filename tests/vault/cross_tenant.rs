//! The cross-tenant matrix (issue 13, §5): every routed operation, aimed by tenant A's admin and
//! by the main tenant's root at tenant B's records, answers nothing of B and changes nothing of
//! B. The operations come from the router's own lists, so an operation missing from the table
//! fails the test by name.
//!
//! Each request aimed at B is also sent with look-alike handles that exist nowhere (the
//! control): both must end the same way, so not even an existence oracle is left. B's access
//! tokens (a role's, a user's, an account's login session), sent by the callers with their own
//! tenant's header, are refused.

use std::collections::{BTreeMap, BTreeSet};

use axum::body::Body;
use axum::http::Request;
use base64::Engine;
use bunker::crypto::secrets::random_uuid_string;
use bunker::state::Settings;
use bunker::store::Db;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::both;
use crate::common::TestVault;

const A_NAME: &str = "tenant-alpha";
const B_NAME: &str = "tenant-bravo";
const MAIN_NAME: &str = "main";

/// B's values that no handle carries, each unique enough to be searched for in any answer.
const B_SECRETS: [&str; 16] = [
    "Ottoline Vexbridge",
    "profile-secret-marjoram",
    "appdata-secret-tamarind",
    "session-secret-cardamom",
    "request-secret-nutmeg",
    "basis-secret-sorrel",
    "agreement-secret-fennel",
    "activity-secret-borage",
    "org-secret-mugwort",
    "admin-secret@b-tenant.test",
    "group-secret-angelica",
    "attribute-secret-hyssop",
    "role-secret-chicory",
    "policy-secret-woodruff",
    "statement-secret-tansy",
    "connector-secret-galangal",
];
/// The first name of B's account.
const B_ACCOUNT_NAME: &str = "account-secret-caraway";
const B_PHONE_STORED: &str = "+44 7911 123456";
const B_CONTENT: &[u8] = b"file-secret-juniper-content";

/// Unlock grants outlive the whole matrix.
fn settings(_: &std::path::Path) -> Settings {
    Settings { bulk_unlock_ttl: 3_600, ..Settings::default() }
}

/// What a request can aim at: B's handles and values, or look-alikes that exist nowhere.
struct Target {
    tenantid: i64,
    tenantname: String,
    token: String,
    email: String,
    login: String,
    phone: String,
    custom: String,
    name: String,
    appname: String,
    sessionuuid: String,
    recorduuid: String,
    tokenuuid: String,
    tokenbase: String,
    card: String,
    fileuuid: String,
    filename: String,
    filedata: String,
    tag: String,
    requestuuid: String,
    brief: String,
    activity: String,
    events: Vec<String>,
    unlock: String,
    groupid: i64,
    groupname: String,
    roleid: i64,
    rolename: String,
    policyid: i64,
    policyname: String,
    connectorid: i64,
    connectorname: String,
    /// An administrator account (acting as the role), its password, a password reset token of it
    /// not used yet, and a session of it.
    accountid: String,
    accountname: String,
    accountemail: String,
    accountpassword: String,
    resettoken: String,
    account_xtoken: String,
    /// The activation token of an account invited and not activated yet.
    activation: String,
    /// An access token acting as the role, and one acting as the user.
    role_xtoken: String,
    user_xtoken: String,
}

impl Target {
    /// Handles of B's shape that no tenant holds.
    fn control(events: usize) -> Target {
        Target {
            tenantid: 999_999,
            tenantname: "tenant-nowhere".into(),
            token: random_uuid_string(),
            email: "control.person@c-tenant.test".into(),
            login: "control-c-login".into(),
            phone: "+447922654321".into(),
            custom: "CUST-CONTROL-4417".into(),
            name: "Control Person".into(),
            appname: "control_app".into(),
            sessionuuid: random_uuid_string(),
            recorduuid: random_uuid_string(),
            tokenuuid: random_uuid_string(),
            tokenbase: luhn("400000000000123"),
            card: luhn("455673758689985"),
            fileuuid: random_uuid_string(),
            filename: "control-file.pdf".into(),
            filedata: b64(b"control-file-content"),
            tag: "control-tag".into(),
            requestuuid: random_uuid_string(),
            brief: "basis-control".into(),
            activity: "activity-control".into(),
            events: (0..events).map(|_| random_uuid_string()).collect(),
            unlock: random_uuid_string(),
            groupid: 999_999,
            groupname: "apothecary-control".into(),
            roleid: 999_999,
            rolename: "herbalist-control".into(),
            policyid: 999_999,
            policyname: "policy-control".into(),
            connectorid: 999_999,
            connectorname: "connector-control".into(),
            accountid: random_uuid_string(),
            accountname: "control-account".into(),
            accountemail: "control.account@c-tenant.test".into(),
            accountpassword: "control account password".into(),
            resettoken: random_uuid_string().replace('-', ""),
            account_xtoken: random_uuid_string(),
            activation: random_uuid_string().replace('-', ""),
            role_xtoken: random_uuid_string(),
            user_xtoken: random_uuid_string(),
        }
    }

    /// The handles and values a request may carry (all of them B's, for B's target).
    fn values(&self) -> Vec<String> {
        let mut values = vec![
            &self.tenantname,
            &self.token,
            &self.email,
            &self.login,
            &self.phone,
            &self.custom,
            &self.name,
            &self.appname,
            &self.sessionuuid,
            &self.recorduuid,
            &self.tokenuuid,
            &self.tokenbase,
            &self.card,
            &self.fileuuid,
            &self.filename,
            &self.filedata,
            &self.tag,
            &self.requestuuid,
            &self.brief,
            &self.activity,
            &self.unlock,
            &self.groupname,
            &self.rolename,
            &self.policyname,
            &self.accountid,
            &self.accountname,
            &self.accountemail,
            &self.accountpassword,
            &self.resettoken,
            &self.account_xtoken,
            &self.activation,
            &self.role_xtoken,
            &self.user_xtoken,
        ];
        values.extend(&self.events);
        values.into_iter().cloned().collect()
    }
}

/// A caller of the matrix: tenant A's admin, or the main tenant's root, with records of its own.
struct Actor {
    token: String,
    /// Its tenant's name, sent as the header of a second call of each request (none: no such call).
    own: Option<&'static str>,
    user: String,
    brief: String,
    activity: String,
    unlock: String,
    /// Its group (its user a member, holding its role), role and policy (linked to the role).
    group: String,
    role: String,
    policy: String,
}

/// How a row relates to B.
enum Kind {
    /// Aimed at B's records through the handles it carries.
    Aimed,
    /// Takes no identity or handle: it reads or writes the caller's own tenant, checked for B's values.
    Own(&'static str),
    /// Administers tenants or the vault: refused to a tenant admin; the main tenant's root does
    /// it to any tenant by design, so the root round skips it.
    VaultAdmin(&'static str),
}

/// One operation of the table with the requests that aim it.
struct Row {
    op: &'static str,
    kind: Kind,
    bodies: Vec<Value>,
    /// Requests of the caller in its own tenant that undo what the row created there.
    cleanup: Vec<(&'static str, Value)>,
}

fn aimed(op: &'static str, bodies: Vec<Value>) -> Row {
    Row { op, kind: Kind::Aimed, bodies, cleanup: Vec::new() }
}

fn own(op: &'static str, reason: &'static str, bodies: Vec<Value>) -> Row {
    Row { op, kind: Kind::Own(reason), bodies, cleanup: Vec::new() }
}

fn admin(op: &'static str, reason: &'static str, bodies: Vec<Value>) -> Row {
    Row { op, kind: Kind::VaultAdmin(reason), bodies, cleanup: Vec::new() }
}

impl Row {
    fn cleanup(mut self, op: &'static str, body: Value) -> Row {
        self.cleanup.push((op, body));
        self
    }
}

/// `base` with the fields of `extra` added.
fn with(base: &Value, extra: &Value) -> Value {
    let mut body = base.clone();
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body
}

/// The user `token` addressed by token, with `extra`.
fn user(token: &str, extra: Value) -> Value {
    with(&json!({"mode": "token", "identity": token}), &extra)
}

/// The target's user addressed by each mode.
fn who(t: &Target) -> Vec<Value> {
    [("token", &t.token), ("email", &t.email), ("login", &t.login), ("phone", &t.phone), ("custom", &t.custom)]
        .into_iter()
        .map(|(mode, identity)| json!({"mode": mode, "identity": identity}))
        .collect()
}

/// The target's user by each mode, with `extra`.
fn each(t: &Target, extra: Value) -> Vec<Value> {
    who(t).iter().map(|w| with(w, &extra)).collect()
}

/// `each` followed by more bodies.
fn each_and(t: &Target, extra: Value, more: Vec<Value>) -> Vec<Value> {
    let mut bodies = each(t, extra);
    bodies.extend(more);
    bodies
}

/// Every routed operation, with the requests that aim it at `t` when called by `me`.
fn table(t: &Target, me: &Actor) -> Vec<Row> {
    let indexes = json!([{"profile": {"email": t.email}}, {"profile": {"login": t.login}},
                         {"profile": {"phone": t.phone}}, {"profile": {"custom": t.custom}}]);
    let indexed_users = json!({"users": who(t)});
    let probe_patch = json!([{"op": "add", "path": "/probe", "value": 1}]);
    let tokens = json!([t.tokenuuid, t.tokenbase]);
    let own_catalogue = "lists the caller's own tenant";
    // B's indexes, then B's group and role for the new user: refused before any user is created.
    let mut creates = indexes.as_array().cloned().unwrap_or_default();
    creates.extend([
        json!({"profile": {"probe": 1}, "groupid": t.groupid}),
        json!({"profile": {"probe": 1}, "groupname": t.groupname, "rolename": t.rolename}),
        json!({"profile": {"probe": 1}, "groupname": me.group, "roleid": t.roleid}),
    ]);
    let mut rows = vec![
        aimed("UserGet", each_and(t, json!({}), vec![user(&t.token, json!({"version": 1}))])),
        aimed("UserUpdate", each(t, json!({"profile": {"probe": 1}}))),
        aimed("UserPatch", each(t, json!({"patch": probe_patch}))),
        aimed("UserDelete", each(t, json!({}))),
        aimed("UserListVersions", each(t, json!({}))),
        // B's indexes are free in every other tenant: a conflict would tell that B holds them.
        aimed("UserCreate", creates).cleanup("UserDeleteBulk", indexed_users.clone()),
        aimed("UserCreateBulk", vec![json!({"records": indexes})]).cleanup("UserDeleteBulk", indexed_users.clone()),
        aimed("UserDeleteBulk", vec![indexed_users.clone()]),
        aimed("AppdataCreate", each(t, json!({"appname": t.appname, "appdata": {"probe": 1}}))),
        aimed(
            "AppdataGet",
            each_and(t, json!({"appname": t.appname}), vec![user(&me.user, json!({"appname": t.appname}))]),
        ),
        aimed("AppdataUpdate", each(t, json!({"appname": t.appname, "appdata": {"probe": 1}}))),
        aimed("AppdataDelete", each(t, json!({"appname": t.appname}))),
        aimed("AppdataListUserAppNames", each(t, json!({}))),
        aimed("AppdataListVersions", each(t, json!({"appname": t.appname}))),
        own("AppdataListAppNames", own_catalogue, vec![json!({})]),
    ];
    // B's user under the caller's own legal basis, B's basis under the caller's own user.
    let agreement = |extra: Value| {
        each_and(
            t,
            with(&json!({"brief": me.brief}), &extra),
            vec![
                user(&t.token, with(&json!({"brief": t.brief}), &extra)),
                user(&me.user, with(&json!({"brief": t.brief}), &extra)),
            ],
        )
    };
    rows.extend([
        aimed("AgreementAccept", agreement(json!({"agreementmethod": "probe"}))),
        aimed("AgreementGet", agreement(json!({}))),
        aimed("AgreementCancel", agreement(json!({}))),
        aimed("AgreementListUserAgreements", each(t, json!({}))),
        aimed("AgreementRevokeAll", vec![json!({"brief": t.brief})]),
        aimed("LegalBasisCreate", vec![json!({"brief": t.brief})])
            .cleanup("LegalBasisDelete", json!({"brief": t.brief})),
        aimed("LegalBasisUpdate", vec![json!({"brief": t.brief, "fulldesc": "probe"})]),
        aimed("LegalBasisDelete", vec![json!({"brief": t.brief})]),
        own("LegalBasisListAgreements", own_catalogue, vec![json!({})]),
        aimed("ProcessingActivityCreate", vec![json!({"activity": t.activity})])
            .cleanup("ProcessingActivityDelete", json!({"activity": t.activity})),
        aimed("ProcessingActivityUpdate", vec![json!({"activity": t.activity, "title": "probe"})]),
        aimed("ProcessingActivityDelete", vec![json!({"activity": t.activity})]),
        own("ProcessingActivityListActivities", own_catalogue, vec![json!({})]),
    ]);
    let links = vec![
        json!({"activity": t.activity, "brief": t.brief}),
        json!({"activity": me.activity, "brief": t.brief}),
        json!({"activity": t.activity, "brief": me.brief}),
    ];
    rows.extend([
        aimed("ProcessingActivityLinkLegalBasis", links.clone()),
        aimed("ProcessingActivityUnlinkLegalBasis", links),
        aimed(
            "SessionGet",
            vec![json!({"sessionuuid": t.sessionuuid}), json!({"sessionuuid": t.sessionuuid.to_uppercase()})],
        ),
        aimed("SessionDelete", vec![json!({"sessionuuid": t.sessionuuid})]),
        aimed("SessionListUserSessions", each(t, json!({}))),
        // B's session uuid names another session in another tenant; data naming B's user binds none.
        aimed(
            "SessionUpsert",
            vec![
                json!({"sessionuuid": t.sessionuuid, "sessiondata": {"probe": 1}}),
                json!({"sessionuuid": t.sessionuuid, "sessiondata": {"login": t.login, "email": t.email}}),
            ],
        )
        .cleanup("SessionDelete", json!({"sessionuuid": t.sessionuuid})),
        aimed(
            "SharedRecordCreate",
            each_and(t, json!({"fields": "name"}), vec![user(&t.token, json!({"appname": t.appname}))]),
        ),
        aimed(
            "SharedRecordGet",
            vec![json!({"recorduuid": t.recorduuid}), json!({"recorduuid": t.recorduuid.to_uppercase()})],
        ),
        // A unique token is unique per tenant: B's value must not bring back B's token.
        aimed("TokenCreate", vec![json!({"tokentype": "creditcard", "record": t.card, "unique": true})]),
        aimed(
            "TokenCreateBulk",
            vec![json!({"records": [{"tokentype": "creditcard", "record": t.card}], "unique": true})],
        ),
        aimed("TokenGet", vec![json!({"token": t.tokenuuid}), json!({"token": t.tokenbase})]),
        aimed("TokenDelete", vec![json!({"token": t.tokenuuid}), json!({"token": t.tokenbase})]),
        aimed("UserUpdateRequest", each(t, json!({"profile": {"probe": 1}}))),
        aimed("UserPatchRequest", each(t, json!({"patch": [{"op": "add", "path": "/probe", "value": 1}]}))),
        aimed("UserDeleteRequest", each(t, json!({}))),
        aimed("AppdataUpdateRequest", each(t, json!({"appname": t.appname, "appdata": {"probe": 1}}))),
        aimed(
            "AgreementCancelRequest",
            each_and(t, json!({"brief": me.brief}), vec![user(&t.token, json!({"brief": t.brief}))]),
        ),
        aimed("UserRequestGet", vec![json!({"requestuuid": t.requestuuid})]),
        aimed("UserRequestListUserRequests", each(t, json!({}))),
        aimed("UserRequestApprove", vec![json!({"requestuuid": t.requestuuid})]),
        aimed("UserRequestCancel", vec![json!({"requestuuid": t.requestuuid, "reason": "probe"})]),
    ]);
    // Bulk calls: with the caller's own grant, and with B's grant.
    let grants = [&me.unlock, &t.unlock];
    let by_grant = |extra: Value| grants.iter().map(|u| with(&json!({"unlockuuid": u}), &extra)).collect::<Vec<_>>();
    let mut searches: Vec<Value> = [&t.email, &t.login, &t.phone, &t.custom, &t.name, &t.email[..9].to_owned()]
        .into_iter()
        .map(|term| json!({"unlockuuid": me.unlock, "identity": term}))
        .collect();
    searches.extend([
        json!({"unlockuuid": me.unlock, "identity": t.login, "mode": "login"}),
        json!({"unlockuuid": me.unlock, "identity": t.custom, "mode": "custom"}),
        json!({"unlockuuid": me.unlock, "identity": t.token, "mode": "token"}),
        json!({"unlockuuid": t.unlock, "identity": t.email}),
    ]);
    let whole_tenant = "lists the caller's whole tenant with its own grant";
    rows.extend([
        own("BulkListUnlock", "grants the caller a listing of its own tenant", vec![json!({})]),
        aimed("BulkListUsers", by_grant(json!({"users": who(t)}))),
        aimed("BulkListAllUsers", vec![json!({"unlockuuid": t.unlock})]),
        own("BulkListAllUsers", whole_tenant, vec![json!({"unlockuuid": me.unlock, "limit": 100})]),
        aimed("BulkListAllUserRequests", vec![json!({"unlockuuid": t.unlock})]),
        own("BulkListAllUserRequests", whole_tenant, vec![json!({"unlockuuid": me.unlock, "limit": 100})]),
        aimed("BulkListAllAuditEvents", vec![json!({"unlockuuid": t.unlock})]),
        own("BulkListAllAuditEvents", whole_tenant, vec![json!({"unlockuuid": me.unlock, "limit": 100})]),
        aimed("BulkListTokens", by_grant(json!({"tokens": tokens}))),
        aimed("BulkDeleteTokens", by_grant(json!({"tokens": tokens}))),
        aimed("BulkListFilesByTag", by_grant(json!({"tag": t.tag}))),
        aimed("UserSearch", searches),
        aimed("AuditListUserEvents", each(t, json!({"limit": 100}))),
        aimed("AuditGetEvent", t.events.iter().map(|uuid| json!({"auditeventuuid": uuid})).collect()),
        own(
            "AuditVerify",
            "verifies the caller's own tenant's chain",
            vec![json!({}), json!({"fromseq": 1, "limit": 10})],
        ),
        aimed("SystemGetUserReport", each(t, json!({}))),
        aimed("SystemGetUserHTMLReport", each(t, json!({}))),
        admin(
            "SystemGenerateWrappingKey",
            "rotates the wrapping key of the whole vault",
            vec![json!({"key1": "00", "key2": "00", "key3": "00"})],
        ),
        admin(
            "SystemRotateRecoveryKey",
            "replaces the recovery shares of the whole vault",
            vec![json!({"key1": "00", "key2": "00", "key3": "00"})],
        ),
        admin(
            "SystemSetLicenseKey",
            "installs the licence of the whole vault",
            vec![json!({"licensekey": "test-license-key-probe"})],
        ),
    ]);
    let file = |extra: Value| user(&t.token, with(&json!({"fileuuid": t.fileuuid}), &extra));
    let mine = |extra: Value| user(&me.user, extra);
    rows.extend([
        aimed(
            "FileCreate",
            each_and(
                t,
                json!({"filename": "probe.txt", "filedata": b64(b"probe")}),
                vec![
                    // B's content under the caller's own user: de-duplication is per owner.
                    mine(json!({"filename": "probe.bin", "filedata": t.filedata})),
                ],
            ),
        ),
        aimed(
            "FileGet",
            each_and(
                t,
                json!({"fileuuid": t.fileuuid}),
                vec![
                    user(&t.token, json!({"filename": t.filename})),
                    file(json!({"raw": true})),
                    mine(json!({"fileuuid": t.fileuuid})),
                    mine(json!({"fileuuid": t.fileuuid, "raw": true})),
                    mine(json!({"filename": t.filename})),
                ],
            ),
        ),
        aimed("FileListUserFiles", each_and(t, json!({}), vec![user(&t.token, json!({"tag": t.tag}))])),
        aimed(
            "FileReplaceTags",
            each_and(
                t,
                json!({"fileuuid": t.fileuuid, "tags": ["probe"]}),
                vec![mine(json!({"fileuuid": t.fileuuid, "tags": ["probe"]}))],
            ),
        ),
        aimed("FileDelete", each_and(t, json!({"fileuuid": t.fileuuid}), vec![mine(json!({"fileuuid": t.fileuuid}))])),
    ]);
    let tenants = "administers tenants";
    rows.extend([
        admin("TenantCreate", tenants, vec![json!({"tenantname": t.tenantname, "tenantorg": "probe"})]),
        admin("TenantGet", tenants, vec![json!({"tenantid": t.tenantid}), json!({"tenantname": t.tenantname})]),
        admin("TenantUpdate", tenants, vec![json!({"tenantid": t.tenantid, "tenantorg": "probe"})]),
        admin("TenantDelete", tenants, vec![json!({"tenantid": t.tenantid})]),
        admin("TenantListTenants", tenants, vec![json!({})]),
        admin(
            "SystemRotateMasterKey",
            "rotates the master key of the tenant it names",
            vec![json!({"tenantid": t.tenantid}), json!({"tenantname": t.tenantname})],
        ),
        admin(
            "SystemGetMasterKeyStatus",
            "reads the key status of the tenant it names",
            vec![json!({"tenantid": t.tenantid}), json!({"tenantname": t.tenantname})],
        ),
        own(
            "SystemGetSystemStats",
            "counts the caller's own tenant's records (the vault's, numbers only, for the main tenant's root)",
            vec![json!({})],
        ),
        own("TenantGetUIConf", "shows the named tenant's public name (the caller's own here)", vec![json!({})]),
    ]);
    let vault_wide = "reaches the profiles of every tenant";
    rows.extend([
        admin(
            "SystemGetUserProfiles",
            vault_wide,
            vec![json!({"unlockuuid": me.unlock, "mode": "email", "identity": t.email})],
        ),
        admin("SystemSearchUserProfiles", vault_wide, vec![json!({"unlockuuid": me.unlock, "identity": t.email})]),
        admin(
            "SystemDeleteUserProfiles",
            vault_wide,
            vec![
                json!({"unlockuuid": me.unlock, "mode": "email", "identity": t.email}),
                json!({"unlockuuid": me.unlock, "mode": "token", "identity": t.token, "tenantid": t.tenantid}),
            ],
        ),
        admin(
            "SystemRestoreUserProfile",
            vault_wide,
            vec![json!({"unlockuuid": me.unlock, "token": t.token, "tenantname": t.tenantname})],
        ),
    ]);
    rows.extend(access_rows(t, me));
    rows
}

/// The access control rows: B's groups, roles, policies and access tokens, alone and mixed with
/// the caller's own.
fn access_rows(t: &Target, me: &Actor) -> Vec<Row> {
    let mine = |extra: Value| user(&me.user, extra);
    let own_catalogue = "lists the caller's own tenant";
    // A policy that names B's role: the name is free in every other tenant.
    let document = json!({"Effect": "Allow", "Principal": {"Role": t.rolename}, "Action": ["UserGet"],
                          "Resource": ["users.profile.name"]});
    let mut add_user = each(t, json!({"groupid": t.groupid, "roleid": t.roleid}));
    add_user.extend(each(t, json!({"groupname": me.group})));
    add_user.extend([
        mine(json!({"groupid": t.groupid})),
        mine(json!({"groupname": me.group, "roleid": t.roleid})),
        mine(json!({"groupname": me.group, "rolename": t.rolename})),
        mine(json!({"groupname": me.group, "role": t.rolename})),
    ]);
    let mut delete_user = each(t, json!({"groupname": me.group}));
    delete_user.extend([mine(json!({"groupid": t.groupid})), user(&t.token, json!({"groupid": t.groupid}))]);
    // Whose access is asked about: B's role, user and access tokens.
    let principals = || {
        let mut principals = vec![
            json!({"roleid": t.roleid}),
            json!({"rolename": t.rolename}),
            json!({"xtoken": t.role_xtoken}),
            json!({"xtoken": t.user_xtoken}),
        ];
        principals.extend(who(t));
        principals
    };
    let mut simulations: Vec<Value> = principals().iter().map(|p| with(p, &json!({"operation": "UserGet"}))).collect();
    // The caller's own role, asked about B's user and B's group.
    let asked = json!({"rolename": me.role, "operation": "UserGet"});
    simulations.extend(
        who(t).iter().map(|w| with(&asked, &json!({"targetmode": w["mode"], "targetidentity": w["identity"]}))),
    );
    simulations.extend([
        with(&asked, &json!({"operation": "BulkListGroupUsers", "groupid": t.groupid})),
        with(&asked, &json!({"operation": "BulkListGroupUsers", "groupname": t.groupname})),
    ]);
    let grants = [&me.unlock, &t.unlock];
    let by_grant = |extra: Value| grants.iter().map(|u| with(&json!({"unlockuuid": u}), &extra)).collect::<Vec<_>>();
    let mut members = by_grant(json!({"groupid": t.groupid}));
    members.extend(by_grant(json!({"groupname": t.groupname})));
    vec![
        // Parents first: the group made under B's name would otherwise be found by name.
        aimed(
            "GroupCreate",
            vec![
                json!({"groupname": "probe-group", "parentgroupid": t.groupid}),
                json!({"groupname": "probe-group", "parentgroupname": t.groupname}),
                json!({"groupname": t.groupname, "groupdesc": "probe", "attributes": {"probe": 1}}),
            ],
        )
        .cleanup("GroupDelete", json!({"groupname": t.groupname})),
        aimed("GroupGet", vec![json!({"groupid": t.groupid}), json!({"groupname": t.groupname})]),
        aimed(
            "GroupUpdate",
            vec![
                json!({"groupid": t.groupid, "groupdesc": "probe"}),
                json!({"groupname": t.groupname, "groupdesc": "probe"}),
                json!({"groupid": t.groupid, "groupname": "probe-group", "noparent": true}),
                json!({"groupname": me.group, "parentgroupid": t.groupid}),
                json!({"groupname": me.group, "parentgroupname": t.groupname}),
            ],
        ),
        aimed(
            "GroupDelete",
            vec![
                json!({"groupid": t.groupid}),
                json!({"groupname": t.groupname}),
                json!({"groupid": t.groupid, "cascade": true}),
            ],
        ),
        own("GroupListAllGroups", own_catalogue, vec![json!({})]),
        aimed("GroupListUserGroups", each(t, json!({}))),
        aimed("GroupAddUser", add_user),
        aimed("GroupDeleteUser", delete_user),
        aimed("BulkListGroupUsers", members),
        own(
            "BulkListGroupUsers",
            "lists the caller's own group with its own grant",
            vec![json!({"unlockuuid": me.unlock, "groupname": me.group})],
        ),
        aimed("RoleCreate", vec![json!({"rolename": t.rolename, "roledesc": "probe"})])
            .cleanup("RoleDelete", json!({"rolename": t.rolename})),
        aimed(
            "RoleUpdate",
            vec![
                json!({"roleid": t.roleid, "roledesc": "probe"}),
                json!({"rolename": t.rolename, "roledesc": "probe"}),
                json!({"roleid": t.roleid, "rolename": "probe-role"}),
            ],
        ),
        aimed("RoleDelete", vec![json!({"roleid": t.roleid}), json!({"rolename": t.rolename})]),
        aimed(
            "RoleLinkPolicy",
            vec![
                json!({"roleid": t.roleid, "policyid": t.policyid}),
                json!({"rolename": t.rolename, "policyname": t.policyname}),
                json!({"rolename": me.role, "policyid": t.policyid}),
                json!({"rolename": me.role, "policyname": t.policyname, "unlink": true}),
                json!({"roleid": t.roleid, "policyname": me.policy}),
                json!({"rolename": t.rolename, "policyname": me.policy, "unlink": true}),
            ],
        ),
        aimed("PolicyCreate", vec![json!({"policyname": t.policyname, "policydesc": "probe", "policy": document})])
            .cleanup("PolicyDelete", json!({"policyname": t.policyname, "force": true})),
        aimed(
            "PolicyUpdate",
            vec![
                json!({"policyid": t.policyid, "policydesc": "probe"}),
                json!({"policyname": t.policyname, "policydesc": "probe"}),
                json!({"policyid": t.policyid, "policyname": "probe-policy"}),
            ],
        ),
        aimed("PolicyGet", vec![json!({"policyid": t.policyid}), json!({"policyname": t.policyname})]),
        own("PolicyListAllPolicies", own_catalogue, vec![json!({})]),
        aimed(
            "PolicyDelete",
            vec![
                json!({"policyid": t.policyid}),
                json!({"policyname": t.policyname}),
                json!({"policyid": t.policyid, "force": true}),
            ],
        ),
        aimed("PolicySimulate", simulations),
        aimed("PolicyListEffectivePermissions", principals()),
        aimed(
            "XTokenCreateForRole",
            vec![json!({"roleid": t.roleid}), json!({"rolename": t.rolename, "finaltime": "1h"})],
        ),
        aimed("XTokenCreateForUser", each(t, json!({"finaltime": "1h"}))),
        own("ConnectorListSupportedConnectors", "the vault's own list", vec![json!({})]),
        aimed(
            "ConnectorCreate",
            vec![json!({"connectorname": t.connectorname, "connectortype": "mysql", "dbhost": "127.0.0.1",
                        "dbname": "probe", "tablename": "probe", "username": "probe", "apikey": "probe"})],
        )
        .cleanup("ConnectorDelete", json!({"connectorname": t.connectorname})),
        aimed(
            "ConnectorUpdate",
            vec![json!({"connectorid": t.connectorid, "connectordesc": "probe", "erasure": false})],
        ),
        aimed(
            "ConnectorDelete",
            vec![
                json!({"connectorid": t.connectorid}),
                json!({"connectorid": t.connectorid, "connectorname": t.connectorname}),
                json!({"connectorname": t.connectorname}),
            ],
        ),
        own("ConnectorListConnectors", own_catalogue, vec![json!({})]),
        aimed("ConnectorValidateConnectivity", vec![json!({"connectorid": t.connectorid})]),
        aimed("ConnectorGetTableMetaData", vec![json!({"connectorid": t.connectorid})]),
        aimed("ConnectorGetUserData", each(t, json!({"connectorid": t.connectorid}))),
        aimed("ConnectorGetUserExtraData", each(t, json!({"connectorid": t.connectorid}))),
        aimed("ConnectorDeleteUser", each(t, json!({"connectorid": t.connectorid, "dryrun": true}))),
        // B's username and address are free in every other tenant: a conflict would tell that B holds them.
        aimed(
            "AccountCreate",
            vec![
                json!({"username": t.accountname, "email": t.accountemail, "admin": true}),
                json!({"username": "probe-account", "email": "probe@own.test", "roleid": t.roleid}),
                json!({"username": "probe-account", "email": "probe@own.test", "rolename": t.rolename}),
            ],
        )
        .cleanup("AccountDelete", json!({"username": t.accountname})),
        aimed("AccountGet", vec![json!({"accountid": t.accountid}), json!({"username": t.accountname})]),
        aimed(
            "AccountUpdate",
            vec![
                json!({"accountid": t.accountid, "firstname": "probe"}),
                json!({"username": t.accountname, "status": "disabled"}),
                json!({"accountid": t.accountid, "resetpassword": true}),
                json!({"accountid": t.accountid, "totp": false}),
                json!({"accountid": t.accountid, "roleid": t.roleid}),
            ],
        ),
        aimed("AccountDelete", vec![json!({"accountid": t.accountid}), json!({"username": t.accountname})]),
        own("AccountList", own_catalogue, vec![json!({})]),
        // The public operations act in the tenant of the header (none: the main tenant).
        aimed("AccountActivate", vec![json!({"token": t.activation, "password": "probe account password"})]),
        aimed("AccountResetPassword", vec![json!({"token": t.resettoken, "password": "probe account password"})]),
        aimed("AccountLogin", vec![json!({"username": t.accountname, "password": t.accountpassword})]),
        aimed("AccountRequestPasswordReset", vec![json!({"email": t.accountemail})]),
        own("CaptchaCreate", "makes a captcha in the tenant of the header and names nothing", vec![json!({})]),
        aimed(
            "UserPrelogin",
            vec![
                json!({"mode": "email", "identity": t.email, "code": "probe", "captchacode": t.token}),
                json!({"mode": "phone", "identity": t.phone, "code": "probe", "captchacode": t.token}),
            ],
        ),
        aimed(
            "UserLogin",
            vec![
                json!({"mode": "email", "identity": t.email, "smscode": "123456"}),
                json!({"mode": "phone", "identity": t.phone, "smscode": "123456"}),
            ],
        ),
        own("AccountLogout", "ends the caller's own session (the callers have none)", vec![json!({})]),
        own(
            "AccountTotpEnroll",
            "enrolls the account of the caller's own session (the callers have none)",
            vec![json!({"password": t.accountpassword})],
        ),
        own(
            "AccountTotpConfirm",
            "confirms the account of the caller's own session (the callers have none)",
            vec![json!({"code": "123456"})],
        ),
    ]
}

/// The names of every routed operation, authenticated and public.
fn routed() -> BTreeSet<&'static str> {
    bunker::app::operations().iter().chain(bunker::app::public_operations().iter()).map(|op| op.name).collect()
}

fn public() -> BTreeSet<&'static str> {
    bunker::app::public_operations().iter().map(|op| op.name).collect()
}

/// Fails with the names of routed operations the table lacks, and of listed ones not routed.
fn assert_table_covers_routes(rows: &[Row]) {
    let listed: BTreeSet<&str> = rows.iter().map(|row| row.op).collect();
    let routed = routed();
    let missing: Vec<&&str> = routed.difference(&listed).collect();
    assert!(missing.is_empty(), "routed operations missing from the cross-tenant table: {missing:?}");
    let stale: Vec<&&str> = listed.difference(&routed).collect();
    assert!(stale.is_empty(), "operations in the cross-tenant table that are not routed: {stale:?}");
    for row in rows {
        assert!(!row.bodies.is_empty(), "{} has no request", row.op);
        if let Kind::Own(reason) | Kind::VaultAdmin(reason) = row.kind {
            assert!(!reason.is_empty(), "{} says why it takes no handle of B", row.op);
        }
    }
}

#[test]
fn every_routed_operation_is_in_the_table() {
    let me = Actor {
        token: String::new(),
        own: None,
        user: random_uuid_string(),
        brief: "basis-own".into(),
        activity: "activity-own".into(),
        unlock: random_uuid_string(),
        group: "group-own".into(),
        role: "role-own".into(),
        policy: "policy-own".into(),
    };
    assert_table_covers_routes(&table(&Target::control(2), &me));
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `payload` followed by its Luhn check digit (a card number or tokenbase look-alike).
fn luhn(payload: &str) -> String {
    let sum: u32 = payload
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 { [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][d as usize] } else { d }
        })
        .sum();
    format!("{payload}{}", (10 - sum % 10) % 10)
}

/// An answer, JSON or not (a raw `FileGet` is the file's bytes).
struct Reply {
    status: u16,
    text: String,
    json: Option<Value>,
}

impl Reply {
    /// The body of an ok answer.
    #[track_caller]
    fn ok(self) -> Value {
        assert_eq!(self.status, 200, "{}", self.text);
        self.json.expect("a JSON answer")
    }

    fn message(&self) -> Option<&str> {
        self.json.as_ref().and_then(|body| body["message"].as_str())
    }

    /// How the call ended, without what differs between equal outcomes (new uuids and ids, times).
    fn outcome(&self) -> Value {
        let mut out = json!({"httpstatus": self.status});
        if let Some(Value::Object(body)) = &self.json {
            for (key, value) in body {
                let volatile = key.contains("time")
                    || matches!(
                        key.as_str(),
                        "when" | "expiration" | "groupid" | "roleid" | "policyid" | "connectorid"
                    );
                let counted = (value.is_number() || value.is_boolean()) && !volatile;
                if counted || key == "message" || key == "status" || key == "summary" {
                    out[key] = value.clone();
                }
            }
        }
        out
    }
}

async fn send(v: &TestVault, op: &str, token: Option<&str>, tenant: Option<&str>, body: &Value) -> Reply {
    let mut request = Request::builder().method("POST").uri(format!("/v2/{op}"));
    request = request.header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("x-bunker-token", token);
    }
    if let Some(tenant) = tenant {
        request = request.header("x-bunker-tenant", tenant);
    }
    let request = request.body(Body::from(body.to_string())).expect("request");
    let response = v.app.clone().oneshot(request).await.expect("infallible");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    Reply { status, text: String::from_utf8_lossy(&bytes).into_owned(), json: serde_json::from_slice(&bytes).ok() }
}

/// B's values found in `answer` that the request did not carry itself.
fn leaked<'a>(needles: &'a [String], request: &str, answer: &str) -> Vec<&'a str> {
    let (request, answer) = (request.to_lowercase(), answer.to_lowercase());
    needles.iter().map(String::as_str).filter(|n| !request.contains(n) && answer.contains(n)).collect()
}

/// Tenant B, seeded with a record of every kind; returns B's target, B's token and every value
/// of B that must never reach another tenant.
async fn seed_b(v: &TestVault) -> (Target, String, Vec<String>) {
    let tenant = json!({"tenantname": B_NAME, "tenantorg": B_SECRETS[8], "email": B_SECRETS[9]});
    let created = send(v, "TenantCreate", Some(&v.root), None, &tenant).await.ok();
    let tenantid = created["tenantid"].as_i64().expect("tenantid");
    let xtoken = created["xtoken"].as_str().expect("xtoken").to_owned();
    let call = |op: &'static str, body: Value| {
        let xtoken = xtoken.clone();
        async move { send(v, op, Some(&xtoken), None, &body).await.ok() }
    };
    let (email, login, phone, custom) =
        ("wren.halvorsen@b-tenant.test", "quillon-b-login", "+447911123456", "CUST-ZEPHYR-9931");
    let profile = json!({"email": email, "login": login, "phone": B_PHONE_STORED, "custom": custom,
                         "name": B_SECRETS[0], "note": B_SECRETS[1]});
    let token = call("UserCreate", json!({"profile": profile})).await["token"].as_str().expect("token").to_owned();
    let me = |extra: Value| user(&token, extra);
    call("UserUpdate", me(json!({"profile": {"note2": B_SECRETS[1]}}))).await;
    let appname = "herbarium_b";
    call("AppdataCreate", me(json!({"appname": appname, "appdata": {"secret": B_SECRETS[2]}}))).await;
    call("AppdataUpdate", me(json!({"appname": appname, "appdata": {"more": B_SECRETS[2]}}))).await;
    let sessionuuid = random_uuid_string();
    let sessiondata = json!({"login": login, "secret": B_SECRETS[3]});
    call("SessionUpsert", json!({"sessionuuid": sessionuuid, "sessiondata": sessiondata, "finaltime": "1h"})).await;
    let shared = call("SharedRecordCreate", me(json!({"fields": "name,note"}))).await;
    let card = "4532015112830366";
    let created = call("TokenCreate", json!({"tokentype": "creditcard", "record": card, "unique": true})).await;
    let (filename, tag) = ("herbal-remedies-b.pdf", "saffron-b-tag");
    let file = call("FileCreate", me(json!({"filename": filename, "filedata": b64(B_CONTENT), "tags": [tag]}))).await;
    let request = call("UserUpdateRequest", me(json!({"profile": {"note": B_SECRETS[4]}}))).await;
    let (brief, activity) = ("basis-b-lovage", "activity-b-chervil");
    call("LegalBasisCreate", json!({"brief": brief, "basistype": "consent", "fulldesc": B_SECRETS[5]})).await;
    call("AgreementAccept", me(json!({"brief": brief, "agreementmethod": "web", "referencecode": B_SECRETS[6]}))).await;
    call("ProcessingActivityCreate", json!({"activity": activity, "title": B_SECRETS[7]})).await;
    call("ProcessingActivityLinkLegalBasis", json!({"activity": activity, "brief": brief})).await;
    let unlock = call("BulkListUnlock", json!({})).await["unlockuuid"].as_str().expect("unlockuuid").to_owned();
    // A role whose policy shows names, held by the user in a group; a token of each.
    let (groupname, rolename, policyname) = ("apothecary-b-guild", "herbalist-b-role", "policy-b-yarrow");
    let id = |answer: Value, key: &str| answer[key].as_i64().unwrap_or_else(|| panic!("{key}: {answer}"));
    let roleid = id(call("RoleCreate", json!({"rolename": rolename, "roledesc": B_SECRETS[12]})).await, "roleid");
    let document = json!({"Sid": B_SECRETS[14], "Effect": "Allow", "Action": ["UserGet", "BulkListGroupUsers"],
                          "Resource": ["users.profile.name", "${target_group_members}.profile.note"]});
    let policy = json!({"policyname": policyname, "policydesc": B_SECRETS[13], "policy": document});
    let policyid = id(call("PolicyCreate", policy).await, "policyid");
    call("RoleLinkPolicy", json!({"roleid": roleid, "policyid": policyid})).await;
    let group = json!({"groupname": groupname, "groupdesc": B_SECRETS[10], "attributes": {"code": B_SECRETS[11]}});
    let groupid = id(call("GroupCreate", group).await, "groupid");
    call("GroupAddUser", me(json!({"groupid": groupid, "roleid": roleid}))).await;
    let connectorname = "crm-b-cassia";
    let connector = json!({"connectorname": connectorname, "connectortype": "postgresql", "dbhost": "127.0.0.1",
                           "dbname": "crm", "tablename": "customers", "username": "crm", "apikey": "pw-b",
                           "connectordesc": B_SECRETS[15], "erasure": true, "reports": true});
    let connectorid = id(call("ConnectorCreate", connector).await, "connectorid");
    let xtoken_of = |answer: Value| answer["xtoken"].as_str().expect("xtoken").to_owned();
    // An account acting as the role, logged in, with a reset pending; another one invited.
    let (accountname, accountemail, accountpassword) =
        ("clove-b-account", "clove.account@b-tenant.test", "account-password-b-pimento");
    let account = json!({"username": accountname, "email": accountemail, "firstname": B_ACCOUNT_NAME,
                         "roleid": roleid});
    let invited = call("AccountCreate", account).await;
    let accountid = invited["accountid"].as_str().expect("accountid").to_owned();
    let activation = json!({"token": invited["activationtoken"], "password": accountpassword});
    send(v, "AccountActivate", None, Some(B_NAME), &activation).await.ok();
    let credentials = json!({"username": accountname, "password": accountpassword});
    let account_xtoken = xtoken_of(send(v, "AccountLogin", None, Some(B_NAME), &credentials).await.ok());
    let reset = call("AccountUpdate", json!({"accountid": accountid, "resetpassword": true})).await;
    let resettoken = reset["resettoken"].as_str().expect("resettoken").to_owned();
    let invitee = json!({"username": "anise-b-invitee", "email": "anise.invitee@b-tenant.test", "admin": true});
    let activation = call("AccountCreate", invitee).await["activationtoken"].as_str().expect("token").to_owned();
    let role_xtoken = xtoken_of(call("XTokenCreateForRole", json!({"roleid": roleid, "finaltime": "12h"})).await);
    let user_xtoken = xtoken_of(call("XTokenCreateForUser", me(json!({"finaltime": "12h"}))).await);
    let events = call("AuditListUserEvents", me(json!({"limit": 100}))).await;
    let uuids = |rows: &Value| -> Vec<String> {
        rows.as_array().expect("rows").iter().map(|r| r["auditeventuuid"].as_str().expect("uuid").to_owned()).collect()
    };
    let aimed_events = uuids(&events["rows"]).into_iter().take(4).collect();
    let b = Target {
        tenantid,
        tenantname: B_NAME.into(),
        token: token.clone(),
        email: email.into(),
        login: login.into(),
        phone: phone.into(),
        custom: custom.into(),
        name: B_SECRETS[0].into(),
        appname: appname.into(),
        sessionuuid,
        recorduuid: shared["recorduuid"].as_str().expect("recorduuid").into(),
        tokenuuid: created["tokenuuid"].as_str().expect("tokenuuid").into(),
        tokenbase: created["tokenbase"].as_str().expect("tokenbase").into(),
        card: card.into(),
        fileuuid: file["fileuuid"].as_str().expect("fileuuid").into(),
        filename: filename.into(),
        filedata: b64(B_CONTENT),
        tag: tag.into(),
        requestuuid: request["requestuuid"].as_str().expect("requestuuid").into(),
        brief: brief.into(),
        activity: activity.into(),
        events: aimed_events,
        unlock,
        groupid,
        groupname: groupname.into(),
        roleid,
        rolename: rolename.into(),
        policyid,
        policyname: policyname.into(),
        connectorid,
        connectorname: connectorname.into(),
        accountid,
        accountname: accountname.into(),
        accountemail: accountemail.into(),
        accountpassword: accountpassword.into(),
        resettoken,
        account_xtoken,
        activation,
        role_xtoken,
        user_xtoken,
    };
    // Every value of B: the handles, the secrets, what B's records derive from them (digests
    // of its profile and file), every audit event of the tenant, and B's admin token.
    let mut needles = b.values();
    needles.extend(B_SECRETS.iter().map(|s| (*s).to_owned()));
    needles.push(B_ACCOUNT_NAME.to_owned());
    needles.extend([B_PHONE_STORED.to_owned(), "447911123456".to_owned(), xtoken.clone()]);
    needles.push(String::from_utf8_lossy(B_CONTENT).into_owned());
    let report = call("SystemGetUserReport", me(json!({}))).await;
    needles.push(report["report"]["files"][0]["doublehash"].as_str().expect("doublehash").to_owned());
    let versions = call("UserListVersions", me(json!({}))).await;
    needles.extend(
        versions["versions"].as_array().expect("versions").iter().map(|r| r["md5"].as_str().expect("md5").to_owned()),
    );
    let all = call("BulkListAllAuditEvents", json!({"unlockuuid": b.unlock, "limit": 100})).await;
    needles.extend(uuids(&all["rows"]));
    let needles = needles.into_iter().map(|n| n.to_lowercase()).collect::<BTreeSet<_>>();
    (b, xtoken, needles.into_iter().collect())
}

/// Records of the caller's own (a user, a legal basis, an activity, a grant, a group with the user
/// in it holding a role, a policy linked to the role), so that its listings are not empty and
/// requests can mix its handles with B's.
async fn seed_actor(v: &TestVault, token: &str, own: Option<&'static str>, prefix: &str) -> Actor {
    let call = |op: &'static str, body: Value| async move { send(v, op, Some(token), None, &body).await.ok() };
    let profile =
        json!({"login": format!("{prefix}-own-login"), "email": format!("{prefix}@own.test"), "name": prefix});
    let user = call("UserCreate", json!({"profile": profile})).await["token"].as_str().expect("token").to_owned();
    call("AppdataCreate", json!({"mode": "token", "identity": user, "appname": "own_app", "appdata": {"a": 1}})).await;
    call("TokenCreate", json!({"tokentype": "creditcard", "record": "4111111111111111"})).await;
    let (brief, activity) = (format!("{prefix}-basis"), format!("{prefix}-activity"));
    call("LegalBasisCreate", json!({"brief": brief})).await;
    call("ProcessingActivityCreate", json!({"activity": activity})).await;
    let unlock = call("BulkListUnlock", json!({})).await["unlockuuid"].as_str().expect("unlockuuid").to_owned();
    let (group, role, policy) = (format!("{prefix}-group"), format!("{prefix}-role"), format!("{prefix}-policy"));
    call("GroupCreate", json!({"groupname": group})).await;
    call("RoleCreate", json!({"rolename": role})).await;
    let document = json!({"Effect": "Allow", "Action": ["UserGet"], "Resource": ["users.profile.name"]});
    call("PolicyCreate", json!({"policyname": policy, "policy": document})).await;
    call("RoleLinkPolicy", json!({"rolename": role, "policyname": policy})).await;
    call("GroupAddUser", json!({"mode": "token", "identity": user, "groupname": group, "rolename": role})).await;
    Actor { token: token.to_owned(), own, user, brief, activity, unlock, group, role, policy }
}

/// B as B sees it through its own token: every record, listing and catalogue.
async fn snapshot(v: &TestVault, xtoken: &str, b: &Target) -> BTreeMap<String, Value> {
    let me = |extra: Value| user(&b.token, extra);
    let reads = [
        ("UserGet", me(json!({}))),
        ("UserListVersions", me(json!({}))),
        ("AppdataGet", me(json!({"appname": b.appname}))),
        ("AppdataListVersions", me(json!({"appname": b.appname}))),
        ("AppdataListUserAppNames", me(json!({}))),
        ("AppdataListAppNames", json!({})),
        ("SessionGet", json!({"sessionuuid": b.sessionuuid})),
        ("SessionListUserSessions", me(json!({}))),
        ("TokenGet", json!({"token": b.tokenuuid})),
        ("BulkListTokens", json!({"unlockuuid": b.unlock, "tokens": [b.tokenbase]})),
        ("FileGet", me(json!({"fileuuid": b.fileuuid}))),
        ("FileListUserFiles", me(json!({}))),
        ("BulkListFilesByTag", json!({"unlockuuid": b.unlock, "tag": b.tag})),
        ("UserRequestGet", json!({"requestuuid": b.requestuuid})),
        ("UserRequestListUserRequests", me(json!({}))),
        ("BulkListAllUserRequests", json!({"unlockuuid": b.unlock})),
        ("AgreementGet", me(json!({"brief": b.brief}))),
        ("AgreementListUserAgreements", me(json!({}))),
        ("LegalBasisListAgreements", json!({})),
        ("ProcessingActivityListActivities", json!({})),
        ("BulkListAllUsers", json!({"unlockuuid": b.unlock})),
        ("SystemGetUserReport", me(json!({}))),
        ("TenantGet", json!({})),
        ("GroupGet", json!({"groupid": b.groupid})),
        ("GroupListAllGroups", json!({})),
        ("GroupListUserGroups", me(json!({}))),
        ("BulkListGroupUsers", json!({"unlockuuid": b.unlock, "groupid": b.groupid})),
        ("PolicyGet", json!({"policyid": b.policyid})),
        ("PolicyListAllPolicies", json!({})),
        ("ConnectorListConnectors", json!({})),
        ("AccountList", json!({})),
        ("AccountGet", json!({"accountid": b.accountid})),
        ("PolicyListEffectivePermissions", json!({"xtoken": b.role_xtoken})),
        ("PolicyListEffectivePermissions", json!({"xtoken": b.user_xtoken})),
        (
            "PolicySimulate",
            json!({"xtoken": b.role_xtoken, "operation": "UserGet", "targetmode": "token",
                                  "targetidentity": b.token}),
        ),
    ];
    let mut state = BTreeMap::new();
    for (op, body) in reads {
        let mut answer = send(v, op, Some(xtoken), None, &body).await.ok();
        if op == "SystemGetUserReport" {
            // The report's audit section counts B's own reads, this snapshot's among them.
            for volatile in ["generated", "audit"] {
                answer["report"].as_object_mut().expect("report").remove(volatile);
            }
        }
        state.insert(format!("{op} {body}"), answer);
    }
    let shared = send(v, "SharedRecordGet", None, Some(B_NAME), &json!({"recorduuid": b.recorduuid})).await;
    state.insert("SharedRecordGet".into(), shared.ok());
    // B's access tokens still act in B, as before.
    for (token, kind) in [(&b.role_xtoken, "role"), (&b.user_xtoken, "user"), (&b.account_xtoken, "account")] {
        let answer = send(v, "UserGet", Some(token), None, &me(json!({}))).await;
        state.insert(format!("UserGet as B's {kind} token"), answer.ok());
    }
    state
}

/// Every row of tenant `id` in every table that has a `tenant_id`, as text, sorted.
async fn tenant_rows(v: &TestVault, id: i64) -> BTreeMap<String, Vec<String>> {
    use sqlx::Row as _;
    let mut rows = BTreeMap::new();
    for table in crate::tenants::tenant_tables(v).await {
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

/// Sends every row of the table, aimed at B, as `me`: without a header, with `me`'s own tenant
/// in the header, and (for a tenant admin) with B's name in the header; returns what went wrong.
async fn round(v: &TestVault, me: &Actor, b: &Target, control: &Target, needles: &[String]) -> Vec<String> {
    let mut failures = Vec::new();
    let public = public();
    let root = me.own.is_none();
    let headers: Vec<Option<&str>> = match me.own {
        Some(own) => vec![None, Some(own), Some(B_NAME)],
        None => vec![None],
    };
    let rows = table(b, me);
    assert_table_covers_routes(&rows);
    for (row, look_alike) in rows.iter().zip(table(control, me)) {
        if root && matches!(row.kind, Kind::VaultAdmin(_)) {
            continue;
        }
        let who = if root { "root" } else { A_NAME };
        let is_public = public.contains(row.op);
        for (body, control_body) in row.bodies.iter().zip(&look_alike.bodies) {
            // B's access tokens, in the caller's hands, do not act in the caller's tenant.
            let tenant = me.own.unwrap_or(MAIN_NAME);
            let stolen = if is_public {
                vec![]
            } else {
                vec![("role", &b.role_xtoken), ("user", &b.user_xtoken), ("account", &b.account_xtoken)]
            };
            for (kind, token) in stolen {
                let answer = send(v, row.op, Some(token), Some(tenant), body).await;
                if (answer.status, answer.message()) != (403, Some("Access denied")) {
                    let at = format!("{} with B's {kind} token and header {tenant}: {body}", row.op);
                    failures.push(format!("{at}: was not refused: {} {}", answer.status, answer.text));
                }
            }
            for header in &headers {
                // A public operation has no caller to refuse: the header is the public's
                // choice of tenant, and B's public answers to it are B's by design.
                if *header == Some(B_NAME) && is_public {
                    continue;
                }
                let answer = send(v, row.op, Some(&me.token), *header, body).await;
                let at = format!("{} as {who} with header {header:?}: {body}", row.op);
                if *header == Some(B_NAME) {
                    if (answer.status, answer.message()) != (403, Some("Access denied")) {
                        failures.push(format!("{at}: B's tenant was not refused: {} {}", answer.status, answer.text));
                    }
                    continue;
                }
                let request = format!("{body} {}", header.unwrap_or_default());
                let values = leaked(needles, &request, &answer.text);
                if !values.is_empty() {
                    failures.push(format!("{at}: answered B's values {values:?}: {}", answer.text));
                }
                if answer.status >= 500 {
                    failures.push(format!("{at}: {} {}", answer.status, answer.text));
                }
                if header.is_none() && !matches!(row.kind, Kind::Own(_)) {
                    let control = send(v, row.op, Some(&me.token), None, control_body).await;
                    if answer.outcome() != control.outcome() {
                        failures.push(format!(
                            "{at}: ends unlike the same request for records that exist nowhere ({control_body}): \
                             {} vs {}",
                            answer.outcome(),
                            control.outcome()
                        ));
                    }
                }
            }
        }
        for (op, body) in row.cleanup.iter().chain(&look_alike.cleanup) {
            let answer = send(v, op, Some(&me.token), None, body).await;
            assert!(answer.status < 500, "cleanup {op} {body}: {}", answer.text);
        }
    }
    failures
}

both!(no_tenant_reads_or_changes_another_tenants_records, settings = settings, |v| {
    let (b, b_xtoken, needles) = seed_b(v).await;
    let created = send(v, "TenantCreate", Some(&v.root), None, &json!({"tenantname": A_NAME})).await.ok();
    let a_xtoken = created["xtoken"].as_str().expect("xtoken").to_owned();
    let a = seed_actor(v, &a_xtoken, Some(A_NAME), "alder").await;
    let root = seed_actor(v, &v.root, None, "rowan").await;
    let control = Target::control(b.events.len());

    let before = snapshot(v, &b_xtoken, &b).await;
    assert_eq!(snapshot(v, &b_xtoken, &b).await, before, "two reads of B in a row differ: the snapshot is unstable");
    let rows_before = tenant_rows(v, b.tenantid).await;
    for table in ["users", "tokens", "files", "audit_events"] {
        assert!(rows_before.get(table).is_some_and(|rows| !rows.is_empty()), "B's {table} rows are not seen");
    }

    let mut failures = round(v, &a, &b, &control, &needles).await;
    failures.extend(round(v, &root, &b, &control, &needles).await);

    // Not a row of B written, B's audit trail included; then B's own reads agree.
    let rows_after = tenant_rows(v, b.tenantid).await;
    for (table, rows) in &rows_before {
        if rows_after.get(table) != Some(rows) {
            failures.push(format!("B's rows in {table} changed: {rows:?} became {:?}", rows_after.get(table)));
        }
    }
    let after = snapshot(v, &b_xtoken, &b).await;
    for (read, answer) in &before {
        if after.get(read) != Some(answer) {
            failures.push(format!("B's {read} changed: {answer} became {:?}", after.get(read)));
        }
    }
    assert!(failures.is_empty(), "{} cross-tenant failures:\n{}", failures.len(), failures.join("\n"));
});
