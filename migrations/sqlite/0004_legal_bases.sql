-- Legal bases and processing activities: tenant-level catalogue records (no personal data),
-- stored in clear. Surrogate ids let a rename keep its links.

CREATE TABLE legal_bases (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    brief        TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    module       TEXT    NOT NULL,
    fulldesc     TEXT    NOT NULL,
    shortdesc    TEXT    NOT NULL,
    basistype    TEXT    NOT NULL,
    requiredmsg  TEXT    NOT NULL,
    requiredflag BOOLEAN NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    CONSTRAINT legal_bases_brief_key UNIQUE (tenant_id, brief)
);

CREATE TABLE processing_activities (
    id           INTEGER PRIMARY KEY,
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    activity     TEXT    NOT NULL,
    title        TEXT    NOT NULL,
    script       TEXT    NOT NULL,
    fulldesc     TEXT    NOT NULL,
    applicableto TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    CONSTRAINT processing_activities_activity_key UNIQUE (tenant_id, activity)
);

-- Deleting either side removes its links.
CREATE TABLE processing_activity_legal_bases (
    activity_id    INTEGER NOT NULL REFERENCES processing_activities (id) ON DELETE CASCADE,
    legal_basis_id INTEGER NOT NULL REFERENCES legal_bases (id) ON DELETE CASCADE,
    tenant_id      INTEGER NOT NULL,
    PRIMARY KEY (activity_id, legal_basis_id)
);
CREATE INDEX processing_activity_legal_bases_basis ON processing_activity_legal_bases (legal_basis_id);
