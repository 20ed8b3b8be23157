-- Lean UserCreate: a new user (three unique digests, the sealed key and record) and its audit
-- row, one statement, one commit.
\set bytes :keysize + :recsize
WITH n AS (SELECT nextval('lean_seq') AS n),
     u AS (INSERT INTO users (login, email, phone, record)
           SELECT bench_idx('c' || n), bench_idx('c' || n || '@bench.example'),
                  bench_idx('+45' || lpad(n::text, 10, '0')), bench_bytes(:bytes)
             FROM n
           RETURNING id)
INSERT INTO audit (user_id, payload) SELECT id, bench_bytes(:payload) FROM u;
