-- Every primary key and unique constraint of tenant data begins with tenant_id, and every
-- foreign key between tenant tables carries it: the schema can then be distributed by tenant
-- (Citus distributes by a column that every unique constraint must contain; docs/scaling.md),
-- and no key or reference can cross from one tenant to another. The two child tables that had no
-- tenant column (file_chunks, bulk_bookmarks) get one, and their row-level security policies
-- use it. The vault's own tables (tenants, tenant_keys, access_tokens, vault_meta,
-- vault_changes) are not tenant data and keep their keys.

-- Every foreign key goes first (they depend on the keys being replaced) and comes back below.
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN
        SELECT conrelid::regclass AS tbl, conname FROM pg_constraint
        WHERE contype = 'f' AND connamespace = current_schema()::regnamespace
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.tbl, r.conname);
    END LOOP;
END
$$;

ALTER TABLE file_chunks ADD COLUMN tenant_id BIGINT;
UPDATE file_chunks c SET tenant_id = f.tenant_id FROM files f WHERE f.id = c.file_id;
ALTER TABLE file_chunks ALTER COLUMN tenant_id SET NOT NULL;

ALTER TABLE bulk_bookmarks ADD COLUMN tenant_id BIGINT;
UPDATE bulk_bookmarks b SET tenant_id = u.tenant_id FROM bulk_unlocks u WHERE u.id = b.unlock_id;
ALTER TABLE bulk_bookmarks ALTER COLUMN tenant_id SET NOT NULL;

ALTER TABLE users DROP CONSTRAINT users_pkey, ADD PRIMARY KEY (tenant_id, rid);
ALTER TABLE user_versions DROP CONSTRAINT user_versions_pkey, ADD PRIMARY KEY (tenant_id, rid, version);
ALTER TABLE userapps DROP CONSTRAINT userapps_pkey, ADD PRIMARY KEY (tenant_id, rid, appname);
ALTER TABLE userapp_versions DROP CONSTRAINT userapp_versions_pkey,
    ADD PRIMARY KEY (tenant_id, rid, appname, version);
ALTER TABLE legal_bases DROP CONSTRAINT legal_bases_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE processing_activities DROP CONSTRAINT processing_activities_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE processing_activity_legal_bases DROP CONSTRAINT processing_activity_legal_bases_pkey,
    ADD PRIMARY KEY (tenant_id, activity_id, legal_basis_id);
ALTER TABLE agreements DROP CONSTRAINT agreements_pkey, ADD PRIMARY KEY (tenant_id, rid, legal_basis_id);
ALTER TABLE agreement_history DROP CONSTRAINT agreement_history_pkey,
    ADD PRIMARY KEY (tenant_id, rid, legal_basis_id, version);
ALTER TABLE user_requests DROP CONSTRAINT user_requests_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE user_requests DROP CONSTRAINT user_requests_uuid_key, ADD CONSTRAINT user_requests_uuid_key UNIQUE (tenant_id, uuid);
ALTER TABLE files DROP CONSTRAINT files_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE file_tags DROP CONSTRAINT file_tags_pkey, ADD PRIMARY KEY (tenant_id, file_id, tag_idx);
ALTER TABLE file_chunks DROP CONSTRAINT file_chunks_pkey, ADD PRIMARY KEY (tenant_id, file_id, seq);
ALTER TABLE bulk_unlocks DROP CONSTRAINT bulk_unlocks_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE bulk_unlocks DROP CONSTRAINT bulk_unlocks_digest_key, ADD CONSTRAINT bulk_unlocks_digest_key UNIQUE (tenant_id, digest);
ALTER TABLE bulk_bookmarks DROP CONSTRAINT bulk_bookmarks_pkey, ADD PRIMARY KEY (tenant_id, unlock_id, listing, position);
ALTER TABLE user_grams DROP CONSTRAINT user_grams_pkey, ADD PRIMARY KEY (tenant_id, rid);
ALTER TABLE audit_events DROP CONSTRAINT audit_events_pkey, ADD PRIMARY KEY (tenant_id, id);
ALTER TABLE audit_events DROP CONSTRAINT audit_events_uuid_key, ADD CONSTRAINT audit_events_uuid_key UNIQUE (tenant_id, uuid);

-- The references, each within one tenant.
ALTER TABLE tenant_keys ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE access_tokens ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE users ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE user_versions ADD FOREIGN KEY (tenant_id, rid) REFERENCES users (tenant_id, rid) ON DELETE CASCADE;
ALTER TABLE userapps ADD FOREIGN KEY (tenant_id, rid) REFERENCES users (tenant_id, rid) ON DELETE CASCADE;
ALTER TABLE userapp_versions ADD FOREIGN KEY (tenant_id, rid, appname)
    REFERENCES userapps (tenant_id, rid, appname) ON DELETE CASCADE;
ALTER TABLE sessions ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE sessions ADD FOREIGN KEY (tenant_id, user_rid) REFERENCES users (tenant_id, rid) ON DELETE CASCADE;
ALTER TABLE legal_bases ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE processing_activities ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE processing_activity_legal_bases ADD FOREIGN KEY (tenant_id, activity_id)
    REFERENCES processing_activities (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE processing_activity_legal_bases ADD FOREIGN KEY (tenant_id, legal_basis_id)
    REFERENCES legal_bases (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE agreements ADD FOREIGN KEY (tenant_id, rid) REFERENCES users (tenant_id, rid) ON DELETE CASCADE;
ALTER TABLE agreements ADD FOREIGN KEY (tenant_id, legal_basis_id) REFERENCES legal_bases (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE agreement_history ADD FOREIGN KEY (tenant_id, rid, legal_basis_id)
    REFERENCES agreements (tenant_id, rid, legal_basis_id) ON DELETE CASCADE;
ALTER TABLE shared_records ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE shared_records ADD FOREIGN KEY (tenant_id, user_rid) REFERENCES users (tenant_id, rid) ON DELETE CASCADE;
ALTER TABLE user_requests ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE user_requests ADD FOREIGN KEY (tenant_id, rid) REFERENCES users (tenant_id, rid) ON DELETE CASCADE;
ALTER TABLE tokens ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE files ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE files ADD FOREIGN KEY (tenant_id, rid) REFERENCES users (tenant_id, rid) ON DELETE CASCADE;
ALTER TABLE file_tags ADD FOREIGN KEY (tenant_id, file_id) REFERENCES files (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE file_chunks ADD FOREIGN KEY (tenant_id, file_id) REFERENCES files (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE bulk_unlocks ADD FOREIGN KEY (tenant_id) REFERENCES tenants (id);
ALTER TABLE bulk_bookmarks ADD FOREIGN KEY (tenant_id, unlock_id) REFERENCES bulk_unlocks (tenant_id, id) ON DELETE CASCADE;
ALTER TABLE user_grams ADD FOREIGN KEY (tenant_id, rid) REFERENCES users (tenant_id, rid) ON DELETE CASCADE;

-- The two children now carry their tenant: their policies compare it like every other table's.
DROP POLICY bunker_tenant ON file_chunks;
CREATE POLICY bunker_tenant ON file_chunks USING (bunker_tenant_visible(tenant_id)) WITH CHECK (bunker_tenant_visible(tenant_id));
DROP POLICY bunker_tenant ON bulk_bookmarks;
CREATE POLICY bunker_tenant ON bulk_bookmarks USING (bunker_tenant_visible(tenant_id)) WITH CHECK (bunker_tenant_visible(tenant_id));

-- The primary key now is (tenant_id, rid): the index bulk listings walked is the key itself.
DROP INDEX users_tenant_rid;
