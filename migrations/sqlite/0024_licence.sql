-- The licence in force, vault-wide (one row). SystemSetLicenseKey verifies a licence against the
-- configured public key before it replaces this row; the terms are kept beside the text so that
-- enforcement reads a row, not a signature.
CREATE TABLE licence (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    text          TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    customer      TEXT    NOT NULL,
    max_records   INTEGER NOT NULL,
    expires       INTEGER NOT NULL,
    issued        INTEGER NOT NULL,
    installed_ms  INTEGER NOT NULL
);
