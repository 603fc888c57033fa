//! The admin listener: loopback-only without a token, Bearer with one.

use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn operators_create_list_and_delete_identities_and_revoke_sessions() {
    let app = spawn_app().await;
    let admin = |path: &str| format!("{}{}", app.admin_address, path);

    let created = app
        .client
        .post(admin("/admin/identities"))
        .json(&json!({"email": "eve@example.com", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    assert_eq!(created.status(), 201);
    let identity: Value = created.json().await.expect("json");
    let id = identity["id"].as_str().expect("id").to_owned();
    let login = json(app.login("eve@example.com", PASSWORD).await).await;

    let revoked: Value = app
        .client
        .delete(admin(&format!("/admin/identities/{id}/sessions")))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(
        app.session_with_jwt(login["jwt"].as_str().expect("jwt")).await.status(),
        401
    );

    let audit: Value = app
        .client
        .get(admin(&format!("/admin/audit?identity={id}")))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert!(
        audit
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["kind"] == "login.succeeded")
    );

    let deleted = app
        .client
        .delete(admin(&format!("/admin/identities/{id}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(deleted.status(), 204);
    let gone = app
        .client
        .get(admin(&format!("/admin/identities/{id}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(gone.status(), 404);
}

#[tokio::test]
async fn with_a_token_configured_the_admin_api_requires_it() {
    let app = spawn_app_with(|s| s.admin.token = Some("operator-secret-token-0123456789".into())).await;
    let url = format!("{}/admin/identities", app.admin_address);

    let anonymous = app.client.get(&url).send().await.expect("sent");
    assert_eq!(anonymous.status(), 401);
    let wrong = app.client.get(&url).bearer_auth("nope").send().await.expect("sent");
    assert_eq!(wrong.status(), 401);
    let right = app
        .client
        .get(&url)
        .bearer_auth("operator-secret-token-0123456789")
        .send()
        .await
        .expect("sent");
    assert_eq!(right.status(), 200);
}

/// The admin listener's URL for `path`.
fn admin_url(app: &TestApp, path: &str) -> String {
    format!("{}{}", app.admin_address, path)
}

async fn admin_send(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> reqwest::Response {
    let request = app.client.request(method, admin_url(app, path));
    let request = match body {
        Some(body) => request.json(&body),
        None => request,
    };
    request.send().await.expect("sent")
}

async fn audit_kinds(app: &TestApp, id: &str) -> Vec<String> {
    let events = json(admin_send(app, reqwest::Method::GET, &format!("/admin/audit?identity={id}"), None).await).await;
    events
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn operators_update_username_and_roles_and_a_new_password_revokes_every_session() {
    let app = spawn_app().await;
    let id = app.create_identity("gina@example.com", Some(PASSWORD), true).await;
    let before = json(app.login("gina@example.com", PASSWORD).await).await;
    let path = format!("/admin/identities/{id}");

    let renamed = admin_send(
        &app,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"username": "Gina.B", "roles": ["admin", "support"]})),
    )
    .await;
    assert_eq!(renamed.status(), 200);
    let identity = json(renamed).await;
    assert_eq!(identity["traits"]["username"], "gina.b");
    assert_eq!(identity["roles"], json!(["admin", "support"]));
    // Roles and username alone leave sessions alone.
    let jwt = before["jwt"].as_str().expect("jwt");
    assert_eq!(app.session_with_jwt(jwt).await.status(), 200);

    let weak = admin_send(&app, reqwest::Method::PATCH, &path, Some(json!({"password": "gina.b"}))).await;
    assert_eq!(weak.status(), 400);
    let changed = admin_send(
        &app,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(app.session_with_jwt(jwt).await.status(), 401);
    assert_eq!(app.login("gina.b", PASSWORD).await.status(), 401);
    assert_eq!(app.login("gina.b", NEW_PASSWORD).await.status(), 200);

    let removed = json(admin_send(&app, reqwest::Method::PATCH, &path, Some(json!({"username": null}))).await).await;
    assert!(removed["traits"].get("username").is_none(), "{removed}");
    assert_eq!(removed["roles"], json!(["admin", "support"]));

    let other = app.create_identity("hal@example.com", None, true).await;
    app.services
        .store
        .update_identity(
            &other,
            &latchkey::store::IdentityChanges {
                username: Some(Some("taken".into())),
                ..Default::default()
            },
            0,
            &[],
        )
        .await
        .expect("updated");
    let taken = admin_send(&app, reqwest::Method::PATCH, &path, Some(json!({"username": "taken"}))).await;
    assert_eq!(taken.status(), 409);
    let unknown = admin_send(
        &app,
        reqwest::Method::PATCH,
        "/admin/identities/no-such-id",
        Some(json!({"roles": []})),
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let bad_role = admin_send(&app, reqwest::Method::PATCH, &path, Some(json!({"roles": ["a b"]}))).await;
    assert_eq!(bad_role.status(), 400);
    // A login reads this as a phone number, so as a username it could never sign in.
    let phone_shaped = admin_send(
        &app,
        reqwest::Method::PATCH,
        &path,
        Some(json!({"username": "0049-170-1234567"})),
    )
    .await;
    assert_eq!(phone_shaped.status(), 400);
    assert_eq!(json(phone_shaped).await["error"], "invalid_request");

    let kinds = audit_kinds(&app, &id).await;
    for kind in ["identity.updated", "session.revoked_all"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn an_added_address_gets_codes_only_once_an_operator_marks_it_verified() {
    let app = spawn_app().await;
    let id = app.create_identity("ivy@example.com", Some(PASSWORD), true).await;
    let addresses = format!("/admin/identities/{id}/addresses");

    let added = admin_send(
        &app,
        reqwest::Method::POST,
        &addresses,
        Some(json!({"kind": "email", "value": "Ivy.Work@Example.com"})),
    )
    .await;
    assert_eq!(added.status(), 201);
    let identity = json(added).await;
    let work = identity["addresses"]
        .as_array()
        .expect("addresses")
        .iter()
        .find(|a| a["value"] == "ivy.work@example.com")
        .cloned()
        .expect("added address");
    assert_eq!(work["verified"], false);

    // Unverified: the start looks the same but no code is sent.
    assert_eq!(app.start_recovery("ivy.work@example.com").await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(app.mail.mails_to("ivy.work@example.com").is_empty());

    let verified = admin_send(
        &app,
        reqwest::Method::POST,
        &format!("{addresses}/verify"),
        Some(json!({"kind": "email", "value": "ivy.work@example.com"})),
    )
    .await;
    assert_eq!(verified.status(), 200);
    assert_eq!(app.start_recovery("ivy.work@example.com").await.status(), 200);
    app.code_from_mail("ivy.work@example.com", 1).await;

    let duplicate = admin_send(
        &app,
        reqwest::Method::POST,
        &addresses,
        Some(json!({"kind": "email", "value": "ivy@example.com"})),
    )
    .await;
    assert_eq!(duplicate.status(), 409);
    let bad_kind = admin_send(
        &app,
        reqwest::Method::POST,
        &addresses,
        Some(json!({"kind": "fax", "value": "123"})),
    )
    .await;
    assert_eq!(bad_kind.status(), 400);
    let phone = admin_send(
        &app,
        reqwest::Method::POST,
        &addresses,
        Some(json!({"kind": "phone", "value": "+84 90 123 4567", "verified": true})),
    )
    .await;
    assert_eq!(phone.status(), 201);
    let not_hers = admin_send(
        &app,
        reqwest::Method::POST,
        &format!("{addresses}/verify"),
        Some(json!({"kind": "email", "value": "someone@example.com"})),
    )
    .await;
    assert_eq!(not_hers.status(), 404);

    let kinds = audit_kinds(&app, &id).await;
    for kind in ["address.added", "address.verified"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind} missing from {kinds:?}");
    }
}

#[tokio::test]
async fn a_support_code_is_returned_not_sent_and_the_person_finishes_the_flow_with_it() {
    let app = spawn_app().await;
    let id = app.create_identity("jon@example.com", Some(PASSWORD), true).await;
    let path = format!("/admin/identities/{id}/recovery-code");

    let issued = admin_send(&app, reqwest::Method::POST, &path, None).await;
    assert_eq!(issued.status(), 201);
    // A code and a recovery token: no cache between the operator and us keeps them.
    assert_eq!(issued.headers()["cache-control"], "no-store");
    let issued = json(issued).await;
    let code = issued["code"].as_str().expect("code").to_owned();
    assert_eq!(code.len(), 6);
    assert!(
        issued["recovery_link"]
            .as_str()
            .expect("link")
            .contains("/ui/recovery/link?token=")
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        app.mail.mails_to("jon@example.com").is_empty(),
        "a support code is not mailed"
    );

    let wrong = if code == "000000" { "111111" } else { "000000" };
    let confirm = |code: &str| json!({"token": issued["token"], "code": code, "password": NEW_PASSWORD, "repeatPassword": NEW_PASSWORD});
    let refused = app.post_json("/v2/auth/recovery/confirm", &confirm(wrong), None).await;
    assert_eq!(refused.status(), 400);
    let done = app.post_json("/v2/auth/recovery/confirm", &confirm(&code), None).await;
    assert_eq!(done.status(), 200);
    assert_eq!(app.login("jon@example.com", NEW_PASSWORD).await.status(), 200);

    let audit = json(admin_send(&app, reqwest::Method::GET, &format!("/admin/audit?identity={id}"), None).await).await;
    let requested = audit
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["kind"] == "recovery.requested")
        .cloned()
        .expect("audited");
    let detail: Value = serde_json::from_str(requested["detail"].as_str().expect("detail")).expect("JSON detail");
    assert_eq!(detail["channel"], "support");
    assert!(
        !audit.to_string().contains(&code),
        "the code is never in the audit trail"
    );

    let unknown = admin_send(
        &app,
        reqwest::Method::POST,
        "/admin/identities/nobody/recovery-code",
        None,
    )
    .await;
    assert_eq!(unknown.status(), 404);
    let unverified = app.create_identity("kim@example.com", None, false).await;
    let refused = admin_send(
        &app,
        reqwest::Method::POST,
        &format!("/admin/identities/{unverified}/recovery-code"),
        None,
    )
    .await;
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn the_support_link_opens_the_flow_in_the_browser_ui() {
    let app = spawn_app().await;
    let id = app.create_identity("lea@example.com", Some(PASSWORD), true).await;
    let issued = json(
        admin_send(
            &app,
            reqwest::Method::POST,
            &format!("/admin/identities/{id}/recovery-code"),
            None,
        )
        .await,
    )
    .await;
    let link = issued["recovery_link"].as_str().expect("link");
    let query = link.split_once("/ui/recovery/link").expect("ui path").1;

    // Opening the link changes nothing: it names the account and shows one button.
    let page = app
        .client
        .get(app.url(&format!("/ui/recovery/link{query}")))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), 200);
    assert!(page.headers().get(reqwest::header::SET_COOKIE).is_none());
    assert!(page.text().await.expect("html").contains("l•••a@example.com"));
    let opened = app
        .client
        .post(app.url(&format!("/ui/recovery/link{query}")))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("sent");
    assert_eq!(opened.status(), 303);
    let cookie = opened
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .expect("flow cookie")
        .to_owned();
    let verified = app
        .client
        .post(app.url("/ui/recovery/verify"))
        .header(reqwest::header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .form(&[("code", issued["code"].as_str().expect("code"))])
        .send()
        .await
        .expect("sent");
    assert_eq!(verified.status(), 303);
    assert!(
        verified.headers()[reqwest::header::LOCATION]
            .to_str()
            .expect("location")
            .starts_with("/ui/recovery/password")
    );

    let forged = app
        .client
        .get(app.url("/ui/recovery/link?token=not-a-token"))
        .send()
        .await
        .expect("sent");
    assert_eq!(forged.status(), 401);
}
