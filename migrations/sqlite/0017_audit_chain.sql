-- Audit integrity: each tenant's events form a hash chain. See the PostgreSQL migration of the
-- same number.
ALTER TABLE audit_events ADD COLUMN chain_seq INTEGER;
ALTER TABLE audit_events ADD COLUMN chain_mac BLOB;
ALTER TABLE audit_events ADD COLUMN link_mac BLOB;
CREATE UNIQUE INDEX audit_events_chain ON audit_events (tenant_id, chain_seq);
CREATE INDEX audit_events_unchained ON audit_events (tenant_id, id) WHERE chain_seq IS NULL;

CREATE TABLE audit_chain (
    tenant_id   INTEGER PRIMARY KEY REFERENCES tenants (id),
    seq         INTEGER NOT NULL,
    head        BLOB    NOT NULL,
    updated_ms  INTEGER NOT NULL
);
