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

/// A NUL or a byte that is not UTF-8 where an id or a token goes: each is
/// answered as an id or token that names nothing. PostgreSQL refuses a NUL
/// in text, so each once reached it and was answered 500; and axum's own
/// answer to a path that is not UTF-8 is plain text.
#[tokio::test]
async fn a_nul_or_invalid_utf8_in_an_id_or_token_names_nothing() {
    let app = spawn_app().await;
    let id = app.create_identity("alice@example.com", Some(PASSWORD), true).await;

    for token in ["%00", "%FF", "a%00b"] {
        let refresh = app
            .client
            .get(app.url(&format!("/v2/auth/refresh/{token}")))
            .send()
            .await
            .expect("sent");
        assert_auth_error(refresh, 401, &format!("refresh {token}")).await;
    }
    let get = reqwest::Method::GET;
    let delete = reqwest::Method::DELETE;
    for (method, path) in [
        (&get, "%00"),
        (&get, "%FF"),
        (&get, "a%00b"),
        (&delete, "%00"),
        (&delete, "%00/sessions"),
    ] {
        let response = app
            .client
            .request(method.clone(), format!("{}/admin/identities/{path}", app.admin_address))
            .send()
            .await
            .expect("sent");
        assert_auth_error(response, 404, &format!("admin {method} {path}")).await;
    }
    let audit = app
        .client
        .get(format!("{}/admin/audit?identity=%00", app.admin_address))
        .send()
        .await
        .expect("sent");
    assert_eq!(audit.status(), 200, "audit");
    assert_eq!(audit.json::<Value>().await.expect("JSON"), json!([]), "audit");

    // The code mail's link: a flow id with a NUL answers as any dead link.
    let proof = "A".repeat(32);
    let mut answers = Vec::new();
    for flow in ["%00", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"] {
        let response = app
            .client
            .post(app.url(&format!("/ui/recovery/continue?token={flow}.{proof}")))
            .send()
            .await
            .expect("sent");
        answers.push(response.status().as_u16());
    }
    assert!(answers[0] < 500, "{answers:?}");
    assert_eq!(answers[0], answers[1], "{answers:?}");

    // An imported hash with a NUL fails alone; the rest of the batch lands.
    let response = app
        .admin_post(
            "/admin/identities/import",
            &json!({"identities": [
                {"email": "nul@example.com", "password_hash": "$1$a\u{0}$abcdefghijklmnopqrstuv"},
                {"email": "bob@example.com"},
            ]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.expect("JSON");
    assert_eq!(answer["imported"], 1, "{answer}");
    assert_eq!(answer["results"][0]["status"], "failed", "{answer}");
    assert_eq!(
        app.admin_json(&format!("/admin/identities/{id}")).await["id"],
        id.as_str()
    );
}
