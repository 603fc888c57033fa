//! The cookie-bound recovery flow: start → verify → reset-password.

use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn start_answers_code_sent_with_a_narrow_strict_cookie_and_mails_a_six_digit_code() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;

    let response = app.start_recovery("Alice@Example.com").await;

    assert_eq!(response.status(), 200);
    let set_cookie = recovery_set_cookie(response.headers());
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/api/auth/recovery", "Max-Age=900"] {
        assert!(set_cookie.contains(attribute), "{attribute} missing in {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "no Secure flag over plain http");
    assert_eq!(json(response).await, json!({"status": "code_sent"}));
    let code = app.code_from_mail("alice@example.com", 1).await;
    assert_eq!(code.len(), 6);
}

#[tokio::test]
async fn known_unknown_and_unverified_addresses_get_identical_answers_and_only_a_verified_one_gets_a_code() {
    let app = spawn_app().await;
    app.create_identity("known@example.com", Some(PASSWORD), true).await;
    app.create_identity("unverified@example.com", Some(PASSWORD), false)
        .await;

    let mut shapes = Vec::new();
    for email in ["known@example.com", "unknown@example.com", "unverified@example.com"] {
        let response = app.start_recovery(email).await;
        let status = response.status();
        let mut header_names: Vec<String> = response.headers().keys().map(|k| k.to_string()).collect();
        header_names.sort();
        let cookie = recovery_set_cookie(response.headers());
        let value = recovery_cookie(response.headers()).expect("cookie");
        // The cookie's shape: everything but its random value.
        let cookie_shape = cookie.replace(&value, &"x".repeat(value.len()));
        let body = response.bytes().await.expect("body");
        shapes.push((status, header_names, cookie_shape, body));
    }
    assert_eq!(shapes[0], shapes[1], "known and unknown differ");
    assert_eq!(shapes[0], shapes[2], "known and unverified differ");

    app.mail.wait_for("known@example.com", 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let recipients: Vec<Vec<String>> = app.mail.mails().into_iter().map(|m| m.to).collect();
    assert_eq!(recipients, vec![vec!["known@example.com".to_owned()]]);
}

#[tokio::test]
async fn verify_with_the_right_code_rotates_the_cookie_and_the_old_cookie_stops_working() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = app.started_flow("alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 1).await;

    let response = app.verify(&cookie, &code).await;

    assert_eq!(response.status(), 200);
    let rotated = recovery_cookie(response.headers()).expect("rotated cookie");
    assert_ne!(rotated, cookie);
    assert!(recovery_set_cookie(response.headers()).contains("HttpOnly"));
    assert_eq!(json(response).await, json!({"status": "verified"}));

    let replay = app.verify(&cookie, &code).await;
    assert_eq!(replay.status(), 401);
    assert_eq!(json(replay).await["error"], "recovery_session_missing");
    let reset_with_old = app.reset(&cookie, NEW_PASSWORD).await;
    assert_eq!(reset_with_old.status(), 401);
}

#[tokio::test]
async fn a_code_is_single_use() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = app.started_flow("alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 1).await;
    let rotated = recovery_cookie(app.verify(&cookie, &code).await.headers()).expect("rotated");

    let again = app.verify(&rotated, &code).await;

    assert_eq!(again.status(), 400);
    assert_eq!(json(again).await["error"], "invalid_code");
}

#[tokio::test]
async fn verify_rejects_the_right_code_after_five_wrong_ones() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = app.started_flow("alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    for attempt in 1..=5 {
        let response = app.verify(&cookie, wrong).await;
        let expected = if attempt < 5 { 400 } else { 429 };
        assert_eq!(response.status(), expected, "attempt {attempt}");
    }
    let response = app.verify(&cookie, &code).await;

    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    let body = json(response).await;
    assert_eq!(body["error"], "too_many_attempts");
    assert_eq!(body["status"], 429);
}

#[tokio::test]
async fn a_code_past_its_lifespan_is_refused_as_expired() {
    let app = spawn_app_with(|s| s.recovery.lifespan = Duration::from_secs(1)).await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = app.started_flow("alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 1).await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let response = app.verify(&cookie, &code).await;

    assert_eq!(response.status(), 401);
    assert_eq!(json(response).await["error"], "recovery_session_expired");
}

#[tokio::test]
async fn a_flow_for_an_unknown_address_never_verifies() {
    let app = spawn_app().await;
    let cookie = app.started_flow("nobody@example.com").await;
    // Whatever the code, it is wrong: try a handful.
    for code in ["000000", "123456", "999999"] {
        let response = app.verify(&cookie, code).await;
        assert_eq!(response.status(), 400);
        assert_eq!(json(response).await["error"], "invalid_code");
    }
}

#[tokio::test]
async fn codes_and_cookies_are_stored_only_as_keyed_hashes_and_mail_payloads_are_sealed_then_erased() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = app.started_flow("alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 1).await;

    let flows = app.dump_table("recovery_flow").await;
    let outbox = app.dump_table("outbox_message").await;
    for secret in [&code, &cookie] {
        assert!(!flows.contains(secret.as_str()), "secret in recovery_flow");
        assert!(!outbox.contains(secret.as_str()), "secret in outbox");
    }
    assert!(
        !outbox.contains("alice@example.com"),
        "recipient in plaintext in the outbox"
    );
    // Delivered: the sealed payload is gone.
    for _ in 0..50 {
        if app.dump_table("outbox_message").await.contains("sealed_payload=None") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "payload not erased after delivery: {}",
        app.dump_table("outbox_message").await
    );
}

#[tokio::test]
async fn reset_answers_the_seed_login_response_and_clears_the_cookie() {
    let app = spawn_app().await;
    let identity_id = app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = app.verified_flow("alice@example.com").await;

    let response = app.reset(&cookie, NEW_PASSWORD).await;

    assert_eq!(response.status(), 200);
    let cleared = recovery_set_cookie(response.headers());
    assert!(
        cleared.starts_with("latchkey_recovery=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let body = json(response).await;
    for key in ["sessionToken", "jwt", "session", "identity", "tokenizedSession"] {
        assert!(body.get(key).is_some(), "{key} missing");
    }
    assert_eq!(body["tokenizedSession"]["tokenized"], body["jwt"]);
    assert_eq!(body["identity"]["id"], identity_id.as_str());
    assert_eq!(body["identity"]["traits"]["email"], "alice@example.com");
    let session = &body["session"];
    assert_eq!(session["active"], true);
    assert_eq!(session["identity"]["id"], identity_id.as_str());
    assert!(session["authenticated_at"].is_string() && session["expires_at"].is_string());
    assert_eq!(session["devices"][0]["ip_address"], "127.0.0.1");
    assert!(session["devices"][0].get("user_agent").is_some() || session["devices"][0].is_object());

    // The flow is spent: the cookie no longer works.
    assert_eq!(app.reset(&cookie, "another very long passphrase 9").await.status(), 401);
    // The new password works, the old one does not.
    assert_eq!(app.login("alice@example.com", NEW_PASSWORD).await.status(), 200);
    assert_eq!(app.login("alice@example.com", PASSWORD).await.status(), 401);
}

#[tokio::test]
async fn reset_revokes_every_other_session_and_mails_a_notice_without_the_code() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let old = json(app.login("alice@example.com", PASSWORD).await).await;
    let old_jwt = old["jwt"].as_str().expect("jwt").to_owned();
    assert_eq!(app.session_with_jwt(&old_jwt).await.status(), 200);

    let cookie = app.verified_flow("alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 1).await;
    let fresh = json(app.reset(&cookie, NEW_PASSWORD).await).await;

    assert_eq!(
        app.session_with_jwt(&old_jwt).await.status(),
        401,
        "old session survived"
    );
    let old_by_token = app
        .client
        .get(app.url("/api/auth/session"))
        .header("x-session-token", old["sessionToken"].as_str().expect("token"))
        .send()
        .await
        .expect("sent");
    assert_eq!(old_by_token.status(), 401);
    let fresh_jwt = fresh["jwt"].as_str().expect("jwt");
    assert_eq!(app.session_with_jwt(fresh_jwt).await.status(), 200);

    let mails = app.mail.wait_for("alice@example.com", 2).await;
    let notice = &mails[1];
    assert_eq!(notice.subject, "Your latchkey password was changed", "{}", notice.raw);
    assert!(!notice.body.contains(&code), "the notice repeats the code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_resets_on_one_verified_flow_let_exactly_one_succeed() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = app.verified_flow("alice@example.com").await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let request = app
            .client
            .post(app.url("/api/auth/recovery/reset-password"))
            .header("cookie", format!("latchkey_recovery={cookie}"))
            .json(&json!({ "password": format!("purple elephants dance quietly {i}") }));
        tasks.spawn(async move { request.send().await.expect("sent").status().as_u16() });
    }
    let statuses = tasks.join_all().await;

    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 401), "{statuses:?}");
}

#[tokio::test]
async fn reset_refuses_short_weak_and_identifier_passwords_and_says_why() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = app.verified_flow("alice@example.com").await;

    let cases = [
        ("short pass", "at least 15 characters"),
        ("aaaaaaaaaaaaaaaaaaaaaaaa", "too easy to guess"),
        ("alice@example.com and more words", "must not contain your email"),
    ];
    for (password, reason) in cases {
        let response = app.reset(&cookie, password).await;
        assert_eq!(response.status(), 400, "{password}");
        let body = json(response).await;
        assert_eq!(body["error"], "password_policy");
        assert!(body["message"].as_str().expect("message").contains(reason), "{body}");
    }
    let too_long = "x".repeat(1025);
    assert_eq!(app.reset(&cookie, &too_long).await.status(), 400);
    // Refusals do not spend the flow.
    assert_eq!(app.reset(&cookie, NEW_PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn reset_before_the_code_is_verified_is_refused() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = app.started_flow("alice@example.com").await;

    let response = app.reset(&cookie, NEW_PASSWORD).await;

    assert_eq!(response.status(), 401);
    assert_eq!(json(response).await["error"], "recovery_not_verified");
}

#[tokio::test]
async fn requests_without_a_recovery_cookie_are_refused_as_missing() {
    let app = spawn_app().await;
    for response in [
        app.post_json("/api/auth/recovery/verify", &json!({"code": "123456"}), None)
            .await,
        app.post_json(
            "/api/auth/recovery/reset-password",
            &json!({"password": NEW_PASSWORD}),
            None,
        )
        .await,
        app.verify("not-a-cookie", "123456").await,
    ] {
        assert_eq!(response.status(), 401);
        assert_eq!(json(response).await["error"], "recovery_session_missing");
    }
}

#[tokio::test]
async fn the_cookie_is_secure_when_the_public_url_is_https() {
    let app = spawn_app_with(|s| {
        s.public_url = "https://auth.example.com".into();
        s.secret = Some(latchkey::secrets::ServerSecret::generate_material());
    })
    .await;

    let response = app.start_recovery("anyone@example.com").await;

    assert!(recovery_set_cookie(response.headers()).contains("; Secure"));
}

#[tokio::test]
async fn the_fourth_start_for_one_address_within_an_hour_is_rate_limited() {
    let app = spawn_app().await;
    for _ in 0..3 {
        assert_eq!(app.start_recovery("nobody@example.com").await.status(), 200);
    }

    let response = app.start_recovery("NOBODY@example.com").await;

    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((3500..=3600).contains(&retry_after), "{retry_after}");
    let body = json(response).await;
    assert_eq!(body["error"], "rate_limited");
    assert!(
        body["message"]
            .as_str()
            .expect("message")
            .starts_with("Recovery attempts exceeded")
    );
    // Another address is unaffected.
    assert_eq!(app.start_recovery("other@example.com").await.status(), 200);
}

#[tokio::test]
async fn a_new_flow_kills_the_code_of_the_previous_one() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let first = app.started_flow("alice@example.com").await;
    let first_code = app.code_from_mail("alice@example.com", 1).await;
    let _second = app.started_flow("alice@example.com").await;

    let response = app.verify(&first, &first_code).await;

    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn errors_and_the_code_mail_follow_the_language_of_the_request() {
    let app = spawn_app().await;
    app.create_identity("an@example.com", Some(PASSWORD), true).await;

    let response = app
        .client
        .post(app.url("/api/auth/recovery/start"))
        .header("accept-language", "vi-VN,vi;q=0.9,en;q=0.5")
        .json(&json!({"email": "an@example.com"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let mails = app.mail.wait_for("an@example.com", 1).await;
    assert!(mails[0].body.contains("Mã khôi phục của bạn là"), "{}", mails[0].body);

    let error = app
        .client
        .post(app.url("/api/auth/recovery/verify"))
        .header("accept-language", "vi")
        .json(&json!({"code": "123456"}))
        .send()
        .await
        .expect("sent");
    let body = json(error).await;
    assert_eq!(body["error"], "recovery_session_missing");
    assert!(
        body["message"].as_str().expect("message").contains("khôi phục"),
        "{body}"
    );
}

#[tokio::test]
async fn codes_queued_during_an_smtp_outage_are_delivered_when_it_returns() {
    // A port with nothing listening yet: the SMTP server is "down".
    let port = free_port();
    let app = spawn_app_with(|s| s.courier.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))).await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;

    assert_eq!(app.start_recovery("alice@example.com").await.status(), 200);
    // Wait until the worker has failed at least once and scheduled a retry.
    let mut retried = false;
    for _ in 0..100 {
        if app.dump_table("outbox_message").await.contains("last_error=Some") {
            retried = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(retried, "no failed attempt recorded");

    let sink = SmtpSink::start_on(port).await;
    let mails = sink.wait_for("alice@example.com", 1).await;
    assert!(mails[0].body.contains("code is"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.mails().len(), 1, "delivered twice");
}

/// A verify and its `recovery.verified` event are one write. If the event
/// cannot be written, the flow is left as it was (its code and cookie still
/// good), so the person can try again, and the trail never lacks a verify
/// that happened. Before, the flow was verified and its cookie rotated in a
/// write of its own, and the answer was the error: the new cookie was lost
/// and the flow with it.
#[tokio::test]
async fn a_verify_whose_event_cannot_be_written_leaves_the_flow_as_it_was() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = app.started_flow("alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 1).await;

    refuse_audit_events(&app, "recovery.verified", "true").await;
    let refused = app.verify(&cookie, &code).await;
    assert!(refused.status().is_server_error(), "{}", refused.status());
    let verified = "select count(*) from recovery_flow where state = 'verified'";
    assert_eq!(count_rows(&app.database_url, verified).await, 0);

    allow_audit_events(&app).await;
    let again = app.verify(&cookie, &code).await;
    assert_eq!(again.status(), 200);
    assert_eq!(count_rows(&app.database_url, verified).await, 1);
    let events = "select count(*) from audit_event where kind = 'recovery.verified'";
    assert_eq!(count_rows(&app.database_url, events).await, 1);
}
