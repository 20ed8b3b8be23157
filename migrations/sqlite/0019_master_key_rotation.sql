-- Master-key rotation. A rotation adds a version to tenant_keys; new blobs seal under it at once.
-- The job in key_rotations then seals every tenant-level blob of older versions again, in
-- batches, and retires the older versions when none is left: versions after the first are
-- deleted, version 1 stays as the tenant's root (its blind-index and audit-chain keys, and the
-- main tenant's recovery path, derive from it) with retired_at set: it no longer seals or opens.

ALTER TABLE tenant_keys ADD COLUMN retired_at INTEGER;

-- One row per tenant whose last rotation's job has not finished (kept, finished, for status).
-- phase and the cursor say how far it got; the lease lets one replica work a tenant at a time.
CREATE TABLE key_rotations (
    tenant_id      INTEGER PRIMARY KEY REFERENCES tenants (id),
    version        INTEGER NOT NULL,
    rotated_ms     INTEGER NOT NULL,
    phase          TEXT   NOT NULL,
    cursor_id      INTEGER,
    cursor_key     BLOB,
    resealed       INTEGER NOT NULL DEFAULT 0,
    passes         INTEGER NOT NULL DEFAULT 0,
    finished_ms    INTEGER,
    lease_owner    TEXT,
    lease_until_ms INTEGER
);
