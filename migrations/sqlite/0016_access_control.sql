-- Access control: groups (with a parent and custom attributes), roles, policies, the links
-- between roles and policies, group memberships (a user holds at most one role in a group), and
-- the role and user access tokens (xtokens). See the PostgreSQL migration of the same number.

CREATE TABLE access_groups (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    name        TEXT    NOT NULL,
    descr       TEXT    NOT NULL,
    gtype       TEXT    NOT NULL,
    parent_id   INTEGER REFERENCES access_groups (id),
    attributes  TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CONSTRAINT access_groups_name_key UNIQUE (tenant_id, name)
);
CREATE INDEX access_groups_parent ON access_groups (tenant_id, parent_id);

CREATE TABLE access_roles (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    name        TEXT    NOT NULL,
    descr       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CONSTRAINT access_roles_name_key UNIQUE (tenant_id, name)
);

CREATE TABLE access_policies (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id   INTEGER NOT NULL REFERENCES tenants (id),
    name        TEXT    NOT NULL,
    descr       TEXT    NOT NULL,
    document    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CONSTRAINT access_policies_name_key UNIQUE (tenant_id, name)
);

CREATE TABLE access_role_policies (
    tenant_id   INTEGER NOT NULL,
    role_id     INTEGER NOT NULL REFERENCES access_roles (id) ON DELETE CASCADE,
    policy_id   INTEGER NOT NULL REFERENCES access_policies (id),
    PRIMARY KEY (tenant_id, role_id, policy_id)
);
CREATE INDEX access_role_policies_policy ON access_role_policies (tenant_id, policy_id);

CREATE TABLE access_group_members (
    tenant_id   INTEGER NOT NULL,
    group_id    INTEGER NOT NULL REFERENCES access_groups (id) ON DELETE CASCADE,
    rid         BLOB    NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    role_id     INTEGER REFERENCES access_roles (id),
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, group_id, rid)
);
CREATE INDEX access_group_members_rid ON access_group_members (tenant_id, rid);
CREATE INDEX access_group_members_role ON access_group_members (tenant_id, role_id);

ALTER TABLE access_tokens ADD COLUMN role_id INTEGER;
ALTER TABLE access_tokens ADD COLUMN user_rid BLOB;
CREATE INDEX access_tokens_role ON access_tokens (tenant_id, role_id) WHERE role_id IS NOT NULL;
CREATE INDEX access_tokens_user ON access_tokens (tenant_id, user_rid) WHERE user_rid IS NOT NULL;
CREATE INDEX access_tokens_expires ON access_tokens (expires_at) WHERE expires_at IS NOT NULL;
