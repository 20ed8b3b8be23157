-- The identities an unbound session names (a token, login, email, phone or custom value in its
-- data), as blind indexes under the tenant's session key. A session that names a user who does
-- not exist yet is stored unbound; when that user is erased, the sessions naming it are found
-- here and erased too. Bound sessions need no names: they go with their user (cascade).

CREATE TABLE session_names (
    tenant_id BIGINT NOT NULL,
    sid_idx   BYTEA  NOT NULL,
    name_idx  BYTEA  NOT NULL,
    PRIMARY KEY (tenant_id, name_idx, sid_idx),
    FOREIGN KEY (tenant_id, sid_idx) REFERENCES sessions (tenant_id, sid_idx) ON DELETE CASCADE
);
CREATE INDEX session_names_session ON session_names (tenant_id, sid_idx);

ALTER TABLE session_names ENABLE ROW LEVEL SECURITY;
ALTER TABLE session_names FORCE ROW LEVEL SECURITY;
CREATE POLICY bunker_tenant ON session_names
    USING (bunker_tenant_visible(tenant_id)) WITH CHECK (bunker_tenant_visible(tenant_id));
