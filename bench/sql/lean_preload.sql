-- Loads :users users into the lean schema, shaped as the vault's loaded users (u<i>, as
-- bench/loadgen's `load`). psql -v users=N -v keysize=N -v recsize=N
INSERT INTO users (login, email, phone, record)
SELECT bench_idx('u' || i), bench_idx('u' || i || '@bench.example'), bench_idx('+44' || lpad(i::text, 10, '0')),
       bench_bytes(:keysize + :recsize)
  FROM generate_series(0, :users - 1) AS i
 ORDER BY i;
SELECT setval('lean_seq', :users);
VACUUM ANALYZE;
