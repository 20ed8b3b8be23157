-- The web console's sessions (issue 18) are access tokens the console alone may present: the
-- time of their last use, for the idle timeout. NULL for every other token.
ALTER TABLE access_tokens ADD COLUMN console_seen_at BIGINT;

-- The console's chart of audit events per day counts a tenant's events by time.
CREATE INDEX audit_events_time ON audit_events (tenant_id, created_ms);
