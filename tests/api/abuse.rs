//! Abuse resistance: per-client budgets, the daily guess budget, login
//! throttling, unknown-recipient notices and the audit trail.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_client_over_its_per_minute_budget_gets_429_with_retry_after() {
    let app = spawn_app_with(|s| s.rate_limit.ip_per_minute = 5).await;
    for _ in 0..5 {
        assert_eq!(app.login("x@example.com", "whatever it is").await.status(), 401);
    }

    let response = app.login("x@example.com", "whatever it is").await;

    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(json(response).await["error"], "rate_limited");
    // Routes without a guessing risk are not limited.
    let alive = app.client.get(app.url("/health/alive")).send().await.expect("sent");
    assert_eq!(alive.status(), 200);
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let app = spawn_app_with(|s| {
        s.rate_limit.ip_per_minute = 2;
        s.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await;
    let start = |client_ip: &'static str| {
        app.client
            .post(app.url("/api/auth/recovery/start"))
            .header("x-forwarded-for", client_ip)
            .json(&json!({"email": format!("{}@example.com", client_ip.replace('.', "-"))}))
            .send()
    };
    for _ in 0..2 {
        assert_eq!(start("203.0.113.1").await.expect("sent").status(), 200);
    }
    assert_eq!(start("203.0.113.1").await.expect("sent").status(), 429);
    // Another client behind the same proxy has its own budget.
    assert_eq!(start("203.0.113.2").await.expect("sent").status(), 200);
}

#[tokio::test]
async fn wrong_codes_across_flows_are_capped_per_account_per_day() {
    let app = spawn_app_with(|s| s.recovery.max_wrong_codes_per_day = 7).await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;

    let first = app.started_flow("alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        app.verify(&first, wrong).await;
    }
    let second = app.started_flow("alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 2).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(app.verify(&second, wrong).await.status(), 400);
    assert_eq!(app.verify(&second, wrong).await.status(), 400);

    let response = app.verify(&second, &code).await;

    assert_eq!(response.status(), 429, "the daily budget of 7 was spent");
    assert_eq!(json(response).await["error"], "too_many_attempts");
}

#[tokio::test]
async fn failed_logins_lock_the_password_after_five_and_a_recovery_unlocks_it() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;

    for attempt in 1..=5 {
        let response = app.login("alice@example.com", "not the password at all").await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    // Locked now, silently: even the right password is refused as a wrong
    // one is (a 429 would tell, once the owner's login or recovery cleared
    // the streak, that the address has an account).
    let locked = app.login("Alice@example.com", PASSWORD).await;
    assert_eq!(locked.status(), 401);
    assert!(!locked.headers().contains_key("retry-after"));
    // An unknown login is throttled exactly the same way.
    for _ in 1..=6 {
        assert_eq!(
            app.login("ghost@example.com", "not the password at all").await.status(),
            401
        );
    }
    let events = app.admin_json("/admin/audit?limit=100").await;
    let locked: Vec<&Value> = events
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "login.failed")
        .filter(|e| {
            let detail: Value = serde_json::from_str(e["detail"].as_str().expect("detail")).expect("JSON detail");
            detail["login_locked"] == true
        })
        .collect();
    assert_eq!(
        locked.len(),
        2,
        "one refusal each for alice and the unknown login: {locked:?}"
    );
    // A refusal names no account, so refusals cannot bury alice's history.
    assert!(locked.iter().all(|e| e["identity_id"].is_null()), "{locked:?}");

    let cookie = app.verified_flow("alice@example.com").await;
    assert_eq!(app.reset(&cookie, NEW_PASSWORD).await.status(), 200);

    assert_eq!(app.login("alice@example.com", NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn unknown_addresses_are_told_no_account_exists_only_when_configured() {
    let app = spawn_app_with(|s| s.recovery.notify_unknown_recipients = true).await;
    app.create_identity("unverified@example.com", Some(PASSWORD), false)
        .await;

    assert_eq!(app.start_recovery("stranger@example.com").await.status(), 200);
    assert_eq!(app.start_recovery("unverified@example.com").await.status(), 200);

    let mails = app.mail.wait_for("stranger@example.com", 1).await;
    assert!(mails[0].body.contains("no account uses it"), "{}", mails[0].body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        app.mail.mails_to("unverified@example.com").is_empty(),
        "{:?}",
        app.mail.mails()
    );

    let quiet = spawn_app().await;
    assert_eq!(quiet.start_recovery("stranger@example.com").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(quiet.mail.mails().is_empty());
}

#[tokio::test]
async fn the_audit_trail_records_each_step_without_secrets() {
    let app = spawn_app().await;
    let id = app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    app.login("alice@example.com", "not the password at all").await;
    let cookie = app.started_flow("alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    app.verify(&cookie, wrong).await;
    let rotated = recovery_cookie(app.verify(&cookie, &code).await.headers()).expect("rotated");
    let reset = json(app.reset(&rotated, NEW_PASSWORD).await).await;
    app.login("alice@example.com", NEW_PASSWORD).await;
    app.mail.wait_for("alice@example.com", 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let events: Value = app
        .client
        .get(format!("{}/admin/audit?identity={id}&limit=100", app.admin_address))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let kinds: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    for kind in [
        "login.failed",
        "recovery.requested",
        "recovery.code_sent",
        "recovery.code_failed",
        "recovery.verified",
        "password.changed",
        "session.revoked_all",
        "login.succeeded",
        "notice.sent",
    ] {
        assert!(kinds.contains(&kind), "{kind} missing from {kinds:?}");
    }
    let first = &events[0];
    assert!(first["created_at"].is_i64() && first.get("ip_address").is_some());
    let text = events.to_string();
    for secret in [code.as_str(), cookie.as_str(), rotated.as_str(), PASSWORD, NEW_PASSWORD] {
        assert!(!text.contains(secret), "a secret in the audit trail");
    }
    assert!(!text.contains(reset["sessionToken"].as_str().expect("token")));
}

/// SPEC §1.3 in the browser too: the page that refuses a start over the
/// address's limit is a 429 with `Retry-After`.
#[tokio::test]
async fn the_ui_start_over_its_limit_is_a_429_page_with_retry_after() {
    let app = spawn_app_with(|s| s.recovery.max_starts_per_hour = 1).await;
    let start = || {
        app.client
            .post(app.url("/ui/recovery/start?lang=en"))
            .header("sec-fetch-site", "same-origin")
            .form(&[("email", "vera@example.com")])
            .send()
    };
    assert!(start().await.expect("sent").status().is_redirection());

    let refused = start().await.expect("sent");

    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert!(refused.text().await.expect("html").contains("<form"));
}
