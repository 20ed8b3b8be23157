-- Raw PostgreSQL baseline: the shape of the vault's users, tokens and audit_events tables
-- (migrations/postgres/0001_core.sql, 0009_tokens.sql, 0011_bulk.sql: same columns, keys and
-- indexes), without the vault. Index columns hold SHA-256 digests (32 bytes, as the vault's
-- HMACs); sealed columns hold random bytes of the sizes measured on the vault's own rows.

CREATE TABLE tenants (
    id          BIGINT  PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    org         TEXT    NOT NULL DEFAULT '',
    created_at  BIGINT  NOT NULL
);
INSERT INTO tenants (id, name, created_at) VALUES (1, 'bench', 0);

CREATE TABLE users (
    rid          BYTEA   PRIMARY KEY,
    tenant_id    BIGINT  NOT NULL REFERENCES tenants (id),
    token_idx    BYTEA   NOT NULL,
    login_idx    BYTEA,
    email_idx    BYTEA,
    phone_idx    BYTEA,
    custom_idx   BYTEA,
    wrapped_key  BYTEA   NOT NULL,
    record       BYTEA   NOT NULL,
    version      BIGINT  NOT NULL,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    sliding_secs BIGINT,
    final_at     BIGINT,
    expires_at   BIGINT,
    CONSTRAINT users_token_key  UNIQUE (tenant_id, token_idx),
    CONSTRAINT users_login_key  UNIQUE (tenant_id, login_idx),
    CONSTRAINT users_email_key  UNIQUE (tenant_id, email_idx),
    CONSTRAINT users_phone_key  UNIQUE (tenant_id, phone_idx),
    CONSTRAINT users_custom_key UNIQUE (tenant_id, custom_idx)
);
CREATE INDEX users_expires_at ON users (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX users_tenant_rid ON users (tenant_id, rid);

CREATE TABLE audit_events (
    id             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid           TEXT    NOT NULL UNIQUE,
    tenant_id      BIGINT  NOT NULL,
    created_ms     BIGINT  NOT NULL,
    principal_kind TEXT    NOT NULL,
    principal_id   TEXT    NOT NULL,
    operation      TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    result         TEXT    NOT NULL,
    http_status    BIGINT  NOT NULL,
    user_ref       BYTEA,
    subject_rid    BYTEA,
    key_scope      TEXT    NOT NULL,
    payload        BYTEA   NOT NULL
);
CREATE INDEX audit_events_user ON audit_events (tenant_id, user_ref, id);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);

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

-- Record ids: 16 bytes, increasing (the vault's are UUIDv7, time-ordered).
CREATE SEQUENCE rid_seq;
CREATE FUNCTION bench_rid(n BIGINT) RETURNS BYTEA LANGUAGE sql IMMUTABLE
    AS $$ SELECT decode(lpad(to_hex(n), 32, '0'), 'hex') $$;
-- A digest standing for a blind index.
CREATE FUNCTION bench_idx(value TEXT) RETURNS BYTEA LANGUAGE sql IMMUTABLE
    AS $$ SELECT sha256(convert_to(value, 'UTF8')) $$;
-- n random-looking bytes standing for a sealed value.
CREATE FUNCTION bench_bytes(n INT) RETURNS BYTEA LANGUAGE sql VOLATILE
    AS $$ SELECT substring(decode(repeat(md5(random()::text), n / 16 + 1), 'hex') FROM 1 FOR n) $$;
