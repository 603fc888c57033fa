//! `/metrics` and the latency API.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn metrics_are_served_on_the_admin_listener_in_the_latchkey_namespace() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    app.start_recovery("alice@example.com").await;
    app.login("alice@example.com", PASSWORD).await;

    let response = app
        .client
        .get(format!("{}/metrics", app.admin_address))
        .send()
        .await
        .expect("sent");

    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("text");
    for needle in [
        "latchkey_http_requests_total",
        "route=\"/api/auth/recovery/start\"",
        "latchkey_http_request_duration_seconds_bucket",
        "latchkey_recovery_flows_started_total",
        "latchkey_outbox_depth",
        "latchkey_argon2_queue_wait_seconds",
    ] {
        assert!(text.contains(needle), "{needle} missing from /metrics");
    }
    let foreign: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty() && !l.starts_with("latchkey_"))
        .collect();
    assert!(foreign.is_empty(), "metrics outside the namespace: {foreign:?}");
}

/// Label values come from the router, never from the client: a made-up
/// method would otherwise add a series to the process's metrics (and to
/// its memory) that is never removed, one per method a client invents.
#[tokio::test]
async fn a_client_cannot_mint_metric_series_with_made_up_methods() {
    let app = spawn_app().await;
    for n in 0..20 {
        let method = reqwest::Method::from_bytes(format!("MINTED{n}").as_bytes()).expect("method");
        for path in ["/api/auth/login", "/no/such/page"] {
            let response = app
                .client
                .request(method.clone(), app.url(path))
                .send()
                .await
                .expect("sent");
            assert!(
                response.status().is_client_error(),
                "{method} {path}: {}",
                response.status()
            );
        }
    }
    let text = app
        .client
        .get(format!("{}/metrics", app.admin_address))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(!text.contains("MINTED"), "client methods became metric labels");
    assert!(text.contains("method=\"OTHER\""), "other methods are counted together");
    let report = app.services.latency.report(0, u64::MAX, u64::MAX);
    assert!(
        report.iter().all(|r| !r.route.contains("MINTED")),
        "client methods became latency routes"
    );
}

#[tokio::test]
async fn the_public_listener_does_not_serve_the_metrics_that_would_tell_which_addresses_have_accounts() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let before = app.client.get(app.url("/metrics")).send().await.expect("sent");
    app.start_recovery("alice@example.com").await;
    let after = app.client.get(app.url("/metrics")).send().await.expect("sent");

    assert_eq!(before.status(), 404);
    assert_eq!(after.status(), 404);
    assert_eq!(json(after).await["error"], "not_found");
}

#[tokio::test]
async fn the_latency_api_is_for_admins_and_reports_percentiles_per_route() {
    let app = spawn_app().await;
    let new = latchkey::admin::parse_new_identity(
        "ops@example.com",
        None,
        None,
        vec!["admin".into()],
        true,
        Some(secrecy::SecretString::from(PASSWORD.to_owned())),
    )
    .expect("valid");
    latchkey::identity::create(&app.services, new).await.expect("created");
    app.create_identity("user@example.com", Some(PASSWORD), true).await;
    for _ in 0..5 {
        app.start_recovery("someone@example.com").await;
    }
    let admin = json(app.login("ops@example.com", PASSWORD).await).await;
    let user = json(app.login("user@example.com", PASSWORD).await).await;
    let get = |jwt: &Value, query: &str| {
        app.client
            .get(app.url(&format!("/api/v1/util/latency/metrics{query}")))
            .bearer_auth(jwt.as_str().expect("jwt"))
            .send()
    };

    assert_eq!(get(&user["jwt"], "").await.expect("sent").status(), 403);
    let anonymous = app
        .client
        .get(app.url("/api/v1/util/latency/metrics"))
        .send()
        .await
        .expect("sent");
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        get(&admin["jwt"], "?from_ns=10&to_ns=5").await.expect("sent").status(),
        400
    );

    let report = json(get(&admin["jwt"], "?bucket_ns=1000000000").await.expect("sent")).await;
    let routes = report["routes"].as_array().expect("routes");
    let start = routes
        .iter()
        .find(|r| r["route"] == "POST /api/auth/recovery/start")
        .expect("start route reported");
    assert_eq!(start["count"], 5);
    for key in ["min_ns", "max_ns", "avg_ns", "p50_ns", "p95_ns", "p99_ns"] {
        assert!(start[key].as_u64().is_some_and(|v| v > 0), "{key}: {start}");
    }
    assert!(!start["series"].as_array().expect("series").is_empty());
}

#[tokio::test]
async fn the_openapi_document_is_served_from_the_code_in_english_and_vietnamese() {
    let app = spawn_app().await;
    let get = |path: &str| app.client.get(app.url(path)).send();

    let en: Value = get("/openapi.en.json").await.expect("sent").json().await.expect("json");
    let default: Value = get("/openapi.json").await.expect("sent").json().await.expect("json");
    let vi: Value = get("/openapi.vi.json").await.expect("sent").json().await.expect("json");

    assert_eq!(en, default);
    for path in [
        "/api/auth/recovery/start",
        "/api/auth/recovery/verify",
        "/api/auth/recovery/reset-password",
        "/api/auth/login",
        "/v2/auth/recovery/request",
        "/v2/auth/recovery/confirm",
        "/v2/auth/refresh/{refreshToken}",
        "/api/v1/util/latency/metrics",
    ] {
        assert!(en["paths"].get(path).is_some(), "{path} missing");
    }
    let schemas = &en["components"]["schemas"];
    let auth_error = &schemas["AuthError"];
    assert_eq!(
        auth_error["required"],
        serde_json::json!(["error", "message", "status"])
    );
    assert_eq!(auth_error["properties"]["status"]["format"], "int32");
    let login = &schemas["AuthLoginResponse"];
    for field in ["sessionToken", "jwt", "session", "identity", "tokenizedSession"] {
        assert!(login["properties"].get(field).is_some(), "{field}");
    }
    assert!(schemas["AuthRecoveryStartRequest"]["properties"].get("email").is_some());
    assert_eq!(
        en["paths"]["/api/auth/recovery/start"]["post"]["summary"],
        "Start password recovery"
    );
    assert_eq!(
        vi["paths"]["/api/auth/recovery/start"]["post"]["summary"],
        "Bắt đầu khôi phục mật khẩu"
    );
    assert_eq!(
        vi["components"]["schemas"]["AuthError"]["description"],
        "Lược đồ AuthError."
    );
}
