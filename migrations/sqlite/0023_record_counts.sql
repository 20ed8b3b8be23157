-- Record counts for the statistics and the licence's record limit, read without scanning the
-- data: triggers count every row that comes or goes, whatever removes it (an operation, a
-- cascade from its user or legal basis, the retention sweeper, a tenant's purge). SQLite fires
-- triggers for the deletes of ON DELETE CASCADE too.
--
-- SQLite has one writer at a time, so the triggers update each tenant's counter row in place
-- (PostgreSQL appends deltas that a background job folds in, to keep concurrent writers off a
-- shared row). Kinds: users (live ones: a held profile, `held_until` set, is absent), tokens,
-- sessions, files, agreements, requests (open ones).

CREATE TABLE record_counts (
    tenant_id   INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, kind)
) WITHOUT ROWID;

CREATE TRIGGER tokens_count_in AFTER INSERT ON tokens BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, 'tokens', 1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER tokens_count_out AFTER DELETE ON tokens BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (OLD.tenant_id, 'tokens', -1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER sessions_count_in AFTER INSERT ON sessions BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, 'sessions', 1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER sessions_count_out AFTER DELETE ON sessions BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (OLD.tenant_id, 'sessions', -1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER files_count_in AFTER INSERT ON files BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, 'files', 1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER files_count_out AFTER DELETE ON files BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (OLD.tenant_id, 'files', -1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER agreements_count_in AFTER INSERT ON agreements BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, 'agreements', 1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER agreements_count_out AFTER DELETE ON agreements BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (OLD.tenant_id, 'agreements', -1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER users_count_in AFTER INSERT ON users WHEN NEW.held_until IS NULL BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, 'users', 1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER users_count_out AFTER DELETE ON users WHEN OLD.held_until IS NULL BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (OLD.tenant_id, 'users', -1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER users_count_held AFTER UPDATE OF held_until ON users
    WHEN (OLD.held_until IS NULL) <> (NEW.held_until IS NULL) BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, 'users', CASE WHEN NEW.held_until IS NULL THEN 1 ELSE -1 END)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;

CREATE TRIGGER user_requests_count_in AFTER INSERT ON user_requests WHEN NEW.status = 'open' BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, 'requests', 1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER user_requests_count_out AFTER DELETE ON user_requests WHEN OLD.status = 'open' BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (OLD.tenant_id, 'requests', -1)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;
CREATE TRIGGER user_requests_count_status AFTER UPDATE OF status ON user_requests
    WHEN (OLD.status = 'open') <> (NEW.status = 'open') BEGIN
    INSERT INTO record_counts (tenant_id, kind, n) VALUES (NEW.tenant_id, 'requests', CASE WHEN NEW.status = 'open' THEN 1 ELSE -1 END)
        ON CONFLICT (tenant_id, kind) DO UPDATE SET n = n + excluded.n;
END;

-- The counts of the rows already there (the migration holds the write lock: nothing falls
-- between the count and the triggers).
INSERT INTO record_counts (tenant_id, kind, n)
          SELECT tenant_id, 'users', COUNT(*) FROM users WHERE held_until IS NULL GROUP BY tenant_id
UNION ALL SELECT tenant_id, 'tokens', COUNT(*) FROM tokens GROUP BY tenant_id
UNION ALL SELECT tenant_id, 'sessions', COUNT(*) FROM sessions GROUP BY tenant_id
UNION ALL SELECT tenant_id, 'files', COUNT(*) FROM files GROUP BY tenant_id
UNION ALL SELECT tenant_id, 'agreements', COUNT(*) FROM agreements GROUP BY tenant_id
UNION ALL SELECT tenant_id, 'requests', COUNT(*) FROM user_requests WHERE status = 'open' GROUP BY tenant_id;
