//! The key ceremony through the real binary: `bunker init` handing out each share on its own,
//! wrapping-key rotation across restarts (a development key file left with the old key, the
//! new key completing it), `bunker recover` opening a vault whose key was lost, the root-token
//! strength warning and `/metrics` on its own address.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::json;

use crate::both;
use crate::process::{PgDatabase, Process, bunker_bin, free_addr, http, root_token, start};

/// Runs a one-shot `bunker` command in `dir` with `env` and `stdin`, returning its output.
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut command = Command::new(bunker_bin());
    command
        .args(args)
        .current_dir(dir)
        .env_remove("DATABUNKER_WRAPPINGKEY")
        .env_remove("DATABUNKER_WRAPPINGKEY_FILE")
        .env_remove("DATABUNKER_ROOTTOKEN")
        .env_remove("BUNKER_DATABASE_URL")
        .env_remove("PGSQL_HOST")
        .env("BUNKER_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn bunker");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("bunker runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).expect("metadata").permissions().mode() & 0o777
}

/// Starts `serve` and waits until it answers.
fn serve(dir: &Path, run: &str, args: &[&str], env: &[(&str, &str)]) -> Process {
    let mut process = start(dir, run, args, env);
    assert!(process.ready(), "vault did not start: {:?}", process.output());
    process
}

/// Starts `serve`, which must refuse; returns its standard error.
fn refused(dir: &Path, run: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut process = start(dir, run, args, env);
    let status = process.exit_within(std::time::Duration::from_secs(30));
    assert!(status.is_some_and(|s| !s.success()), "start-up should have failed: {:?}", process.output());
    process.output().1
}

/// `init` with share and token files, a user, the wrapping key lost, `recover` from three share
/// files with a generated key: the vault opens with that key only.
fn init_then_recover(dir: &Path, db: &[&str]) {
    let key = bunker::crypto::WrappingKey::generate().to_hex();
    let shares_dir = dir.join("shares");
    // The token file in the share directory, which init creates, as the README shows.
    let token_file = shares_dir.join("root-token");
    let (shares_arg, token_arg) = (shares_dir.to_str().expect("utf-8"), token_file.to_str().expect("utf-8"));
    let init = [&["init", "--shares-dir", shares_arg, "--root-token-file", token_arg][..], db].concat();
    // A share file already there stops the ceremony before anything is initialised, and the
    // files it had created are removed.
    std::fs::create_dir(&shares_dir).expect("shares dir");
    std::fs::write(shares_dir.join("share-3"), "someone else's").expect("share file");
    let out = run(dir, &init, &[("DATABUNKER_WRAPPINGKEY", &key)], "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("share-3"), "{}", text(&out.stderr));
    assert!(!token_file.exists() && !shares_dir.join("share-1").exists(), "files left behind");
    assert_eq!(std::fs::read_to_string(shares_dir.join("share-3")).expect("kept"), "someone else's");
    std::fs::remove_dir_all(&shares_dir).expect("clean");
    let out = run(dir, &init, &[("DATABUNKER_WRAPPINGKEY", &key)], "");
    assert!(out.status.success(), "init failed: {}", text(&out.stderr));
    let token = std::fs::read_to_string(&token_file).expect("root token file").trim().to_owned();
    let shares: Vec<String> = (1..=5)
        .map(|n| std::fs::read_to_string(shares_dir.join(format!("share-{n}"))).expect("share file").trim().to_owned())
        .collect();
    #[cfg(unix)]
    {
        assert_eq!(mode(&shares_dir), 0o700);
        assert_eq!(mode(&token_file), 0o600);
        for n in 1..=5 {
            assert_eq!(mode(&shares_dir.join(format!("share-{n}"))), 0o600);
        }
    }
    let shown = format!("{}{}", text(&out.stdout), text(&out.stderr));
    for secret in shares.iter().chain([&token]) {
        assert!(hex::decode(secret.replace('-', "")).is_ok(), "{secret}");
        assert!(!shown.contains(secret.as_str()), "a secret written to a file was also shown:\n{shown}");
    }
    // A second init changes nothing and overwrites nothing.
    let again = run(dir, &init, &[("DATABUNKER_WRAPPINGKEY", &key)], "");
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("already initialised"), "{}", text(&again.stderr));
    assert_eq!(std::fs::read_to_string(&token_file).expect("token").trim(), token);

    let first = serve(dir, "first", &[&["serve"][..], db].concat(), &[("DATABUNKER_WRAPPINGKEY", &key)]);
    let (status, body) = first.call("UserCreate", &token, json!({"profile": {"email": "kept@example.org"}}));
    assert_eq!(status, 200, "{body}");
    let user = body["token"].as_str().expect("user token").to_owned();
    let (first_out, _) = first.stop();
    assert!(!first_out.contains("Root access token"), "an initialised vault shows no secrets");

    // The wrapping key is lost: three share files and a generated key recover the vault.
    let files: Vec<String> =
        [2, 4, 5].iter().map(|n| shares_dir.join(format!("share-{n}")).to_string_lossy().into_owned()).collect();
    let recover =
        [&["recover", "--share-file", &files[0], "--share-file", &files[1], "--share-file", &files[2]][..], db]
            .concat();
    let out = run(dir, &recover, &[], "");
    assert!(out.status.success(), "recover failed: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let new_key = stdout
        .lines()
        .find_map(|line| line.split_once("DATABUNKER_WRAPPINGKEY): ").map(|(_, key)| key.trim().to_owned()))
        .unwrap_or_else(|| panic!("the new key is shown once: {stdout}"));
    assert!(!text(&out.stderr).contains(&new_key), "the new key is logged");
    let err = refused(dir, "old-key", &[&["serve"][..], db].concat(), &[("DATABUNKER_WRAPPINGKEY", &key)]);
    assert!(err.contains("the wrapping key does not match this vault"), "{err}");
    let second = serve(dir, "recovered", &[&["serve"][..], db].concat(), &[("DATABUNKER_WRAPPINGKEY", &new_key)]);
    let (status, body) = second.call("UserGet", &token, json!({"mode": "token", "identity": user}));
    assert_eq!((status, &body["profile"]), (200, &json!({"email": "kept@example.org"})), "{body}");
    second.stop();
    // Shares of another vault recover nothing.
    let foreign = bunker::crypto::shamir::split(&bunker::crypto::Key256::random());
    let out = run(dir, &[&["recover"][..], db].concat(), &[], &foreign[..3].join("\n"));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("Master key mismatch"), "{}", text(&out.stderr));
}

mod init_then_recover {
    use super::*;

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        init_then_recover(dir.path(), &[]);
    }

    #[test]
    fn postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = PgDatabase::create();
        init_then_recover(dir.path(), &["--database-url", &db.url]);
    }
}

/// Without share files, each share is shown alone between two Enters (standard output must be
/// a terminal, or the operator must say so); three of them, read from standard input, recover
/// the vault.
fn init_one_at_a_time(dir: &Path, db: &[&str], env: &[(&str, &str)]) {
    // Standard output is not a terminal here: init refuses to show the shares unless told, and
    // initialises nothing (the next init succeeds).
    let out = run(dir, &[&["init"][..], db].concat(), env, &"\n".repeat(10));
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("standard output is not a terminal"), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("key1"), "{}", text(&out.stdout));
    // Share files alone do not do: the root token would still go to standard output.
    let shares_only = dir.join("shares-only");
    let shares_arg = shares_only.to_str().expect("utf-8 path");
    let out = run(dir, &[&["init", "--shares-dir", shares_arg][..], db].concat(), env, "");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("would keep the root access token"), "{}", text(&out.stderr));
    assert!(!shares_only.exists(), "nothing is made for a refused ceremony");
    let out = run(dir, &[&["init", "--shares-to-stdout"][..], db].concat(), env, &"\n".repeat(10));
    assert!(out.status.success(), "init failed: {}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    let shares: Vec<String> = (1..=5)
        .map(|n| {
            let prefix = format!("  key{n}: ");
            stdout.lines().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("share {n}: {stdout}")).into()
        })
        .collect();
    // Each share waits for its custodian, and is followed by a wait before the next one.
    let mut last = 0;
    for n in 1..=5 {
        let show = stderr.find(&format!("press Enter to show share {n} of 5")).expect("prompt to show");
        let stored = stderr.find(&format!("Press Enter once custodian {n} has stored share {n}")).expect("prompt");
        assert!(last <= show && show < stored, "{stderr}");
        last = stored;
    }
    let token = root_token(&stdout);
    let plain: Vec<&str> = db.iter().copied().filter(|a| *a != "--dev").collect();
    let out = run(
        dir,
        &[&["recover"][..], &plain].concat(),
        &[],
        &format!("{}\n\n{}\n{}\n", shares[4], shares[0], shares[2]),
    );
    assert!(out.status.success(), "recover failed: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let new_key = stdout
        .lines()
        .find_map(|line| line.split_once("DATABUNKER_WRAPPINGKEY): ").map(|(_, key)| key.trim().to_owned()))
        .unwrap_or_else(|| panic!("the new key is shown once: {stdout}"));
    let dev = db.contains(&"--dev");
    assert_eq!(stdout.contains("development key file"), dev, "{stdout}");
    let vault = serve(dir, "recovered", &[&["serve"][..], &plain].concat(), &[("DATABUNKER_WRAPPINGKEY", &new_key)]);
    let (status, body) = vault.call("UserCreate", &token, json!({"profile": {"login": "after"}}));
    assert_eq!(status, 200, "{body}");
    vault.stop();
}

mod init_one_at_a_time {
    use super::*;

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        init_one_at_a_time(dir.path(), &["--dev"], &[]);
    }

    #[test]
    fn postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = PgDatabase::create();
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        init_one_at_a_time(dir.path(), &["--database-url", &db.url], &[("DATABUNKER_WRAPPINGKEY", &key)]);
    }
}

/// A rotation across restarts: the old key (here `old_env`, e.g. a development key file left
/// as it was) opens while the rotation is pending and logs so; the new key completes it; the old
/// key then fails clearly.
fn rotation_across_restarts(dir: &Path, args: &[&str], old_env: &[(&str, &str)]) {
    let first = serve(dir, "first", args, old_env);
    let token = root_token(&first.output().0);
    let shares: Vec<String> = first
        .output()
        .0
        .lines()
        .filter_map(|line| line.trim().strip_prefix("key").and_then(|rest| rest.split_once(": ")))
        .map(|(_, share)| share.trim().to_owned())
        .collect();
    assert_eq!(shares.len(), 5);
    let (status, body) = first.call("UserCreate", &token, json!({"profile": {"login": "rotated"}}));
    assert_eq!(status, 200, "{body}");
    let (status, body) = first.call(
        "SystemGenerateWrappingKey",
        &token,
        json!({"key1": shares[0], "key2": shares[2], "key3": shares[4]}),
    );
    assert_eq!(status, 200, "{body}");
    let new_key = body["wrappingkey"].as_str().expect("key").to_owned();
    first.stop();

    let old = serve(dir, "old-key", args, old_env);
    let (status, body) = old.call("UserGet", &token, json!({"mode": "login", "identity": "rotated"}));
    assert_eq!(status, 200, "{body}");
    let (_, log) = old.stop();
    assert!(log.contains("a wrapping-key rotation is pending"), "{log}");

    let new_args = args.iter().copied().filter(|a| *a != "--dev").collect::<Vec<_>>();
    let renewed = serve(dir, "new-key", &new_args, &[("DATABUNKER_WRAPPINGKEY", &new_key)]);
    let (status, body) = renewed.call("UserGet", &token, json!({"mode": "login", "identity": "rotated"}));
    assert_eq!(status, 200, "{body}");
    let (_, log) = renewed.stop();
    assert!(log.contains("wrapping-key rotation completed"), "{log}");

    let err = refused(dir, "old-again", args, old_env);
    assert!(err.contains("the wrapping key does not match this vault"), "{err}");
    assert!(err.contains("bunker recover"), "{err}");
    serve(dir, "new-again", &new_args, &[("DATABUNKER_WRAPPINGKEY", &new_key)]).stop();
}

mod rotation_across_restarts {
    use super::*;

    /// The development key file is left with the old key.
    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        rotation_across_restarts(dir.path(), &["serve", "--dev"], &[]);
    }

    #[test]
    fn postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = PgDatabase::create();
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        rotation_across_restarts(
            dir.path(),
            &["serve", "--database-url", &db.url],
            &[("DATABUNKER_WRAPPINGKEY", &key)],
        );
    }
}

/// `/metrics` on its own address: the API address answers 404 for it. A weak root token is
/// warned about, never shown.
fn metrics_apart_and_weak_token(dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let admin = free_addr();
    let weak = "rootpassword";
    let admin_text = admin.to_string();
    let env = [env, &[("BUNKER_METRICS_LISTEN", admin_text.as_str()), ("DATABUNKER_ROOTTOKEN", weak)][..]].concat();
    let vault = serve(dir, "metrics", args, &env);
    let (status, _) = http(vault.addr, "GET", "/metrics", None, "").expect("answer");
    assert_eq!(status, 404);
    let (status, body) = http(admin, "GET", "/metrics", None, "").expect("answer");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("# TYPE"), "{body}");
    let (status, _) = http(admin, "POST", "/v2/UserCreate", Some(weak), "{}").expect("answer");
    assert_eq!(status, 404, "the admin address serves nothing but /metrics");
    let (stdout, stderr) = vault.stop();
    assert!(stderr.contains("DATABUNKER_ROOTTOKEN carries under 128 bits"), "{stderr}");
    assert!(!stderr.contains(weak), "the token is logged:\n{stderr}");
    assert!(stderr.contains("`bunker init --shares-dir DIR"), "the first serve points to init:\n{stderr}");
    assert!(stdout.contains(weak), "the first start shows the root token as before");
}

mod metrics_apart_and_weak_token {
    use super::*;

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        metrics_apart_and_weak_token(dir.path(), &["serve", "--dev"], &[]);
    }

    #[test]
    fn postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = PgDatabase::create();
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        metrics_apart_and_weak_token(
            dir.path(),
            &["serve", "--database-url", &db.url],
            &[("DATABUNKER_WRAPPINGKEY", &key)],
        );
    }
}

fn metrics_elsewhere(_: &Path) -> bunker::state::Settings {
    bunker::state::Settings { metrics_on_api: false, ..Default::default() }
}

both!(the_api_answers_404_for_metrics_served_elsewhere, settings = metrics_elsewhere, |v| {
    let (status, text) = v.get_text("/metrics").await;
    assert_eq!(status.as_u16(), 404, "{text}");
    let (status, _) = v.get_text("/status").await;
    assert_eq!(status.as_u16(), 200);
});

/// Two processes on one database rotate at the same moment: the database lock serialises them,
/// every master key ends with one new wrapping, and exactly one of the two answered keys (the
/// one stored last) opens the vault, besides the old key until a start with it.
fn two_processes_rotating_at_once(dir: &Path, args: &[&str], env: &[(&str, &str)]) {
    let first = serve(dir, "one", args, env);
    let (stdout, _) = first.output();
    let token = root_token(&stdout);
    let shares: Vec<String> = stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix("key").and_then(|rest| rest.split_once(": ")))
        .map(|(_, share)| share.trim().to_owned())
        .collect();
    let (status, body) = first.call("TenantCreate", &token, json!({"tenantname": "second"}));
    assert_eq!(status, 200, "{body}");
    let tenant = body["xtoken"].as_str().expect("tenant token").to_owned();
    let (status, body) = first.call("UserCreate", &tenant, json!({"profile": {"login": "in-second"}}));
    assert_eq!(status, 200, "{body}");
    let other = serve(dir, "two", args, env);
    let call = |process: &Process, picks: [usize; 3]| {
        let body = json!({"key1": shares[picks[0]], "key2": shares[picks[1]], "key3": shares[picks[2]]});
        process.call("SystemGenerateWrappingKey", &token, body)
    };
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| call(&first, [0, 1, 2]));
        let b = scope.spawn(|| call(&other, [2, 3, 4]));
        (a.join().expect("first call"), b.join().expect("second call"))
    });
    first.stop();
    other.stop();
    let keys: Vec<String> = [a, b]
        .into_iter()
        .map(|(status, body)| {
            assert_eq!(status, 200, "{body}");
            body["wrappingkey"].as_str().expect("key").to_owned()
        })
        .collect();
    let plain: Vec<&str> = args.iter().copied().filter(|a| *a != "--dev").collect();
    let mut opened = 0;
    for (i, key) in keys.iter().enumerate() {
        let mut process = start(dir, &format!("key-{i}"), &plain, &[("DATABUNKER_WRAPPINGKEY", key)]);
        if process.ready() {
            let (status, body) = process.call("UserGet", &tenant, json!({"mode": "login", "identity": "in-second"}));
            assert_eq!(status, 200, "{body}");
            process.stop();
            opened += 1;
        } else {
            assert!(
                process.output().1.contains("the wrapping key does not match this vault"),
                "{:?}",
                process.output()
            );
        }
    }
    assert_eq!(opened, 1, "exactly one of the two answered keys opens the vault");
}

mod two_processes_rotating_at_once {
    use super::*;

    #[test]
    fn sqlite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        two_processes_rotating_at_once(dir.path(), &["serve"], &[("DATABUNKER_WRAPPINGKEY", &key)]);
    }

    #[test]
    fn postgres() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = PgDatabase::create();
        let key = bunker::crypto::WrappingKey::generate().to_hex();
        two_processes_rotating_at_once(
            dir.path(),
            &["serve", "--database-url", &db.url],
            &[("DATABUNKER_WRAPPINGKEY", &key)],
        );
    }
}
