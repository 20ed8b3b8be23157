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
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    digest       BLOB    NOT NULL UNIQUE,
    tenant_id    INTEGER NOT NULL REFERENCES tenants (id),
    principal_id TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
);
CREATE INDEX bulk_unlocks_expiry ON bulk_unlocks (expires_ms);

CREATE TABLE bulk_bookmarks (
    unlock_id  INTEGER NOT NULL REFERENCES bulk_unlocks (id) ON DELETE CASCADE,
    listing    TEXT    NOT NULL,
    position   INTEGER NOT NULL,
    last_key   BLOB    NOT NULL,
    PRIMARY KEY (unlock_id, listing, position)
);

-- Keyset paging of the tenant-wide listings.
CREATE INDEX users_tenant_rid ON users (tenant_id, rid);
CREATE INDEX audit_events_tenant ON audit_events (tenant_id, id);

CREATE TABLE search_grams (
    tenant_id  INTEGER NOT NULL,
    gram       BLOB    NOT NULL,
    rid        BLOB    NOT NULL REFERENCES users (rid) ON DELETE CASCADE,
    PRIMARY KEY (tenant_id, gram, rid)
) WITHOUT ROWID;
CREATE INDEX search_grams_rid ON search_grams (rid);
