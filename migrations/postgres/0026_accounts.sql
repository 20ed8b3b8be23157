-- Administrator accounts (issue 18): people who work in the vault through the console or the API
-- under a role of their tenant (or as its administrator). Username and e-mail address are
-- personal data: sealed under the tenant's key (table label `accounts`, record label the
-- account id) and found by blind index. The password is an argon2id hash; the TOTP secret is
-- sealed with them (`details`). Activation and reset tokens are kept as SHA-256 digests only.
CREATE TABLE accounts (
    tenant_id     BIGINT  NOT NULL REFERENCES tenants (id),
    id            TEXT    NOT NULL,
    username_idx  BYTEA   NOT NULL,
    email_idx     BYTEA   NOT NULL,
    details       BYTEA   NOT NULL,
    role_id       BIGINT,
    admin         BOOLEAN NOT NULL,
    status        TEXT    NOT NULL,
    password      TEXT,
    totp          BOOLEAN NOT NULL,
    totp_step     BIGINT,
    failures      BIGINT  NOT NULL DEFAULT 0,
    locked_until  BIGINT,
    last_login    BIGINT,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, username_idx),
    UNIQUE (tenant_id, email_idx)
);

CREATE TABLE account_tokens (
    digest      BYTEA   NOT NULL,
    tenant_id   BIGINT  NOT NULL,
    account_id  TEXT    NOT NULL,
    purpose     TEXT    NOT NULL,
    expires_at  BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, digest),
    FOREIGN KEY (tenant_id, account_id) REFERENCES accounts (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX account_tokens_account ON account_tokens (tenant_id, account_id);

-- A login session is an access token acting as the account's role (or as the tenant's
-- administrator) that names its account.
ALTER TABLE access_tokens ADD COLUMN account_id TEXT;
CREATE INDEX access_tokens_account ON access_tokens (tenant_id, account_id) WHERE account_id IS NOT NULL;

ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
ALTER TABLE accounts FORCE ROW LEVEL SECURITY;
CREATE POLICY bunker_tenant ON accounts
    USING (bunker_tenant_visible(tenant_id)) WITH CHECK (bunker_tenant_visible(tenant_id));
ALTER TABLE account_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE account_tokens FORCE ROW LEVEL SECURITY;
CREATE POLICY bunker_tenant ON account_tokens
    USING (bunker_tenant_visible(tenant_id)) WITH CHECK (bunker_tenant_visible(tenant_id));
