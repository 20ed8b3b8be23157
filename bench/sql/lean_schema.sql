-- The lean raw baseline (issue 20): the least schema that does a vault's durable work, written by
-- hand. One users table (the sealed key and record in one column, the login, email and phone
-- digests under unique indexes), one audit table with a bigserial key, a commit per operation.
-- No tenants, versions, lifetimes, search grams or chained audit: what the vault does on top of
-- this is what it must win back through its group commit.

CREATE TABLE users (
    id      BIGSERIAL PRIMARY KEY,
    login   BYTEA UNIQUE,
    email   BYTEA UNIQUE,
    phone   BYTEA UNIQUE,
    record  BYTEA NOT NULL
);

CREATE TABLE audit (
    id       BIGSERIAL PRIMARY KEY,
    user_id  BIGINT,
    payload  BYTEA NOT NULL
);

-- New users' numbers, after the loaded ones.
CREATE SEQUENCE lean_seq;
-- A digest standing for a blind index.
CREATE FUNCTION bench_idx(value TEXT) RETURNS BYTEA LANGUAGE sql IMMUTABLE
    AS $$ SELECT sha256(convert_to(value, 'UTF8')) $$;
-- n random-looking bytes standing for a sealed value.
CREATE FUNCTION bench_bytes(n INT) RETURNS BYTEA LANGUAGE sql VOLATILE
    AS $$ SELECT substring(decode(repeat(md5(random()::text), n / 16 + 1), 'hex') FROM 1 FOR n) $$;
