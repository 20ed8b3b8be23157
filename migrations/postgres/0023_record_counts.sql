-- Record counts for the statistics and the licence's record limit, read without scanning the
-- data: triggers count every row that comes or goes, whatever removes it (an operation, a
-- cascade from its user or legal basis, the retention sweeper, a tenant's purge).
--
-- A transaction never updates a shared counter row (concurrent writers would queue on it, and
-- two of them touching two tenants' rows in opposite orders could deadlock): triggers append a
-- delta to record_count_deltas, one row per tenant and kind per statement, and a background job
-- folds the deltas into record_counts (`crate::store::counts::compact`, one replica at a time).
-- A count is its base row plus its pending deltas, read in one statement (one snapshot), so a
-- read never sees a delta both folded and pending. Kinds: users (live ones: a held profile,
-- `held_until` set, is absent), tokens, sessions, files, agreements, requests (open ones).

CREATE TABLE record_counts (
    tenant_id   BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    n           BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, kind)
);

-- Keyed by tenant first, like every table of tenant data: a tenant's pending deltas are read
-- by the key's prefix.
CREATE TABLE record_count_deltas (
    tenant_id   BIGINT  NOT NULL,
    id          BIGINT  GENERATED ALWAYS AS IDENTITY,
    kind        TEXT    NOT NULL,
    delta       BIGINT  NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['record_counts', 'record_count_deltas'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY bunker_tenant ON %I USING (bunker_tenant_visible(tenant_id)) '
            'WITH CHECK (bunker_tenant_visible(tenant_id))', t);
    END LOOP;
END
$$;

-- Statement-level: a bulk insert of thousands of rows appends one delta per tenant, not one per
-- row. TG_ARGV: the kind, and 1 (rows came) or -1 (rows went). `changed` is the transition table.
CREATE FUNCTION record_counts_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO record_count_deltas (tenant_id, kind, delta)
    SELECT tenant_id, TG_ARGV[0], TG_ARGV[1]::BIGINT * COUNT(*) FROM changed GROUP BY tenant_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION record_counts_live_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO record_count_deltas (tenant_id, kind, delta)
    SELECT tenant_id, 'users', TG_ARGV[0]::BIGINT * COUNT(*) FROM changed WHERE held_until IS NULL GROUP BY tenant_id;
    RETURN NULL;
END
$$;

CREATE FUNCTION record_counts_open_requests() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO record_count_deltas (tenant_id, kind, delta)
    SELECT tenant_id, 'requests', TG_ARGV[0]::BIGINT * COUNT(*) FROM changed WHERE status = 'open' GROUP BY tenant_id;
    RETURN NULL;
END
$$;

-- A profile held or restored, a request opened or closed, by UPDATE. Row-level (PostgreSQL
-- allows no transition table on a trigger with a column list), and the WHEN clause keeps every
-- other update of these tables free of any call.
CREATE FUNCTION record_counts_held() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO record_count_deltas (tenant_id, kind, delta)
    VALUES (NEW.tenant_id, 'users', CASE WHEN NEW.held_until IS NULL THEN 1 ELSE -1 END);
    RETURN NULL;
END
$$;

CREATE FUNCTION record_counts_status() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO record_count_deltas (tenant_id, kind, delta)
    VALUES (NEW.tenant_id, 'requests', CASE WHEN NEW.status = 'open' THEN 1 ELSE -1 END);
    RETURN NULL;
END
$$;

CREATE TRIGGER record_counts_in AFTER INSERT ON users REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION record_counts_live_users('1');
CREATE TRIGGER record_counts_out AFTER DELETE ON users REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION record_counts_live_users('-1');
CREATE TRIGGER record_counts_held AFTER UPDATE OF held_until ON users FOR EACH ROW
    WHEN ((OLD.held_until IS NULL) <> (NEW.held_until IS NULL))
    EXECUTE FUNCTION record_counts_held();

CREATE TRIGGER record_counts_in AFTER INSERT ON user_requests REFERENCING NEW TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION record_counts_open_requests('1');
CREATE TRIGGER record_counts_out AFTER DELETE ON user_requests REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION record_counts_open_requests('-1');
CREATE TRIGGER record_counts_status AFTER UPDATE OF status ON user_requests FOR EACH ROW
    WHEN ((OLD.status = 'open') <> (NEW.status = 'open'))
    EXECUTE FUNCTION record_counts_status();

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY['tokens', 'sessions', 'files', 'agreements'] LOOP
        EXECUTE format('CREATE TRIGGER record_counts_in AFTER INSERT ON %I REFERENCING NEW TABLE AS changed '
            'FOR EACH STATEMENT EXECUTE FUNCTION record_counts_rows(%L, ''1'')', t, t);
        EXECUTE format('CREATE TRIGGER record_counts_out AFTER DELETE ON %I REFERENCING OLD TABLE AS changed '
            'FOR EACH STATEMENT EXECUTE FUNCTION record_counts_rows(%L, ''-1'')', t, t);
    END LOOP;
END
$$;

-- The counts of the rows already there. The triggers above hold their tables' write locks until
-- this migration commits, so no write falls between the count and the triggers; the setting
-- lets an owner bound by row-level security see every tenant's rows.
SELECT set_config('bunker.tenant', '*', true);
INSERT INTO record_counts (tenant_id, kind, n)
          SELECT tenant_id, 'users', COUNT(*) FROM users WHERE held_until IS NULL GROUP BY tenant_id
UNION ALL SELECT tenant_id, 'tokens', COUNT(*) FROM tokens GROUP BY tenant_id
UNION ALL SELECT tenant_id, 'sessions', COUNT(*) FROM sessions GROUP BY tenant_id
UNION ALL SELECT tenant_id, 'files', COUNT(*) FROM files GROUP BY tenant_id
UNION ALL SELECT tenant_id, 'agreements', COUNT(*) FROM agreements GROUP BY tenant_id
UNION ALL SELECT tenant_id, 'requests', COUNT(*) FROM user_requests WHERE status = 'open' GROUP BY tenant_id;
