-- Shared records: a snapshot of selected profile (or app data) fields, taken when the record
-- is created, sealed under the owning user's data key and found by a blind index of its uuid.
-- They go with the user (ON DELETE CASCADE) and always expire (expires_at NOT NULL).

CREATE TABLE shared_records (
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    rec_idx     BLOB NOT NULL,
    user_rid    BLOB NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    data        BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, rec_idx)
);
CREATE INDEX shared_records_user ON shared_records (user_rid);
CREATE INDEX shared_records_expires_at ON shared_records (tenant_id, expires_at);
