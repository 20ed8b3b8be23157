//! `bunker import FILE` as a real process: users from JSON Lines and CSV land in the vault
//! through UserCreateBulk and their app records through AppdataCreate, refusals are reported by
//! line number without their values, and an interrupted import resumes from its state file
//! without creating anyone twice, finishing the app records of a batch it was writing.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::process::{PgDatabase, Process, bunker_bin, start};

const ROOT: &str = "import-root-token-for-the-binary-test-0123456789";

/// A vault served by the real binary, and what `bunker import` needs to open the same one.
struct Vault {
    dir: PathBuf,
    url: String,
    key: String,
    server: Process,
}

impl Vault {
    fn start(dir: &Path, url: String) -> Vault {
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        let env = [("DATABUNKER_WRAPPINGKEY", key.as_str()), ("DATABUNKER_ROOTTOKEN", ROOT)];
        let mut server = start(dir, "serve", &["serve", "--database-url", &url], &env);
        assert!(server.ready(), "vault did not start: {:?}", server.output());
        Vault { dir: dir.to_path_buf(), url, key, server }
    }

    /// Writes `name` with `content`, returning its path.
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::write(&path, content).expect("write import file");
        path
    }

    /// Runs `bunker import` with the root token: (success, stdout, stderr).
    fn import(&self, file: &Path, args: &[&str]) -> (bool, String, String) {
        self.import_with(file, args, &[])
    }

    /// Runs `bunker import` with the root token and `env` (the vault's settings): (success,
    /// stdout, stderr).
    fn import_with(&self, file: &Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
        let output = Command::new(bunker_bin())
            .arg("import")
            .arg(file)
            .args(["--database-url", &self.url])
            .args(args)
            .current_dir(&self.dir)
            .env_remove("DATABUNKER_WRAPPINGKEY_FILE")
            .env_remove("DATABUNKER_ROOTTOKEN")
            .env_remove("BUNKER_DATABASE_URL")
            .env_remove("PGSQL_HOST")
            .env("DATABUNKER_WRAPPINGKEY", &self.key)
            .env("BUNKER_TOKEN", ROOT)
            .envs(env.iter().copied())
            .output()
            .expect("run bunker import");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), stdout, stderr)
    }

    fn user(&self, login: &str) -> (u16, Value) {
        self.server.call("UserGet", ROOT, json!({"mode": "login", "identity": login}))
    }

    /// AppdataGet of a user's app record.
    fn app(&self, login: &str, app: &str) -> (u16, Value) {
        self.server.call("AppdataGet", ROOT, json!({"mode": "login", "identity": login, "appname": app}))
    }
}

fn jsonl_creates_users_and_reports_refusals_by_line(dir: &Path, url: String) {
    let vault = Vault::start(dir, url);
    let file = vault.file(
        "users.jsonl",
        "{\"login\":\"ann\",\"email\":\"ann@example.org\"}\n\
         \n\
         {\"profile\":{\"login\":\"bob\",\"name\":\"Bob\"},\"slidingtime\":\"30d\"}\n\
         {\"login\":\"carol\",\"email\":\"ann@example.org\",\"secret\":\"s3cr3t-carol\"}\n\
         this is not json s3cr3t-line5\n\
         {\"profile\":\"s3cr3t-string\"}\n\
         {\"login\":\"dan\"}\n",
    );
    let refusals = dir.join("refusals.jsonl");
    let (ok, stdout, stderr) = vault.import(&file, &["--batch", "2", "--refusals", refusals.to_str().expect("path")]);
    assert!(ok, "import failed: {stdout} {stderr}");
    assert!(stdout.contains("line 4: Duplicate email value"), "{stdout}");
    assert!(stdout.contains("line 5: the line is not valid JSON"), "{stdout}");
    assert!(stdout.contains("line 6: the profile is not a JSON object"), "{stdout}");
    assert!(stdout.contains("created 3, refused 3 (1 as duplicates), skipped 0 lines"), "{stdout}");
    for output in [&stdout, &stderr, &std::fs::read_to_string(&refusals).expect("refusals")] {
        assert!(!output.contains("s3cr3t") && !output.contains("ann@example.org"), "a value leaked: {output}");
    }
    let listed: Vec<Value> = std::fs::read_to_string(&refusals)
        .expect("refusals")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert_eq!(listed.iter().map(|r| r["line"].as_u64().expect("line")).collect::<Vec<_>>(), [4, 5, 6]);
    for login in ["ann", "bob", "dan"] {
        let (status, user) = vault.user(login);
        assert_eq!(status, 200, "{login}: {user}");
        assert_eq!(user["profile"]["login"], login);
    }
    assert_eq!(vault.user("bob").1["profile"]["name"], "Bob");
    assert_eq!(vault.user("carol").0, 404);
    // Bob lives 30 days from his import unless read; the others have no lifetime.
    let now = chrono::Utc::now().timestamp();
    let bob = vault.user("bob").1["expirationtime"].as_i64().expect("expirationtime");
    assert!((now + 30 * 86_400 - 60..=now + 30 * 86_400 + 5).contains(&bob), "{bob} at {now}");
    vault.server.stop();
}

fn csv_with_lifetimes(dir: &Path, url: String) {
    let vault = Vault::start(dir, url);
    let file = vault.file(
        "people.csv",
        "login,email,slidingtime,finaltime\r\n\
         erin,erin@example.org,,1y\r\n\
         \"frank, jr\",,7d,\r\n\
         gina,,,\r\n\
         hank,,s3cr3t-lifetime,\r\n\
         ivan,only-two-fields\r\n",
    );
    let (ok, stdout, stderr) = vault.import(&file, &["--finaltime", "90d"]);
    assert!(ok, "import failed: {stdout} {stderr}");
    assert!(stdout.contains("line 5: The slidingtime parameter has an incorrect format"), "{stdout}");
    assert!(stdout.contains("line 6: the row has 2 fields, the header 4"), "{stdout}");
    assert!(stdout.contains("created 3, refused 2"), "{stdout}");
    assert!(!stdout.contains("s3cr3t") && !stderr.contains("s3cr3t"), "a value leaked: {stdout} {stderr}");
    let now = chrono::Utc::now().timestamp();
    let expires = |login: &str| {
        let (status, user) = vault.user(login);
        assert_eq!(status, 200, "{login}: {user}");
        user["expirationtime"].as_i64().expect("expirationtime") - now
    };
    let close = |got: i64, days: i64| (days * 86_400 - 60..=days * 86_400 + 5).contains(&got);
    assert!(close(expires("erin"), 365), "erin's own finaltime");
    // Frank's own sliding week, within the command line's 90-day finaltime.
    assert!(close(expires("frank, jr"), 7), "frank's own slidingtime");
    assert!(close(expires("gina"), 90), "gina takes --finaltime");
    assert_eq!(vault.user("erin").1["profile"]["email"], "erin@example.org");
    vault.server.stop();
}

/// The state file an interrupted import would have left after `lines_done` lines.
fn claim_done(file: &Path, lines_done: u64) {
    let bytes = std::fs::read(file).expect("read");
    let state = json!({
        "file": {"size": bytes.len(), "head_sha256": hex::encode(Sha256::digest(&bytes))},
        "lines_done": lines_done, "created": lines_done, "refused": 0
    });
    let mut path = file.as_os_str().to_owned();
    path.push(".import-state");
    std::fs::write(path, state.to_string()).expect("write state");
}

fn resumes_after_an_interruption(dir: &Path, url: String) {
    let vault = Vault::start(dir, url);
    let content: String = (1..=10).map(|i| format!("{{\"login\":\"user{i}\"}}\n")).collect();
    let file = vault.file("resume.jsonl", &content);
    // Interrupted after the batches up to line 4 committed and were recorded.
    let (ok, stdout, stderr) = vault.import(&file, &["--batch", "2"]);
    assert!(ok, "{stdout} {stderr}");
    claim_done(&file, 4);
    for i in 1..=4 {
        vault.server.call("UserDelete", ROOT, json!({"mode": "login", "identity": format!("user{i}")}));
    }
    let (ok, stdout, stderr) = vault.import(&file, &["--batch", "2"]);
    assert!(ok, "{stdout} {stderr}");
    assert!(stderr.contains("resuming after line 4"), "{stderr}");
    // Lines 5-10 were created by the first run: refused as duplicates, nobody twice.
    assert!(stdout.contains("created 0, refused 6 (6 as duplicates), skipped 4 lines"), "{stdout}");
    for i in 1..=4 {
        assert_eq!(vault.user(&format!("user{i}")).0, 404, "line {i} was done: not sent again");
    }

    // A fresh file, interrupted after 6 lines were recorded: the rest are created once.
    let content: String = (1..=10).map(|i| format!("{{\"login\":\"fresh{i}\"}}\n")).collect();
    let file = vault.file("fresh.jsonl", &content);
    claim_done(&file, 6);
    let (ok, stdout, stderr) = vault.import(&file, &["--batch", "3"]);
    assert!(ok, "{stdout} {stderr}");
    assert!(stdout.contains("created 4, refused 0 (0 as duplicates), skipped 6 lines"), "{stdout}");
    for i in 1..=10 {
        let expected = if i > 6 { 200 } else { 404 };
        assert_eq!(vault.user(&format!("fresh{i}")).0, expected, "fresh{i}");
    }
    // Done: a third run skips everything; --restart reads from the first line again.
    let (ok, stdout, _) = vault.import(&file, &[]);
    assert!(ok && stdout.contains("created 0, refused 0 (0 as duplicates), skipped 10 lines"), "{stdout}");
    let (ok, stdout, _) = vault.import(&file, &["--restart"]);
    assert!(ok && stdout.contains("created 6, refused 4 (4 as duplicates), skipped 0 lines"), "{stdout}");
    // A state file of another version of the file is refused, not trusted.
    std::fs::write(&file, format!("{content}{{\"login\":\"late\"}}\n")).expect("append");
    let (ok, _, stderr) = vault.import(&file, &[]);
    assert!(!ok && stderr.contains("belongs to another version"), "{stderr}");
    vault.server.stop();
}

fn jsonl_app_data_is_written_and_refused_by_line(dir: &Path, url: String) {
    let vault = Vault::start(dir, url);
    // AppdataCreate takes bodies of at most 1 KiB here: line 3's shop record passes the record
    // size check, and the vault itself refuses it once its user is created.
    let big = format!("s3cr3t-{}", "x".repeat(2048));
    let file = vault.file(
        "apps.jsonl",
        &[
            r#"{"profile":{"login":"amy"},"appdata":{"shop":{"cart":[1,2],"note":"s3cr3t-cart"},"Blog":{"posts":3}}}"#
                .to_owned(),
            r#"{"profile":{"login":"ben"},"appdata":{"shop":"s3cr3t-not-an-object"}}"#.to_owned(),
            format!(r#"{{"profile":{{"login":"cat"}},"appdata":{{"shop":{{"big":"{big}"}},"blog":{{"posts":1}}}}}}"#),
            r#"{"profile":{"login":"dan"},"appdata":{"s3cr3t name":{}}}"#.to_owned(),
            r#"{"login":"eve","appdata":{"shop":{}}}"#.to_owned(),
        ]
        .join("\n"),
    );
    let refusals = dir.join("refusals.jsonl");
    let args = ["--batch", "2", "--refusals", refusals.to_str().expect("path")];
    let (ok, stdout, stderr) = vault.import_with(&file, &args, &[("BUNKER_BODY_LIMIT_KB", "1")]);
    assert!(ok, "import failed: {stdout} {stderr}");
    assert!(stdout.contains("line 2: the app data of shop is not a JSON object"), "{stdout}");
    assert!(stdout.contains("line 3: app shop: Request body is too large"), "{stdout}");
    assert!(stdout.contains("line 4: the appdata names an app with an incorrect name"), "{stdout}");
    assert!(stdout.contains("created 3, refused 3 (0 as duplicates), skipped 0 lines"), "{stdout}");
    assert!(stdout.contains("; app records: 3 written, 0 there already"), "{stdout}");
    for output in [&stdout, &stderr, &std::fs::read_to_string(&refusals).expect("refusals")] {
        assert!(!output.contains("s3cr3t"), "a value leaked: {output}");
    }
    let lines: Vec<u64> = std::fs::read_to_string(&refusals)
        .expect("refusals")
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).expect("JSON line")["line"].as_u64().expect("line"))
        .collect();
    assert_eq!(lines, [2, 3, 4]);

    let (status, shop) = vault.app("amy", "shop");
    assert_eq!(status, 200, "{shop}");
    assert_eq!(shop["appdata"], json!({"cart": [1, 2], "note": "s3cr3t-cart"}));
    assert_eq!(shop["version"], 1);
    assert_eq!(vault.app("amy", "blog").1["appdata"], json!({"posts": 3}), "the app name is lower-cased");
    // Cat's user and blog record are created; the shop record the vault refused is not.
    assert_eq!(vault.user("cat").0, 200);
    assert_eq!(vault.app("cat", "blog").1["appdata"], json!({"posts": 1}));
    assert_eq!(vault.app("cat", "shop").0, 404);
    // A line refused for its app data creates no user.
    assert_eq!(vault.user("ben").0, 404);
    assert_eq!(vault.user("dan").0, 404);
    // A bare profile's `appdata` is a profile field, not an app record.
    assert_eq!(vault.user("eve").1["profile"]["appdata"], json!({"shop": {}}));
    assert_eq!(vault.app("eve", "shop").0, 404);
    vault.server.stop();
}

fn csv_app_data_columns(dir: &Path, url: String) {
    let vault = Vault::start(dir, url);
    let file = vault.file(
        "apps.csv",
        "login,appdata.shop,appdata.Blog,finaltime\n\
         fay,\"{\"\"cart\"\": [3]}\",,1y\n\
         gus,,\"{\"\"posts\"\": 2}\",\n\
         hal,\"[\"\"s3cr3t\"\"]\",,\n\
         ivy,,,\n",
    );
    let (ok, stdout, stderr) = vault.import(&file, &[]);
    assert!(ok, "import failed: {stdout} {stderr}");
    assert!(stdout.contains("line 4: the app data of shop is not a JSON object"), "{stdout}");
    assert!(stdout.contains("created 3, refused 1 (0 as duplicates)"), "{stdout}");
    assert!(stdout.contains("; app records: 2 written, 0 there already"), "{stdout}");
    assert!(!stdout.contains("s3cr3t") && !stderr.contains("s3cr3t"), "a value leaked: {stdout} {stderr}");
    assert_eq!(vault.app("fay", "shop").1["appdata"], json!({"cart": [3]}));
    assert_eq!(vault.app("fay", "blog").0, 404, "an empty cell is no record");
    assert_eq!(vault.app("gus", "blog").1["appdata"], json!({"posts": 2}));
    assert_eq!(vault.user("hal").0, 404);
    assert_eq!(vault.user("ivy").0, 200);
    assert_eq!(vault.app("ivy", "shop").0, 404);
    // The row's lifetime is the user's; the app records go with it.
    let now = chrono::Utc::now().timestamp();
    let expires = vault.user("fay").1["expirationtime"].as_i64().expect("expirationtime") - now;
    assert!((365 * 86_400 - 60..=365 * 86_400 + 5).contains(&expires), "{expires}");
    vault.server.stop();
}

fn resumption_finishes_the_app_records_of_an_interrupted_batch(dir: &Path, url: String) {
    let vault = Vault::start(dir, url);
    let big = format!("s3cr3t-{}", "x".repeat(40 * 1024));
    let file = vault.file(
        "resume-apps.jsonl",
        &[
            r#"{"profile":{"login":"r1"},"appdata":{"shop":{"n":1,"v":"s3cr3t-1"}}}"#.to_owned(),
            format!(r#"{{"profile":{{"login":"r2"}},"appdata":{{"blog":{{"big":"{big}"}},"shop":{{"n":2}}}}}}"#),
            r#"{"profile":{"login":"r3"},"appdata":{"shop":{"n":3}}}"#.to_owned(),
            r#"{"login":"r4"}"#.to_owned(),
        ]
        .join("\n"),
    );
    let mut state_path = file.as_os_str().to_owned();
    state_path.push(".import-state");
    // With 1 MiB of request memory the vault turns r2's blog record away as busy (503): the import
    // stops after r1 and r2 were created and r1's shop record written, before the rest.
    let (ok, stdout, stderr) = vault.import_with(&file, &["--batch", "2"], &[("BUNKER_REQUEST_MEMORY_MB", "1")]);
    assert!(!ok, "{stdout} {stderr}");
    assert!(stderr.contains("AppdataCreate answered 503"), "{stderr}");
    let state = std::fs::read_to_string(&state_path).expect("state");
    assert!(!state.contains("s3cr3t") && !state.contains("r1"), "the state holds no value: {state}");
    let saved: Value = serde_json::from_str(&state).expect("state JSON");
    assert_eq!(saved["lines_done"], 0, "{saved}");
    assert_eq!(saved["unfinished"]["through"], 2, "{saved}");
    let users = saved["unfinished"]["users"].as_array().expect("users");
    assert_eq!(users.iter().map(|u| u["line"].as_u64().expect("line")).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(users[0]["token"], vault.user("r1").1["token"], "{saved}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&state_path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the state file is owner-only");
    }
    assert_eq!(vault.app("r1", "shop").1["version"], 1);
    assert_eq!(vault.app("r2", "blog").0, 404);
    assert_eq!(vault.user("r3").0, 404);
    // Meanwhile r2's shop record is written with other data: the import leaves it as it is.
    let (status, body) = vault.server.call(
        "AppdataCreate",
        ROOT,
        json!({"mode": "login", "identity": "r2", "appname": "shop", "appdata": {"n": 99}}),
    );
    assert_eq!(status, 200, "{body}");

    let (ok, stdout, stderr) = vault.import(&file, &["--batch", "2"]);
    assert!(ok, "{stdout} {stderr}");
    assert!(stderr.contains("resuming after line 2"), "{stderr}");
    // r1 and r2 are not created again; r1's shop record is there already, r2's blog and r3's
    // shop records are written; r2's shop record with other data refuses line 2.
    assert!(stdout.contains("created 2, refused 1 (0 as duplicates), skipped 2 lines"), "{stdout}");
    assert!(stdout.contains("; app records: 2 written, 1 there already"), "{stdout}");
    assert!(stdout.contains("line 2: app shop: an app record with other data exists (left as it is)"), "{stdout}");
    assert!(!stdout.contains("s3cr3t") && !stderr.contains("s3cr3t"), "a value leaked: {stdout} {stderr}");
    let (status, shop) = vault.app("r1", "shop");
    assert_eq!(status, 200, "{shop}");
    assert_eq!((shop["version"].clone(), shop["appdata"].clone()), (json!(1), json!({"n": 1, "v": "s3cr3t-1"})));
    assert_eq!(vault.app("r2", "blog").1["appdata"]["big"], json!(big));
    assert_eq!(vault.app("r2", "shop").1["appdata"], json!({"n": 99}));
    assert_eq!(vault.app("r3", "shop").1["appdata"], json!({"n": 3}));
    assert_eq!(vault.user("r4").0, 200);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state_path).expect("state")).expect("JSON");
    assert_eq!((saved["lines_done"].clone(), saved.get("unfinished")), (json!(4), None), "{saved}");

    // Done: a third run writes nothing.
    let (ok, stdout, _) = vault.import(&file, &["--batch", "2"]);
    assert!(ok && stdout.contains("created 0, refused 0 (0 as duplicates), skipped 4 lines"), "{stdout}");
    assert!(!stdout.contains("app records"), "{stdout}");
    assert_eq!(vault.app("r1", "shop").1["version"], 1);
    vault.server.stop();
}

fn refuses_an_uninitialised_vault_and_a_bad_token(dir: &Path, url: String) {
    std::fs::write(dir.join("one.jsonl"), "{\"login\":\"x\"}\n").expect("write");
    let run = |url: &str, key: &str, token: &str| {
        let output = Command::new(bunker_bin())
            .args(["import", "one.jsonl", "--database-url", url])
            .current_dir(dir)
            .env_remove("DATABUNKER_WRAPPINGKEY_FILE")
            .env_remove("BUNKER_DATABASE_URL")
            .env_remove("PGSQL_HOST")
            .env("DATABUNKER_WRAPPINGKEY", key)
            .env("BUNKER_TOKEN", token)
            .output()
            .expect("run bunker import");
        assert!(!output.status.success(), "{output:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    // Never initialises a vault (an unmigrated PostgreSQL database is not one either).
    let stderr = run(&url, &bunker::crypto::WrappingKey::generate().to_hex(), ROOT);
    assert!(stderr.contains("not initialised") || stderr.contains("at migration 0"), "{stderr}");
    assert!(!dir.join("vault.db").exists(), "import created a database");
    let vault = Vault::start(dir, url);
    let stderr = run(&vault.url, &vault.key, "not-a-token");
    assert!(stderr.contains("UserCreateBulk answered 40"), "{stderr}");
    assert_eq!(vault.user("x").0, 404);
    vault.server.stop();
}

macro_rules! per_backend {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[test]
            fn sqlite() {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}", dir.path().join("vault.db").display());
                super::$name(dir.path(), url);
            }

            #[test]
            fn postgres() {
                let dir = tempfile::tempdir().expect("tempdir");
                let db = PgDatabase::create();
                super::$name(dir.path(), db.url.clone());
            }
        }
    };
}

per_backend!(jsonl_creates_users_and_reports_refusals_by_line);
per_backend!(csv_with_lifetimes);
per_backend!(resumes_after_an_interruption);
per_backend!(refuses_an_uninitialised_vault_and_a_bad_token);
per_backend!(jsonl_app_data_is_written_and_refused_by_line);
per_backend!(csv_app_data_columns);
per_backend!(resumption_finishes_the_app_records_of_an_interrupted_batch);
