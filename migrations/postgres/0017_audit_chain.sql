-- Audit integrity: each tenant's events form a hash chain. A background chainer gives every
-- committed event its position (chain_seq) and an HMAC over the previous link and the event
-- (chain_mac), under a key derived from the tenant's master key; audit_chain keeps the head.
-- link_mac is an HMAC binding an event to its subject (user_ref, subject_rid), or, once the
-- subject was erased and those columns cleared, marking the event as erased: the links of a
-- deleted user go, and a link cleared by anyone else is still detected. The chain does not
-- cover the three link columns, so erasure does not break it.
ALTER TABLE audit_events ADD COLUMN chain_seq BIGINT;
ALTER TABLE audit_events ADD COLUMN chain_mac BYTEA;
ALTER TABLE audit_events ADD COLUMN link_mac BYTEA;
CREATE UNIQUE INDEX audit_events_chain ON audit_events (tenant_id, chain_seq);
CREATE INDEX audit_events_unchained ON audit_events (tenant_id, id) WHERE chain_seq IS NULL;

CREATE TABLE audit_chain (
    tenant_id   BIGINT  PRIMARY KEY REFERENCES tenants (id),
    seq         BIGINT  NOT NULL,
    head        BYTEA   NOT NULL,
    updated_ms  BIGINT  NOT NULL
);
ALTER TABLE audit_chain ENABLE ROW LEVEL SECURITY;
ALTER TABLE audit_chain FORCE ROW LEVEL SECURITY;
CREATE POLICY bunker_tenant ON audit_chain USING (bunker_tenant_visible(tenant_id))
    WITH CHECK (bunker_tenant_visible(tenant_id));
