-- The data subject's portal login (issue 19): captchas and one-time login codes. Neither holds
-- anything in clear: a captcha keeps a keyed digest of its answer, a code a keyed digest of its
-- six digits, and the person it was sent to is named by a keyed digest of mode and identity
-- (the tenant's key) and the record id of their user. Both live minutes and are swept.
CREATE TABLE portal_captchas (
    tenant_id   BIGINT NOT NULL,
    id          TEXT   NOT NULL,
    answer      BYTEA  NOT NULL,
    expires_at  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX portal_captchas_expiry ON portal_captchas (expires_at);

CREATE TABLE portal_codes (
    tenant_id     BIGINT NOT NULL,
    identity_idx  BYTEA  NOT NULL,
    user_rid      BYTEA  NOT NULL,
    digest        BYTEA  NOT NULL,
    attempts      BIGINT NOT NULL DEFAULT 0,
    expires_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, identity_idx)
);
CREATE INDEX portal_codes_expiry ON portal_codes (expires_at);

ALTER TABLE portal_captchas ENABLE ROW LEVEL SECURITY;
ALTER TABLE portal_captchas FORCE ROW LEVEL SECURITY;
CREATE POLICY bunker_tenant ON portal_captchas
    USING (bunker_tenant_visible(tenant_id)) WITH CHECK (bunker_tenant_visible(tenant_id));
ALTER TABLE portal_codes ENABLE ROW LEVEL SECURITY;
ALTER TABLE portal_codes FORCE ROW LEVEL SECURITY;
CREATE POLICY bunker_tenant ON portal_codes
    USING (bunker_tenant_visible(tenant_id)) WITH CHECK (bunker_tenant_visible(tenant_id));
