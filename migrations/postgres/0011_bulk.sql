-- Bulk operations and fuzzy search.
--
-- bulk_unlocks: the short-lived `unlockuuid` grants of BulkListUnlock, stored only as a keyed
-- digest (HMAC under a tenant key) with the tenant and principal they were issued to, so that
-- every replica sharing the database honours them and a copy of the table does not yield one.
-- bulk_bookmarks: per grant and listing, the key of the last row of each page served, so that
-- the next page continues from that key instead of counting rows again (keyset paging behind
-- the API's offset/limit). Both go when the grant expires.
-- search_grams: keyed digests of the trigrams of each user's login, email, phone and custom
-- values, for UserSearch; never the trigrams themselves. Erasing a user erases its grams.

CREATE TABLE bulk_unlocks (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest       BYTEA   NOT NULL UNIQUE,
    tenant_id    BIGINT  NOT NULL REFERENCES tenants (id),
    principal_id TEXT    NOT NULL,
    created_ms   BIGINT  NOT NULL,
    expires_ms   BIGINT  NOT NULL
);
CREATE INDEX bulk_unlocks_expiry ON bulk_unlocks (expires_ms);

CREATE TABLE bulk_bookmarks (
    unlock_id  BIGINT  NOT NULL REFERENCES bulk_unlocks (id) ON DELETE CASCADE,
    listing    TEXT    NOT NULL,
    position   BIGINT  NOT NULL,
    last_key   BYTEA   NOT NULL,
    PRIMARY KEY (unlock_id, listing, position)
);

-- Keyset paging of the tenant-wide listings.
CREATE INDEX users_tenant_rid ON users (tenant_id, rid);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);

CREATE TABLE search_grams (
    tenant_id  BIGINT  NOT NULL,
    gram       BYTEA   NOT NULL,
    rid        BYTEA   NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, gram, rid)
);
CREATE INDEX search_grams_rid ON search_grams (rid);
