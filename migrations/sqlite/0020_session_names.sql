-- The identities an unbound session names (a token, login, email, phone or custom value in its
-- data), as blind indexes under the tenant's session key. A session that names a user who does
-- not exist yet is stored unbound; when that user is erased, the sessions naming it are found
-- here and erased too. Bound sessions need no names: they go with their user (cascade).

CREATE TABLE session_names (
    tenant_id INTEGER NOT NULL,
    sid_idx   BLOB    NOT NULL,
    name_idx  BLOB    NOT NULL,
    PRIMARY KEY (tenant_id, name_idx, sid_idx),
    FOREIGN KEY (tenant_id, sid_idx) REFERENCES sessions (tenant_id, sid_idx) ON DELETE CASCADE
);
CREATE INDEX session_names_session ON session_names (tenant_id, sid_idx);
