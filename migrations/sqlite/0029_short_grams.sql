-- Search grams in 8 bytes, as PostgreSQL has kept them since its 0012: the first 8 bytes of each
-- keyed digest instead of all 32. A gram row and its entry in the rid index shrink by half. A
-- shorter digest only adds false candidates, which search rules out on the opened profile anyway.
--
-- A user's grams go with it by trigger instead of by foreign key: the key cost a lookup in users
-- for every gram row inserted, some sixty per new user, all under SQLite's one writer.
--
-- search_pending: the grams of users not yet in the index, one row per user (its grams packed,
-- 8 bytes each), in the order users were created. A new user's sixty-odd grams went to random
-- places of the index, and a commit of a few dozen users rewrote some 1,600 of its pages into
-- the write-ahead log (213 KB written per user). They now wait here, a few pages per commit, and
-- are moved into the index a thousand users at a time in gram order, so that each page of the
-- index takes many grams at once (PostgreSQL's GIN index does the same with its pending list).
-- Search reads both; a user's grams are in one or the other, never both.
CREATE TABLE search_grams_short (
    tenant_id  INTEGER NOT NULL,
    gram       BLOB    NOT NULL,
    rid        BLOB    NOT NULL,
    PRIMARY KEY (tenant_id, gram, rid)
) WITHOUT ROWID;

INSERT OR IGNORE INTO search_grams_short (tenant_id, gram, rid)
    SELECT tenant_id, substr(gram, 1, 8), rid FROM search_grams;

DROP TABLE search_grams;
ALTER TABLE search_grams_short RENAME TO search_grams;
CREATE INDEX search_grams_rid ON search_grams (rid);

CREATE TABLE search_pending (
    rid        BLOB    NOT NULL PRIMARY KEY,
    tenant_id  INTEGER NOT NULL,
    grams      BLOB    NOT NULL
) WITHOUT ROWID;

CREATE TRIGGER search_grams_go_with_their_user AFTER DELETE ON users
BEGIN
    DELETE FROM search_grams WHERE rid = OLD.rid;
    DELETE FROM search_pending WHERE rid = OLD.rid;
END;
