-- The two child tables that had no tenant column get one (the statements are the same on both
-- backends, and PostgreSQL keys them by tenant: see its 0015), and the agreements' upsert names a
-- key that begins with the tenant.

ALTER TABLE file_chunks ADD COLUMN tenant_id INTEGER NOT NULL DEFAULT 0;
UPDATE file_chunks SET tenant_id = (SELECT f.tenant_id FROM files f WHERE f.id = file_chunks.file_id);

ALTER TABLE bulk_bookmarks ADD COLUMN tenant_id INTEGER NOT NULL DEFAULT 0;
UPDATE bulk_bookmarks SET tenant_id = (SELECT u.tenant_id FROM bulk_unlocks u WHERE u.id = bulk_bookmarks.unlock_id);

CREATE UNIQUE INDEX agreements_tenant_key ON agreements (tenant_id, rid, legal_basis_id);
