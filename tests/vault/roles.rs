//! The two PostgreSQL roles of a production deployment: the owner runs `bunker migrate`, a
//! serving role with no DDL rights runs `bunker serve --no-migrate`, bound by row-level security.

use serde_json::json;

use crate::process::{PgDatabase, start};

/// A login role with data rights only (created once per server; tests share it).
const SERVING: &str = "bunker_serving_only";

#[test]
fn the_owner_migrates_and_a_serving_role_without_ddl_rights_serves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = PgDatabase::create();
    let key = bunker::crypto::WrappingKey::generate().to_hex();
    let env = [("DATABUNKER_WRAPPINGKEY", key.as_str()), ("DATABUNKER_ROOTTOKEN", "roles-test-root-token")];
    let serving_url = db.url.replacen("://postgres@", &format!("://{SERVING}@"), 1);
    assert_ne!(serving_url, db.url, "the admin URL names the postgres user");

    // Before the owner has migrated, the serving vault refuses to start.
    let mut early = start(dir.path(), "early", &["serve", "--no-migrate", "--database-url", &db.url], &env);
    let status = early.exit_within(std::time::Duration::from_secs(30));
    assert!(status.is_some_and(|s| !s.success()), "started on an unmigrated database");
    assert!(early.output().1.contains("run `bunker migrate`"), "{}", early.output().1);

    let migrate = std::process::Command::new(crate::process::bunker_bin())
        .args(["migrate", "--database-url", &db.url])
        .current_dir(dir.path())
        .output()
        .expect("bunker migrate");
    assert!(migrate.status.success(), "{}", String::from_utf8_lossy(&migrate.stderr));

    db.psql_here(&format!(
        "DO $$ BEGIN CREATE ROLE {SERVING} LOGIN NOSUPERUSER NOBYPASSRLS; \
         EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
    ));
    db.psql_here(&format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {SERVING}"));
    db.psql_here(&format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {SERVING}"));

    let mut vault = start(dir.path(), "serving", &["serve", "--no-migrate", "--database-url", &serving_url], &env);
    assert!(vault.ready(), "{:?}", vault.output());
    let root = "roles-test-root-token";
    let (status, created) = vault.call("TenantCreate", root, json!({"tenantname": "served"}));
    assert_eq!(status, 200, "{created}");
    let xtoken = created["xtoken"].as_str().expect("xtoken");
    let (status, user) = vault.call("UserCreate", xtoken, json!({"profile": {"email": "s@example.com"}}));
    assert_eq!(status, 200, "{user}");
    let (status, got) = vault.call("UserGet", xtoken, json!({"mode": "email", "identity": "s@example.com"}));
    assert_eq!((status, &got["profile"]["email"]), (200, &json!("s@example.com")));
    let (_, stderr) = vault.stop();
    assert!(!stderr.contains("row-level security does not bind"), "the serving role is bound: {stderr}");

    // The owner here is a superuser: the vault says that row-level security does not bind it.
    let mut owner = start(dir.path(), "owner", &["serve", "--database-url", &db.url], &env);
    assert!(owner.ready());
    let (_, stderr) = owner.stop();
    assert!(stderr.contains("row-level security does not bind"), "{stderr}");
}
