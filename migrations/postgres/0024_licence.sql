-- The licence in force, vault-wide (one row). SystemSetLicenseKey verifies a licence against the
-- configured public key before it replaces this row; the terms are kept beside the text so that
-- enforcement reads a row, not a signature. Not tenant data: no row-level security policy.
CREATE TABLE licence (
    id            BIGINT  PRIMARY KEY CHECK (id = 1),
    text          TEXT    NOT NULL,
    version       BIGINT  NOT NULL,
    customer      TEXT    NOT NULL,
    max_records   BIGINT  NOT NULL,
    expires       BIGINT  NOT NULL,
    issued        BIGINT  NOT NULL,
    installed_ms  BIGINT  NOT NULL
);
