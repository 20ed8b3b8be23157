-- TokenGet: one lookup through the tokenuuid digest's key, one audit row, one transaction.
\set i random(0, :tokens - 1)
BEGIN;
SELECT data, sliding_secs, final_at, expires_at
  FROM tokens
 WHERE tenant_id = 1 AND uuid_idx = bench_idx('k' || :i::text)
   AND (expires_at IS NULL OR expires_at > extract(epoch FROM now())::bigint);
INSERT INTO audit_events (uuid, tenant_id, created_ms, principal_kind, principal_id, operation, event_type,
                          result, http_status, user_ref, subject_rid, key_scope, payload)
VALUES (gen_random_uuid()::text, 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, 'root',
        '00000000-0000-0000-0000-000000000001', 'TokenGet', 'read', 'ok', 200, NULL, NULL, 'tenant',
        bench_bytes(:payload));
END;
