-- UserGet by email: one lookup through the email digest's unique index, one audit row, one transaction.
\set i random(0, :users - 1)
BEGIN;
SELECT rid, wrapped_key, record, version, updated_at, sliding_secs, final_at, expires_at
  FROM users
 WHERE tenant_id = 1 AND email_idx = bench_idx('u' || :i::text || '@bench.example')
   AND (expires_at IS NULL OR expires_at > extract(epoch FROM now())::bigint);
INSERT INTO audit_events (uuid, tenant_id, created_ms, principal_kind, principal_id, operation, event_type,
                          result, http_status, user_ref, subject_rid, key_scope, payload)
VALUES (gen_random_uuid()::text, 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, 'root',
        '00000000-0000-0000-0000-000000000001', 'UserGet', 'read', 'ok', 200, bench_idx('t' || :i::text),
        bench_rid(:i), 'user', bench_bytes(:payload));
END;
