//! Importing identities with the hashes their old system made (SPEC §5.5),
//! through the admin API: every format logs in and becomes Argon2id, bad
//! items fail alone with their reason, existing identities are skipped, and
//! a burst of the same import writes each identity once.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::*;

/// (hash, its password, algorithm): made by the crates latchkey depends on
/// at run time, or fixed vectors from OpenSSL, Python's hashlib in Django's,
/// passlib's and OpenLDAP's layouts, Ory Kratos's tests and Firebase's README.
fn vectors() -> Vec<(String, &'static str, &'static str)> {
    const PW: &str = "correct horse battery";
    let argon2 = |algorithm, memory_kib, iterations| {
        use argon2::password_hash::PasswordHasher as _;
        let hasher = argon2::Argon2::new(
            algorithm,
            argon2::Version::V0x13,
            argon2::Params::new(memory_kib, iterations, 1, None).expect("params"),
        );
        hasher
            .hash_password_with_salt(PW.as_bytes(), b"0123456789abcdef")
            .map(|h: argon2::password_hash::phc::PasswordHash| h.to_string())
            .expect("argon2")
    };
    let sha512 = {
        use sha_crypt::PasswordHasher as _;
        sha_crypt::ShaCrypt::SHA512
            .hash_password_with_salt(PW.as_bytes(), b"0123456789ab")
            .map(|h| h.to_string())
            .expect("sha512-crypt")
    };
    vec![
        (bcrypt::hash(PW, 6).expect("bcrypt"), PW, "bcrypt"),
        (bcrypt::hash(PW, 5).expect("bcrypt").replacen("$2b$", "$2y$", 1), PW, "bcrypt"),
        (bcrypt::hash(PW, 4).expect("bcrypt").replacen("$2b$", "$2a$", 1), PW, "bcrypt"),
        (argon2(argon2::Algorithm::Argon2i, 8192, 2), PW, "argon2i"),
        (argon2(argon2::Algorithm::Argon2d, 8192, 2), PW, "argon2d"),
        // latchkey's own algorithm under other parameters (another system's, or older ones).
        (argon2(argon2::Algorithm::Argon2id, 8192, 1), PW, "argon2id"),
        (sha512, PW, "sha512-crypt"),
        ("$1$saltsalt$UevX3RQ4rPNbqFqf8dVFn.".into(), PW, "md5-crypt"),
        ("$5$saltsaltsalt$9ZURjmMOadyQOcorTsuSvXoPv7wEQSJbPU3LXY8gsN6".into(), PW, "sha256-crypt"),
        ("{SSHA}/3PlN3UJp3C48c9ALKPgGvqO1T8BAgMEBQYHCA==".into(), PW, "ssha"),
        (
            "{SSHA512}6X76d7T73BEH/Jvr7ye8RpGYuPHvQVs3rbolH4ihvyTaJisrXceVtVDKTUVhAEm2AoQlBhcx8ZVsbCGp/H8uugECAwQFBgcI"
                .into(),
            PW,
            "ssha512",
        ),
        (
            "pbkdf2_sha256$260000$seasaltseasalt12$yfkhlWO2JkHw4RRfkKaTe7wfG0DCQkP7tjwHyzyomf0=".into(),
            PW,
            "pbkdf2-sha256",
        ),
        (
            "$pbkdf2-sha512$25000$c2FsdHlzYWx0eXNhbHQhIQ$W75kKVaPAv/El7B0.PlpPHfVYxDGn5.MON9bsTp37A51.RK6L1NnQgrCgXI5lpMf.tAoS4d95Bu4alms.WuRxg".into(),
            PW,
            "pbkdf2-sha512",
        ),
        (
            "$pbkdf2-sha256$i=100000,l=32$1jP+5Zxpxgtee/iPxGgOz0RfE9/KJuDElP1ley4VxXc$QJxzfvdbHYBpydCbHoFg3GJEqMFULwskiuqiJctoYpI".into(),
            "test",
            "pbkdf2-sha256",
        ),
        (
            "$scrypt$ln=14,r=8,p=1$c2FsdHlzYWx0eXNhbHQhIQ$SHSNlN7PVAETJMz6LEDsrUZJ107RnrHoaZIRf+4fBGI".into(),
            PW,
            "scrypt",
        ),
        (
            "$firescrypt$ln=14,r=8,p=1$42xEC+ixf3L2lw==$lSrfV15cpx95/sZS2W9c9Kp6i/LVgQNDNC/qzrCnh1SAyZvqmZqAjTdn3aoItz+VHjoZilo78198JAdRuid5lQ==$Bw==$jxspr8Ki0RYycVU8zykbdLGjFQ3McFUH0uiiTvC8pVMXAn210wjLNmdZJzxUECKbm0QsEmYUSDzZvpjeJ9WmXA==".into(),
            "user1password",
            "firebase-scrypt",
        ),
    ]
}

async fn import(app: &TestApp, identities: Value) -> Value {
    let response = app
        .admin_post("/admin/identities/import", &json!({ "identities": identities }))
        .await;
    assert_eq!(response.status(), 200);
    json(response).await
}

async fn algorithm_of(app: &TestApp, id: &str) -> Value {
    app.admin_json(&format!("/admin/identities/{id}")).await["password_algorithm"].clone()
}

#[tokio::test]
async fn every_format_logs_in_once_and_is_then_stored_as_argon2id() {
    let app = spawn_app().await;
    let vectors = vectors();
    let items: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(n, (hash, _, _))| json!({"email": format!("user{n}@example.com"), "password_hash": hash}))
        .collect();
    let answer = import(&app, Value::Array(items)).await;
    assert_eq!(answer["imported"], vectors.len(), "{answer}");
    assert_eq!(answer["algorithms"]["bcrypt"], 3);
    for (n, (_, password, algorithm)) in vectors.iter().enumerate() {
        let login = format!("user{n}@example.com");
        let id = answer["results"][n]["id"].as_str().expect("id").to_owned();
        assert_eq!(answer["results"][n]["algorithm"], *algorithm);
        assert_eq!(algorithm_of(&app, &id).await, *algorithm);
        let wrong = app.login(&login, &format!("{password}!")).await;
        assert_eq!(wrong.status(), 401, "{algorithm}: a wrong password");
        assert_eq!(algorithm_of(&app, &id).await, *algorithm, "a failure changes nothing");
        let right = app.login(&login, password).await;
        assert_eq!(right.status(), 200, "{algorithm}: the right password");
        assert_eq!(
            algorithm_of(&app, &id).await,
            "argon2id",
            "{algorithm} was not replaced"
        );
        let again = app.login(&login, password).await;
        assert_eq!(
            again.status(),
            200,
            "{algorithm}: the right password against the new hash"
        );
        assert_eq!(app.login(&login, &format!("{password}!")).await.status(), 401);
    }
    // Every one now under the current parameters, the other Argon2id's too.
    let current = "select count(*) from identity where password_hash like '$argon2id$v=19$m=19456,t=2,p=1$%'";
    assert_eq!(count_rows(&app.database_url, current).await, vectors.len() as i64);
    let metrics = app.admin_text("/metrics").await;
    assert!(
        metrics.contains("latchkey_password_hashes{algorithm=\"bcrypt\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn bad_items_fail_alone_with_their_reason_and_hostile_costs_never_run() {
    let app = spawn_app().await;
    let salt_and_hash = "o6hx.Wog/wvFSkT/Bp/6DOxCtLRTDj7lm9on9suF/WaCGNVHbkfL6";
    let began = Instant::now();
    let answer = import(
        &app,
        json!([
            {"email": "good@example.com", "email_verified": true},
            {"email": "bcrypt31@example.com", "password_hash": format!("$2b$31${salt_and_hash}")},
            {"email": "scrypt@example.com", "password_hash": "$scrypt$ln=31,r=8,p=1$c2FsdA$aGFzaA"},
            {"email": "plain@example.com", "password_hash": "hunter2"},
            {"email": "typo@example.com", "pasword_hash": "x"},
            {"email": "not an address"},
            {"username": "x", "id": "not-a-uuid"},
            {"id": "00000000-0000-0000-0000-000000000000", "username": "placeholder"},
            {"created_at": "yesterday", "username": "someone"},
            {},
            42,
            {"email": "GOOD@example.com"},
        ]),
    )
    .await;
    assert!(began.elapsed() < Duration::from_secs(10), "a hostile cost ran");
    assert_eq!(answer["imported"], 1, "{answer}");
    assert_eq!(answer["skipped"], 1);
    assert_eq!(answer["failed"], 10);
    let results = answer["results"].as_array().expect("results");
    assert_eq!(results.len(), 12);
    for (n, result) in results.iter().enumerate() {
        assert_eq!(result["index"], n);
    }
    let reason = |n: usize| results[n]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(reason(1).contains("cost 31"), "{}", reason(1));
    assert!(reason(2).contains("ln=31"), "{}", reason(2));
    assert!(reason(3).contains("no supported format"), "{}", reason(3));
    assert!(reason(4).contains("pasword_hash"), "{}", reason(4));
    assert!(reason(5).contains("email"), "{}", reason(5));
    assert!(reason(6).contains("UUID"), "{}", reason(6));
    assert!(reason(7).contains("UUID"), "{}", reason(7));
    assert!(reason(8).contains("created_at"), "{}", reason(8));
    assert!(reason(9).contains("needs an email"), "{}", reason(9));
    assert_eq!(results[11]["status"], "skipped", "the same address in another case");
    // Nothing of a failed item was written.
    let identities = app.dump_table("address").await;
    assert!(!identities.contains("bcrypt31@example.com") && !identities.contains("plain@example.com"));
    assert!(identities.contains("good@example.com"));
}

#[tokio::test]
async fn existing_identities_are_skipped_and_named_a_dry_run_writes_nothing() {
    let app = spawn_app().await;
    let existing = app
        .create_full_identity("taken@example.com", Some("taken"), Some("+84901234567"))
        .await;
    let dry = app
        .admin_post(
            "/admin/identities/import",
            &json!({"dry_run": true, "identities": [{"email": "new@example.com"}]}),
        )
        .await;
    let dry = json(dry).await;
    assert_eq!(
        (dry["dry_run"].clone(), dry["imported"].clone()),
        (json!(true), json!(1))
    );
    assert!(!app.dump_table("address").await.contains("new@example.com"));

    let answer = import(
        &app,
        json!([
            {"id": existing, "email": "other@example.com"},
            {"email": "Taken@Example.com"},
            {"username": "taken"},
            {"phone": "+84901234567"},
            {"email": "fresh@example.com", "username": "fresh", "created_at": "2020-02-29T12:00:00Z"},
        ]),
    )
    .await;
    let reasons: Vec<&str> = answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["reason"].as_str().unwrap_or("imported"))
        .collect();
    assert_eq!(
        reasons,
        [
            "an identity with this id exists",
            "an identity with this email exists",
            "an identity with this username exists",
            "an identity with this phone exists",
            "imported"
        ]
    );
    let fresh = answer["results"][4]["id"].as_str().expect("id");
    let shown = app.admin_json(&format!("/admin/identities/{fresh}")).await;
    assert_eq!(shown["created_at"], "2020-02-29T12:00:00Z");
    assert_eq!(
        shown["addresses"][0]["verified"], false,
        "addresses are unverified unless the file says so"
    );
    assert_eq!(shown["has_password"], false);
}

#[tokio::test]
async fn more_than_a_thousand_items_or_a_malformed_body_are_refused_whole() {
    let app = spawn_app().await;
    let many: Vec<Value> = (0..1001)
        .map(|n| json!({"email": format!("u{n}@example.com")}))
        .collect();
    let refused = app
        .admin_post("/admin/identities/import", &json!({ "identities": many }))
        .await;
    assert_eq!(refused.status(), 400);
    let refused = json(refused).await;
    assert_eq!(refused["error"], "invalid_request");
    assert!(
        refused["message"].as_str().unwrap_or_default().contains("1000"),
        "{refused}"
    );
    for body in [
        json!([{"email": "a@example.com"}]),
        json!({"identities": {}}),
        json!({"identities": [], "x": 1}),
    ] {
        let response = app.admin_post("/admin/identities/import", &body).await;
        assert!(response.status().is_client_error(), "{body}");
    }
    assert!(!app.dump_table("address").await.contains("u0@example.com"));
}

#[tokio::test]
async fn thirty_concurrent_imports_of_one_file_write_each_identity_once() {
    let app = spawn_app().await;
    let first = json!({"email": "race@example.com", "password_hash": "$1$saltsalt$UevX3RQ4rPNbqFqf8dVFn."});
    let second = json!({"username": "racer"});
    let mut burst = tokio::task::JoinSet::new();
    for n in 0..30 {
        // Half of them in the other order: on PostgreSQL two such batches can deadlock.
        let identities = if n % 2 == 0 {
            json!([first, second])
        } else {
            json!([second, first])
        };
        let (client, url, body) = (
            app.client.clone(),
            format!("{}/admin/identities/import", app.admin_address),
            json!({ "identities": identities }),
        );
        burst.spawn(async move {
            let response = client.post(url).json(&body).send().await.expect("sent");
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.expect("JSON")
        });
    }
    let answers = burst.join_all().await;
    let imported: u64 = answers.iter().map(|a| a["imported"].as_u64().unwrap_or(0)).sum();
    let skipped: u64 = answers.iter().map(|a| a["skipped"].as_u64().unwrap_or(0)).sum();
    assert_eq!((imported, skipped), (2, 58), "{answers:?}");
    let listed = app.admin_json("/admin/identities").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn an_imported_account_recovers_and_its_old_hash_stops_working() {
    let app = spawn_app().await;
    let answer = import(
        &app,
        json!([{"email": "legacy@example.com", "email_verified": true,
                 "password_hash": "$5$saltsaltsalt$9ZURjmMOadyQOcorTsuSvXoPv7wEQSJbPU3LXY8gsN6"}]),
    )
    .await;
    let id = answer["results"][0]["id"].as_str().expect("id").to_owned();
    let cookie = app.verified_flow("legacy@example.com").await;
    assert_eq!(app.reset(&cookie, NEW_PASSWORD).await.status(), 200);
    assert_eq!(algorithm_of(&app, &id).await, "argon2id");
    assert_eq!(
        app.login("legacy@example.com", "correct horse battery").await.status(),
        401
    );
    assert_eq!(app.login("legacy@example.com", NEW_PASSWORD).await.status(), 200);
}
