//! The `latchkey` binary as a new user runs it: embedded defaults, mail as
//! `.eml` files, and not one secret in its log, even at trace level.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{NEW_PASSWORD, PASSWORD, free_port};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");

fn latchkey(dir: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("latchkey runs");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("latchkey exits")
}

fn newest_code(mail_dir: &Path) -> Option<String> {
    let pattern = regex::Regex::new(r"code is: (\d{6})").expect("regex");
    let mut files: Vec<_> = std::fs::read_dir(mail_dir).ok()?.filter_map(|e| e.ok()).collect();
    files.sort_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
    files.iter().rev().find_map(|entry| {
        let raw = std::fs::read(entry.path()).ok()?;
        let mail = mailparse::parse_mail(&raw).ok()?;
        let text = std::iter::once(&mail)
            .chain(mail.subparts.iter())
            .find(|p| p.ctype.mimetype == "text/plain")?
            .get_body()
            .ok()?;
        pattern.captures(&text).map(|c| c[1].to_owned())
    })
}

#[test]
fn identity_commands_print_json_and_fail_with_one_line() {
    let dir = tempfile::tempdir().expect("dir");
    let created = latchkey(
        dir.path(),
        &[
            "identity",
            "create",
            "--email",
            "Carol@Example.com",
            "--username",
            "carol",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let identity: Value = serde_json::from_slice(&created.stdout).expect("JSON identity");
    assert_eq!(identity["traits"]["email"], "carol@example.com");
    assert_eq!(identity["roles"], json!(["admin"]));
    assert_eq!(identity["has_password"], true);
    assert!(dir.path().join("latchkey.db").exists());
    let id = identity["id"].as_str().expect("id");

    let listed = latchkey(dir.path(), &["identity", "list"], None);
    let list: Value = serde_json::from_slice(&listed.stdout).expect("JSON list");
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    let shown = latchkey(dir.path(), &["identity", "show", id], None);
    assert!(shown.status.success());

    let duplicate = latchkey(
        dir.path(),
        &["identity", "create", "--email", "carol@example.com"],
        None,
    );
    assert!(!duplicate.status.success());
    let stderr = String::from_utf8_lossy(&duplicate.stderr);
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");

    let weak = latchkey(
        dir.path(),
        &["identity", "create", "--email", "dan@example.com", "--password-stdin"],
        Some("password\n"),
    );
    assert!(!weak.status.success());
    assert!(String::from_utf8_lossy(&weak.stderr).contains("password refused"));

    let audit = latchkey(dir.path(), &["audit", "--identity", id, "--since", "1h"], None);
    let events: Value = serde_json::from_slice(&audit.stdout).expect("JSON events");
    assert_eq!(events[0]["kind"], "identity.created");

    assert!(latchkey(dir.path(), &["identity", "delete", id], None).status.success());
    assert!(!latchkey(dir.path(), &["identity", "show", id], None).status.success());
}

#[tokio::test]
async fn a_new_user_recovers_an_account_with_the_binary_and_no_secret_reaches_its_log() {
    let dir = tempfile::tempdir().expect("dir");
    let created = latchkey(
        dir.path(),
        &["identity", "create", "--email", "alice@example.com", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));

    let (port, admin_port) = (free_port(), free_port());
    let log_path = dir.path().join("serve.log");
    let mut server = Command::new(BIN)
        .arg("serve")
        .current_dir(dir.path())
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
        .env("RUST_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).expect("log file"))
        .spawn()
        .expect("serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = crate::helpers::http_client();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/health/alive")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        up,
        "server did not start: {}",
        std::fs::read_to_string(&log_path).unwrap_or_default()
    );
    let mut secrets: Vec<String> = vec![PASSWORD.into(), NEW_PASSWORD.into()];

    let post = |path: &str, body: Value, cookie: Option<&str>| {
        let mut request = client.post(format!("{base}{path}")).json(&body);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("latchkey_recovery={cookie}"));
        }
        request.send()
    };
    let started = post("/api/auth/recovery/start", json!({"email": "alice@example.com"}), None)
        .await
        .expect("sent");
    assert_eq!(started.status(), 200);
    let cookie = crate::helpers::recovery_cookie(started.headers()).expect("cookie");
    let mut code = None;
    for _ in 0..100 {
        code = newest_code(&dir.path().join("mail"));
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let code = code.expect("a code arrived as an .eml file under ./mail");
    let verified = post("/api/auth/recovery/verify", json!({"code": code}), Some(&cookie))
        .await
        .expect("sent");
    assert_eq!(verified.status(), 200);
    let rotated = crate::helpers::recovery_cookie(verified.headers()).expect("rotated");
    let reset = post(
        "/api/auth/recovery/reset-password",
        json!({"password": NEW_PASSWORD}),
        Some(&rotated),
    )
    .await
    .expect("sent");
    assert_eq!(reset.status(), 200);
    let reset: Value = reset.json().await.expect("json");
    let login = post(
        "/api/auth/login",
        json!({"identifier": "alice@example.com", "password": NEW_PASSWORD}),
        None,
    )
    .await
    .expect("sent");
    assert_eq!(login.status(), 200);
    let login: Value = login.json().await.expect("json");
    let session = client
        .get(format!("{base}/api/auth/session"))
        .bearer_auth(login["jwt"].as_str().expect("jwt"))
        .send()
        .await
        .expect("sent");
    assert_eq!(session.status(), 200);
    let wrong = post("/api/auth/recovery/verify", json!({"code": "000000"}), Some(&rotated)).await;
    assert!(wrong.is_ok());
    let pair: Value = post(
        "/v2/auth/login",
        json!({"login": "alice@example.com", "password": NEW_PASSWORD}),
        None,
    )
    .await
    .expect("sent")
    .json()
    .await
    .expect("json");
    let refresh_token = pair["refreshToken"].as_str().expect("refresh token").to_owned();
    let refreshed = client
        .get(format!("{base}/v2/auth/refresh/{refresh_token}"))
        .send()
        .await
        .expect("sent");
    assert_eq!(refreshed.status(), 200);
    secrets.push(refresh_token);

    server.kill().expect("stop server");
    let _ = server.wait();
    secrets.extend([code, cookie, rotated]);
    for body in [&reset, &login] {
        secrets.push(body["sessionToken"].as_str().expect("token").to_owned());
        secrets.push(body["jwt"].as_str().expect("jwt").to_owned());
    }
    let log = std::fs::read_to_string(&log_path).expect("log");
    assert!(log.contains("/api/auth/recovery/verify"), "the access log names routes");
    assert!(
        log.contains("/v2/auth/refresh/{refreshToken}"),
        "the refresh path is logged as its template"
    );
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret reached the log: {secret}");
    }
    // JWT payloads and signatures separately, in case a log splits them.
    for jwt in [&reset["jwt"], &login["jwt"]] {
        let signature = jwt.as_str().and_then(|j| j.rsplit('.').next()).expect("signature");
        assert!(!log.contains(signature), "a JWT signature reached the log");
    }
}

#[test]
fn operators_change_identities_and_issue_support_codes_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: &[&str], stdin: Option<&str>| {
        let output = latchkey(dir.path(), args, stdin);
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).expect("JSON output")
    };
    let created = run(&["identity", "create", "--email", "max@example.com"], None);
    let id = created["id"].as_str().expect("id").to_owned();

    let updated = run(
        &[
            "identity",
            "update",
            &id,
            "--username",
            "max",
            "--role",
            "support",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert_eq!(updated["traits"]["username"], "max");
    assert_eq!(updated["roles"], json!(["support"]));
    assert_eq!(updated["has_password"], true);

    let added = run(&["identity", "add-address", &id, "--phone", "+84 90 765 4321"], None);
    assert!(added["addresses"].to_string().contains("+84907654321"));
    let verified = run(&["identity", "verify-address", &id, "--phone", "+84907654321"], None);
    let phone = verified["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .find(|a| a["kind"] == "phone")
        .cloned()
        .expect("phone");
    assert_eq!(phone["verified"], true);

    let issued = run(&["identity", "recovery-code", &id], None);
    assert_eq!(issued["code"].as_str().map(str::len), Some(6));
    assert!(issued["token"].is_string());

    let revoked = run(&["identity", "revoke-sessions", &id], None);
    assert_eq!(revoked["revoked"], 0);

    let cleared = run(&["identity", "update", &id, "--no-username", "--no-roles"], None);
    assert!(cleared["traits"].get("username").is_none());
    assert_eq!(cleared["roles"], json!([]));

    let unknown = latchkey(dir.path(), &["identity", "recovery-code", "nobody"], None);
    assert!(!unknown.status.success());
    assert_eq!(String::from_utf8_lossy(&unknown.stderr).trim_end().lines().count(), 1);

    let unfrozen = run(&["identity", "unfreeze", &id], None);
    assert_eq!(unfrozen["frozen"], false, "{unfrozen}");

    let audit = run(&["audit", "--identity", &id], None);
    let kinds: Vec<&str> = audit
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for kind in [
        "identity.updated",
        "address.added",
        "address.verified",
        "recovery.requested",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
}

fn latchkey_with_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("latchkey runs")
}

#[test]
fn serve_over_https_refuses_to_start_with_a_secret_kept_in_the_database() {
    let dir = tempfile::tempdir().expect("dir");
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let admin = format!("127.0.0.1:{}", free_port());
    let env = [
        ("LATCHKEY_PUBLIC_URL", "https://auth.example.com"),
        ("LATCHKEY_LISTEN", listen.as_str()),
        ("LATCHKEY_ADMIN_LISTEN", admin.as_str()),
    ];

    let refused = latchkey_with_env(dir.path(), &["serve"], &env);

    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("secret") && stderr.contains("latchkey secret generate"),
        "{stderr}"
    );
}

#[test]
fn a_generated_secret_is_moved_out_of_the_database_with_export_and_forget() {
    let dir = tempfile::tempdir().expect("dir");
    let generated = latchkey_with_env(dir.path(), &["secret", "generate"], &[]);
    assert!(generated.status.success());
    let fresh = String::from_utf8_lossy(&generated.stdout).trim().to_owned();
    assert!(
        fresh.len() == 64 && fresh.chars().all(|c| c.is_ascii_hexdigit()),
        "{fresh}"
    );

    // A first start generates one and keeps it in the database…
    let created = latchkey(dir.path(), &["identity", "create", "--email", "a@example.com"], None);
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let exported = latchkey_with_env(dir.path(), &["secret", "export"], &[]);
    assert!(exported.status.success());
    let stored = String::from_utf8_lossy(&exported.stdout).trim().to_owned();
    assert_eq!(stored.len(), 64);

    // …forget refuses a different value, and takes the database's copy once configured.
    let wrong = latchkey_with_env(
        dir.path(),
        &["secret", "forget"],
        &[("LATCHKEY_SECRET", fresh.as_str())],
    );
    assert!(!wrong.status.success());
    let forgot = latchkey_with_env(
        dir.path(),
        &["secret", "forget"],
        &[("LATCHKEY_SECRET", stored.as_str())],
    );
    assert!(forgot.status.success(), "{}", String::from_utf8_lossy(&forgot.stderr));
    let gone = latchkey_with_env(
        dir.path(),
        &["secret", "export"],
        &[("LATCHKEY_SECRET", stored.as_str())],
    );
    assert!(!gone.status.success());
    let database = std::fs::read(dir.path().join("latchkey.db")).expect("database");
    assert!(
        !database.windows(stored.len()).any(|w| w == stored.as_bytes()),
        "the database still holds the secret"
    );

    // Without it, no command makes up a new secret (which would orphan every key).
    let orphaned = latchkey_with_env(dir.path(), &["identity", "list"], &[]);
    assert!(!orphaned.status.success());
    assert!(String::from_utf8_lossy(&orphaned.stderr).contains("secret"));
    let still_gone = latchkey_with_env(dir.path(), &["secret", "export"], &[]);
    assert!(!still_gone.status.success(), "a new secret was generated");

    // The configured secret still opens everything the database holds.
    let listed = latchkey_with_env(
        dir.path(),
        &["identity", "list"],
        &[("LATCHKEY_SECRET", stored.as_str())],
    );
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("a@example.com"));
}

#[test]
fn container_service_variables_are_a_warning_and_not_a_fatal_error() {
    let dir = tempfile::tempdir().expect("dir");
    let env = [
        ("LATCHKEY_PORT", "tcp://10.0.0.7:8080"),
        ("LATCHKEY_PORT_8080_TCP_ADDR", "10.0.0.7"),
        ("LATCHKEY_SERVICE_HOST", "10.0.0.7"),
    ];

    let listed = latchkey_with_env(dir.path(), &["identity", "list"], &env);

    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(listed.status.success(), "{stderr}");
    assert!(
        stderr.contains("LATCHKEY_PORT") && stderr.contains("LATCHKEY_SERVICE_HOST"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("ignoring environment variables").count(), 1, "{stderr}");
}

#[test]
fn an_unknown_file_key_or_a_wrongly_typed_value_stops_the_binary_with_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("latchkey.toml"), "[recovery]\nlifespann = \"5m\"\n").expect("config");
    let unknown = latchkey_with_env(dir.path(), &["identity", "list"], &[]);
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(!unknown.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("lifespann"), "{stderr}");

    std::fs::remove_file(dir.path().join("latchkey.toml")).expect("removed");
    let typed = latchkey_with_env(
        dir.path(),
        &["identity", "list"],
        &[("LATCHKEY_RECOVERY__MAX_ATTEMPTS", "many")],
    );
    let stderr = String::from_utf8_lossy(&typed.stderr);
    assert!(!typed.status.success());
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.to_lowercase().contains("max_attempts"), "{stderr}");
}

#[test]
fn templates_check_passes_on_the_built_ins_and_names_the_broken_override() {
    let dir = tempfile::tempdir().expect("dir");
    let ok = latchkey(dir.path(), &["templates", "check"], None);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    let report: Value = serde_json::from_slice(&ok.stdout).expect("JSON");
    assert_eq!(report["status"], "ok");
    assert_eq!(report["templates"], 31);

    let preview = latchkey(
        dir.path(),
        &["templates", "preview", "password_changed", "--locale", "vi"],
        None,
    );
    assert!(preview.status.success(), "{}", String::from_utf8_lossy(&preview.stderr));
    let shown = String::from_utf8_lossy(&preview.stdout);
    for part in [
        "password_changed.subject",
        "password_changed.txt",
        "password_changed.html",
        "password_changed.sms",
    ] {
        assert!(shown.contains(part), "{shown}");
    }
    assert!(
        shown.contains("Tài khoản đã được đăng xuất khỏi mọi thiết bị khác."),
        "{shown}"
    );

    let templates = dir.path().join("templates");
    std::fs::create_dir_all(templates.join("vi")).expect("mkdir");
    std::fs::write(
        dir.path().join("latchkey.toml"),
        "[courier]\ntemplates_dir = \"templates\"\n",
    )
    .expect("config");
    for (file, source, complaint) in [
        (
            "vi/recovery_code.txt",
            "Mã: {{ kode }}",
            "names unknown variables: kode",
        ),
        // Named in a branch no sample takes: found all the same.
        (
            "vi/recovery_code.txt",
            "{% if code %}{{ code }}{% else %}{{ kode }}{% endif %}",
            "kode",
        ),
        ("vi/recovery_code.txt", "Mã: {% if code %}", "does not parse"),
        ("vi/recovery_cod.txt", "Mã: {{ code }}", "no message has this template"),
    ] {
        let _ = std::fs::remove_dir_all(&templates);
        std::fs::create_dir_all(templates.join("vi")).expect("mkdir");
        std::fs::write(templates.join(file), source).expect("template");
        let failed = latchkey(dir.path(), &["templates", "check"], None);
        let stderr = String::from_utf8_lossy(&failed.stderr);
        assert!(!failed.status.success(), "{source:?} passed");
        assert!(stderr.contains(file) && stderr.contains(complaint), "{stderr}");
        // `serve` refuses the same file at start rather than losing mail later.
        let serve = latchkey(dir.path(), &["serve"], None);
        assert!(!serve.status.success());
    }
}

#[test]
fn identity_import_reads_json_lines_reports_each_line_and_fails_on_a_bad_one() {
    let dir = tempfile::tempdir().expect("dir");
    let bcrypt = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    let file = dir.path().join("users.jsonl");
    let lines = [
        json!({"email": "ann@example.com", "email_verified": true, "password_hash": bcrypt}).to_string(),
        json!({"email": "bob@example.com", "username": "bob",
               "password_hash": "{SSHA}/3PlN3UJp3C48c9ALKPgGvqO1T8BAgMEBQYHCA=="})
        .to_string(),
        String::new(),
        json!({"email": "ANN@example.com"}).to_string(),
        r#"{"email": "eve@example.com", "password_hash": "$2b$31$o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6"}"#
            .to_owned(),
        "not json".to_owned(),
    ];
    std::fs::write(&file, lines.join("\n")).expect("file");

    let dry = latchkey(dir.path(), &["identity", "import", "--dry-run", "users.jsonl"], None);
    assert!(!dry.status.success());
    let report: Value = serde_json::from_slice(&dry.stdout).expect("JSON report");
    assert_eq!(report["dry_run"], true);
    assert_eq!(
        (report["imported"].clone(), report["skipped"].clone()),
        (json!(2), json!(1))
    );
    let listed = latchkey(dir.path(), &["identity", "list"], None);
    assert_eq!(
        serde_json::from_slice::<Value>(&listed.stdout).expect("list"),
        json!([])
    );

    let real = latchkey(dir.path(), &["identity", "import", "users.jsonl"], None);
    let stderr = String::from_utf8_lossy(&real.stderr);
    assert!(!real.status.success(), "a failing line fails the command");
    assert!(stderr.contains("line 5: bcrypt hash: cost 31"), "{stderr}");
    assert!(stderr.contains("line 6: not an import record"), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .lines()
            .last()
            .is_some_and(|l| l.contains("2 of 5 lines failed")),
        "{stderr}"
    );
    let report: Value = serde_json::from_slice(&real.stdout).expect("JSON report");
    assert_eq!(report["algorithms"], json!({"bcrypt": 1, "ssha": 1}));
    assert_eq!(report["skipped_lines"][0]["line"], 4);
    assert_eq!(report["failed_lines"][0]["line"], 5);

    let listed: Value =
        serde_json::from_slice(&latchkey(dir.path(), &["identity", "list"], None).stdout).expect("list");
    let mut algorithms: Vec<String> = listed
        .as_array()
        .expect("array")
        .iter()
        .map(|i| i["password_algorithm"].to_string())
        .collect();
    algorithms.sort();
    assert_eq!(algorithms, ["\"bcrypt\"", "\"ssha\""]);

    // Again from stdin: everything exists now, nothing fails.
    let again = latchkey(dir.path(), &["identity", "import", "-"], Some(&lines[..2].join("\n")));
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    let report: Value = serde_json::from_slice(&again.stdout).expect("JSON report");
    assert_eq!(
        (report["imported"].clone(), report["skipped"].clone()),
        (json!(0), json!(2))
    );
}

#[test]
fn webhooks_failed_lists_json_and_replay_of_an_unknown_delivery_fails_with_one_line() {
    let dir = tempfile::tempdir().expect("dir");
    let failed = latchkey(dir.path(), &["webhooks", "failed"], None);
    assert!(failed.status.success(), "{}", String::from_utf8_lossy(&failed.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&failed.stdout).expect("JSON"),
        json!([])
    );
    let replay = latchkey(dir.path(), &["webhooks", "replay", "no-such-delivery"], None);
    assert!(!replay.status.success());
    let stderr = String::from_utf8_lossy(&replay.stderr);
    assert!(stderr.contains("no failed or disabled webhook delivery"), "{stderr}");
    let all = latchkey(dir.path(), &["webhooks", "replay", "--all"], None);
    assert!(all.status.success(), "{}", String::from_utf8_lossy(&all.stderr));
    assert_eq!(
        serde_json::from_slice::<Value>(&all.stdout).expect("JSON"),
        json!({"replayed": 0})
    );
}

/// An import by the CLI while `serve` runs: the server has never measured
/// bcrypt, yet its very first password check after the import (an unknown
/// account's) already holds failures to a floor that covers it, so no wrong
/// password for an imported account is ever answered faster than an unknown
/// login. The imported account then logs in, and `identity show` names the
/// algorithm before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cli_import_into_a_running_server_is_covered_before_its_first_check() {
    let app = crate::helpers::spawn_app().await;
    assert!(app.services.hasher.failure_floor().is_zero());
    let dir = tempfile::tempdir().expect("dir");
    let hash = bcrypt::hash(PASSWORD, 8).expect("bcrypt");
    let line = json!({"email": "cli-imported@example.com", "email_verified": true, "password_hash": hash});
    let env = [("LATCHKEY_DATABASE_URL", app.database_url.as_str())];
    let mut import = Command::new(BIN);
    import
        .args(["identity", "import", "-"])
        .current_dir(dir.path())
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = import.spawn().expect("import runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(line.to_string().as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("import exits");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let listed = latchkey_with_env(dir.path(), &["identity", "list"], &env);
    let listed: Value = serde_json::from_slice(&listed.stdout).expect("list");
    let id = listed[0]["id"].as_str().expect("id").to_owned();
    let show = |dir: &Path| latchkey_with_env(dir, &["identity", "show", &id], &env);
    let shown: Value = serde_json::from_slice(&show(dir.path()).stdout).expect("show");
    assert_eq!(shown["password_algorithm"], "bcrypt");

    let unknown = app.login("nobody@example.com", "wrong password entirely").await;
    assert_eq!(unknown.status(), 401);
    let floor = app.services.hasher.failure_floor();
    let bcrypt_check = {
        let started = std::time::Instant::now();
        let _ = bcrypt::verify("wrong password entirely", &hash);
        started.elapsed()
    };
    // Halved: this process's clock and the server's calibration run under
    // other loads; without the cover the floor is zero.
    assert!(
        floor >= bcrypt_check / 2,
        "the first check after the import ran under a floor of {floor:?}, a bcrypt check takes {bcrypt_check:?}"
    );

    let wrong = app.login("cli-imported@example.com", "wrong password entirely").await;
    assert_eq!(wrong.status(), 401);
    let right = app.login("cli-imported@example.com", PASSWORD).await;
    assert_eq!(right.status(), 200);
    let shown: Value = serde_json::from_slice(&show(dir.path()).stdout).expect("show");
    assert_eq!(shown["password_algorithm"], "argon2id");
}

/// `webhooks failed` lists a given-up delivery under its endpoint's label
/// (host and key, never the URL's path) and without its payload's secrets;
/// `webhooks replay ID` queues it again, after which the list is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_failed_lists_a_given_up_delivery_and_replay_queues_it_again() {
    let app = crate::helpers::spawn_app().await;
    let url = "http://127.0.0.1:9/hooks/T0/secret-path";
    let secret = crate::webhook_receiver::new_secret();
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(
        dir.path().join("latchkey.toml"),
        format!("[[webhooks]]\nurl = \"{url}\"\nsecret = \"{secret}\"\nevents = [\"identity.created\"]\n"),
    )
    .expect("config");
    app.create_identity("given-up@example.com", None, true).await;
    let mut settings = latchkey::config::Settings::clone(&app.services.settings);
    settings.webhooks = latchkey::config::Settings::load(Some(&dir.path().join("latchkey.toml")))
        .expect("config")
        .webhooks;
    let worker = latchkey::webhooks::worker::Webhooks::new(app.services.store.clone(), std::sync::Arc::new(settings))
        .expect("worker");
    assert_eq!(worker.dispatch().await.expect("dispatch"), 1);
    app.execute_sql("update webhook_delivery set give_up_at = 0").await;
    let now = latchkey::time::now_ms();
    assert_eq!(
        app.services
            .store
            .expire_webhook_deliveries(now, 0)
            .await
            .expect("expire")
            .len(),
        1
    );

    let env = [("LATCHKEY_DATABASE_URL", app.database_url.as_str())];
    let listed = latchkey_with_env(dir.path(), &["webhooks", "failed"], &env);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    let failed: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(failed.as_array().map(Vec::len), Some(1), "{text}");
    assert_eq!(failed[0]["endpoint"], latchkey::webhooks::label(url), "{text}");
    assert_eq!(failed[0]["status"], "failed", "{text}");
    assert_eq!(failed[0]["event_type"], "identity.created", "{text}");
    assert!(!text.contains("secret-path") && !text.contains(&secret), "{text}");
    let id = failed[0]["id"]
        .as_str()
        .or(failed[0]["webhook_delivery_id"].as_str())
        .expect("an id")
        .to_owned();

    let replayed = latchkey_with_env(dir.path(), &["webhooks", "replay", &id], &env);
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    let listed = latchkey_with_env(dir.path(), &["webhooks", "failed"], &env);
    assert_eq!(
        serde_json::from_slice::<Value>(&listed.stdout).expect("JSON"),
        json!([])
    );
    let pending = "select count(*) from webhook_delivery where status = 'pending'";
    assert_eq!(crate::helpers::count_rows(&app.database_url, pending).await, 1);
    let twice = latchkey_with_env(dir.path(), &["webhooks", "replay", &id], &env);
    assert!(!twice.status.success(), "a pending delivery was replayed");
}

/// `identity unfreeze` on an account frozen by "this wasn't me": it logs in
/// again, the trail names the CLI, and a second unfreeze changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_unfreeze_lifts_a_freeze_once() {
    let app = crate::helpers::spawn_app().await;
    let email = "frozen@example.com";
    let id = app.create_identity(email, Some(PASSWORD), true).await;
    let cookie = app.verified_flow(email).await;
    assert_eq!(app.reset(&cookie, NEW_PASSWORD).await.status(), 200);
    let notice = app.mail.wait_for(email, 2).await.remove(1);
    let link = crate::report::report_link(&notice);
    let secured = crate::report::open_link(&app, reqwest::Method::POST, &link).await;
    assert_eq!(secured.status(), 200);
    assert_eq!(app.login(email, NEW_PASSWORD).await.status(), 401);

    let dir = tempfile::tempdir().expect("dir");
    let env = [("LATCHKEY_DATABASE_URL", app.database_url.as_str())];
    let shown = latchkey_with_env(dir.path(), &["identity", "show", &id], &env);
    assert_eq!(
        serde_json::from_slice::<Value>(&shown.stdout).expect("show")["frozen"],
        true
    );
    for _ in 0..2 {
        let unfrozen = latchkey_with_env(dir.path(), &["identity", "unfreeze", &id], &env);
        assert!(
            unfrozen.status.success(),
            "{}",
            String::from_utf8_lossy(&unfrozen.stderr)
        );
        let identity: Value = serde_json::from_slice(&unfrozen.stdout).expect("identity");
        assert_eq!(identity["frozen"], false, "{identity}");
    }
    assert_eq!(app.login(email, NEW_PASSWORD).await.status(), 200);
    let audit = app.admin_json(&format!("/admin/audit?identity={id}")).await;
    let unfrozen: Vec<&Value> = audit
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "account.unfrozen")
        .collect();
    assert_eq!(unfrozen.len(), 1, "{audit}");
    assert!(unfrozen[0]["detail"].to_string().contains("cli"), "{}", unfrozen[0]);
    let unknown = latchkey_with_env(dir.path(), &["identity", "unfreeze", "no-such-id"], &env);
    assert!(!unknown.status.success());
}
