-- Connectors (issue 17): the company's own databases the vault reaches into to find, report and
-- erase a data subject's rows. The database password is sealed under the tenant's key (table
-- label `connectors`, record label `seal_id`); host, database and table names are configuration,
-- not personal data.
CREATE TABLE connectors (
    id                BIGINT  GENERATED ALWAYS AS IDENTITY,
    tenant_id         BIGINT  NOT NULL,
    name              TEXT    NOT NULL,
    engine            TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    host              TEXT    NOT NULL,
    port              BIGINT  NOT NULL,
    dbname            TEXT    NOT NULL,
    tablename         TEXT    NOT NULL,
    username          TEXT    NOT NULL,
    seal_id           BYTEA   NOT NULL,
    secret            BYTEA   NOT NULL,
    status            TEXT    NOT NULL,
    identity_columns  TEXT    NOT NULL,
    erase_mode        TEXT    NOT NULL,
    in_erasure        BOOLEAN NOT NULL,
    in_reports        BOOLEAN NOT NULL,
    created_ms        BIGINT  NOT NULL,
    updated_ms        BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);

-- Erasures owed to connectors: queued in the transaction that erases the user in the vault, carried
-- out afterwards by the connector worker (a lease lets one replica work a job at a time). The
-- user's identities are sealed under the tenant's key; the row goes when the job ends.
CREATE TABLE connector_erasures (
    id            BIGINT  GENERATED ALWAYS AS IDENTITY,
    tenant_id     BIGINT  NOT NULL,
    connector_id  BIGINT  NOT NULL,
    origin        TEXT    NOT NULL,
    seal_id       BYTEA   NOT NULL,
    identities    BYTEA   NOT NULL,
    attempts      BIGINT  NOT NULL DEFAULT 0,
    due_ms        BIGINT  NOT NULL,
    lease_ms      BIGINT  NOT NULL DEFAULT 0,
    last_failure  TEXT,
    created_ms    BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, connector_id) REFERENCES connectors (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX connector_erasures_due ON connector_erasures (due_ms);
CREATE INDEX connector_erasures_connector ON connector_erasures (tenant_id, connector_id);

ALTER TABLE connectors ENABLE ROW LEVEL SECURITY;
ALTER TABLE connectors FORCE ROW LEVEL SECURITY;
CREATE POLICY bunker_tenant ON connectors
    USING (bunker_tenant_visible(tenant_id)) WITH CHECK (bunker_tenant_visible(tenant_id));
ALTER TABLE connector_erasures ENABLE ROW LEVEL SECURITY;
ALTER TABLE connector_erasures FORCE ROW LEVEL SECURITY;
CREATE POLICY bunker_tenant ON connector_erasures
    USING (bunker_tenant_visible(tenant_id)) WITH CHECK (bunker_tenant_visible(tenant_id));
