-- TokenCreate: a token row found by the digests of its tokenuuid and tokenbase (unique indexes),
-- its sealed value, plus its audit row, in one transaction.
BEGIN;
INSERT INTO tokens (tenant_id, uuid_idx, base_idx, value_idx, data, created_at, sliding_secs, final_at, expires_at)
VALUES (1, bench_idx(gen_random_uuid()::text), bench_idx(gen_random_uuid()::text), NULL, bench_bytes(:tokdata),
        extract(epoch FROM now())::bigint, NULL, NULL, NULL);
INSERT INTO audit_events (uuid, tenant_id, created_ms, principal_kind, principal_id, operation, event_type,
                          result, http_status, user_ref, subject_rid, key_scope, payload)
VALUES (gen_random_uuid()::text, 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, 'root',
        '00000000-0000-0000-0000-000000000001', 'TokenCreate', 'create', 'ok', 200, NULL, NULL, 'tenant',
        bench_bytes(:payload));
END;
