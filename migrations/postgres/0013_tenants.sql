-- Tenants as the vault's own records: the admin's email (sealed under the tenant's own master
-- key, so it is shredded with it), deletion in two steps (the keys and tokens at once, the rows
-- after), and the change feed that keeps every replica's caches in step.

ALTER TABLE tenants ADD COLUMN email      BYTEA;
ALTER TABLE tenants ADD COLUMN deleted_at BIGINT;
ALTER TABLE tenants ADD COLUMN purged_at  BIGINT;

-- What a replica must forget: a tenant renamed or deleted, its tokens revoked. Each replica reads
-- the rows of the last minute every 250 ms; the sweeper prunes older ones.
CREATE TABLE vault_changes (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        TEXT    NOT NULL,
    tenant_id   BIGINT  NOT NULL,
    created_ms  BIGINT  NOT NULL
);
CREATE INDEX vault_changes_created ON vault_changes (created_ms);

-- A check value of the key-encryption key in force: whatever wraps a master key (a new tenant, a
-- rotation) locks this row and compares, so a replica still holding the previous wrapping key
-- cannot store a key the others could not open, and two rotations cannot both win.
ALTER TABLE vault_meta ADD COLUMN kek_check BYTEA;
