//! What a person receives (SPEC §5.1–5.2), read as a mail client would:
//! multipart mail with the operator's branding, notices to every verified
//! address saying when and from where, SMS in one GSM-7 segment, and
//! operator templates replacing built-in ones.

use std::time::Duration;

use latchkey::audit::Kind;
use latchkey::config::Settings;
use latchkey::identity::manage::{self, Address};
use latchkey::services::Client;
use latchkey::store::SentMessage;
use serde_json::json;

use crate::helpers::*;
use crate::sms_sink::SmsSink;
use crate::smtp_sink::Mail;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";

fn branded(settings: &mut Settings) {
    settings.branding.product_name = "Acme Bank".into();
    settings.branding.support_contact = Some("help@acme.example".into());
    settings.recovery.lifespan = Duration::from_secs(10 * 60);
    settings.recovery.notify_unknown_recipients = true;
}

async fn reset_from_firefox(app: &TestApp, cookie: &str) {
    let response = app
        .client
        .post(app.url("/api/auth/recovery/reset-password"))
        .header("cookie", format!("latchkey_recovery={cookie}"))
        .header("user-agent", FIREFOX)
        .json(&json!({ "password": NEW_PASSWORD }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
}

/// A header of the raw message, decoded by `mailparse`.
fn header(mail: &Mail, name: &str) -> Option<String> {
    let parsed = mailparse::parse_mail(mail.raw.as_bytes()).expect("MIME");
    mailparse::MailHeaderMap::get_first_value(&parsed.get_headers(), name)
}

/// Both parts carry `needle`, and the mail is a well-formed alternative.
fn both_parts_say(mail: &Mail, needles: &[&str]) {
    let parsed = mailparse::parse_mail(mail.raw.as_bytes()).expect("MIME");
    assert_eq!(parsed.ctype.mimetype, "multipart/alternative", "{}", mail.raw);
    let html = mail.html.as_deref().expect("an HTML part");
    for needle in needles {
        assert!(mail.body.contains(needle), "text lacks {needle:?}: {}", mail.body);
        assert!(html.contains(needle), "HTML lacks {needle:?}: {html}");
    }
    assert!(!html.contains("<script"), "{html}");
    assert!(!html.contains("<img"), "a logo without branding.logo_url: {html}");
    let id = header(mail, "Message-ID").expect("Message-ID");
    assert!(id.starts_with('<') && id.ends_with("@localhost>"), "{id}");
    let date = header(mail, "Date").expect("Date");
    mailparse::dateparse(&date).expect("an RFC 5322 date");
}

/// The link `pattern` finds in the text part is in the HTML part as an
/// `href`, absolute under `public_url`, in the mail's language.
fn same_link_in_both_parts(mail: &crate::smtp_sink::Mail, pattern: &regex::Regex, public_url: &str, lang: &str) {
    let link = pattern
        .find(&mail.body)
        .unwrap_or_else(|| panic!("no {pattern} in {}", mail.body))
        .as_str();
    assert!(mail.body.contains(&format!("{public_url}{link}")), "{}", mail.body);
    assert!(link.ends_with(&format!("&lang={lang}")), "{link}");
    let html = mail.html_with_plain_links();
    assert!(
        html.contains(&format!("href=\"{public_url}{link}\"")),
        "{link} not in {html}"
    );
}

#[tokio::test]
async fn every_mail_is_text_and_html_with_the_same_content_branding_and_lifespan() {
    let report_pattern = regex::Regex::new(r"/ui/report\?token=[0-9a-z.-]+&lang=[a-z]+").expect("re");
    let continue_pattern = regex::Regex::new(r"/ui/recovery/continue\?token=[0-9a-f.-]+&lang=[a-z]+").expect("re");
    for (lang, code_is, minutes, changed, unknown, secured_word) in [
        (
            "en",
            "Your recovery code is: ",
            "valid for 10 minutes",
            "was changed on",
            "no account uses it",
            "was secured on",
        ),
        (
            "vi",
            "Mã khôi phục của bạn là: ",
            "có hiệu lực trong 10 phút",
            "đã được thay đổi lúc",
            "không có tài khoản nào",
            "đã được khóa để bảo vệ lúc",
        ),
    ] {
        let app = spawn_app_with(branded).await;
        app.create_identity("ann@example.com", Some(PASSWORD), true).await;

        let cookie = start_in(&app, "ann@example.com", lang).await;
        let mails = app.mail.wait_for("ann@example.com", 1).await;
        let code = app.code_from_mail("ann@example.com", 1).await;
        both_parts_say(&mails[0], &[&code, minutes, "Acme Bank", "help@acme.example"]);
        assert!(mails[0].body.contains(&format!("{code_is}{code}")), "{}", mails[0].body);
        assert!(mails[0].subject.contains("Acme Bank"), "{}", mails[0].subject);
        let public_url = app.services.settings.public_url.trim_end_matches('/').to_owned();
        // The continue link and "didn't ask for this?", the same in both parts.
        for pattern in [&continue_pattern, &report_pattern] {
            same_link_in_both_parts(&mails[0], pattern, &public_url, lang);
        }

        let verified = {
            let response = app.verify(&cookie, &code).await;
            recovery_cookie(response.headers()).expect("rotated")
        };
        reset_from_firefox(&app, &verified).await;
        let mails = app.mail.wait_for("ann@example.com", 2).await;
        let notice = &mails[1];
        both_parts_say(
            notice,
            &[changed, "127.0.0.1", "Firefox, Linux", "Acme Bank", "help@acme.example"],
        );
        assert!(!notice.body.contains(&code), "the notice repeats the code");
        same_link_in_both_parts(notice, &report_pattern, &public_url, lang);

        // The notice's "this wasn't me": the confirmation, in the flow's language.
        let report = report_pattern
            .find(&notice.body)
            .expect("a report link")
            .as_str()
            .to_owned();
        let secured = app
            .client
            .post(app.url(&report))
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .expect("sent");
        assert_eq!(secured.status(), 200);
        let confirmation = app.mail.wait_for("ann@example.com", 3).await.remove(2);
        both_parts_say(
            &confirmation,
            &[secured_word, "Acme Bank", "help@acme.example", "127.0.0.1"],
        );

        start_in(&app, "nobody@example.com", lang).await;
        let mails = app.mail.wait_for("nobody@example.com", 1).await;
        both_parts_say(&mails[0], &[unknown, "Acme Bank"]);
    }
}

#[tokio::test]
async fn a_logo_appears_only_when_configured_and_values_are_escaped_in_html() {
    let app = spawn_app_with(|s| {
        s.branding.product_name = "Tom & Jerry <Shop>".into();
        s.branding.logo_url = Some("https://cdn.example.com/logo.png".into());
    })
    .await;
    app.create_identity("tom@example.com", Some(PASSWORD), true).await;
    app.started_flow("tom@example.com").await;
    let mails = app.mail.wait_for("tom@example.com", 1).await;
    let html = mails[0].html.as_deref().expect("html");
    // MiniJinja escapes `/` too (`&#x2f;`), which every HTML reader decodes.
    let logo = html.find("<img src=\"https:").expect("a logo");
    assert!(
        html[logo..].contains(r#"logo.png" alt="Tom &amp; Jerry &lt;Shop&gt;""#),
        "{html}"
    );
    assert!(!html.contains("<Shop>"), "{html}");
    assert!(
        mails[0].body.contains("Tom & Jerry <Shop>"),
        "text is not HTML-escaped: {}",
        mails[0].body
    );
}

#[tokio::test]
async fn the_password_changed_notice_goes_to_every_verified_address_and_no_other() {
    let sms = SmsSink::start().await;
    let url = sms.url.clone();
    let app = spawn_app_with(move |s| s.courier.sms_url = Some(url)).await;
    let id = app
        .create_full_identity("bea@example.com", None, Some("+15551230001"))
        .await;
    for (value, verified) in [("bea.work@example.com", true), ("bea.old@example.com", false)] {
        let address = Address::parse("email", value).expect("valid");
        manage::add_address(&app.services, &id, &address, verified, &Client::default())
            .await
            .expect("added");
    }

    let cookie = app.verified_flow("bea@example.com").await;
    reset_from_firefox(&app, &cookie).await;

    let notice = &app.mail.wait_for("bea@example.com", 2).await[1];
    assert!(notice.body.contains("Firefox, Linux"), "{}", notice.body);
    let work = app.mail.wait_for("bea.work@example.com", 1).await;
    assert!(work[0].body.contains("password"), "{}", work[0].body);
    let texts = sms.wait_for("+15551230001", 1).await;
    assert!(texts[0].contains("password was changed"), "{texts:?}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        app.mail.mails_to("bea.old@example.com").is_empty(),
        "an unverified address got the notice"
    );
    assert_eq!(
        app.mail.mails_to("bea.work@example.com").len(),
        1,
        "no code went to the other address"
    );
}

/// The GSM 03.38 basic alphabet, written out here independently of the sender.
const GSM7: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";

#[tokio::test]
async fn with_sms_gsm7_a_vietnamese_code_sms_is_one_gsm_segment() {
    for gsm7 in [false, true] {
        let sms = SmsSink::start().await;
        let url = sms.url.clone();
        let app = spawn_app_with(move |s| {
            s.courier.sms_url = Some(url);
            s.courier.sms_gsm7 = gsm7;
            s.branding.product_name = "Ngân hàng Á Châu".into();
        })
        .await;
        app.create_full_identity("chi@example.com", None, Some("+84912345678"))
            .await;
        let response = app
            .client
            .post(app.url("/v2/auth/recovery/request"))
            .header("accept-language", "vi")
            .json(&json!({ "login": "+84912345678" }))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200);
        let body = sms.wait_for("+84912345678", 1).await.remove(0);
        let outside: Vec<char> = body.chars().filter(|c| !GSM7.contains(*c)).collect();
        if gsm7 {
            assert!(outside.is_empty(), "not GSM-7: {outside:?} in {body}");
            assert!(
                body.chars().count() <= 160,
                "{} characters: {body}",
                body.chars().count()
            );
            assert!(body.starts_with("Ngan hang A Chau: ma khoi phuc"), "{body}");
        } else {
            assert!(body.contains("mã khôi phục"), "{body}");
        }
    }
}

#[tokio::test]
async fn an_operator_template_replaces_a_built_in_one_and_falls_back_to_the_default_locale() {
    let dir = tempfile::tempdir().expect("dir");
    std::fs::create_dir_all(dir.path().join("en")).expect("mkdir");
    std::fs::write(
        dir.path().join("en/recovery_code.subject"),
        "{{ product_name }} code {{ code }}",
    )
    .expect("write");
    std::fs::write(
        dir.path().join("en/recovery_code.txt"),
        "Your code is: {{ code }}\n{% if support_contact %}Ask {{ support_contact }}{% endif %}\n",
    )
    .expect("write");
    let templates = dir.path().to_path_buf();
    let app = spawn_app_with(move |s| s.courier.templates_dir = Some(templates)).await;
    app.create_identity("dan@example.com", Some(PASSWORD), true).await;
    start_in(&app, "dan@example.com", "vi").await;
    let mail = app.mail.wait_for("dan@example.com", 1).await.remove(0);
    // No vi file: the operator's default-locale (en) file wins over the built-in vi one.
    assert!(mail.subject.starts_with("latchkey code "), "{}", mail.subject);
    assert!(mail.body.starts_with("Your code is: "), "{}", mail.body);
    // No html file at all: the built-in one, in the flow's language.
    assert!(mail.html.as_deref().expect("html").contains("Mã khôi phục"));
}

/// The `/ui/recovery/continue?…` link of the newest code mail to `email`,
/// as the text part has it; the HTML part has the same one.
pub async fn continue_link(app: &TestApp, email: &str, nth: usize) -> String {
    let mail = app.mail.wait_for(email, nth).await.remove(nth - 1);
    let pattern = regex::Regex::new(r"https?://\S+/ui/recovery/continue\?token=[0-9a-f.-]+&lang=[a-z]+").expect("re");
    let link = pattern
        .find(&mail.body)
        .expect("a link in the text")
        .as_str()
        .to_owned();
    let html = mail.html_with_plain_links();
    assert!(html.contains(&format!("href=\"{link}\"")), "{html}");
    assert!(link.starts_with(&app.services.settings.public_url), "{link}");
    link.split_once("/ui/recovery/continue").expect("path").1.to_owned()
}

pub async fn post_link(app: &TestApp, query: &str) -> reqwest::Response {
    // A fresh client: the mail is opened on another device, with no cookie.
    http_client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
        .post(app.url(&format!("/ui/recovery/continue{query}")))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .expect("sent")
}

fn ui_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("latchkey_ui=") && !v.starts_with("latchkey_ui=;"))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

#[tokio::test]
async fn a_mail_scanner_opening_the_link_changes_nothing_and_the_button_finishes_on_another_device() {
    let app = spawn_app().await;
    app.create_identity("eve@example.com", Some(PASSWORD), true).await;
    let started_cookie = app.started_flow("eve@example.com").await;
    let query = continue_link(&app, "eve@example.com", 1).await;
    let before = app.dump_table("recovery_flow").await;

    for method in [reqwest::Method::GET, reqwest::Method::HEAD, reqwest::Method::GET] {
        let page = app
            .client
            .request(method.clone(), app.url(&format!("/ui/recovery/continue{query}")))
            .send()
            .await
            .expect("sent");
        assert_eq!(page.status(), 200, "{method}");
        assert!(page.headers().get(reqwest::header::SET_COOKIE).is_none(), "{method}");
        if method == reqwest::Method::GET {
            let html = page.text().await.expect("html");
            assert_eq!(html.matches("<button").count(), 1, "{html}");
            assert!(html.contains("method=\"post\""), "{html}");
            let token = query
                .split("token=")
                .nth(1)
                .and_then(|t| t.split('&').next())
                .expect("token");
            assert!(
                html.replace("&#38;", "&amp;")
                    .contains(&format!("/ui/recovery/continue?token={token}&amp;lang=vi")),
                "the language switch drops the token: {html}"
            );
        }
    }
    assert_eq!(
        app.dump_table("recovery_flow").await,
        before,
        "a GET or HEAD changed the flow"
    );

    let opened = post_link(&app, &query).await;
    assert_eq!(opened.status(), 303);
    assert!(
        opened.headers()[reqwest::header::LOCATION]
            .to_str()
            .expect("location")
            .starts_with("/ui/recovery/password")
    );
    let cookie = ui_cookie(&opened).expect("this browser is bound to the flow");
    // The password page names the account, masked: whose password this sets.
    let page = app
        .client
        .get(app.url("/ui/recovery/password?lang=en"))
        .header(reqwest::header::COOKIE, &cookie)
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("html");
    assert!(page.contains("For the account e•••e@example.com."), "{page}");
    let reset = app
        .client
        .post(app.url("/ui/recovery/reset?lang=en"))
        .header(reqwest::header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .form(&[("password", NEW_PASSWORD)])
        .send()
        .await
        .expect("sent");
    assert_eq!(reset.status(), 303, "{:?}", reset.text().await);
    assert_eq!(app.login("eve@example.com", NEW_PASSWORD).await.status(), 200);

    // Spent: the link, and the cookie of the device that started, open nothing.
    assert!(ui_cookie(&post_link(&app, &query).await).is_none());
    let code = app.code_from_mail("eve@example.com", 1).await;
    assert_ne!(app.verify(&started_cookie, &code).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_concurrent_posts_of_one_link_bind_exactly_one_browser() {
    let app = spawn_app().await;
    app.create_identity("fay@example.com", Some(PASSWORD), true).await;
    app.started_flow("fay@example.com").await;
    let query = continue_link(&app, "fay@example.com", 1).await;
    let url = app.url(&format!("/ui/recovery/continue{query}"));
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let url = url.clone();
        burst.spawn(async move {
            let client = http_client_builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            let response = client
                .post(url)
                .header("sec-fetch-site", "same-origin")
                .send()
                .await
                .expect("sent");
            (response.status().as_u16(), ui_cookie(&response).is_some())
        });
    }
    let answers = burst.join_all().await;
    assert_eq!(answers.iter().filter(|(_, bound)| *bound).count(), 1, "{answers:?}");
    assert!(answers.iter().all(|(status, _)| *status < 500), "{answers:?}");
}

#[tokio::test]
async fn a_superseded_tampered_or_verified_flow_s_link_opens_nothing() {
    let app = spawn_app().await;
    app.create_identity("gus@example.com", Some(PASSWORD), true).await;

    app.started_flow("gus@example.com").await;
    let first = continue_link(&app, "gus@example.com", 1).await;
    let cookie = app.started_flow("gus@example.com").await;
    let second = continue_link(&app, "gus@example.com", 2).await;
    assert!(
        ui_cookie(&post_link(&app, &first).await).is_none(),
        "a superseded link worked"
    );

    // One hex digit of the proof changed.
    let flipped = {
        let at = second.find('&').expect("lang") - 1;
        let last = if &second[at..=at] == "0" { "1" } else { "0" };
        format!("{}{last}{}", &second[..at], &second[at + 1..])
    };
    let tampered = post_link(&app, &flipped).await;
    assert!(ui_cookie(&tampered).is_none());
    assert!(tampered.status().is_client_error(), "a tampered link is a 4xx");

    // The code proven on the first device: its link is spent with it.
    let code = app.code_from_mail("gus@example.com", 2).await;
    assert_eq!(app.verify(&cookie, &code).await.status(), 200);
    assert!(ui_cookie(&post_link(&app, &second).await).is_none());
}

/// Every cookie a response sets, as one `Cookie` header value.
fn cookies_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

#[tokio::test]
async fn send_a_new_code_on_the_code_page_needs_no_retyping_and_reveals_nothing() {
    let app = spawn_app().await;
    app.create_identity("lia@example.com", Some(PASSWORD), true).await;
    let ui_post = |path: &str, cookie: Option<String>, form: &[(&str, &str)]| {
        let mut request = app
            .client
            .post(app.url(path))
            .header("sec-fetch-site", "same-origin")
            .form(form);
        if let Some(cookie) = cookie {
            request = request.header(reqwest::header::COOKIE, cookie);
        }
        request.send()
    };
    let mut answers = Vec::new();
    for email in ["lia@example.com", "nobody@example.com"] {
        let started = ui_post("/ui/recovery/start?lang=en", None, &[("email", email)])
            .await
            .expect("sent");
        assert_eq!(started.status(), 303);
        let cookie = cookies_of(&started);
        assert!(
            !cookie.contains(email) && !cookie.contains("example.com"),
            "the address in clear: {cookie}"
        );
        let again = ui_post("/ui/recovery/resend?lang=en", Some(cookie), &[])
            .await
            .expect("sent");
        answers.push((again.status(), again.headers()[reqwest::header::LOCATION].clone()));
    }
    assert_eq!(answers[0], answers[1], "known and unknown answer differently");
    assert!(
        answers[0]
            .1
            .to_str()
            .expect("location")
            .starts_with("/ui/recovery/code")
    );
    let mails = app.mail.wait_for("lia@example.com", 2).await;
    assert!(mails[1].body.contains("Your recovery code is: "), "{}", mails[1].body);

    let bare = ui_post("/ui/recovery/resend?lang=vi", None, &[]).await.expect("sent");
    assert_eq!(bare.status(), 303);
    assert_eq!(bare.headers()[reqwest::header::LOCATION], "/ui/recovery?lang=vi");
}

#[tokio::test]
async fn ui_pages_show_the_product_name_and_an_https_logo_that_the_csp_allows() {
    let app = spawn_app_with(|s| {
        s.branding.product_name = "Acme <Bank>".into();
        s.branding.logo_url = Some("https://cdn.acme.example/logo.svg".into());
    })
    .await;
    let page = app
        .client
        .get(app.url("/ui/recovery?lang=vi"))
        .send()
        .await
        .expect("sent");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.contains("img-src 'self' https://cdn.acme.example;"), "{csp}");
    let html = page.text().await.expect("html");
    assert!(
        html.contains("alt=\"Acme &#60;Bank&#62;\"") || html.contains("alt=\"Acme &lt;Bank&gt;\""),
        "{html}"
    );
    assert!(html.contains("cdn.acme.example"), "{html}");

    let plain = spawn_app_with(|s| s.branding.logo_url = Some("http://evil.example/x.png".into())).await;
    let page = plain.client.get(plain.url("/ui/recovery")).send().await.expect("sent");
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_owned();
    assert!(csp.contains("img-src 'self';"), "{csp}");
    let html = page.text().await.expect("html");
    assert!(!html.contains("evil.example") && html.contains("latchkey"), "{html}");
}

/// Makes the database refuse every `recovery.code_sent` event, as a full or
/// broken audit table would.
async fn refuse_code_sent_events(app: &TestApp) {
    refuse_code_sent_events_where(app, "true").await
}

/// The same for the events that match `condition` (SQL over `new`).
async fn refuse_code_sent_events_where(app: &TestApp, condition: &str) {
    refuse_audit_events(app, "recovery.code_sent", condition).await
}

const SENT: &str = "select count(*) from outbox_message where status = 'sent'";
const FAILED: &str = "select count(*) from outbox_message where status = 'failed'";
const CODE_SENT_EVENTS: &str = "select count(*) from audit_event where kind = 'recovery.code_sent'";

/// Polls `sql` until it counts `expected` rows (about 10 s at most).
async fn until_count(app: &TestApp, sql: &str, expected: i64) -> i64 {
    let mut found = count_rows(&app.database_url, sql).await;
    for _ in 0..200 {
        if found == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        found = count_rows(&app.database_url, sql).await;
    }
    found
}

/// A delivered message is marked sent in the transaction that records its
/// `recovery.code_sent` event: when the event cannot be written, the message
/// stays unsent (and is sent again), so the audit trail never misses a mail
/// the outbox calls sent.
#[tokio::test]
async fn a_mail_whose_delivery_cannot_be_audited_is_not_marked_sent() {
    let app = spawn_app_with(|s| {
        s.courier.lease = Duration::from_secs(1);
        s.courier.poll_interval = Duration::from_millis(100);
    })
    .await;
    app.create_identity("audited@example.com", None, true).await;
    refuse_code_sent_events(&app).await;
    assert_eq!(app.start_recovery("audited@example.com").await.status(), 200);
    // A second send proves the first one's sent mark was refused: only a
    // message still pending is claimed again.
    app.mail.wait_for("audited@example.com", 2).await;
    assert_eq!(count_rows(&app.database_url, SENT).await, 0);
    assert_eq!(count_rows(&app.database_url, CODE_SENT_EVENTS).await, 0);

    allow_audit_events(&app).await;
    // Then it is recorded once, with its event.
    assert_eq!(until_count(&app, SENT, 1).await, 1);
    assert_eq!(count_rows(&app.database_url, CODE_SENT_EVENTS).await, 1);
}

/// While the event cannot be written the mail is sent again after each
/// lease, but no more than `courier.max_attempts` times: then it is given up.
#[tokio::test]
async fn a_mail_whose_delivery_is_never_recorded_is_sent_at_most_max_attempts_times() {
    let app = spawn_app_with(|s| {
        s.courier.lease = Duration::from_secs(1);
        s.courier.poll_interval = Duration::from_millis(100);
        s.courier.max_attempts = 2;
    })
    .await;
    app.create_identity("unrecorded@example.com", None, true).await;
    refuse_code_sent_events(&app).await;
    assert_eq!(app.start_recovery("unrecorded@example.com").await.status(), 200);
    assert_eq!(until_count(&app, FAILED, 1).await, 1);
    // A third claim would have come after another lease.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.mail.mails_to("unrecorded@example.com").len(), 2);
    assert_eq!(count_rows(&app.database_url, SENT).await, 0);
    assert_eq!(count_rows(&app.database_url, CODE_SENT_EVENTS).await, 0);
}

/// Deliveries are marked sent together. When one of them cannot be
/// recorded, the others are marked all the same, each once with its event,
/// and only the one refused is sent again.
#[tokio::test]
async fn a_mail_that_cannot_be_audited_leaves_no_other_mail_of_its_batch_unmarked() {
    let app = spawn_app_with(|s| {
        s.courier.lease = Duration::from_secs(1);
        // Only the test wakes the courier: both messages are in its one claim.
        s.courier.poll_interval = Duration::from_secs(3600);
    })
    .await;
    let refused = app.create_identity("refused@example.com", None, true).await;
    app.create_identity("recorded@example.com", None, true).await;
    refuse_code_sent_events_where(&app, &format!("new.identity_id = '{refused}'")).await;
    let (first, second) = tokio::join!(
        app.start_recovery("refused@example.com"),
        app.start_recovery("recorded@example.com")
    );
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    // The two deliveries run at once and are usually collected together
    // (without the fallback to one mark each, this test failed on both backends).
    app.services.courier.wake();
    assert_eq!(until_count(&app, SENT, 1).await, 1);
    app.mail.wait_for("recorded@example.com", 1).await;
    app.mail.wait_for("refused@example.com", 1).await;
    // Once its lease has run out, the refused one is claimed and sent again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    app.services.courier.wake();
    app.mail.wait_for("refused@example.com", 2).await;
    assert_eq!(count_rows(&app.database_url, SENT).await, 1);
    assert_eq!(count_rows(&app.database_url, CODE_SENT_EVENTS).await, 1);
    assert_eq!(app.mail.mails_to("recorded@example.com").len(), 1);
}

/// A courier whose lease ran out while another claim took its message
/// cannot mark it failed or due again; its sent mark still ends the message
/// (that mail went out, so it is not sent again), and then the newer
/// claim's outcome changes nothing. Every sent mark keeps its event.
#[tokio::test]
async fn a_late_outcome_cannot_undo_a_newer_claim_but_a_late_delivery_ends_the_message() {
    let app = spawn_app_with(|s| s.courier.poll_interval = Duration::from_secs(3600)).await;
    let identity = app.create_identity("late@example.com", None, true).await;
    assert_eq!(app.start_recovery("late@example.com").await.status(), 200);
    let store = &app.services.store;
    let now = latchkey::time::now_ms();
    let first = store.claim_outbox(now, now + 1, 16).await.expect("first claim");
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let now = latchkey::time::now_ms();
    let second = store.claim_outbox(now, now + 60_000, 16).await.expect("second claim");
    assert_eq!(second.len(), 1, "the lease ran out, so the message is claimed again");
    let (id, late, current) = (&first[0].outbox_message_id, first[0].attempts, second[0].attempts);
    assert_eq!(current, late + 1);
    let sent = || SentMessage {
        message_id: id.clone(),
        sent_at: latchkey::time::now_ms(),
        event: latchkey::audit::event(Kind::CodeSent, Some(&identity), &Client::default(), json!({})),
    };
    let untouched = "select count(*) from outbox_message where status = 'pending' and last_error is null \
                     and sealed_payload is not null";

    // The first claim's failures change nothing.
    store
        .mark_outbox_retry(id, late, now + 1_000, "late")
        .await
        .expect("retry");
    store.mark_outbox_failed(id, late, "late").await.expect("failed");
    assert_eq!(count_rows(&app.database_url, untouched).await, 1);
    // Its delivery ends the message, with its event.
    store.mark_outbox_sent(&[sent()]).await.expect("sent");
    assert_eq!(count_rows(&app.database_url, SENT).await, 1);
    assert_eq!(count_rows(&app.database_url, CODE_SENT_EVENTS).await, 1);
    // The newer claim's outcomes then change nothing; a delivery keeps its event.
    store.mark_outbox_failed(id, current, "after").await.expect("failed");
    store
        .mark_outbox_retry(id, current, now + 1_000, "after")
        .await
        .expect("retry");
    store.mark_outbox_sent(&[sent()]).await.expect("sent");
    assert_eq!(count_rows(&app.database_url, SENT).await, 1);
    assert_eq!(count_rows(&app.database_url, CODE_SENT_EVENTS).await, 2);
    let none_left = "select count(*) from outbox_message where sealed_payload is not null or last_error is not null";
    assert_eq!(count_rows(&app.database_url, none_left).await, 0);
}
