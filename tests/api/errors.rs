//! Bad input on every route gets a 4xx `AuthError`, never a 5xx.

use serde_json::{Value, json};

use crate::helpers::*;

const POST_ROUTES: [&str; 6] = [
    "/api/auth/recovery/start",
    "/api/auth/recovery/verify",
    "/api/auth/recovery/reset-password",
    "/api/auth/login",
    "/api/auth/session/refresh",
    "/api/auth/logout",
];

async fn assert_auth_error(response: reqwest::Response, status: u16, context: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "{context}");
    let body: Value = response.json().await.unwrap_or_else(|_| panic!("{context}: not JSON"));
    assert!(body["error"].is_string(), "{context}: {body}");
    assert!(body["message"].is_string(), "{context}: {body}");
    assert_eq!(body["status"], status, "{context}: {body}");
    body
}

#[tokio::test]
async fn malformed_json_unknown_fields_wrong_content_types_and_oversized_bodies_are_4xx_auth_errors() {
    let app = spawn_app().await;
    for route in POST_ROUTES {
        let post = || app.client.post(app.url(route));
        let malformed = post()
            .header("content-type", "application/json")
            .body("{\"email\":")
            .send()
            .await
            .expect("sent");
        assert_auth_error(malformed, 400, &format!("{route} malformed")).await;

        let unknown = post().json(&json!({"surprise": true})).send().await.expect("sent");
        assert_auth_error(unknown, 400, &format!("{route} unknown field")).await;

        let wrong_type = post()
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .await
            .expect("sent");
        assert_auth_error(wrong_type, 415, &format!("{route} content type")).await;

        let huge = post()
            .header("content-type", "application/json")
            .body(format!("{{\"email\":\"{}\"}}", "a".repeat(17 * 1024)))
            .send()
            .await
            .expect("sent");
        assert_auth_error(huge, 413, &format!("{route} oversized")).await;

        let not_object = post().json(&json!([1, 2, 3])).send().await.expect("sent");
        assert_auth_error(not_object, 400, &format!("{route} array")).await;
    }
}

#[tokio::test]
async fn invalid_emails_and_codes_are_400_invalid_request() {
    let app = spawn_app().await;
    for email in ["", "not-an-email", "a@b..c", "x@y.z\r\nBcc: e@f.g"] {
        let response = app.start_recovery(email).await;
        assert_auth_error(response, 400, email).await;
    }
    let cookie = app.started_flow("someone@example.com").await;
    for code in ["12345", "abcdef", "1234567"] {
        let body = assert_auth_error(app.verify(&cookie, code).await, 400, code).await;
        assert_eq!(body["error"], "invalid_request");
    }
    // Longer than the documented 320 characters, though trimming its
    // Unicode spaces would leave a valid username (found by schemathesis).
    let padded = format!("LPT1{}", "\u{85}".repeat(317));
    let response = app
        .post_json(
            "/v2/auth/recovery/request",
            &serde_json::json!({ "login": padded }),
            None,
        )
        .await;
    assert_auth_error(response, 400, "padded login").await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_auth_errors() {
    let app = spawn_app().await;
    let missing = app.client.get(app.url("/no/such/route")).send().await.expect("sent");
    assert_auth_error(missing, 404, "unknown route").await;
    let wrong_method = app.client.get(app.url("/api/auth/login")).send().await.expect("sent");
    assert_auth_error(wrong_method, 405, "GET login").await;
}

#[tokio::test]
async fn health_probes_answer() {
    let app = spawn_app().await;
    let alive = app.client.get(app.url("/health/alive")).send().await.expect("sent");
    assert_eq!(alive.status(), 200);
    let ready = app.client.get(app.url("/health/ready")).send().await.expect("sent");
    assert_eq!(ready.status(), 200);
}

/// A request id the client chose is echoed only when it looks like one; a
/// huge, odd or repeated one is replaced by a fresh UUID (and never copied
/// into every log line of its request).
#[tokio::test]
async fn only_a_short_plain_request_id_is_kept_from_the_client() {
    let app = spawn_app().await;
    let echoed = |response: &reqwest::Response| {
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let kept = app
        .client
        .get(app.url("/health/alive"))
        .header("x-request-id", "trace-42_a.b")
        .send()
        .await
        .expect("sent");
    assert_eq!(echoed(&kept), "trace-42_a.b");
    let huge = "a".repeat(65);
    for odd in [huge.as_str(), "two words", "semi;colon", ""] {
        let response = app
            .client
            .get(app.url("/health/alive"))
            .header("x-request-id", odd)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "{odd:?}");
        let id = echoed(&response);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{odd:?} was answered with {id:?}");
    }
    let repeated = app
        .client
        .get(app.url("/api/auth/session"))
        .header("x-request-id", "one")
        .header("x-request-id", "two")
        .send()
        .await
        .expect("sent");
    assert_eq!(repeated.status(), 401);
    assert!(uuid::Uuid::parse_str(&echoed(&repeated)).is_ok());
}
