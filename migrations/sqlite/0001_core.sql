-- Vault core: tenants, keys, access tokens, users with blind indexes, versions, audit.
-- Times are unix seconds unless named *_ms. Identifiers that must not be guessable are binary.

CREATE TABLE vault_meta (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    created_at  INTEGER NOT NULL
);

CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    org         TEXT    NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

CREATE TABLE tenant_keys (
    tenant_id        INTEGER NOT NULL REFERENCES tenants (id),
    version          INTEGER NOT NULL,
    wrapped          BLOB    NOT NULL,
    recovery_wrapped BLOB    NOT NULL,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, version)
);

CREATE TABLE access_tokens (
    id          TEXT    PRIMARY KEY,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    digest      BLOB    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);

CREATE TABLE users (
    rid          BLOB    PRIMARY KEY,
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    token_idx    BLOB    NOT NULL,
    login_idx    BLOB,
    email_idx    BLOB,
    phone_idx    BLOB,
    custom_idx   BLOB,
    wrapped_key  BLOB    NOT NULL,
    record       BLOB    NOT NULL,
    version      INTEGER NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    sliding_secs INTEGER,
    final_at     INTEGER,
    expires_at   INTEGER,
    CONSTRAINT users_token_key  UNIQUE (tenant_id, token_idx),
    CONSTRAINT users_login_key  UNIQUE (tenant_id, login_idx),
    CONSTRAINT users_email_key  UNIQUE (tenant_id, email_idx),
    CONSTRAINT users_phone_key  UNIQUE (tenant_id, phone_idx),
    CONSTRAINT users_custom_key UNIQUE (tenant_id, custom_idx)
);
CREATE INDEX users_expires_at ON users (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE user_versions (
    rid         BLOB    NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    version     INTEGER NOT NULL,
    tenant_id   INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    PRIMARY KEY (rid, version)
);

CREATE TABLE audit_events (
    id             INTEGER PRIMARY KEY,
    uuid           TEXT    NOT NULL UNIQUE,
    tenant_id      INTEGER NOT NULL,
    created_ms     INTEGER NOT NULL,
    principal_kind TEXT    NOT NULL,
    principal_id   TEXT    NOT NULL,
    operation      TEXT    NOT NULL,
    event_type     TEXT    NOT NULL,
    result         TEXT    NOT NULL,
    http_status    INTEGER NOT NULL,
    user_ref       BLOB,
    subject_rid    BLOB,
    key_scope      TEXT    NOT NULL,
    payload        BLOB    NOT NULL
);
CREATE INDEX audit_events_user ON audit_events (tenant_id, user_ref, id);
