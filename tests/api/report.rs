//! "This wasn't me" (SPEC §5.3), as the owner and as an attacker: the
//! links in a code mail and in a notice, what their `GET`, `HEAD` and
//! `POST` do, and what a frozen or paused account then answers compared
//! with an account that does not exist.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::sms_sink::SmsSink;

/// The `/ui/report?…` path and query in a mail's text, checked to be the
/// same link in its HTML part.
pub fn report_link(mail: &crate::smtp_sink::Mail) -> String {
    let pattern = regex::Regex::new(r"https?://\S+(/ui/report\?token=[0-9a-z.-]+&lang=[a-z]+)").expect("re");
    let captures = pattern.captures(&mail.body).expect("a report link in the text");
    let html = mail.html_with_plain_links();
    assert!(html.contains(&captures[0]), "not the same link in the HTML: {html}");
    captures[1].to_owned()
}

pub async fn open_link(app: &TestApp, method: reqwest::Method, path: &str) -> reqwest::Response {
    app.client
        .request(method.clone(), app.url(path))
        .header(
            "sec-fetch-site",
            if method == reqwest::Method::POST {
                "same-origin"
            } else {
                "none"
            },
        )
        .send()
        .await
        .expect("sent")
}

/// Status and body of a start, for comparing accounts.
async fn start_answer(app: &TestApp, email: &str) -> (u16, Value) {
    let response = app.start_recovery(email).await;
    (response.status().as_u16(), json(response).await)
}

async fn login_answer(app: &TestApp, login: &str) -> (u16, Value) {
    let response = app.login(login, NEW_PASSWORD).await;
    (response.status().as_u16(), json(response).await)
}

#[tokio::test]
async fn didnt_ask_for_this_cancels_the_live_flows_and_pauses_new_codes_silently() {
    let app = spawn_app().await;
    app.create_identity("ida@example.com", Some(PASSWORD), true).await;
    let cookie = app.started_flow("ida@example.com").await;
    let mail = app.mail.wait_for("ida@example.com", 1).await.remove(0);
    let link = report_link(&mail);
    let code = app.code_from_mail("ida@example.com", 1).await;

    let flows = app.dump_table("recovery_flow").await;
    for method in [reqwest::Method::HEAD, reqwest::Method::GET] {
        assert_eq!(open_link(&app, method, &link).await.status(), 200);
    }
    assert_eq!(
        app.dump_table("recovery_flow").await,
        flows,
        "a GET or HEAD changed a flow"
    );

    let done = open_link(&app, reqwest::Method::POST, &link).await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.expect("html").contains("Recovery cancelled"));
    assert_ne!(
        app.verify(&cookie, &code).await.status(),
        200,
        "the cancelled code still works"
    );

    // Paused: a new start answers as for an address without an account, and sends nothing.
    assert_eq!(
        start_answer(&app, "ida@example.com").await,
        start_answer(&app, "nobody@example.com").await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.mail.mails_to("ida@example.com").len(),
        1,
        "a code went out during the pause"
    );

    let again = open_link(&app, reqwest::Method::POST, &link).await;
    assert!(again.text().await.expect("html").contains("already used"));
    let audit = app.admin_json("/admin/audit").await.to_string();
    assert_eq!(audit.matches("recovery.cancelled").count(), 1, "{audit}");
}

#[tokio::test]
async fn this_wasnt_me_secures_the_account_until_an_operator_unfreezes_it() {
    let sms = SmsSink::start().await;
    let url = sms.url.clone();
    let app = spawn_app_with(move |s| {
        s.courier.sms_url = Some(url);
        s.branding.support_contact = Some("help@example.com".into());
    })
    .await;
    let id = app
        .create_full_identity("joe@example.com", None, Some("+15551230002"))
        .await;
    let cookie = app.verified_flow("joe@example.com").await;
    let reset = json(app.reset(&cookie, NEW_PASSWORD).await).await;
    let (session_token, jwt) = (reset["sessionToken"].clone(), reset["jwt"].clone());
    let pair = json(
        app.post_json(
            "/v2/auth/login",
            &json!({"login": "joe@example.com", "password": NEW_PASSWORD}),
            None,
        )
        .await,
    )
    .await;
    let notice = app.mail.wait_for("joe@example.com", 2).await.remove(1);
    let link = report_link(&notice);

    // The link's page changes nothing: the session still works.
    let page = open_link(&app, reqwest::Method::GET, &link).await;
    assert!(page.text().await.expect("html").contains("help@example.com"));
    assert_eq!(app.session_with_jwt(jwt.as_str().expect("jwt")).await.status(), 200);

    let done = open_link(&app, reqwest::Method::POST, &link).await;
    assert!(done.text().await.expect("html").contains("Your account is secured"));

    // Every credential is dead.
    assert_eq!(app.session_with_jwt(jwt.as_str().expect("jwt")).await.status(), 401);
    let by_token = app
        .client
        .get(app.url("/api/auth/session"))
        .header("x-session-token", session_token.as_str().expect("token"))
        .send()
        .await
        .expect("sent");
    assert_eq!(by_token.status(), 401);
    let refresh = app
        .client
        .get(app.url(&format!(
            "/v2/auth/refresh/{}",
            pair["refreshToken"].as_str().expect("refresh")
        )))
        .send()
        .await
        .expect("sent");
    assert_eq!(refresh.status(), 401);

    // A confirmation to every verified address.
    let secured = app.mail.wait_for("joe@example.com", 3).await.remove(2);
    assert!(secured.subject.contains("secured"), "{}", secured.subject);
    assert!(secured.body.contains("help@example.com"), "{}", secured.body);
    let texts = sms.wait_for("+15551230002", 2).await;
    assert!(texts.iter().any(|t| t.contains("secured")), "{texts:?}");

    // Frozen: the right password and a recovery answer exactly as for no account.
    let (frozen, unknown) = (
        login_answer(&app, "joe@example.com").await,
        login_answer(&app, "nobody@example.com").await,
    );
    assert_eq!(frozen, unknown);
    assert_eq!(frozen.0, 401);
    let mails = app.mail.mails_to("joe@example.com").len();
    assert_eq!(
        start_answer(&app, "joe@example.com").await,
        start_answer(&app, "nobody@example.com").await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        app.mail.mails_to("joe@example.com").len(),
        mails,
        "a frozen account got a code"
    );
    let shown = app.admin_json(&format!("/admin/identities/{id}")).await;
    assert_eq!(shown["frozen"], true, "{shown}");

    // Spent: the link does nothing twice.
    let again = open_link(&app, reqwest::Method::POST, &link).await;
    assert!(again.text().await.expect("html").contains("already used"));

    let unfrozen = app
        .admin_call(reqwest::Method::POST, &format!("/admin/identities/{id}/unfreeze"))
        .await;
    assert_eq!(unfrozen["frozen"], false, "{unfrozen}");
    assert_eq!(app.login("joe@example.com", NEW_PASSWORD).await.status(), 200);
    let audit = app.admin_json("/admin/audit").await.to_string();
    for kind in ["account.secured", "account.unfrozen"] {
        assert!(audit.contains(kind), "{kind} not audited: {audit}");
    }
}

#[tokio::test]
async fn a_forged_expired_or_cross_site_report_link_does_nothing() {
    let app = spawn_app_with(|s| s.notice.link_lifespan = Duration::from_secs(1)).await;
    app.create_identity("kim@example.com", Some(PASSWORD), true).await;
    app.started_flow("kim@example.com").await;
    let link = report_link(&app.mail.wait_for("kim@example.com", 1).await.remove(0));

    let cross_site = app
        .client
        .post(app.url(&link))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("sent");
    assert_eq!(cross_site.status(), 403);

    // Another identity's id under the same signature.
    let forged = regex::Regex::new(r"token=c\.[0-9a-f-]+\.")
        .expect("re")
        .replace(&link, "token=c.00000000-0000-0000-0000-000000000000.")
        .into_owned();
    // Another kind under the same signature.
    let promoted = link.replacen("token=c.", "token=s.", 1);
    for bad in [forged, promoted, "/ui/report?token=garbage".to_owned()] {
        let response = open_link(&app, reqwest::Method::POST, &bad).await;
        assert_eq!(response.status(), 401, "{bad}");
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = open_link(&app, reqwest::Method::GET, &link).await;
    assert_eq!(expired.status(), 401);
    let audit = app.admin_json("/admin/audit").await.to_string();
    assert!(!audit.contains("recovery.cancelled"), "{audit}");
}
