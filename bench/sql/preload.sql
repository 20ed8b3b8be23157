-- Loads :users users shaped as the vault's loaded users (u<i>, as bench/loadgen's `load`) and
-- :tokens tokens (handle k<i>). psql -v users=N -v tokens=N -v keysize=N -v recsize=N -v tokdata=N
INSERT INTO users (rid, tenant_id, token_idx, login_idx, email_idx, phone_idx, custom_idx, wrapped_key,
                   record, version, created_at, updated_at, sliding_secs, final_at, expires_at)
SELECT bench_rid(i), 1, bench_idx('t' || i), bench_idx('u' || i), bench_idx('u' || i || '@bench.example'),
       bench_idx('+44' || lpad(i::text, 10, '0')), NULL, bench_bytes(:keysize), bench_bytes(:recsize),
       1, extract(epoch FROM now())::bigint, extract(epoch FROM now())::bigint, NULL, NULL, NULL
  FROM generate_series(0, :users - 1) AS i;
SELECT setval('rid_seq', :users);

INSERT INTO tokens (tenant_id, uuid_idx, base_idx, value_idx, data, created_at, sliding_secs, final_at, expires_at)
SELECT 1, bench_idx('k' || i), bench_idx('b' || i), NULL, bench_bytes(:tokdata),
       extract(epoch FROM now())::bigint, NULL, NULL, NULL
  FROM generate_series(0, :tokens - 1) AS i;

VACUUM ANALYZE;
