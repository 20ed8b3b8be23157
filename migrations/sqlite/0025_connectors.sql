-- Connectors (issue 17): the company's own databases the vault reaches into to find, report and
-- erase a data subject's rows. The database password is sealed under the tenant's key (table
-- label `connectors`, record label `seal_id`); host, database and table names are configuration,
-- not personal data.
CREATE TABLE connectors (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id         INTEGER NOT NULL,
    name              TEXT    NOT NULL,
    engine            TEXT    NOT NULL,
    description       TEXT    NOT NULL,
    host              TEXT    NOT NULL,
    port              INTEGER NOT NULL,
    dbname            TEXT    NOT NULL,
    tablename         TEXT    NOT NULL,
    username          TEXT    NOT NULL,
    seal_id           BLOB    NOT NULL,
    secret            BLOB    NOT NULL,
    status            TEXT    NOT NULL,
    identity_columns  TEXT    NOT NULL,
    erase_mode        TEXT    NOT NULL,
    in_erasure        INTEGER NOT NULL,
    in_reports        INTEGER NOT NULL,
    created_ms        INTEGER NOT NULL,
    updated_ms        INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);

-- Erasures owed to connectors: queued in the transaction that erases the user in the vault, carried
-- out afterwards by the connector worker (a lease lets one replica work a job at a time). The
-- user's identities are sealed under the tenant's key; the row goes when the job ends.
CREATE TABLE connector_erasures (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id     INTEGER NOT NULL,
    connector_id  INTEGER NOT NULL REFERENCES connectors (id) ON DELETE CASCADE,
    origin        TEXT    NOT NULL,
    seal_id       BLOB    NOT NULL,
    identities    BLOB    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    due_ms        INTEGER NOT NULL,
    lease_ms      INTEGER NOT NULL DEFAULT 0,
    last_failure  TEXT,
    created_ms    INTEGER NOT NULL
);
CREATE INDEX connector_erasures_due ON connector_erasures (due_ms);
CREATE INDEX connector_erasures_connector ON connector_erasures (tenant_id, connector_id);

