//! The kinds of tenant-level blobs the rotation job seals again, with their statements, and the
//! cursor within each.

use crate::tenants::TenantId;

/// The kinds of tenant-level blobs, in the order the job seals them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `users.wrapped_key`: users' data keys.
    DataKeys,
    /// `audit_events.payload` of events without a subject.
    Audit,
    /// `tokens.data`.
    Tokens,
    /// `sessions.data` of sessions not bound to a user.
    Sessions,
    /// `tenants.email`.
    Email,
    /// `connectors.secret`: connectors' passwords.
    Connectors,
    /// `connector_erasures.identities`: the identities of queued erasures.
    ConnectorErasures,
    /// `accounts.details`: administrator accounts' names, addresses and TOTP secrets.
    Accounts,
    /// Main tenant only: `tenant_keys.recovery_wrapped` of the other tenants' master keys.
    Recovery,
}

impl Phase {
    /// Where a job starts.
    pub const FIRST: Phase = Phase::DataKeys;
    /// Every phase, in order.
    pub const ALL: [Phase; 9] = [
        Phase::DataKeys,
        Phase::Audit,
        Phase::Tokens,
        Phase::Sessions,
        Phase::Email,
        Phase::Connectors,
        Phase::ConnectorErasures,
        Phase::Accounts,
        Phase::Recovery,
    ];

    /// Its name in the job row, the log and metrics labels.
    pub fn name(self) -> &'static str {
        match self {
            Phase::DataKeys => "data_keys",
            Phase::Audit => "audit_events",
            Phase::Tokens => "tokens",
            Phase::Sessions => "sessions",
            Phase::Email => "tenant_email",
            Phase::Connectors => "connector_secrets",
            Phase::ConnectorErasures => "connector_erasures",
            Phase::Accounts => "accounts",
            Phase::Recovery => "recovery_wraps",
        }
    }

    pub(super) fn parse(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|phase| phase.name() == name)
    }

    /// The table label the blobs of this phase are sealed for (`TenantKeys::seal`).
    pub fn seal_table(self) -> &'static str {
        match self {
            Phase::DataKeys => "user_keys",
            Phase::Audit => "audit_events",
            Phase::Tokens => "tokens",
            Phase::Sessions => "sessions",
            Phase::Email => "tenants",
            Phase::Connectors => "connectors",
            Phase::ConnectorErasures => "connector_erasures",
            Phase::Accounts => "accounts",
            Phase::Recovery => "tenant_keys",
        }
    }

    /// The phase after this one for `tenant` (the recovery wraps are the main tenant's only).
    pub fn next(self, tenant: TenantId) -> Option<Phase> {
        let next = Phase::ALL.into_iter().skip_while(|phase| *phase != self).nth(1)?;
        (next != Phase::Recovery || tenant.is_main()).then_some(next)
    }

    pub(super) fn applies_to(self, tenant: TenantId) -> bool {
        self != Phase::Recovery || tenant.is_main()
    }

    /// Rows of this phase of `tenant` whose blob does not start with `header`, after `cursor`.
    pub(super) fn select(self) -> &'static str {
        match self {
            Phase::DataKeys => {
                "SELECT rid, wrapped_key FROM users WHERE tenant_id = $1 AND rid > $2 \
                 AND substr(wrapped_key, 1, 5) <> $3 ORDER BY rid LIMIT $4"
            }
            Phase::Audit => {
                "SELECT id, uuid, payload FROM audit_events WHERE tenant_id = $1 AND key_scope = 'tenant' \
                 AND id > $2 AND substr(payload, 1, 5) <> $3 ORDER BY id LIMIT $4"
            }
            Phase::Tokens => {
                "SELECT uuid_idx, data FROM tokens WHERE tenant_id = $1 AND uuid_idx > $2 \
                 AND substr(data, 1, 5) <> $3 ORDER BY uuid_idx LIMIT $4"
            }
            Phase::Sessions => {
                "SELECT sid_idx, data FROM sessions WHERE tenant_id = $1 AND user_rid IS NULL AND sid_idx > $2 \
                 AND substr(data, 1, 5) <> $3 ORDER BY sid_idx LIMIT $4"
            }
            Phase::Email => {
                "SELECT id, email FROM tenants WHERE id = $1 AND id > $2 AND email IS NOT NULL \
                 AND substr(email, 1, 5) <> $3 LIMIT $4"
            }
            Phase::Connectors => {
                "SELECT id, seal_id, secret FROM connectors WHERE tenant_id = $1 AND id > $2 \
                 AND substr(secret, 1, 5) <> $3 ORDER BY id LIMIT $4"
            }
            Phase::ConnectorErasures => {
                "SELECT id, seal_id, identities FROM connector_erasures WHERE tenant_id = $1 AND id > $2 \
                 AND substr(identities, 1, 5) <> $3 ORDER BY id LIMIT $4"
            }
            Phase::Accounts => {
                "SELECT username_idx, id, details FROM accounts WHERE tenant_id = $1 AND username_idx > $2 \
                 AND substr(details, 1, 5) <> $3 ORDER BY username_idx LIMIT $4"
            }
            Phase::Recovery => {
                "SELECT tenant_id, version, recovery_wrapped FROM tenant_keys WHERE tenant_id <> $1 \
                 AND (tenant_id > $2 OR (tenant_id = $2 AND version > $5)) \
                 AND substr(recovery_wrapped, 1, 5) <> $3 ORDER BY tenant_id, version LIMIT $4"
            }
        }
    }

    /// Replaces a blob if it still is the one read: `$1` new, `$2` tenant, `$3` row, `$4` old.
    pub(super) fn swap(self) -> &'static str {
        match self {
            Phase::DataKeys => {
                "UPDATE users SET wrapped_key = $1 WHERE tenant_id = $2 AND rid = $3 AND wrapped_key = $4"
            }
            Phase::Audit => "UPDATE audit_events SET payload = $1 WHERE tenant_id = $2 AND id = $3 AND payload = $4",
            Phase::Tokens => "UPDATE tokens SET data = $1 WHERE tenant_id = $2 AND uuid_idx = $3 AND data = $4",
            Phase::Sessions => {
                "UPDATE sessions SET data = $1 WHERE tenant_id = $2 AND sid_idx = $3 AND user_rid IS NULL AND data = $4"
            }
            Phase::Email => "UPDATE tenants SET email = $1 WHERE id = $2 AND id = $3 AND email = $4",
            Phase::Accounts => {
                "UPDATE accounts SET details = $1 WHERE tenant_id = $2 AND username_idx = $3 AND details = $4"
            }
            Phase::Connectors => "UPDATE connectors SET secret = $1 WHERE tenant_id = $2 AND id = $3 AND secret = $4",
            Phase::ConnectorErasures => {
                "UPDATE connector_erasures SET identities = $1 WHERE tenant_id = $2 AND id = $3 AND identities = $4"
            }
            // The row is another tenant's: `$2` (the main tenant) names the sealing tenant only.
            Phase::Recovery => {
                "UPDATE tenant_keys SET recovery_wrapped = $1 WHERE $2 = 1 AND tenant_id = $3 AND version = $5 \
                 AND recovery_wrapped = $4"
            }
        }
    }

    /// Counts the blobs of this phase of `tenant` not starting with `$2`.
    pub(super) fn count(self) -> &'static str {
        match self {
            Phase::DataKeys => "SELECT COUNT(*) FROM users WHERE tenant_id = $1 AND substr(wrapped_key, 1, 5) <> $2",
            Phase::Audit => {
                "SELECT COUNT(*) FROM audit_events WHERE tenant_id = $1 AND key_scope = 'tenant' \
                 AND substr(payload, 1, 5) <> $2"
            }
            Phase::Tokens => "SELECT COUNT(*) FROM tokens WHERE tenant_id = $1 AND substr(data, 1, 5) <> $2",
            Phase::Sessions => {
                "SELECT COUNT(*) FROM sessions WHERE tenant_id = $1 AND user_rid IS NULL AND substr(data, 1, 5) <> $2"
            }
            Phase::Email => {
                "SELECT COUNT(*) FROM tenants WHERE id = $1 AND email IS NOT NULL AND substr(email, 1, 5) <> $2"
            }
            Phase::Connectors => "SELECT COUNT(*) FROM connectors WHERE tenant_id = $1 AND substr(secret, 1, 5) <> $2",
            Phase::ConnectorErasures => {
                "SELECT COUNT(*) FROM connector_erasures WHERE tenant_id = $1 AND substr(identities, 1, 5) <> $2"
            }
            Phase::Accounts => "SELECT COUNT(*) FROM accounts WHERE tenant_id = $1 AND substr(details, 1, 5) <> $2",
            Phase::Recovery => {
                "SELECT COUNT(*) FROM tenant_keys WHERE tenant_id <> $1 AND substr(recovery_wrapped, 1, 5) <> $2"
            }
        }
    }
}

/// Where a row is, and where a phase's cursor stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKey {
    /// A binary key (`rid`, `uuid_idx`, `sid_idx`).
    Bytes(Vec<u8>),
    /// An integer key (an event's id, a tenant's id).
    Id(i64),
    /// A tenant and a key version (`tenant_keys`).
    Pair(i64, i64),
}

impl RowKey {
    /// The cursor before a phase's first row.
    pub fn start(phase: Phase) -> RowKey {
        match phase {
            Phase::DataKeys | Phase::Tokens | Phase::Sessions | Phase::Accounts => RowKey::Bytes(Vec::new()),
            Phase::Audit | Phase::Email | Phase::Connectors | Phase::ConnectorErasures => RowKey::Id(0),
            Phase::Recovery => RowKey::Pair(0, 0),
        }
    }

    /// As stored in `key_rotations` (`cursor_id`, `cursor_key`).
    pub(super) fn columns(&self) -> (Option<i64>, Option<Vec<u8>>) {
        match self {
            RowKey::Bytes(bytes) => (None, Some(bytes.clone())),
            RowKey::Id(id) => (Some(*id), None),
            RowKey::Pair(a, b) => (Some(*a), Some(b.to_be_bytes().to_vec())),
        }
    }

    pub(super) fn from_columns(phase: Phase, id: Option<i64>, key: Option<Vec<u8>>) -> RowKey {
        match (RowKey::start(phase), id, key) {
            (RowKey::Bytes(_), _, Some(key)) => RowKey::Bytes(key),
            (RowKey::Id(_), Some(id), _) => RowKey::Id(id),
            (RowKey::Pair(..), Some(id), Some(key)) => {
                RowKey::Pair(id, <[u8; 8]>::try_from(key.as_slice()).map_or(0, i64::from_be_bytes))
            }
            (start, ..) => start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_run_in_order_and_recovery_is_the_main_tenants() {
        let order =
            |tenant| std::iter::successors(Some(Phase::FIRST), move |p: &Phase| p.next(tenant)).collect::<Vec<_>>();
        assert_eq!(order(TenantId::MAIN), Phase::ALL);
        assert_eq!(order(TenantId::new(2)), Phase::ALL[..8]);
        assert!(Phase::ALL.iter().all(|p| Phase::parse(p.name()) == Some(*p)));
    }

    #[test]
    fn cursors_round_trip_through_their_columns() {
        for (phase, key) in [
            (Phase::DataKeys, RowKey::Bytes(vec![1, 2])),
            (Phase::Audit, RowKey::Id(42)),
            (Phase::Recovery, RowKey::Pair(7, 3)),
        ] {
            let (id, bytes) = key.columns();
            assert_eq!(RowKey::from_columns(phase, id, bytes), key);
            assert_eq!(RowKey::from_columns(phase, None, None), RowKey::start(phase));
        }
    }
}
