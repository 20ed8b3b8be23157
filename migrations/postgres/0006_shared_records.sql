-- Shared records: a snapshot of selected profile (or app data) fields, taken when the record
-- is created, sealed under the owning user's data key and found by a blind index of its uuid.
-- They go with the user (ON DELETE CASCADE) and always expire (expires_at NOT NULL).

CREATE TABLE shared_records (
    tenant_id   BIGINT NOT NULL REFERENCES tenants (id),
    rec_idx     BYTEA NOT NULL,
    user_rid    BYTEA NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    data        BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, rec_idx)
);
CREATE INDEX shared_records_user ON shared_records (user_rid);
CREATE INDEX shared_records_expires_at ON shared_records (tenant_id, expires_at);
