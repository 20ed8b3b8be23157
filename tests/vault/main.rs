//! Integration tests: the real router against real SQLite and PostgreSQL databases, a fresh
//! database per test. Every test in a `both!` block runs once per backend.

mod common;

mod abuse;
mod access_groups;
mod access_masking;
mod access_support;
mod access_tokens;
mod agreements;
mod appdata;
mod audit;
mod auth;
mod binary;
mod bulk;
mod bulk_by_domain;
mod caches;
mod connections;
mod cross_tenant;
mod crypto_at_rest;
mod db_outage;
mod deadlines;
mod file_storage;
mod files;
mod kill_during_creates;
mod legal;
mod lifetimes;
mod limits;
mod openapi;
mod pg_proxy;
mod process;
mod rates;
mod replicas;
mod report;
mod requests;
mod restart;
mod retention;
mod roles;
mod search;
mod sessions;
mod shared;
mod tenants;
mod tokens;
mod transport;
mod user_bulk;
mod users;
mod wrapping_key;
