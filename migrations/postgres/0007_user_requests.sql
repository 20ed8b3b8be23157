-- Approval requests: a change to a user's data asked for now and applied when an administrator
-- approves it. The action, its target (an app name or a legal basis brief, catalogue names, not
-- personal data) and the status stay in clear for listing; the change itself and the reason
-- given on approval or cancellation are sealed under the user's data key. Erasing the user
-- removes its requests.

CREATE TABLE user_requests (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    uuid        TEXT    NOT NULL UNIQUE,
    tenant_id   BIGINT  NOT NULL REFERENCES tenants (id),
    rid         BYTEA   NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    change      BYTEA,
    reason      BYTEA,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);
CREATE INDEX user_requests_user ON user_requests (tenant_id, rid, id);
CREATE INDEX user_requests_tenant ON user_requests (tenant_id, id);
