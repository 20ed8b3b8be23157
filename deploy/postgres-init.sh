#!/bin/sh
# Run once by the postgres image of compose.yaml, when it creates its data directory: the
# database `bunker`, owned by a role `bunker` that is neither a superuser nor BYPASSRLS, so
# PostgreSQL's row-level security binds the vault (README, "PostgreSQL row-level security and the
# two roles"). The owner applies the migrations: the vault does at start.
set -eu
password=$(cat /run/secrets/bunker-db-password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v password="$password" <<'SQL'
CREATE ROLE bunker LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD :'password';
CREATE DATABASE bunker OWNER bunker;
SQL
