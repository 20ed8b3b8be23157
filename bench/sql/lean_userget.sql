-- Lean UserGet by email: the row through the email digest's unique index, one audit row, one commit.
\set i random(0, :users - 1)
BEGIN;
SELECT id, record FROM users WHERE email = bench_idx('u' || :i::text || '@bench.example');
INSERT INTO audit (user_id, payload) VALUES (:i + 1, bench_bytes(:payload));
END;
