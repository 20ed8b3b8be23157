//! Building and sealing audit events.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::chain;
use crate::crypto::keyring::{TenantKeys, open_user, seal_user};
use crate::crypto::{CryptoError, DataKey, IndexValue};
use crate::store::audit::{AuditRecord, AuditRow};
use crate::tenants::TenantId;

/// Table name bound into the associated data of audit payloads.
pub const TABLE: &str = "audit_events";

/// The user an event concerns, with the key that seals the event's details.
#[derive(Clone)]
pub struct Subject {
    /// The user token (only inside the sealed payload).
    pub token: String,
    /// Blind index of the token: the clear-text link from events to the user.
    pub user_ref: IndexValue,
    /// Record id, to find the data key again when reading the event.
    pub rid: Vec<u8>,
    /// The user's data key: erasing the user makes the details unreadable.
    pub key: DataKey,
}

/// What a handler contributes to its request's event.
#[derive(Default)]
pub struct Draft {
    /// Caller-supplied `request_metadata`.
    pub request_metadata: Option<Value>,
    /// The user concerned.
    pub subject: Option<Subject>,
    /// Extra details (counts for bulk calls and the like).
    pub extra: Option<Value>,
    /// Set once the handler committed its event together with its change.
    pub committed: bool,
    /// Access decisions made for a caller bound by policies.
    pub access: Option<Value>,
    /// Set once a user record was judged for such a caller.
    pub judged: bool,
    /// The profile fields a change would write (key paths), for a caller bound by policies
    /// whose view of the record is partial.
    pub writes: Option<Vec<Vec<String>>>,
}

/// Facts about the request that every event records.
pub struct EventHeader<'a> {
    /// Tenant of the request.
    pub tenant: TenantId,
    /// Principal kind.
    pub principal_kind: &'static str,
    /// Principal id.
    pub principal_id: &'a str,
    /// Operation name.
    pub operation: &'static str,
    /// Unix milliseconds.
    pub created_ms: i64,
}

/// Contents of one event beyond the header.
#[derive(Default)]
pub struct EventBody<'a> {
    /// The user concerned.
    pub subject: Option<&'a Subject>,
    /// Caller metadata.
    pub request_metadata: Option<&'a Value>,
    /// State before a change.
    pub before: Option<&'a Value>,
    /// State after a change.
    pub after: Option<&'a Value>,
    /// Other details.
    pub extra: Option<&'a Value>,
    /// Error message, when the call failed.
    pub message: Option<&'a str>,
}

/// Seals an event: details go under the subject's data key, or the tenant key when there is none.
pub fn seal(header: &EventHeader<'_>, body: &EventBody<'_>, http_status: u16, keys: &Arc<TenantKeys>) -> AuditRecord {
    // Time-ordered (v7): new events append to the end of the uuid index instead of landing on
    // random pages; the creation time it carries is stored in clear beside it anyway.
    let uuid = uuid::Uuid::now_v7().hyphenated().to_string();
    let mut details = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            details.insert(key.to_owned(), value);
        }
    };
    put("usertoken", body.subject.map(|s| Value::String(s.token.clone())));
    put("request_metadata", body.request_metadata.cloned());
    put("before", body.before.cloned());
    put("after", body.after.cloned());
    put("extra", body.extra.cloned());
    put("message", body.message.map(|m| Value::String(m.to_owned())));
    let plaintext = serde_json::to_vec(&Value::Object(details)).unwrap_or_default();
    let (key_scope, payload) = match body.subject {
        Some(subject) => ("user", seal_user(&subject.key, header.tenant, TABLE, uuid.as_bytes(), &plaintext)),
        None => ("tenant", keys.seal(TABLE, uuid.as_bytes(), &plaintext)),
    };
    let link_mac = body.subject.map(|s| chain::link_tag(keys.audit_chain_key(), &uuid, &s.user_ref, &s.rid).to_vec());
    AuditRecord {
        uuid,
        tenant: header.tenant,
        created_ms: header.created_ms,
        principal_kind: header.principal_kind,
        principal_id: header.principal_id.to_owned(),
        operation: header.operation,
        event_type: event_type(header.operation),
        result: if http_status < 400 { "ok" } else { "error" },
        http_status: i64::from(http_status),
        user_ref: body.subject.map(|s| s.user_ref.to_vec()),
        subject_rid: body.subject.map(|s| s.rid.clone()),
        key_scope,
        link_mac,
        payload,
    }
}

/// Opens an event's details; `None` when the subject was erased (its key is gone).
pub fn open(
    row: &AuditRow,
    tenant: TenantId,
    keys: &TenantKeys,
    subject_key: Option<&DataKey>,
) -> Result<Option<Value>, CryptoError> {
    let plain = match (row.key_scope.as_str(), subject_key) {
        ("user", Some(key)) => open_user(key, tenant, TABLE, row.uuid.as_bytes(), &row.payload)?,
        ("user", None) => return Ok(None),
        _ => keys.open(TABLE, row.uuid.as_bytes(), &row.payload)?,
    };
    serde_json::from_slice(&plain).map(Some).map_err(|_| CryptoError)
}

/// Coarse category of an operation, from its verb.
pub fn event_type(operation: &str) -> &'static str {
    const RULES: [(&str, &str); 12] = [
        ("Get", "read"),
        ("List", "read"),
        ("Search", "read"),
        ("Report", "read"),
        ("Create", "create"),
        ("Accept", "create"),
        ("Upsert", "update"),
        ("Update", "update"),
        ("Patch", "update"),
        ("Delete", "delete"),
        ("Revoke", "delete"),
        ("Generate", "system"),
    ];
    RULES.iter().find(|(verb, _)| operation.contains(verb)).map_or("other", |(_, kind)| kind)
}

/// Row fields every listing shows, under both the documented and the legacy key names.
pub fn summary(row: &AuditRow) -> Value {
    let seconds = row.created_ms.div_euclid(1000);
    json!({
        "auditeventuuid": row.uuid,
        "eventtype": row.event_type,
        "title": row.operation,
        "timestamp": rfc3339(row.created_ms),
        "when": seconds,
        "result": row.result,
        "httpstatus": row.http_status,
    })
}

/// Milliseconds since the epoch as an RFC 3339 UTC string.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::event_type;

    #[test]
    fn operations_map_to_categories() {
        assert_eq!(event_type("UserGet"), "read");
        assert_eq!(event_type("AuditListUserEvents"), "read");
        assert_eq!(event_type("UserCreateBulk"), "create");
        assert_eq!(event_type("UserPatch"), "update");
        assert_eq!(event_type("UserDeleteBulk"), "delete");
        assert_eq!(event_type("SystemGenerateWrappingKey"), "system");
    }
}
