-- The data subject's portal login (issue 19): captchas and one-time login codes. Neither holds
-- anything in clear: a captcha keeps a keyed digest of its answer, a code a keyed digest of its
-- six digits, and the person it was sent to is named by a keyed digest of mode and identity
-- (the tenant's key) and the record id of their user. Both live minutes and are swept.
CREATE TABLE portal_captchas (
    tenant_id   INTEGER NOT NULL,
    id          TEXT    NOT NULL,
    answer      BLOB    NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX portal_captchas_expiry ON portal_captchas (expires_at);

CREATE TABLE portal_codes (
    tenant_id     INTEGER NOT NULL,
    identity_idx  BLOB    NOT NULL,
    user_rid      BLOB    NOT NULL,
    digest        BLOB    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    expires_at    INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, identity_idx)
);
CREATE INDEX portal_codes_expiry ON portal_codes (expires_at);
