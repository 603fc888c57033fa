//! Login, sessions, refresh, logout, and the JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn a_login_jwt_verifies_against_the_published_jwks() {
    let app = spawn_app().await;
    let identity_id = app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let login = json(app.login("alice@example.com", PASSWORD).await).await;
    let jwt = login["jwt"].as_str().expect("jwt");

    let jwks = json(
        app.client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("sent"),
    )
    .await;

    // Verified independently of the server's code: ring and the JWKS alone.
    let segment = |n: usize| {
        URL_SAFE_NO_PAD
            .decode(jwt.split('.').nth(n).expect("segment"))
            .expect("base64")
    };
    let header: Value = serde_json::from_slice(&segment(0)).expect("header");
    assert_eq!(header["alg"], "EdDSA");
    let kid = header["kid"].as_str().expect("kid");
    let keys = jwks["keys"].as_array().expect("keys");
    let key = keys.iter().find(|k| k["kid"] == kid).expect("kid published");
    assert_eq!(key["kty"], "OKP");
    assert!(
        key.get("d").is_none() && key.get("k").is_none(),
        "private or symmetric material published"
    );
    let public = URL_SAFE_NO_PAD.decode(key["x"].as_str().expect("x")).expect("x");
    let signing_input = jwt.rsplit_once('.').expect("signed").0;
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, public)
        .verify(signing_input.as_bytes(), &segment(2))
        .expect("the signature verifies against the JWKS");
    let claims: Value = serde_json::from_slice(&segment(1)).expect("claims");
    assert_eq!(claims["iss"], "http://127.0.0.1:8080");
    // The audience defaults to public_url: a downstream API checks it.
    assert_eq!(claims["aud"], "http://127.0.0.1:8080");
    assert_eq!(claims["sub"], identity_id.as_str());
    assert_eq!(claims["sid"], login["session"]["id"]);
}

#[tokio::test]
async fn the_session_is_readable_with_the_jwt_or_the_session_token() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let login = json(app.login("alice@example.com", PASSWORD).await).await;

    let by_jwt = app.session_with_jwt(login["jwt"].as_str().expect("jwt")).await;
    let by_token = app
        .client
        .get(app.url("/api/auth/session"))
        .header("x-session-token", login["sessionToken"].as_str().expect("token"))
        .send()
        .await
        .expect("sent");

    assert_eq!(by_jwt.status(), 200);
    assert_eq!(by_token.status(), 200);
    let (a, b) = (json(by_jwt).await, json(by_token).await);
    assert_eq!(a, b);
    assert_eq!(a["id"], login["session"]["id"]);
    assert_eq!(a["active"], true);
}

#[tokio::test]
async fn a_session_without_credentials_or_with_a_forged_jwt_is_unauthorized() {
    let app = spawn_app().await;
    let missing = app.client.get(app.url("/api/auth/session")).send().await.expect("sent");
    assert_eq!(missing.status(), 401);
    assert_eq!(json(missing).await["error"], "unauthorized");
    let forged = app.session_with_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.").await;
    assert_eq!(forged.status(), 401);
}

/// A refused session check answers in the asker's language, and says the
/// same for a revoked session token, one never issued, a revoked session's
/// JWT and no credential at all.
#[tokio::test]
async fn a_refused_session_check_answers_alike_in_the_language_asked_for() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let login = json(app.login("alice@example.com", PASSWORD).await).await;
    let revoked = login["sessionToken"].as_str().expect("token").to_owned();
    let jwt = login["jwt"].as_str().expect("jwt").to_owned();
    let logout = app
        .post_json("/api/auth/logout", &json!({"sessionToken": revoked}), None)
        .await;
    assert_eq!(logout.status(), 204);
    let never_issued = format!("{}x", &revoked[..revoked.len() - 1]);
    let check = |header: Option<(&'static str, String)>| {
        let mut request = app
            .client
            .get(app.url("/api/auth/session"))
            .header("accept-language", "vi");
        if let Some((name, value)) = header {
            request = request.header(name, value);
        }
        async move {
            let response = request.send().await.expect("sent");
            (response.status(), json(response).await)
        }
    };
    let answers = [
        check(Some(("x-session-token", revoked.clone()))).await,
        check(Some(("x-session-token", never_issued))).await,
        check(Some(("authorization", format!("Bearer {jwt}")))).await,
        check(None).await,
    ];
    for (status, body) in &answers {
        assert_eq!(*status, 401, "{body}");
        assert_eq!(body["error"], "unauthorized", "{body}");
        assert!(
            body["message"]
                .as_str()
                .expect("message")
                .contains("Vui lòng đăng nhập"),
            "{body}"
        );
        assert_eq!(body["message"], answers[0].1["message"]);
    }
}

#[tokio::test]
async fn refresh_returns_a_new_jwt_for_the_same_session() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let login = json(app.login("alice@example.com", PASSWORD).await).await;

    let response = app
        .post_json(
            "/api/auth/session/refresh",
            &json!({"sessionToken": login["sessionToken"]}),
            None,
        )
        .await;

    assert_eq!(response.status(), 200);
    let refreshed = json(response).await;
    assert_eq!(refreshed["session"]["id"], login["session"]["id"]);
    assert_ne!(refreshed["jwt"], login["jwt"]);
    assert_eq!(refreshed["tokenizedSession"]["tokenized"], refreshed["jwt"]);
    let jwt = refreshed["jwt"].as_str().expect("jwt");
    assert_eq!(app.session_with_jwt(jwt).await.status(), 200);
}

#[tokio::test]
async fn logout_revokes_the_session_and_its_jwt_at_once() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let login = json(app.login("alice@example.com", PASSWORD).await).await;
    let token = json!({"sessionToken": login["sessionToken"]});

    let response = app.post_json("/api/auth/logout", &token, None).await;

    assert_eq!(response.status(), 204);
    assert_eq!(
        app.session_with_jwt(login["jwt"].as_str().expect("jwt")).await.status(),
        401
    );
    assert_eq!(
        app.post_json("/api/auth/session/refresh", &token, None).await.status(),
        401
    );
    assert_eq!(app.post_json("/api/auth/logout", &token, None).await.status(), 401);
}

#[tokio::test]
async fn login_failures_answer_identically_for_an_unknown_account_and_a_wrong_password() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    app.create_identity("invited@example.com", None, true).await;

    let mut answers = Vec::new();
    for (login, password) in [
        ("alice@example.com", "wrong password entirely"),
        ("nobody@example.com", "wrong password entirely"),
        ("invited@example.com", "wrong password entirely"),
    ] {
        let response = app.login(login, password).await;
        let status = response.status();
        let mut names: Vec<String> = response.headers().keys().map(|k| k.to_string()).collect();
        names.sort();
        answers.push((status, names, response.bytes().await.expect("body")));
    }

    assert_eq!(answers[0].0, 401);
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0], answers[2]);
    let body: Value = serde_json::from_slice(&answers[0].2).expect("json");
    assert_eq!(body["error"], "invalid_credentials");
}

#[tokio::test]
async fn login_accepts_the_username_as_identifier() {
    let app = spawn_app().await;
    let new = latchkey::admin::parse_new_identity(
        "bob@example.com",
        Some("Bob.Builder"),
        None,
        vec![],
        true,
        Some(secrecy::SecretString::from(PASSWORD.to_owned())),
    )
    .expect("valid");
    latchkey::identity::create(&app.services, new).await.expect("created");

    assert_eq!(app.login("bob.builder", PASSWORD).await.status(), 200);
    assert_eq!(app.login("BOB@example.com", PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn after_a_key_rotation_tokens_signed_by_either_key_verify_during_the_overlap() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let before = json(app.login("alice@example.com", PASSWORD).await).await;
    let old_kid = kid_of(before["jwt"].as_str().expect("jwt"));

    let new_kid = latchkey::session::KeyRing::rotate(
        &app.services.store,
        &app.services.secret,
        std::time::Duration::from_secs(600),
    )
    .await
    .expect("rotated");
    app.services
        .keys
        .reload(&app.services.store, &app.services.secret)
        .await
        .expect("reloaded");
    let after = json(app.login("alice@example.com", PASSWORD).await).await;

    let kid = kid_of(after["jwt"].as_str().expect("jwt"));
    assert_eq!(kid, new_kid);
    assert_ne!(kid, old_kid);
    for token in [&before["jwt"], &after["jwt"]] {
        assert_eq!(app.session_with_jwt(token.as_str().expect("jwt")).await.status(), 200);
    }
    let jwks = json(
        app.client
            .get(app.url("/.well-known/jwks.json"))
            .send()
            .await
            .expect("sent"),
    )
    .await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );
}

/// The `kid` in a JWT's header.
fn kid_of(jwt: &str) -> String {
    let header = URL_SAFE_NO_PAD
        .decode(jwt.split('.').next().expect("header"))
        .expect("base64");
    let header: Value = serde_json::from_slice(&header).expect("json");
    header["kid"].as_str().expect("kid").to_owned()
}

/// Instances starting together on a fresh database each create a signing
/// key. None may retire another's: each key one of them signs with must
/// stay published, and after a reload they all sign with the same one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_creating_the_first_key_together_keep_each_other_s_keys() {
    let app = spawn_app().await;
    app.execute_sql("delete from signing_key").await;
    let (store, secret) = (&app.services.store, &app.services.secret);
    let issuer = "https://auth.example.com";
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(8));
    let mut starting = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (store, secret, start) = (store.clone(), secret.clone(), start.clone());
        starting.spawn(async move {
            start.wait().await;
            latchkey::session::KeyRing::load_or_create(&store, &secret, issuer).await
        });
    }
    let rings: Vec<_> = starting
        .join_all()
        .await
        .into_iter()
        .map(|ring| ring.expect("keys"))
        .collect();
    let claims = json!({"iss": issuer, "sub": "s", "exp": 4_000_000_000_i64});
    let signed: Vec<String> = rings.iter().map(|r| r.sign(&claims).expect("signed")).collect();

    for ring in &rings {
        ring.reload(store, secret).await.expect("reloaded");
    }
    for ring in &rings {
        for token in &signed {
            assert!(
                ring.verify::<Value>(token, None).is_some(),
                "a token signed at start no longer verifies"
            );
        }
    }
    let kids: std::collections::HashSet<String> = rings
        .iter()
        .map(|r| kid_of(&r.sign(&claims).expect("signed")))
        .collect();
    assert_eq!(kids.len(), 1, "the instances sign with different keys: {kids:?}");
}

/// A changed server secret (perhaps because the old one leaked) ends every
/// key sealed under the old one at once, a key already retired by a
/// rotation and still published included.
#[tokio::test]
async fn keys_sealed_under_a_replaced_secret_stop_verifying_at_once() {
    let app = spawn_app().await;
    let (store, old_secret) = (&app.services.store, &app.services.secret);
    let issuer = "https://auth.example.com";
    let old = latchkey::session::KeyRing::load_or_create(store, old_secret, issuer)
        .await
        .expect("keys");
    let claims = json!({"iss": issuer, "sub": "s", "exp": 4_000_000_000_i64});
    let by_retired = old.sign(&claims).expect("signed");
    latchkey::session::KeyRing::rotate(store, old_secret, std::time::Duration::from_secs(3600))
        .await
        .expect("rotated");
    old.reload(store, old_secret).await.expect("reloaded");
    let by_active = old.sign(&claims).expect("signed");
    assert_ne!(kid_of(&by_retired), kid_of(&by_active));

    let new_secret = latchkey::secrets::ServerSecret::new(&latchkey::secrets::ServerSecret::generate_material());
    let new = latchkey::session::KeyRing::load_or_create(store, &new_secret, issuer)
        .await
        .expect("keys");

    for token in [&by_retired, &by_active] {
        assert!(
            new.verify::<Value>(token, None).is_none(),
            "a key sealed under the old secret still verifies"
        );
    }
    assert!(new.verify::<Value>(&new.sign(&claims).expect("signed"), None).is_some());
}
