-- Agreements (consents): one current state per user and legal basis, plus an append-only
-- history of every change as evidence. The state and history entries (method, reference code,
-- times, who changed it) are sealed under the user's data key. The status stays in clear so
-- AgreementRevokeAll can find every active agreement of a basis without opening each user's
-- key; the legal basis is referenced by id, so a rename keeps its agreements. Erasing the user
-- (or deleting the legal basis) removes the agreements and their history.

CREATE TABLE agreements (
    rid            BLOB    NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    legal_basis_id INTEGER NOT NULL REFERENCES legal_bases (id) ON DELETE CASCADE,
    tenant_id      INTEGER NOT NULL,
    status         TEXT    NOT NULL,
    data           BLOB    NOT NULL,
    version        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (rid, legal_basis_id)
);
CREATE INDEX agreements_tenant_basis ON agreements (tenant_id, legal_basis_id, status);

CREATE TABLE agreement_history (
    rid            BLOB    NOT NULL,
    legal_basis_id INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    tenant_id      INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    data           BLOB    NOT NULL,
    PRIMARY KEY (rid, legal_basis_id, version),
    FOREIGN KEY (rid, legal_basis_id) REFERENCES agreements (rid, legal_basis_id) ON DELETE CASCADE
);
