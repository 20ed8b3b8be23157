-- Format-preserving tokens: a card number or email address sealed under the tenant key, found
-- by a blind index of its tokenuuid or of its tokenbase (UNIQUE: a new tokenbase that collides
-- with an existing one is drawn again). value_idx, a blind index of the normalised value, is set
-- only for tokens created with `unique`: it makes the value findable again, and its UNIQUE
-- constraint keeps one unique token per value. Other tokens leave it NULL, so the database does
-- not reveal that two of them stand for the same value. A token with a lifetime has expires_at;
-- reads ignore it once past, and the retention sweeper erases it.

CREATE TABLE tokens (
    tenant_id    BIGINT  NOT NULL REFERENCES tenants (id),
    uuid_idx     BYTEA   NOT NULL,
    base_idx     BYTEA   NOT NULL,
    value_idx    BYTEA,
    data         BYTEA   NOT NULL,
    created_at   BIGINT  NOT NULL,
    sliding_secs BIGINT,
    final_at     BIGINT,
    expires_at   BIGINT,
    PRIMARY KEY (tenant_id, uuid_idx),
    CONSTRAINT tokens_base_key  UNIQUE (tenant_id, base_idx),
    CONSTRAINT tokens_value_key UNIQUE (tenant_id, value_idx)
);
CREATE INDEX tokens_expires_at ON tokens (expires_at) WHERE expires_at IS NOT NULL;
