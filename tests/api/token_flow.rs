//! The token-bound dialect (seed: Delos): request → confirm, login, refresh.

use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::sms_sink::SmsSink;

async fn create_full_identity(app: &TestApp, email: &str, username: &str, phone: &str) -> String {
    app.create_full_identity(email, Some(username), Some(phone)).await
}

async fn request(app: &TestApp, login: &str) -> reqwest::Response {
    app.post_json("/v2/auth/recovery/request", &json!({ "login": login }), None)
        .await
}

async fn token_for(app: &TestApp, login: &str) -> String {
    let response = request(app, login).await;
    assert_eq!(response.status(), 200);
    json(response).await["token"].as_str().expect("token").to_owned()
}

async fn confirm(app: &TestApp, token: &str, code: &str, password: &str, repeat: &str) -> reqwest::Response {
    let body = json!({"token": token, "code": code, "password": password, "repeatPassword": repeat});
    app.post_json("/v2/auth/recovery/confirm", &body, None).await
}

/// Signs in through the token dialect; the token pair.
async fn v2_login(app: &TestApp, login: &str) -> Value {
    let response = app
        .post_json("/v2/auth/login", &json!({"login": login, "password": PASSWORD}), None)
        .await;
    assert_eq!(response.status(), 200);
    json(response).await
}

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("claims")
}

fn sms_code(body: &str) -> String {
    regex::Regex::new(r"(\d{6})")
        .expect("regex")
        .captures(body)
        .expect("code in SMS")[1]
        .to_owned()
}

#[tokio::test]
async fn recovery_by_email_username_and_phone_ends_with_a_token_pair() {
    let sms = SmsSink::start().await;
    let app = spawn_app_with(|s| s.courier.sms_url = Some(sms.url.clone())).await;
    let id = create_full_identity(&app, "dana@example.com", "dana", "+84901234567").await;

    // By email: the code comes by email.
    let token = token_for(&app, "dana@example.com").await;
    let c = claims(&token);
    assert_eq!(c["otp_verified"], false);
    assert!(c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat") <= 15 * 60);
    let code = app.code_from_mail("dana@example.com", 1).await;
    let response = confirm(&app, &token, &code, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), 200);
    let pair = json(response).await;
    assert_eq!(pair["guid"], id.as_str());
    assert!(pair["accessTtl"].as_i64().expect("ttl") > 0 && pair["refreshTtl"].as_i64().expect("ttl") > 0);
    assert_eq!(
        app.session_with_jwt(pair["accessToken"].as_str().expect("jwt"))
            .await
            .status(),
        200
    );

    // By username: the code goes to the account's verified email.
    let token = token_for(&app, "DANA").await;
    let code = app.code_from_mail("dana@example.com", 3).await; // 2nd mail is the "password changed" notice
    let response = confirm(
        &app,
        &token,
        &code,
        "another long passphrase here 1",
        "another long passphrase here 1",
    )
    .await;
    assert_eq!(response.status(), 200);

    // By phone, typed with spaces: the code comes by SMS, and expires sooner.
    let token = token_for(&app, "+84 90 123 4567").await;
    let c = claims(&token);
    assert!(c["exp"].as_i64().expect("exp") - c["iat"].as_i64().expect("iat") <= 10 * 60);
    // The phone is a verified address: the two resets above sent it notices too.
    let bodies = sms.wait_for("+84901234567", 3).await;
    let code = sms_code(bodies.iter().find(|b| b.contains("recovery code")).expect("a code SMS"));
    let response = confirm(
        &app,
        &token,
        &code,
        "a third passphrase, quite long 3",
        "a third passphrase, quite long 3",
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        app.login("dana", "a third passphrase, quite long 3").await.status(),
        200
    );
}

#[tokio::test]
async fn a_token_is_single_use() {
    let app = spawn_app().await;
    app.create_identity("erin@example.com", Some(PASSWORD), true).await;
    let token = token_for(&app, "erin@example.com").await;
    let code = app.code_from_mail("erin@example.com", 1).await;
    assert_eq!(
        confirm(&app, &token, &code, NEW_PASSWORD, NEW_PASSWORD).await.status(),
        200
    );

    let again = confirm(
        &app,
        &token,
        &code,
        "yet another passphrase 12",
        "yet another passphrase 12",
    )
    .await;

    assert_eq!(again.status(), 401);
}

#[tokio::test]
async fn a_mismatched_repeat_password_is_refused_without_spending_an_attempt() {
    let app = spawn_app_with(|s| s.recovery.max_attempts = 1).await;
    app.create_identity("erin@example.com", Some(PASSWORD), true).await;
    let token = token_for(&app, "erin@example.com").await;
    let code = app.code_from_mail("erin@example.com", 1).await;

    let mismatch = confirm(&app, &token, &code, NEW_PASSWORD, "something else entirely 1").await;
    assert_eq!(mismatch.status(), 400);
    assert_eq!(json(mismatch).await["error"], "password_mismatch");

    // The single attempt is still there.
    assert_eq!(
        confirm(&app, &token, &code, NEW_PASSWORD, NEW_PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
async fn wrong_codes_count_against_the_same_per_flow_limit() {
    let app = spawn_app().await;
    app.create_identity("erin@example.com", Some(PASSWORD), true).await;
    let token = token_for(&app, "erin@example.com").await;
    let code = app.code_from_mail("erin@example.com", 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    for attempt in 1..=5 {
        let response = confirm(&app, &token, wrong, NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(
            response.status(),
            if attempt < 5 { 400 } else { 429 },
            "attempt {attempt}"
        );
    }
    let response = confirm(&app, &token, &code, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(response.status(), 429);
    assert_eq!(json(response).await["error"], "too_many_attempts");
}

#[tokio::test]
async fn a_decoy_token_looks_like_a_real_one_and_fails_like_a_wrong_code() {
    let app = spawn_app().await;
    app.create_identity("real@example.com", Some(PASSWORD), true).await;
    app.create_identity("unverified@example.com", Some(PASSWORD), false)
        .await;

    let real = token_for(&app, "real@example.com").await;
    let decoy = token_for(&app, "ghost@example.com").await;
    let unverified = token_for(&app, "unverified@example.com").await;

    for other in [&decoy, &unverified] {
        assert_eq!(real.len(), other.len());
        let (a, b) = (claims(&real), claims(other));
        let keys = |v: &Value| v.as_object().expect("object").keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&a), keys(&b));
        assert_eq!(real.split('.').count(), other.split('.').count());
    }
    let real_code = app.code_from_mail("real@example.com", 1).await;
    let wrong = if real_code == "000000" { "111111" } else { "000000" };
    let wrong_answer = confirm(&app, &real, wrong, NEW_PASSWORD, NEW_PASSWORD).await;
    let decoy_answer = confirm(&app, &decoy, wrong, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(wrong_answer.status(), decoy_answer.status());
    assert_eq!(
        wrong_answer.bytes().await.expect("body"),
        decoy_answer.bytes().await.expect("body")
    );
}

#[tokio::test]
async fn reveal_unknown_accounts_gives_the_seed_answer_for_an_unknown_login() {
    let app = spawn_app_with(|s| s.recovery.reveal_unknown_accounts = true).await;

    let response = request(&app, "ghost@example.com").await;

    assert_eq!(response.status(), 404);
    let body = json(response).await;
    assert_eq!(body["message"], "Account not found");
    assert_eq!(body["status"], 404);
}

#[tokio::test]
async fn v2_login_and_refresh_rotate_tokens_and_a_reused_refresh_token_revokes_the_family() {
    let app = spawn_app().await;
    app.create_identity("finn@example.com", Some(PASSWORD), true).await;
    let first = v2_login(&app, "finn@example.com").await;
    let refresh = |token: &Value| {
        app.client
            .get(app.url(&format!("/v2/auth/refresh/{}", token.as_str().expect("refresh"))))
            .send()
    };

    let second = refresh(&first["refreshToken"]).await.expect("sent");
    assert_eq!(second.status(), 200);
    let second = json(second).await;
    assert_ne!(second["refreshToken"], first["refreshToken"]);
    assert_eq!(
        app.session_with_jwt(second["accessToken"].as_str().expect("jwt"))
            .await
            .status(),
        200
    );

    // The spent token comes back: the whole family and its session die.
    let reuse = refresh(&first["refreshToken"]).await.expect("sent");
    assert_eq!(reuse.status(), 401);
    let after = refresh(&second["refreshToken"]).await.expect("sent");
    assert_eq!(after.status(), 401, "the family survived a reuse");
    assert_eq!(
        app.session_with_jwt(second["accessToken"].as_str().expect("jwt"))
            .await
            .status(),
        401
    );
    // Replayed again and again: one revocation, one event (one webhook).
    for _ in 0..3 {
        assert_eq!(refresh(&first["refreshToken"]).await.expect("sent").status(), 401);
    }
    let audit = app.admin_json("/admin/audit").await.to_string();
    assert_eq!(audit.matches("refresh_token_reuse").count(), 1, "{audit}");

    let wrong = app
        .post_json(
            "/v2/auth/login",
            &json!({"login": "finn@example.com", "password": "nope nope nope"}),
            None,
        )
        .await;
    assert_eq!(wrong.status(), 401);
}

#[tokio::test]
async fn without_an_sms_url_codes_are_written_as_files_under_the_sms_dir() {
    let app = spawn_app().await;
    let new = latchkey::admin::parse_new_identity("gil@example.com", None, Some("+15551234567"), vec![], true, None)
        .expect("valid");
    latchkey::identity::create(&app.services, new).await.expect("created");

    assert_eq!(request(&app, "+1 555 123 4567").await.status(), 200);

    let dir = app.services.settings.courier.sms_dir.clone();
    for _ in 0..100 {
        let files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(file) = files.first() {
            let sms: Value = serde_json::from_slice(&std::fs::read(file.path()).expect("read")).expect("json");
            assert_eq!(sms["to"], "+15551234567");
            sms_code(sms["body"].as_str().expect("body"));
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no SMS file under {}", dir.display());
}

/// A link checker or a proxy that probes the refresh URL with HEAD must not
/// spend the token: the owner's next refresh would count as a reuse and log
/// them out.
#[tokio::test]
async fn a_head_of_the_refresh_url_spends_nothing() {
    let app = spawn_app().await;
    app.create_identity("hedda@example.com", Some(PASSWORD), true).await;
    let pair = v2_login(&app, "hedda@example.com").await;
    let url = app.url(&format!(
        "/v2/auth/refresh/{}",
        pair["refreshToken"].as_str().expect("refresh")
    ));

    for _ in 0..3 {
        let head = app.client.head(&url).send().await.expect("sent");
        assert_eq!(head.status(), 405);
        assert_eq!(head.headers()["allow"], "GET");
    }

    let refreshed = app.client.get(&url).send().await.expect("sent");
    assert_eq!(refreshed.status(), 200, "a HEAD spent the refresh token");
    let refreshed = json(refreshed).await;
    assert_eq!(
        app.session_with_jwt(refreshed["accessToken"].as_str().expect("jwt"))
            .await
            .status(),
        200
    );
}

/// SPEC §1.3: an expired recovery token is `recovery_session_expired`, for
/// a known and an unknown login alike, also well past the JWT's leeway.
#[tokio::test]
async fn an_expired_token_is_answered_as_expired_for_known_and_unknown_logins() {
    let app = spawn_app_with(|s| s.recovery.lifespan = Duration::from_secs(1)).await;
    app.create_identity("ivo@example.com", Some(PASSWORD), true).await;
    let known = token_for(&app, "ivo@example.com").await;
    let unknown = token_for(&app, "nobody-ivo@example.com").await;
    // Past the flow's lifespan and the 5 s leeway JWTs get.
    tokio::time::sleep(Duration::from_secs(7)).await;

    for token in [&known, &unknown] {
        let response = confirm(&app, token, "123456", NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(response.status(), 401);
        assert_eq!(json(response).await["error"], "recovery_session_expired");
    }
}

/// A reset revokes every refresh family of the account in its own
/// transaction, as "this wasn't me" does, not only their sessions.
#[tokio::test]
async fn a_reset_revokes_every_refresh_token_of_the_account() {
    let app = spawn_app().await;
    app.create_identity("jana@example.com", Some(PASSWORD), true).await;
    for _ in 0..2 {
        v2_login(&app, "jana@example.com").await;
    }
    let live = "select count(*) from refresh_token where revoked_at is null";
    assert_eq!(count_rows(&app.database_url, live).await, 2);

    let token = token_for(&app, "jana@example.com").await;
    let code = app.code_from_mail("jana@example.com", 1).await;
    assert_eq!(
        confirm(&app, &token, &code, NEW_PASSWORD, NEW_PASSWORD).await.status(),
        200
    );

    // The reset's own new pair is the one live token left.
    assert_eq!(count_rows(&app.database_url, live).await, 1);
}
