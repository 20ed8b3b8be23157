//! The audit chain: each tenant's events, in the order the chainer saw them committed, linked by
//! an HMAC over the previous link and the event, under a key derived from the tenant's master key.
//!
//! An event is chained shortly after it commits (by [`super::chainer`], or by `AuditVerify`
//! first thing), not in its own transaction: events are written by many transactions at once
//! (each change commits its own), and a chain extended inside each of them would serialise every
//! write of a tenant on one row lock. The chain covers every column of an event except its three
//! links to a subject (`user_ref`, `subject_rid`, `link_mac`), which erasure clears; those are
//! covered by `link_mac` instead: an HMAC binding the event to its subject, replaced on erasure by
//! an HMAC that marks the event erased. Nobody without the key can move an event to another
//! subject, detach it from a live one, or alter, remove or reorder a chained event unnoticed.

use sha2::{Digest, Sha256};

use crate::crypto::index::IndexKey;
use crate::crypto::{IndexValue, TenantKeys};
use crate::store::audit_chain::ChainRow;

/// The link before the first event.
pub const GENESIS: IndexValue = [0; 32];

/// The MAC binding event `uuid` to its subject.
pub fn link_tag(key: &IndexKey, uuid: &str, user_ref: &[u8], subject_rid: &[u8]) -> IndexValue {
    key.digest_parts(&[b"audit-link", uuid.as_bytes(), user_ref, subject_rid])
}

/// The MAC marking event `uuid` as belonging to an erased subject.
pub fn erased_tag(key: &IndexKey, uuid: &str) -> IndexValue {
    key.digest_parts(&[b"audit-erased", uuid.as_bytes()])
}

/// What of an event's sealed payload the chain covers: a payload sealed under the tenant's keys
/// by a digest of its plaintext, so that master-key rotation, which seals it again under a new
/// version, keeps the chain; a payload sealed under a user's data key (never sealed again;
/// erasure destroys the key) as stored. `None` for a tenant payload that does not open with
/// `keys` (keys older than the event's, or a payload altered in the database).
pub fn covered_payload(keys: &TenantKeys, row: &ChainRow) -> Option<Vec<u8>> {
    if row.key_scope != "tenant" {
        return Some(row.payload.clone());
    }
    let plain = keys.open(super::event::TABLE, row.uuid.as_bytes(), &row.payload).ok()?;
    let mut covered = b"plaintext-sha256:".to_vec();
    covered.extend(Sha256::digest(&plain));
    Some(covered)
}

/// The link of the event at position `seq`, after the link `previous`; `payload` is what
/// [`covered_payload`] answers for it (the payload as stored when it does not open: a link
/// made over a plaintext digest then no longer matches).
pub fn link(key: &IndexKey, previous: &[u8], seq: i64, row: &ChainRow, payload: &[u8]) -> IndexValue {
    key.digest_parts(&[
        b"audit-chain",
        previous,
        &seq.to_be_bytes(),
        row.uuid.as_bytes(),
        &row.tenant.to_be_bytes(),
        &row.created_ms.to_be_bytes(),
        row.principal_kind.as_bytes(),
        row.principal_id.as_bytes(),
        row.operation.as_bytes(),
        row.event_type.as_bytes(),
        row.result.as_bytes(),
        &row.http_status.to_be_bytes(),
        row.key_scope.as_bytes(),
        payload,
    ])
}

/// Why an event's links to its subject do not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkFault {
    /// Its subject columns or their MAC were changed.
    Altered,
    /// It was detached from its subject other than by erasure.
    Detached,
}

/// Checks an event's subject links: present and bound by their MAC, or cleared by erasure.
pub fn check_links(key: &IndexKey, row: &ChainRow) -> Result<(), LinkFault> {
    let stored = row.link_mac.as_deref();
    match (&row.user_ref, &row.subject_rid) {
        (Some(user_ref), Some(rid)) => {
            let expected = link_tag(key, &row.uuid, user_ref, rid);
            if stored.is_some_and(|mac| crate::crypto::secrets::digests_match(mac, &expected)) {
                Ok(())
            } else {
                Err(LinkFault::Altered)
            }
        }
        (None, None) if row.key_scope == "user" => {
            let expected = erased_tag(key, &row.uuid);
            if stored.is_some_and(|mac| crate::crypto::secrets::digests_match(mac, &expected)) {
                Ok(())
            } else {
                Err(LinkFault::Detached)
            }
        }
        (None, None) if stored.is_none() => Ok(()),
        _ => Err(LinkFault::Altered),
    }
}

/// What is wrong at the first broken place of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// No event holds position `seq`: removed (or a later one moved).
    Missing {
        /// The position.
        seq: i64,
    },
    /// The event at `seq` is not the one chained there: changed, or moved from elsewhere.
    Altered {
        /// The position.
        seq: i64,
        /// The event found there.
        uuid: String,
    },
    /// The event at `seq` was moved to another subject, or its subject link changed.
    Relinked {
        /// The position.
        seq: i64,
        /// The event.
        uuid: String,
    },
    /// The event at `seq` was detached from its subject, not by an erasure.
    Detached {
        /// The position.
        seq: i64,
        /// The event.
        uuid: String,
    },
    /// Position `seq` no longer holds the link recorded outside the vault: the chain was cut
    /// back and rebuilt from there, or the event there replaced.
    Anchor {
        /// The position.
        seq: i64,
    },
}

/// Walks a chain forward, one event at a time, from a known link.
#[derive(Debug, Clone)]
pub struct Walk {
    next_seq: i64,
    previous: IndexValue,
    verified: u64,
}

impl Walk {
    /// A walk that expects position `next_seq` to follow the link `previous`.
    pub fn after(next_seq: i64, previous: IndexValue) -> Walk {
        Walk { next_seq, previous, verified: 0 }
    }

    /// Checks the next event (rows come in position order); `payload` is what
    /// [`covered_payload`] answers for it.
    pub fn step(&mut self, key: &IndexKey, row: &ChainRow, payload: &[u8]) -> Result<(), Break> {
        let seq = row.chain_seq;
        if seq != self.next_seq {
            return Err(Break::Missing { seq: self.next_seq });
        }
        let expected = link(key, &self.previous, seq, row, payload);
        if !row.chain_mac.as_deref().is_some_and(|mac| crate::crypto::secrets::digests_match(mac, &expected)) {
            return Err(Break::Altered { seq, uuid: row.uuid.clone() });
        }
        match check_links(key, row) {
            Ok(()) => {}
            Err(LinkFault::Altered) => return Err(Break::Relinked { seq, uuid: row.uuid.clone() }),
            Err(LinkFault::Detached) => return Err(Break::Detached { seq, uuid: row.uuid.clone() }),
        }
        self.previous = expected;
        self.next_seq += 1;
        self.verified += 1;
        Ok(())
    }

    /// Events verified so far.
    pub fn verified(&self) -> u64 {
        self.verified
    }

    /// The position the walk expects next.
    pub fn next_seq(&self) -> i64 {
        self.next_seq
    }

    /// The last verified link.
    pub fn previous(&self) -> &IndexValue {
        &self.previous
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Key256;

    fn row(seq: i64, uuid: &str) -> ChainRow {
        ChainRow {
            id: seq,
            uuid: uuid.into(),
            tenant: 1,
            created_ms: 1_700_000_000_000 + seq,
            principal_kind: "root".into(),
            principal_id: "t".into(),
            operation: "UserGet".into(),
            event_type: "read".into(),
            result: "ok".into(),
            http_status: 200,
            user_ref: None,
            subject_rid: None,
            key_scope: "tenant".into(),
            payload: vec![1, 2, 3],
            chain_seq: seq,
            chain_mac: None,
            link_mac: None,
        }
    }

    fn chained(key: &IndexKey, n: i64) -> Vec<ChainRow> {
        let mut previous = GENESIS;
        (1..=n)
            .map(|seq| {
                let mut r = row(seq, &format!("event-{seq}"));
                let mac = link(key, &previous, seq, &r, &r.payload);
                r.chain_mac = Some(mac.to_vec());
                previous = mac;
                r
            })
            .collect()
    }

    fn walk(key: &IndexKey, rows: &[ChainRow]) -> Result<u64, Break> {
        let mut walk = Walk::after(1, GENESIS);
        for r in rows {
            walk.step(key, r, &r.payload)?;
        }
        Ok(walk.verified())
    }

    #[test]
    fn an_intact_chain_verifies_and_any_edit_is_named() {
        let key = IndexKey::new(&Key256::random());
        let rows = chained(&key, 5);
        assert_eq!(walk(&key, &rows), Ok(5));

        let mut edited = rows.clone();
        edited[2].result = "error".into();
        assert_eq!(walk(&key, &edited), Err(Break::Altered { seq: 3, uuid: "event-3".into() }));

        let mut removed = rows.clone();
        removed.remove(1);
        assert_eq!(walk(&key, &removed), Err(Break::Missing { seq: 2 }));

        let mut swapped = rows.clone();
        swapped.swap(1, 2);
        let (a, b) = (swapped[1].chain_seq, swapped[2].chain_seq);
        swapped[1].chain_seq = b;
        swapped[2].chain_seq = a;
        assert_eq!(walk(&key, &swapped), Err(Break::Altered { seq: 2, uuid: "event-3".into() }));

        let other = IndexKey::new(&Key256::random());
        assert!(walk(&other, &rows).is_err());
    }

    #[test]
    fn links_bind_the_subject_and_only_erasure_may_clear_them() {
        let key = IndexKey::new(&Key256::random());
        let mut linked = row(1, "e1");
        linked.key_scope = "user".into();
        linked.user_ref = Some(vec![7; 32]);
        linked.subject_rid = Some(vec![9; 16]);
        linked.link_mac = Some(link_tag(&key, "e1", &[7; 32], &[9; 16]).to_vec());
        assert_eq!(check_links(&key, &linked), Ok(()));

        let mut moved = linked.clone();
        moved.user_ref = Some(vec![8; 32]);
        assert_eq!(check_links(&key, &moved), Err(LinkFault::Altered));

        let mut detached = linked.clone();
        detached.user_ref = None;
        detached.subject_rid = None;
        assert_eq!(check_links(&key, &detached), Err(LinkFault::Detached));
        detached.link_mac = None;
        assert_eq!(check_links(&key, &detached), Err(LinkFault::Detached));

        let mut erased = detached;
        erased.link_mac = Some(erased_tag(&key, "e1").to_vec());
        assert_eq!(check_links(&key, &erased), Ok(()));

        // An erased tag is bound to its event.
        let mut elsewhere = erased.clone();
        elsewhere.uuid = "e2".into();
        assert_eq!(check_links(&key, &elsewhere), Err(LinkFault::Detached));

        // A tenant event has no links.
        assert_eq!(check_links(&key, &row(1, "t1")), Ok(()));
        let mut forged = row(1, "t1");
        forged.user_ref = Some(vec![7; 32]);
        assert_eq!(check_links(&key, &forged), Err(LinkFault::Altered));
    }
}
