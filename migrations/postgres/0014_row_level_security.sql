-- Row-level security: a second guard behind the store's tenant-scoped handles. Every table of
-- tenant data admits only the rows of the tenant named by the `bunker.tenant` setting, which the
-- vault sets on each connection or transaction before it touches tenant data ('*' for its own
-- cross-tenant work: the audit and user group commits, the expiry sweeper). FORCE applies the
-- policies to the owning role too, so a vault that owns its tables is still bound by them; only
-- a superuser or a BYPASSRLS role escapes them (the vault warns at start when it runs as one).
-- Not under the policies: the vault's own tables (tenants, tenant_keys, access_tokens, looked up
-- before the tenant is known; vault_meta, vault_changes, file_blobs_gone).

CREATE FUNCTION bunker_tenant_visible(row_tenant BIGINT) RETURNS BOOLEAN
LANGUAGE sql STABLE AS $$
    SELECT CASE current_setting('bunker.tenant', true)
        WHEN '*' THEN true
        WHEN '' THEN false
        ELSE row_tenant::text = current_setting('bunker.tenant', true)
    END
$$;

DO $$
DECLARE
    t TEXT;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'users', 'user_versions', 'userapps', 'userapp_versions', 'sessions', 'legal_bases',
        'processing_activities', 'processing_activity_legal_bases', 'agreements',
        'agreement_history', 'shared_records', 'user_requests', 'tokens', 'files', 'file_tags',
        'bulk_unlocks', 'user_grams', 'audit_events'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY bunker_tenant ON %I USING (bunker_tenant_visible(tenant_id)) '
            'WITH CHECK (bunker_tenant_visible(tenant_id))', t);
    END LOOP;
END
$$;

-- Child tables without a tenant column of their own see through their parent, itself bound.
ALTER TABLE file_chunks ENABLE ROW LEVEL SECURITY;
ALTER TABLE file_chunks FORCE ROW LEVEL SECURITY;
CREATE POLICY bunker_tenant ON file_chunks
    USING (EXISTS (SELECT 1 FROM files f WHERE f.id = file_chunks.file_id))
    WITH CHECK (EXISTS (SELECT 1 FROM files f WHERE f.id = file_chunks.file_id));

ALTER TABLE bulk_bookmarks ENABLE ROW LEVEL SECURITY;
ALTER TABLE bulk_bookmarks FORCE ROW LEVEL SECURITY;
CREATE POLICY bunker_tenant ON bulk_bookmarks
    USING (EXISTS (SELECT 1 FROM bulk_unlocks u WHERE u.id = bulk_bookmarks.unlock_id))
    WITH CHECK (EXISTS (SELECT 1 FROM bulk_unlocks u WHERE u.id = bulk_bookmarks.unlock_id));
