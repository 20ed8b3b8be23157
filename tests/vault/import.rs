//! `bunker import FILE` as a real process: users from JSON Lines and CSV land in the vault
//! through UserCreateBulk, refusals are reported by line number without their values, and an
//! interrupted import resumes from its state file without creating anyone twice.

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
            .output()
            .expect("run bunker import");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        (output.status.success(), stdout, stderr)
    }

    fn user(&self, login: &str) -> (u16, Value) {
        self.server.call("UserGet", ROOT, json!({"mode": "login", "identity": login}))
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
