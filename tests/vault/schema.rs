//! The schema the migrations leave: every index earns the writes it costs.

use crate::both;
use crate::bulk::{Bind, explain};
use bunker::store::Db;
use bunker::store::bulk::{Cursor, events_page_sql, id_key, requests_page_sql};

both!(no_index_repeats_another_on_the_same_key, |v| {
    // Indexes with the same columns, expressions and predicate on one table, uniqueness aside
    // (a unique index serves every lookup a plain one on its key would).
    let repeated: Vec<String> = match v.db() {
        Db::Postgres(pool) => {
            sqlx::query_scalar(
                "SELECT string_agg(i.indexrelid::regclass::text, ' = ' ORDER BY i.indexrelid::regclass::text) \
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
             WHERE t.relnamespace = current_schema()::regnamespace \
             GROUP BY i.indrelid, i.indkey::text, i.indclass::text, \
                 COALESCE(pg_get_expr(i.indexprs, i.indrelid), ''), COALESCE(pg_get_expr(i.indpred, i.indrelid), '') \
             HAVING COUNT(*) > 1",
            )
            .fetch_all(pool)
            .await
        }
        // The index's text from its table on: its columns, expressions and predicate.
        Db::Sqlite(pool) => {
            sqlx::query_scalar(
                "SELECT group_concat(name, ' = ') FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL \
             GROUP BY tbl_name, lower(substr(sql, instr(upper(sql), ' ON '))) HAVING COUNT(*) > 1",
            )
            .fetch_all(pool)
            .await
        }
    }
    .expect("catalogue");
    assert!(repeated.is_empty(), "{repeated:?}");

    // The tenant's trail and its requests still page through an index of (tenant_id, id): on
    // PostgreSQL its primary key, on SQLite (whose key is the rowid alone) an index of its own.
    let cursor = Cursor { after: Some(id_key(1_000)), skip: 0 };
    let events = explain(v, &events_page_sql(&cursor), &[Bind::Int(1), Bind::Int(1_000), Bind::Int(5)]).await;
    let binds = [Bind::Int(1), Bind::Int(0), Bind::Int(1_000), Bind::Int(5)];
    let requests = explain(v, &requests_page_sql(&cursor), &binds).await;
    for (plan, table) in [(events, "audit_events"), (requests, "user_requests")] {
        let index = match v.db() {
            Db::Sqlite(_) => format!("{table}_tenant"),
            Db::Postgres(_) => format!("{table}_pkey"),
        };
        assert!(plan.contains(&index) && plan.replace(' ', "").contains("id<"), "{plan}");
    }
});
