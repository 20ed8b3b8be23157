-- Search grams in 8 bytes, as PostgreSQL has kept them since its 0012: the first 8 bytes of each
-- keyed digest instead of all 32. A gram row and its entry in the rid index shrink by half, and a
-- new user writes some sixty of each. A shorter digest only adds false candidates, which search
-- rules out on the opened profile anyway.
--
-- A user's grams now go with it by trigger instead of by foreign key: the key cost a lookup in
-- users for every gram row inserted, some sixty per new user, all under SQLite's one writer.
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

CREATE TRIGGER search_grams_go_with_their_user AFTER DELETE ON users
BEGIN
    DELETE FROM search_grams WHERE rid = OLD.rid;
END;
