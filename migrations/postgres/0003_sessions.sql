-- Sessions: caller-named records, found by a blind index of their uuid. A session bound to a
-- user is sealed under the user's data key and goes with the user (ON DELETE CASCADE); an
-- unbound one is sealed under the tenant key. Every session expires (expires_at NOT NULL).

CREATE TABLE sessions (
    tenant_id    BIGINT  NOT NULL REFERENCES tenants (id),
    sid_idx      BYTEA   NOT NULL,
    user_rid     BYTEA   REFERENCES users (rid) ON DELETE CASCADE,
    data         BYTEA   NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    sliding_secs BIGINT,
    final_at     BIGINT,
    expires_at   BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, sid_idx)
);
CREATE INDEX sessions_user ON sessions (user_rid) WHERE user_rid IS NOT NULL;
CREATE INDEX sessions_expires_at ON sessions (tenant_id, expires_at);
