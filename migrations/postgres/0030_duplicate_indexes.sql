-- audit_events_tenant and user_requests_tenant, both (tenant_id, id), were made for keyset paging
-- of a tenant's listings when each table's primary key was (id) alone (0007, 0011). Since 0015
-- each primary key is (tenant_id, id) itself, so each table had the same index twice, and every
-- insert wrote both; for audit_events, which takes an event for every call and a chaining update
-- of each, that was 8 % of its write-ahead log (2,075 against 1,912 bytes an event, measured on
-- 100,000 events). The listings page through the primary keys. SQLite keeps its two indexes:
-- the key of each of its tables is the rowid alone.
DROP INDEX audit_events_tenant;
DROP INDEX user_requests_tenant;
