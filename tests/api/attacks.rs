//! The security review's attacks (issue 11), each performed against the real
//! server: what a second request reveals about the first, races between a
//! login and a reset, bursts, Unicode forms, proxies, slow clients.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// Status and error code: what an observer compares.
async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body = json(response).await;
    (status, body["error"].clone())
}

/// A six-digit code that is not `code`.
fn other_than(code: &str) -> &'static str {
    if code == "000000" { "111111" } else { "000000" }
}

async fn v2_token(app: &TestApp, login: &str) -> String {
    let response = app
        .post_json("/v2/auth/recovery/request", &json!({ "login": login }), None)
        .await;
    assert_eq!(response.status(), 200);
    json(response).await["token"].as_str().expect("token").to_owned()
}

async fn v2_confirm(app: &TestApp, token: &str, code: &str, password: &str) -> reqwest::Response {
    let body = json!({"token": token, "code": code, "password": password, "repeatPassword": password});
    app.post_json("/v2/auth/recovery/confirm", &body, None).await
}

#[tokio::test]
async fn a_second_start_does_not_reveal_whether_the_first_flow_was_real() {
    let app = spawn_app().await;
    app.create_identity("known@example.com", Some(PASSWORD), true).await;
    app.create_identity("unverified@example.com", Some(PASSWORD), false)
        .await;

    let mut answers = Vec::new();
    for email in ["known@example.com", "unknown@example.com", "unverified@example.com"] {
        let first = app.started_flow(email).await;
        app.started_flow(email).await;
        answers.push(answer(app.verify(&first, "123456").await).await);
    }

    assert_eq!(answers[0], answers[1], "known and unknown differ: {answers:?}");
    assert_eq!(answers[0], answers[2], "known and unverified differ: {answers:?}");
    assert_eq!(answers[0].0, 401);
    assert_eq!(answers[0].1, "recovery_session_expired");
}

#[tokio::test]
async fn a_second_token_request_does_not_reveal_whether_the_first_token_was_real() {
    let app = spawn_app().await;
    app.create_identity("known@example.com", Some(PASSWORD), true).await;

    let mut answers = Vec::new();
    for login in ["known@example.com", "nobody@example.com"] {
        let first = v2_token(&app, login).await;
        v2_token(&app, login).await;
        answers.push(answer(v2_confirm(&app, &first, "123456", NEW_PASSWORD).await).await);
    }

    assert_eq!(answers[0], answers[1], "{answers:?}");
}

#[tokio::test]
async fn a_username_request_does_not_reveal_that_it_shares_an_account_with_an_email() {
    let app = spawn_app().await;
    app.create_full_identity("alice@example.com", Some("alice"), None).await;
    app.create_full_identity("bob@example.com", None, None).await;
    app.create_full_identity("carol@example.com", Some("carol"), None).await;

    let mut answers = Vec::new();
    for (email, username) in [("alice@example.com", "alice"), ("bob@example.com", "carol")] {
        let first = app.started_flow(email).await;
        let code = app.code_from_mail(email, 1).await;
        v2_token(&app, username).await;
        answers.push(answer(app.verify(&first, other_than(&code)).await).await);
    }

    assert_eq!(answers[0], answers[1], "linked and unrelated pairs differ: {answers:?}");
    assert_eq!(answers[0], (400, json!("invalid_code")));
}

#[tokio::test]
async fn a_support_code_survives_anonymous_starts_and_keeps_its_own_budgets() {
    let app = spawn_app().await;
    let id = app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let issued = app
        .admin_call(reqwest::Method::POST, &format!("/admin/identities/{id}/recovery-code"))
        .await;
    let token = issued["token"].as_str().expect("token").to_owned();
    let code = issued["code"].as_str().expect("code").to_owned();

    // Anyone may start anonymous flows for the account, up to the hourly limit,
    // and spend every guess of the login's daily budget…
    for _ in 0..3 {
        let cookie = app.started_flow("alice@example.com").await;
        for _ in 0..5 {
            app.verify(&cookie, "000001").await;
        }
    }
    assert_eq!(app.start_recovery("alice@example.com").await.status(), 429);

    // …and the support flow still works.
    let response = v2_confirm(&app, &token, &code, NEW_PASSWORD).await;
    assert_eq!(response.status(), 200, "{:?}", json(response).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_session_minted_with_the_old_password_survives_a_reset_it_raced() {
    let app = spawn_app_with(|s| s.recovery.max_starts_per_hour = 0).await;
    app.create_full_identity("alice@example.com", Some("alice"), Some("+84901234567"))
        .await;
    let passwords = [PASSWORD, NEW_PASSWORD];
    let mut alive = Vec::new();
    // Rounds with the logins sent a little later each time, so that in some
    // round a login verifies the old hash around the moment the reset commits.
    for round in 0..6u64 {
        let (old, new) = (passwords[(round % 2) as usize], passwords[((round + 1) % 2) as usize]);
        app.mail.wait_for("alice@example.com", 2 * round as usize).await;
        let token = v2_token(&app, "alice@example.com").await;
        let code = app.code_from_mail("alice@example.com", 2 * round as usize + 1).await;
        // The reset goes first; the logins arrive while it hashes and commits,
        // each reading the identity (the old hash) before its own Argon2 turn.
        let body = json!({"token": token, "code": code, "password": new, "repeatPassword": new});
        let reset = app.client.post(app.url("/v2/auth/recovery/confirm")).json(&body).send();
        let reset = tokio::spawn(reset);
        tokio::time::sleep(Duration::from_millis(3 * round)).await;
        let mut logins = tokio::task::JoinSet::new();
        for i in 0..12 {
            let identifier = ["alice@example.com", "alice", "+84901234567"][i % 3];
            let request = app.client.post(app.url("/api/auth/login")).json(&json!({
                "identifier": identifier,
                "password": old,
            }));
            logins.spawn(async move {
                let response = request.send().await.expect("sent");
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or_default();
                (status, body["sessionToken"].as_str().map(str::to_owned))
            });
        }
        let reset = reset.await.expect("joined").expect("sent");
        assert_eq!(reset.status(), 200);
        for (status, session_token) in logins.join_all().await {
            assert!([200, 401, 429].contains(&status), "{status}");
            if let Some(session_token) = session_token {
                let check = app
                    .client
                    .get(app.url("/api/auth/session"))
                    .header("x-session-token", session_token)
                    .send()
                    .await
                    .expect("sent");
                if check.status() != 401 {
                    alive.push(round);
                }
            }
        }
    }
    assert!(
        alive.is_empty(),
        "sessions of an old password outlived its reset in rounds {alive:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_session_minted_with_the_old_password_survives_an_operator_password_change() {
    let app = spawn_app().await;
    let id = app.create_full_identity("alice@example.com", Some("alice"), None).await;

    // The change goes first; the logins arrive while it hashes and commits.
    let change = app
        .client
        .patch(format!("{}/admin/identities/{id}", app.admin_address))
        .json(&json!({ "password": NEW_PASSWORD }))
        .send();
    let change = tokio::spawn(change);
    let mut logins = tokio::task::JoinSet::new();
    for i in 0..8 {
        let identifier = ["alice@example.com", "alice"][i % 2];
        let request = app.client.post(app.url("/api/auth/login")).json(&json!({
            "identifier": identifier,
            "password": PASSWORD,
        }));
        logins.spawn(async move {
            let response = request.send().await.expect("sent");
            let body: Value = response.json().await.unwrap_or_default();
            body["sessionToken"].as_str().map(str::to_owned)
        });
    }
    assert_eq!(change.await.expect("joined").expect("sent").status(), 200);

    for session_token in logins.join_all().await.into_iter().flatten() {
        let check = app
            .client
            .get(app.url("/api/auth/session"))
            .header("x-session-token", session_token)
            .send()
            .await
            .expect("sent");
        assert_eq!(check.status(), 401, "a session of the old password is alive");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_thirty_wrong_passwords_gets_no_more_evaluations_than_the_free_failures() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;

    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let request = app.client.post(app.url("/api/auth/login")).json(&json!({
            "identifier": "alice@example.com",
            "password": "not the password at all",
        }));
        burst.spawn(async move { request.send().await.expect("sent").status().as_u16() });
    }
    // The right password, sent while the burst is being answered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let right = app.login("alice@example.com", PASSWORD).await;
    let statuses = burst.join_all().await;

    // Every answer is the same 401: the lock is silent. The audit trail
    // tells the evaluations (`login_locked: false`) from the refusals.
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(right.status(), 401, "the right password got through the lock");
    let events = app.admin_json("/admin/audit?limit=100").await;
    let failures: Vec<Value> = events
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "login.failed")
        .map(|e| serde_json::from_str(e["detail"].as_str().expect("detail")).expect("JSON detail"))
        .collect();
    assert_eq!(failures.len(), 31, "{failures:?}");
    let evaluated = failures.iter().filter(|d| d["login_locked"] == false).count();
    assert!(
        evaluated <= 5,
        "{evaluated} wrong passwords were evaluated: {failures:?}"
    );
}

#[tokio::test]
async fn failures_spread_over_email_username_and_phone_share_one_account_budget_without_linking_them() {
    let app = spawn_app().await;
    app.create_full_identity("alice@example.com", Some("alice"), Some("+84901234567"))
        .await;
    app.create_full_identity("bob@example.com", Some("bob"), None).await;

    // The stranger spends the free failures of two logins: the account's own
    // key (ten free failures) is now locked too.
    for login in ["alice@example.com", "+84901234567"] {
        for _ in 0..5 {
            assert_eq!(app.login(login, "not the password at all").await.status(), 401);
        }
        assert_eq!(app.login(login, PASSWORD).await.status(), 401);
    }

    // The account's third login is not open to a fresh streak: even the right
    // password is refused, and exactly as a wrong one is (no 429 that would link them).
    let by_username = answer(app.login("alice", PASSWORD).await).await;
    let wrong_for_bob = answer(app.login("bob", "not the password at all").await).await;
    assert_eq!(by_username, (401, json!("invalid_credentials")));
    assert_eq!(wrong_for_bob, by_username);
    // An unrelated account is untouched.
    assert_eq!(app.login("bob", PASSWORD).await.status(), 200);
}

/// The owner's login or recovery clears the streaks of their logins. If a
/// lock were answered 429, a stranger who had spent four of an address's
/// free failures could later spend two more and see whether the streak was
/// still there: cleared (two 401s) only if someone signed in or recovered,
/// so only if the address has an account.
#[tokio::test]
async fn a_streak_cleared_by_the_owner_answers_as_an_unknown_address_still_counting() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    app.create_identity("bob@example.com", Some(PASSWORD), true).await;
    let wrong = "not the password at all";

    let mut seen = Vec::new();
    for login in ["alice@example.com", "bob@example.com", "ghost@example.com"] {
        for _ in 0..4 {
            assert_eq!(app.login(login, wrong).await.status(), 401);
        }
        // Meanwhile alice signs in and bob recovers his account.
        if login == "alice@example.com" {
            assert_eq!(app.login(login, PASSWORD).await.status(), 200);
        }
        if login == "bob@example.com" {
            let cookie = app.verified_flow(login).await;
            assert_eq!(app.reset(&cookie, NEW_PASSWORD).await.status(), 200);
        }
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(answer(app.login(login, wrong).await).await);
        }
        seen.push(answers);
    }
    let ghost = &seen[2];
    assert!(
        ghost.iter().all(|a| *a == (401, json!("invalid_credentials"))),
        "{ghost:?}"
    );
    assert_eq!(&seen[0], ghost, "a login told that alice's streak was cleared");
    assert_eq!(&seen[1], ghost, "a login told that bob's streak was cleared");
}

/// A phone number typed on an East Asian keyboard (full-width digits and
/// plus) is the same login: it signs in, and it spends the same budget.
#[tokio::test]
async fn a_phone_typed_full_width_is_the_same_login() {
    let app = spawn_app().await;
    app.create_full_identity("carol@example.com", None, Some("+84901234567"))
        .await;
    let full_width = "＋８４ ９０ １２３ ４５６７";

    assert_eq!(app.login(full_width, PASSWORD).await.status(), 200);
    for _ in 0..5 {
        assert_eq!(app.login(full_width, "not the password at all").await.status(), 401);
    }
    // Locked, silently: the right password in the usual form is refused.
    assert_eq!(app.login("+84901234567", PASSWORD).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_logins_is_answered_overloaded_instead_of_queued_without_bound() {
    let app = spawn_app_with(|s| {
        s.password.max_concurrent_hashes = 1;
        s.password.max_queue_wait = Duration::from_millis(100);
    })
    .await;

    let mut flood = tokio::task::JoinSet::new();
    for n in 0..40 {
        let request = app.client.post(app.url("/api/auth/login")).json(&json!({
            "identifier": format!("nobody-{n}@example.com"),
            "password": "not the password at all",
        }));
        flood.spawn(async move {
            let response = request.send().await.expect("sent");
            let status = response.status().as_u16();
            let retry_after = response.headers().contains_key("retry-after");
            let error = json(response).await["error"].clone();
            (status, retry_after, error)
        });
    }
    let answers = flood.join_all().await;

    let overloaded: Vec<_> = answers.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(!overloaded.is_empty(), "nothing was refused: {answers:?}");
    for (_, retry_after, error) in &overloaded {
        assert!(*retry_after, "503 without Retry-After");
        assert_eq!(*error, "overloaded");
    }
    assert!(answers.iter().all(|(s, _, _)| *s == 401 || *s == 503), "{answers:?}");
}

/// Twelve clients sending wrong passwords for unknown logins without a
/// pause, keeping a small Argon2 queue full, until stopped.
struct LoginFlood {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    clients: tokio::task::JoinSet<()>,
}

impl LoginFlood {
    fn start(app: &TestApp) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut clients = tokio::task::JoinSet::new();
        for worker in 0..12 {
            let (client, url, stop) = (app.client.clone(), app.url("/api/auth/login"), stop.clone());
            clients.spawn(async move {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let body = json!({"identifier": format!("nobody-{worker}-{n}@example.com"), "password": "not the password at all"});
                    let _ = client.post(&url).json(&body).send().await;
                    n += 1;
                }
            });
        }
        Self { stop, clients }
    }

    async fn stop(self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.clients.join_all().await;
    }
}

/// SPEC §1.3 in the browser: a reset the hasher is too busy for is a 503
/// with `Retry-After` on the new-password page, and the flow stays verified.
/// It was a 400 on the address page, whose form starts a new flow and so
/// abandons the verified one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overloaded_ui_reset_keeps_the_password_page_and_says_when_to_retry() {
    let app = spawn_app_with(|s| {
        s.password.max_concurrent_hashes = 1;
        s.password.max_queue_wait = Duration::from_millis(20);
    })
    .await;
    app.create_identity("uma@example.com", Some(PASSWORD), true).await;
    let verified = app.verified_flow("uma@example.com").await;
    let ui_cookie = format!("latchkey_ui={verified}");
    let reset = || {
        app.client
            .post(app.url("/ui/recovery/reset?lang=en"))
            .header(reqwest::header::COOKIE, &ui_cookie)
            .header("sec-fetch-site", "same-origin")
            .form(&[("password", NEW_PASSWORD)])
            .send()
    };

    let flood = LoginFlood::start(&app);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut busy = 0;
    let mut done = false;
    for _ in 0..20 {
        let response = reset().await.expect("sent");
        let status = response.status().as_u16();
        if status == 303 {
            done = true;
            break;
        }
        assert_eq!(status, 503);
        assert!(
            response.headers().contains_key("retry-after"),
            "503 without Retry-After"
        );
        let html = response.text().await.expect("html");
        assert!(html.contains("Choose a new password"), "not the password page: {html}");
        busy += 1;
    }
    flood.stop().await;

    assert!(busy > 0, "the hasher was never overloaded");
    if !done {
        assert_eq!(
            reset().await.expect("sent").status(),
            303,
            "the flow did not stay verified"
        );
    }
    assert_eq!(app.login("uma@example.com", NEW_PASSWORD).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_overloaded_answer_does_not_spend_a_code_attempt() {
    let app = spawn_app_with(|s| {
        s.password.max_concurrent_hashes = 1;
        s.password.max_queue_wait = Duration::from_millis(50);
    })
    .await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let token = v2_token(&app, "alice@example.com").await;
    let code = app.code_from_mail("alice@example.com", 1).await;

    // A flood that keeps the one Argon2 slot busy while the person tries codes.
    let flood = LoginFlood::start(&app);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(
            answer(v2_confirm(&app, &token, other_than(&code), NEW_PASSWORD).await)
                .await
                .0,
        );
    }
    flood.stop().await;

    assert!(answers.contains(&503), "the hasher was never overloaded: {answers:?}");
    assert!(answers.iter().all(|s| *s == 400 || *s == 503), "{answers:?}");
    // At most four attempts were spent, whatever the answers: the right code still works.
    let right = v2_confirm(&app, &token, &code, NEW_PASSWORD).await;
    assert_eq!(right.status(), 200);
}

#[tokio::test]
async fn a_password_set_composed_opens_the_account_when_typed_decomposed_or_full_width() {
    use unicode_normalization::UnicodeNormalization;
    let app = spawn_app().await;
    let password = "Mật khẩu của tôi rất dài 2024 ngựa";
    app.create_identity("an@example.com", Some(password), true).await;

    let decomposed: String = password.nfd().collect();
    let full_width = password.replace("2024", "２０２４");
    assert_ne!(decomposed, password);

    assert_eq!(app.login("an@example.com", &decomposed).await.status(), 200);
    assert_eq!(app.login("an@example.com", &full_width).await.status(), 200);
    assert_eq!(app.login("an@example.com", password).await.status(), 200);
}

#[tokio::test]
async fn an_admin_request_relayed_by_a_local_proxy_is_refused_without_a_token() {
    let app = spawn_app().await;
    let url = format!("{}/admin/identities", app.admin_address);

    let direct = app.client.get(&url).send().await.expect("sent");
    assert_eq!(direct.status(), 200);
    for (name, value) in [
        ("x-forwarded-for", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
        ("x-real-ip", "203.0.113.9"),
    ] {
        let relayed = app.client.get(&url).header(name, value).send().await.expect("sent");
        assert_eq!(relayed.status(), 401, "{name} was let through");
    }
    // A web page on the operator's machine is not the operator either:
    // DNS rebinding (a foreign Host) or a cross-site request from a browser.
    for (name, value) in [
        ("host", "attacker.example:8081"),
        ("origin", "http://attacker.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let browsed = app.client.get(&url).header(name, value).send().await.expect("sent");
        assert_eq!(browsed.status(), 401, "{name}: {value} was let through");
    }
}

/// A failed login relayed by the trusted local proxy with `X-Forwarded-For: forwarded`.
async fn login_via_proxy(app: &TestApp, forwarded: &str) -> u16 {
    let response = app
        .client
        .post(app.url("/api/auth/login"))
        .header("x-forwarded-for", forwarded)
        .json(&json!({"identifier": "x@example.com", "password": "not the password at all"}))
        .send()
        .await
        .expect("sent");
    response.status().as_u16()
}

/// An app behind a trusted proxy on loopback, two requests a minute per client.
async fn spawn_behind_proxy() -> TestApp {
    spawn_app_with(|s| {
        s.rate_limit.ip_per_minute = 2;
        s.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await
}

#[tokio::test]
async fn rotating_addresses_inside_one_ipv6_64_shares_one_budget() {
    let app = spawn_behind_proxy().await;
    let mut statuses = Vec::new();
    for n in 1..=3 {
        statuses.push(login_via_proxy(&app, &format!("2001:db8:1:2::{n:x}")).await);
    }
    assert_eq!(statuses, [401, 401, 429]);
    // Another /64 is another client.
    assert_eq!(login_via_proxy(&app, "2001:db8:1:3::1").await, 401);
}

#[tokio::test]
async fn a_forged_left_hand_entry_is_not_taken_for_the_client_behind_a_proxy_that_appends_ip_port() {
    let app = spawn_behind_proxy().await;
    let mut statuses = Vec::new();
    for n in 1..=3 {
        // The attacker forges the left entry; the proxy appends the real peer with its port.
        statuses.push(login_via_proxy(&app, &format!("198.51.100.{n}, 203.0.113.9:4{n}000")).await);
    }
    assert_eq!(statuses, [401, 401, 429], "the forged entries each got a fresh budget");
    let events = app.admin_json("/admin/audit").await;
    let ips: Vec<&str> = events
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["ip_address"].as_str())
        .collect();
    assert!(!ips.is_empty() && ips.iter().all(|ip| *ip == "203.0.113.9"), "{ips:?}");
}

#[tokio::test]
async fn every_response_that_carries_a_credential_says_no_store() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;

    let login = app.login("alice@example.com", PASSWORD).await;
    assert_eq!(login.headers()["cache-control"], "no-store");
    let token = json(login).await["sessionToken"].as_str().expect("token").to_owned();
    let refreshed = app
        .post_json("/api/auth/session/refresh", &json!({ "sessionToken": token }), None)
        .await;
    assert_eq!(refreshed.headers()["cache-control"], "no-store");
    let pair = app
        .post_json(
            "/v2/auth/login",
            &json!({"login": "alice@example.com", "password": PASSWORD}),
            None,
        )
        .await;
    assert_eq!(pair.headers()["cache-control"], "no-store");
    let refresh_token = json(pair).await["refreshToken"].as_str().expect("refresh").to_owned();
    let rotated = app
        .client
        .get(app.url(&format!("/v2/auth/refresh/{refresh_token}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(rotated.status(), 200);
    assert_eq!(rotated.headers()["cache-control"], "no-store");
    let request = app
        .post_json(
            "/v2/auth/recovery/request",
            &json!({"login": "alice@example.com"}),
            None,
        )
        .await;
    assert_eq!(request.headers()["cache-control"], "no-store");
    let start = app.start_recovery("alice@example.com").await;
    assert_eq!(start.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn a_token_only_client_logs_out_and_its_refresh_family_and_session_die() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let pair = json(
        app.post_json(
            "/v2/auth/login",
            &json!({"login": "alice@example.com", "password": PASSWORD}),
            None,
        )
        .await,
    )
    .await;
    let refresh_token = pair["refreshToken"].as_str().expect("refresh").to_owned();
    let access = pair["accessToken"].as_str().expect("access").to_owned();
    assert_eq!(app.session_with_jwt(&access).await.status(), 200);

    let out = app
        .post_json("/v2/auth/logout", &json!({ "refreshToken": refresh_token }), None)
        .await;
    assert_eq!(out.status(), 204);

    assert_eq!(app.session_with_jwt(&access).await.status(), 401);
    let rotated = app
        .client
        .get(app.url(&format!("/v2/auth/refresh/{refresh_token}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(rotated.status(), 401);
    // An unknown or spent token is answered the same.
    for token in [
        refresh_token.as_str(),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "x",
    ] {
        let again = app
            .post_json("/v2/auth/logout", &json!({ "refreshToken": token }), None)
            .await;
        assert_eq!(again.status(), 204);
    }
}

#[tokio::test]
async fn every_admin_action_is_audited_with_the_peer_address_and_an_actor() {
    let app = spawn_app().await;
    let created: Value = app
        .client
        .post(format!("{}/admin/identities", app.admin_address))
        .header("user-agent", "ops-console/1.0")
        .json(&json!({"email": "alice@example.com"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let id = created["id"].as_str().expect("id").to_owned();
    app.client
        .delete(format!("{}/admin/identities/{id}/sessions", app.admin_address))
        .header("user-agent", "ops-console/1.0")
        .send()
        .await
        .expect("sent");

    let events = app.admin_json(&format!("/admin/audit?identity={id}")).await;
    let events = events.as_array().expect("events");
    assert!(events.len() >= 2, "{events:?}");
    for event in events {
        assert_eq!(event["ip_address"], "127.0.0.1", "{event}");
        assert_eq!(event["user_agent"], "ops-console/1.0", "{event}");
        let detail: Value = serde_json::from_str(event["detail"].as_str().expect("detail")).expect("json");
        assert_eq!(detail["actor"], "admin_loopback", "{event}");
    }
}

#[tokio::test]
async fn session_jwts_name_their_audience_and_a_recovery_token_is_not_a_session() {
    use base64::Engine;
    let app = spawn_app_with(|s| s.session.jwt_audience = Some("https://api.example.com".into())).await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let login = json(app.login("alice@example.com", PASSWORD).await).await;
    let jwt = login["jwt"].as_str().expect("jwt");
    let payload = jwt.split('.').nth(1).expect("payload");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("claims");
    assert_eq!(claims["aud"], "https://api.example.com");
    assert_eq!(app.session_with_jwt(jwt).await.status(), 200);

    let recovery = v2_token(&app, "alice@example.com").await;
    assert_eq!(app.session_with_jwt(&recovery).await.status(), 401);
    // …and a session JWT opens no recovery flow.
    let confirm = v2_confirm(&app, jwt, "123456", NEW_PASSWORD).await;
    assert_eq!(answer(confirm).await, (401, json!("recovery_session_missing")));
}

/// Whether the server closes a connection that trickles `prefix` and then
/// one more header byte every 100 ms, within `limit`.
async fn trickler_is_cut_off(address: &str, prefix: &[u8], limit: Duration) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .expect("connect");
    stream.write_all(prefix).await.expect("write");
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 1024];
    while started.elapsed() < limit {
        if stream.write_all(b"a").await.is_err() {
            return true;
        }
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) | Err(_) => {}
        }
    }
    false
}

#[tokio::test]
async fn a_client_that_never_finishes_its_header_is_disconnected() {
    let app = spawn_app_with(|s| s.http.header_timeout = Duration::from_millis(500)).await;

    let cut = trickler_is_cut_off(
        &app.address,
        b"GET /health/alive HTTP/1.1\r\nHost: x\r\nX-Slow: ",
        Duration::from_secs(10),
    )
    .await;

    assert!(cut, "a header trickled for 10 s kept its connection");
    let admin_cut = trickler_is_cut_off(
        &app.admin_address,
        b"GET /admin/identities HTTP/1.1\r\nX-Slow: ",
        Duration::from_secs(10),
    )
    .await;
    assert!(admin_cut, "the admin listener kept a trickling connection");
}

#[tokio::test]
async fn stalled_connections_beyond_the_bound_do_not_starve_real_clients() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(|s| {
        s.http.header_timeout = Duration::from_millis(500);
        s.http.max_connections = 4;
    })
    .await;
    let mut stalled = Vec::new();
    for _ in 0..16 {
        let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
            .await
            .expect("connect");
        let _ = stream.write_all(b"GET /health/alive HTTP/1.1\r\n").await;
        stalled.push(stream);
    }

    let response = app.client.get(app.url("/health/alive")).send().await.expect("sent");

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_503_overloaded_when_the_request_time_is_up() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(|s| s.http.request_timeout = Duration::from_millis(300)).await;
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .expect("connect");
    stream
        .write_all(
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .expect("write");

    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    let text = String::from_utf8_lossy(&answer[..read]);

    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
    assert!(text.contains("\"overloaded\""), "{text}");
}

#[tokio::test]
async fn the_support_link_refuses_a_token_anyone_can_request_for_any_login() {
    let app = spawn_app().await;
    app.create_identity("victim@example.com", Some(PASSWORD), true).await;
    // The attacker requests a token for their own account and sends the victim the link.
    app.create_identity("attacker@example.com", Some(PASSWORD), true).await;
    let token = v2_token(&app, "attacker@example.com").await;
    let link = format!("/ui/recovery/link?token={token}");

    let page = app.client.get(app.url(&link)).send().await.expect("sent");
    assert_eq!(page.status(), 401);
    assert!(page.headers().get("set-cookie").is_none());
    let bound = app
        .client
        .post(app.url(&link))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("sent");
    assert_eq!(bound.status(), 401);
    assert!(bound.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn a_decoy_keeps_no_typed_address_or_code_at_rest() {
    let app = spawn_app().await;
    app.start_recovery("nobody@example.com").await;
    v2_token(&app, "nobody-by-username").await;

    let outbox = app.dump_table("outbox_message").await;

    assert!(outbox.contains("status=Some(\"void\")"), "{outbox}");
    // A decoy's payload is zeros of a real one's length: nothing of what was typed.
    for line in outbox.lines().filter(|l| l.starts_with("sealed_payload=Some")) {
        assert_eq!(
            line.replace("\\0", ""),
            "sealed_payload=Some(\"\")",
            "a decoy kept its payload: {outbox}"
        );
    }
}

#[tokio::test]
async fn flows_throttles_sessions_decoys_and_audit_events_under_attacker_chosen_keys_are_purged() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    for n in 0..5 {
        app.start_recovery(&format!("spray-{n}@example.com")).await;
        app.login(&format!("spray-{n}@example.com"), "not the password at all")
            .await;
    }
    app.login("alice@example.com", PASSWORD).await;

    // Today's rows are kept by the configured retention…
    let kept = latchkey::retention::purge(&app.services).await.expect("purged");
    assert_eq!(
        kept.recovery_flows + kept.login_throttles + kept.audit_events,
        0,
        "{kept:?}"
    );

    // …and go once they are older than it.
    let later = latchkey::time::now_ms() + 30 * 24 * 3_600_000;
    let purged = app.services.store.purge(later, later, later).await.expect("purged");

    assert_eq!(purged.recovery_flows, 5, "{purged:?}");
    assert_eq!(purged.login_throttles, 10, "{purged:?}");
    assert_eq!(purged.sessions, 1, "{purged:?}");
    assert!(purged.outbox_messages >= 5, "{purged:?}");
    assert!(purged.audit_events >= 11, "{purged:?}");
    for table in ["recovery_flow", "login_throttle", "session", "audit_event"] {
        assert_eq!(app.dump_table(table).await, "", "{table} kept rows");
    }
}

#[tokio::test]
async fn polling_readiness_does_not_open_an_smtp_connection_per_request() {
    let app = spawn_app_inner(|_| {}, false).await;
    let before = app.mail.connections();

    let mut polls = tokio::task::JoinSet::new();
    for _ in 0..50 {
        let request = app.client.get(app.url("/health/ready"));
        polls.spawn(async move { request.send().await.expect("sent").status().as_u16() });
    }
    let statuses = polls.join_all().await;

    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let opened = app.mail.connections() - before;
    assert!(opened <= 1, "50 polls opened {opened} SMTP connections");
}

/// A lookup of a login without an account reads the rows of the account at
/// the login's keyed place in the table, so that it costs what a known login
/// costs (`sql::identity_by_login!`); with one account, that is the one.
/// The account it reads must never answer for it: not to a password, not
/// with a code.
#[tokio::test]
async fn an_unknown_login_never_answers_as_the_account_its_lookup_reads() {
    let app = spawn_app().await;
    app.create_full_identity("bob@example.com", Some("bob"), Some("+84912345678"))
        .await;
    // Near bob's logins in every sense: each sorts just before one of them,
    // or after all of them.
    let near = [
        "bob@example.co",
        "bo@example.com",
        "zzz@example.com",
        "boa",
        "zzz",
        "+84912345677",
        "+84999999999",
    ];
    for login in near {
        let response = app.login(login, PASSWORD).await;
        assert_eq!(response.status(), 401, "{login} logged in as bob");
    }
    for email in ["bob@example.co", "bo@example.com", "zzz@example.com"] {
        assert_eq!(app.start_recovery(email).await.status(), 200);
    }
    // bob's own start is queued last: once its code has arrived, the
    // courier has handled the three before it.
    app.started_flow("bob@example.com").await;
    app.code_from_mail("bob@example.com", 1).await;
    assert_eq!(
        app.mail.mails_to("bob@example.com").len(),
        1,
        "a neighbour's start mailed bob"
    );
    assert_eq!(app.login("bob@example.com", PASSWORD).await.status(), 200);
}

/// What the owner of an address does about a code mail they did not ask for.
#[derive(Debug, Clone, Copy)]
enum Reaction {
    /// The mail's "didn't ask for this?" link, and its button.
    Cancels,
    /// The mail's link to go on in another browser, and its button.
    ContinuesByLink,
    /// A recovery of the same account through another login (its username).
    RecoversAnotherWay,
    /// An operator deletes the account.
    IsDeleted,
}

/// SPEC §2.10, as a stranger who starts a recovery for someone else's
/// address and then watches their own cookie: whatever the owner does about
/// the mail that start sent, the stranger's flow keeps answering wrong code
/// after wrong code exactly as the flow of an address without an account
/// does. Before, a cancelled, continued or recovered account's flow answered
/// `recovery_session_expired` or `recovery_session_missing` where the
/// unknown address's answered `invalid_code`.
#[tokio::test]
async fn the_owner_s_reaction_to_a_stranger_s_mail_changes_nothing_the_stranger_sees() {
    let app = spawn_app_with(|s| {
        s.rate_limit.ip_per_minute = 0;
        s.recovery.max_starts_per_hour = 4;
    })
    .await;
    let code_pattern = regex::Regex::new(r"code is: (\d{6})").expect("re");
    for (n, reaction) in [
        Reaction::Cancels,
        Reaction::ContinuesByLink,
        Reaction::RecoversAnotherWay,
        Reaction::IsDeleted,
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("owner{n}@example.com");
        let id = app.create_full_identity(&email, Some(&format!("owner{n}")), None).await;
        let nobody = format!("nobody{n}@example.com");
        // Two starts each: the first flow superseded by the second.
        let superseded = app.started_flow(&email).await;
        let superseded_unknown = app.started_flow(&nobody).await;
        let stranger = app.started_flow(&email).await;
        let unknown = app.started_flow(&nobody).await;

        match reaction {
            Reaction::Cancels => {
                let mail = app.mail.wait_for(&email, 1).await.remove(0);
                let link = crate::report::report_link(&mail);
                let done = crate::report::open_link(&app, reqwest::Method::POST, &link).await;
                assert_eq!(done.status(), 200);
            }
            Reaction::ContinuesByLink => {
                // Two mails, delivered in either order: only the live flow's link continues.
                let mut continued = Vec::new();
                for nth in 1..=2 {
                    let query = crate::messages::continue_link(&app, &email, nth).await;
                    continued.push(crate::messages::post_link(&app, &query).await.status().as_u16());
                }
                continued.sort_unstable();
                assert_eq!(continued, [303, 401]);
            }
            Reaction::RecoversAnotherWay => {
                let token = v2_token(&app, &format!("owner{n}")).await;
                // The courier may deliver the two mails in either order: the
                // code is the one in the mail whose link names this flow.
                let payload = token.split('.').nth(1).expect("claims");
                let claims: Value = serde_json::from_slice(
                    &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload).expect("b64"),
                )
                .expect("json");
                let flow = claims["sub"].as_str().expect("sub").to_owned();
                let mails = app.mail.wait_for(&email, 3).await;
                let mail = mails.iter().find(|m| m.body.contains(&flow)).expect("this flow's mail");
                let code = code_pattern.captures(&mail.body).expect("code")[1].to_owned();
                let body =
                    json!({"token": token, "code": code, "password": NEW_PASSWORD, "repeatPassword": NEW_PASSWORD});
                let reset = app.post_json("/v2/auth/recovery/confirm", &body, None).await;
                assert_eq!(reset.status(), 200, "{:?}", reset.text().await);
            }
            Reaction::IsDeleted => {
                let deleted = app.admin_delete(&format!("/admin/identities/{id}")).await;
                assert!(deleted.status().is_success(), "{reaction:?}");
            }
        }

        for attempt in 1..=7 {
            let known = answer(app.verify(&stranger, "000000").await).await;
            let none = answer(app.verify(&unknown, "000000").await).await;
            assert_eq!(known, none, "{reaction:?}, wrong code {attempt}");
        }
        let known = answer(app.verify(&superseded, "000000").await).await;
        let none = answer(app.verify(&superseded_unknown, "000000").await).await;
        assert_eq!(known, none, "{reaction:?}, the superseded flow");
        // The login's start limit counts the same starts: two more, then none.
        for start in 3..=5 {
            let known = app.start_recovery(&email).await.status();
            let none = app.start_recovery(&nobody).await.status();
            assert_eq!(known, none, "{reaction:?}, start {start}");
        }
    }
}
