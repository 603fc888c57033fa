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
