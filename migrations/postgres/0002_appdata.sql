-- App data: one sealed JSON object per user and app, with its superseded versions.
-- App names are not personal data and stay in clear; the data is sealed under the user's key.

CREATE TABLE userapps (
    rid         BYTEA   NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    appname     TEXT    NOT NULL,
    tenant_id   BIGINT  NOT NULL,
    data        BYTEA   NOT NULL,
    version     BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (rid, appname)
);
CREATE INDEX userapps_tenant_app ON userapps (tenant_id, appname);

CREATE TABLE userapp_versions (
    rid         BYTEA   NOT NULL,
    appname     TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    tenant_id   BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    data        BYTEA   NOT NULL,
    PRIMARY KEY (rid, appname, version),
    FOREIGN KEY (rid, appname) REFERENCES userapps (rid, appname) ON DELETE CASCADE
);
