//! The contract test: schemathesis (PyPI) reads the live server's generated
//! `/openapi.json` and sends every operation generated requests, valid and
//! invalid, checking that no answer is a server error, an undocumented status
//! or content type, or a body that breaks its schema.
//!
//! schemathesis is found at `LATCHKEY_TEST_SCHEMATHESIS`, else on `PATH`
//! (`.ci/run` installs it in a virtualenv). Skipped when it is missing,
//! except under `CI=true`, where that fails.

use std::process::Stdio;

use crate::helpers::*;

fn schemathesis() -> Option<String> {
    if let Ok(path) = std::env::var("LATCHKEY_TEST_SCHEMATHESIS") {
        return Some(path);
    }
    let found = std::process::Command::new("schemathesis")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found.then(|| "schemathesis".to_owned())
}

/// Runs schemathesis against the document at `url` with `config`, sending
/// `authorization` with every request; `Err` holds its report.
async fn schemathesis_run(url: String, config: &str, authorization: String) -> Option<Result<(), String>> {
    let Some(schemathesis) = schemathesis() else {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
        assert!(!ci, "CI=true but schemathesis is not installed (see .ci/run)");
        eprintln!("skipping contract test: schemathesis is not installed");
        return None;
    };
    let reports = tempfile::tempdir().expect("report dir");
    let mut command = std::process::Command::new(&schemathesis);
    command
        .args(["--no-color", "--config-file", config, "run", &url])
        .args([
            "--checks",
            "all",
            "--header",
            &format!("Authorization: {authorization}"),
        ])
        // One worker: CPython 3.11's `ast.parse` is not thread-safe (python/cpython#106905,
        // "AST constructor recursion depth mismatch" inside hypothesis), which two
        // worker threads once hit in CI — a runtime error of the tool, not a finding.
        .args(["--max-examples", "100", "--workers", "1", "--request-timeout", "20"])
        .args(["--suppress-health-check", "all", "--generation-database", "none"])
        .arg("--report-dir")
        .arg(reports.path())
        .env("SCHEMATHESIS_HOOKS", "");
    // Off the runtime: the server under test runs on it.
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("joined")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    Some(if output.status.success() {
        Ok(())
    } else {
        Err(format!("{stdout}\n{stderr}"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_violation() {
    if schemathesis().is_none() {
        return assert!(schemathesis_run(String::new(), "", String::new()).await.is_none());
    }
    let app = spawn_app().await;
    // Requests carry an admin's JWT, so the guarded operations are exercised
    // past their 401 too.
    let new = latchkey::admin::parse_new_identity(
        "contract@example.com",
        None,
        None,
        vec!["admin".into()],
        true,
        Some(secrecy::SecretString::from(PASSWORD.to_owned())),
    )
    .expect("valid identity");
    latchkey::identity::create(&app.services, new).await.expect("created");
    let jwt = json(app.login("contract@example.com", PASSWORD).await).await["jwt"]
        .as_str()
        .expect("jwt")
        .to_owned();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract/schemathesis.toml");
    let outcome = schemathesis_run(app.url("/openapi.json"), config, format!("Bearer {jwt}")).await;
    if let Some(Err(report)) = outcome {
        panic!("schemathesis found contract violations:\n{report}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_contract_violation_in_the_admin_api() {
    if schemathesis().is_none() {
        return assert!(schemathesis_run(String::new(), "", String::new()).await.is_none());
    }
    let token = "contract-admin-token-0123456789abcdef";
    let app = spawn_app_with(|s| s.admin.token = Some(token.into())).await;
    app.create_identity("someone@example.com", Some(PASSWORD), true).await;
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/contract/schemathesis-admin.toml");
    let url = format!("{}/admin/openapi.json", app.admin_address);
    let document = app.client.get(&url).bearer_auth(token).send().await.expect("sent");
    assert_eq!(document.status(), 200);
    // schemathesis fetches the document itself, with the same header.
    let outcome = schemathesis_run(url, config, format!("Bearer {token}")).await;
    if let Some(Err(report)) = outcome {
        panic!("schemathesis found contract violations in the admin API:\n{report}");
    }
}
