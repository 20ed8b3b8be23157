-- UserCreate: a new user with its login, email and phone digests (unique indexes) and sealed key
-- and record, plus its audit row, in one transaction.
BEGIN;
INSERT INTO users (rid, tenant_id, token_idx, login_idx, email_idx, phone_idx, custom_idx, wrapped_key,
                   record, version, created_at, updated_at, sliding_secs, final_at, expires_at)
SELECT bench_rid(n), 1, bench_idx('t' || n), bench_idx('c' || n), bench_idx('c' || n || '@bench.example'),
       bench_idx('+45' || lpad(n::text, 10, '0')), NULL, bench_bytes(:keysize), bench_bytes(:recsize),
       1, s, s, NULL, NULL, NULL
  FROM (SELECT nextval('rid_seq') AS n, extract(epoch FROM now())::bigint AS s) AS v;
INSERT INTO audit_events (uuid, tenant_id, created_ms, principal_kind, principal_id, operation, event_type,
                          result, http_status, user_ref, subject_rid, key_scope, payload)
VALUES (gen_random_uuid()::text, 1, (extract(epoch FROM clock_timestamp()) * 1000)::bigint, 'root',
        '00000000-0000-0000-0000-000000000001', 'UserCreate', 'create', 'ok', 200,
        bench_idx(gen_random_uuid()::text), bench_rid(currval('rid_seq')), 'user', bench_bytes(:payload));
END;
