//! The recovery UI in a real browser: Debian's Chromium driven through
//! chromedriver's W3C WebDriver API, in English and in Vietnamese, with a
//! screenshot of every step under `target/ui-screenshots/`. Skipped when
//! Chromium is not installed, except under `CI=true`, where that fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

use crate::helpers::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Browser {
    http: reqwest::Client,
    session: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Option<Browser> {
        if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(!ci, "CI=true but chromium/chromedriver are not installed");
            eprintln!("skipping browser test: chromium or chromedriver missing");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let http = crate::helpers::http_client();
        let base = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().expect("profile dir");
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=390,844",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let created: Value = http
            .post(format!("{base}/session"))
            .json(&capabilities)
            .send()
            .await
            .expect("new session")
            .json()
            .await
            .expect("session json");
        let session = created["value"]["sessionId"].as_str().expect("session id").to_owned();
        Some(Browser {
            http,
            session: format!("{base}/session/{session}"),
            driver,
            _profile: profile,
        })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let response = self
            .http
            .request(method, format!("{}{path}", self.session))
            .json(&body)
            .send()
            .await
            .expect("webdriver call");
        let value: Value = response.json().await.expect("webdriver json");
        assert!(value["value"].get("error").is_none(), "webdriver {path}: {value}");
        value["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({ "url": url })).await;
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {found}"))
            .to_owned()
    }

    async fn attribute(&self, css: &str, name: &str) -> String {
        let element = self.find(css).await;
        let value = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{element}/attribute/{name}"),
                json!({}),
            )
            .await;
        value.as_str().unwrap_or("").to_owned()
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        let value = self
            .call(reqwest::Method::GET, &format!("/element/{element}/text"), json!({}))
            .await;
        value.as_str().unwrap_or("").to_owned()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.call(reqwest::Method::POST, &format!("/element/{element}/clear"), json!({}))
            .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    async fn submit(&self) {
        let button = self.find("button[type=submit]").await;
        self.call(reqwest::Method::POST, &format!("/element/{button}/click"), json!({}))
            .await;
    }

    /// Waits (up to 30 s: a loaded CI machine is slow) until the page's
    /// address contains `fragment` and its document is loaded: a click only
    /// starts a navigation, it does not wait for it.
    async fn wait_for_url(&self, fragment: &str) {
        for _ in 0..600 {
            if self.url().await.contains(fragment) {
                // And until the new document is complete.
                let state = self
                    .call(
                        reqwest::Method::POST,
                        "/execute/sync",
                        json!({"script": "return document.readyState", "args": []}),
                    )
                    .await;
                if state == "complete" {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let source = self.call(reqwest::Method::GET, "/source", json!({})).await;
        panic!("never reached {fragment}; at {}: {source}", self.url().await);
    }

    async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", json!({}))
            .await
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", json!({})).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("png"))
            .expect("base64");
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}.png")), bytes).expect("screenshot written");
    }

    /// Waits for the page's heading to read `expected` (a result page
    /// may keep its address), then checks it.
    async fn wait_for_heading(&self, expected: &str) {
        let script =
            json!({"script": "const h = document.querySelector('h1'); return h ? h.textContent : ''", "args": []});
        for _ in 0..600 {
            let response = self
                .http
                .post(format!("{}/execute/sync", self.session))
                .json(&script)
                .send()
                .await
                .expect("webdriver call");
            let heading: Value = response.json().await.expect("webdriver json");
            if heading["value"] == expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(self.text("h1").await, expected);
    }

    async fn quit(mut self) {
        let _ = self.http.delete(&self.session).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// One browser at a time: two Chromiums on two cores beside the rest of the
/// suite make page loads slow enough to flake.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn recover_in_the_browser(lang: &str, expect: [&str; 4]) {
    let _turn = ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app_with(|s| s.ui.return_url = Some("https://app.example.com/".into())).await;
    let email = format!("{lang}@example.com");
    app.create_identity(&email, Some(PASSWORD), true).await;
    let [start_title, wrong_code_message, policy_fragment, done_title] = expect;

    browser.goto(&app.url(&format!("/ui/recovery?lang={lang}"))).await;
    assert_eq!(browser.text("h1").await, start_title);
    assert_eq!(browser.attribute("#email", "autocomplete").await, "email");
    browser.screenshot(&format!("{lang}-1-address")).await;
    browser.type_into("#email", &email).await;
    browser.submit().await;

    browser.wait_for_url("/ui/recovery/code").await;
    assert_eq!(browser.attribute("#code", "autocomplete").await, "one-time-code");
    browser.screenshot(&format!("{lang}-2-code")).await;
    let code = app.code_from_mail(&email, 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    browser.type_into("#code", wrong).await;
    browser.submit().await;
    browser.wait_for_url("/ui/recovery/verify").await;
    assert_eq!(browser.text("[role=alert]").await, wrong_code_message);
    browser.screenshot(&format!("{lang}-3-wrong-code")).await;
    browser.type_into("#code", &code).await;
    browser.submit().await;

    browser.wait_for_url("/ui/recovery/password").await;
    assert!(browser.text("#policy").await.contains(policy_fragment));
    assert_eq!(browser.attribute("#password", "autocomplete").await, "new-password");
    browser.screenshot(&format!("{lang}-4-password")).await;
    browser.type_into("#password", NEW_PASSWORD).await;
    browser.submit().await;

    browser.wait_for_url("/ui/recovery/done").await;
    assert_eq!(browser.text("h1").await, done_title);
    assert_eq!(browser.attribute("a.button", "href").await, "https://app.example.com/");
    browser.screenshot(&format!("{lang}-5-done")).await;
    browser.quit().await;

    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_recovers_an_account_in_the_browser_in_english() {
    recover_in_the_browser(
        "en",
        [
            "Recover your account",
            "Invalid or expired code.",
            "at least 15 characters",
            "Your password was changed",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_recovers_an_account_in_the_browser_in_vietnamese() {
    recover_in_the_browser(
        "vi",
        [
            "Khôi phục tài khoản",
            "Mã không hợp lệ hoặc đã hết hạn.",
            "ít nhất 15 ký tự",
            "Mật khẩu của bạn đã được thay đổi",
        ],
    )
    .await;
}

#[tokio::test]
async fn ui_pages_carry_strict_security_headers_and_refuse_cross_site_posts() {
    let app = spawn_app().await;
    let page = app.client.get(app.url("/ui/recovery")).send().await.expect("sent");
    assert_eq!(page.status(), 200);
    let headers = page.headers();
    assert!(
        headers["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("default-src 'none'")
    );
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["referrer-policy"], "no-referrer");

    let cross_site = app
        .client
        .post(app.url("/ui/recovery/start"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("email", "victim@example.com")])
        .send()
        .await
        .expect("sent");
    assert_eq!(cross_site.status(), 403);
}

/// The code mail's link, opened first by a mail scanner (`HEAD`, `GET`) and
/// then by the person in a browser that did not start the flow: one button,
/// then the new password.
async fn continue_from_the_mail_in_another_browser(lang: &str, title: &str) {
    let _turn = ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app().await;
    let email = format!("link-{lang}@example.com");
    app.create_identity(&email, Some(PASSWORD), true).await;
    start_in(&app, &email, lang).await;
    let mail = app.mail.wait_for(&email, 1).await.remove(0);
    let pattern = regex::Regex::new(r"/ui/recovery/continue\?\S+").expect("regex");
    let link = app.url(pattern.find(&mail.body).expect("a link").as_str());

    for method in [reqwest::Method::HEAD, reqwest::Method::GET] {
        let scanned = app.client.request(method, &link).send().await.expect("sent");
        assert_eq!(scanned.status(), 200);
    }
    browser.goto(&link).await;
    assert_eq!(browser.text("h1").await, title);
    browser.screenshot(&format!("{lang}-link-1-continue")).await;
    browser.submit().await;
    browser.wait_for_url("/ui/recovery/password").await;
    browser.screenshot(&format!("{lang}-link-2-password")).await;
    browser.type_into("#password", NEW_PASSWORD).await;
    browser.submit().await;
    browser.wait_for_url("/ui/recovery/done").await;
    browser.quit().await;
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mail_link_finishes_a_recovery_in_another_browser_in_english() {
    continue_from_the_mail_in_another_browser("en", "Continue your recovery").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mail_link_finishes_a_recovery_in_another_browser_in_vietnamese() {
    continue_from_the_mail_in_another_browser("vi", "Tiếp tục khôi phục tài khoản").await;
}

/// The code mail's "didn't ask for this?" link in a browser: the
/// confirmation page, then its result.
async fn cancel_from_the_mail_in_the_browser(lang: &str, [asked, done]: [&str; 2]) {
    let _turn = ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app_with(|s| s.branding.support_contact = Some("help@example.com".into())).await;
    let email = format!("cancel-{lang}@example.com");
    app.create_identity(&email, Some(PASSWORD), true).await;
    start_in(&app, &email, lang).await;
    let mail = app.mail.wait_for(&email, 1).await.remove(0);
    let pattern = regex::Regex::new(r"/ui/report\?\S+").expect("regex");
    let link = app.url(pattern.find(&mail.body).expect("a link").as_str());

    browser.goto(&link).await;
    assert_eq!(browser.text("h1").await, asked);
    browser.screenshot(&format!("{lang}-report-1-confirm")).await;
    browser.submit().await;
    browser.wait_for_heading(done).await;
    browser.screenshot(&format!("{lang}-report-2-done")).await;
    browser.quit().await;
}

/// The password-changed notice's "this wasn't me" link in a browser: the
/// confirmation, the secured account, the spent link opened again, and a
/// tampered link.
async fn this_wasnt_me_in_the_browser(lang: &str, [asked, secured, used, invalid]: [&str; 4]) {
    let _turn = ONE_BROWSER.lock().await;
    let Some(browser) = Browser::start().await else { return };
    let app = spawn_app_with(|s| s.branding.support_contact = Some("help@example.com".into())).await;
    let email = format!("not-me-{lang}@example.com");
    app.create_identity(&email, Some(PASSWORD), true).await;
    let cookie = start_in(&app, &email, lang).await;
    let code = app.code_from_mail(&email, 1).await;
    let verified = app.verify(&cookie, &code).await;
    let cookie = recovery_cookie(verified.headers()).expect("rotated cookie");
    assert_eq!(app.reset(&cookie, NEW_PASSWORD).await.status(), 200);
    let notice = app.mail.wait_for(&email, 2).await.remove(1);
    let pattern = regex::Regex::new(r"/ui/report\?\S+").expect("regex");
    let link = app.url(pattern.find(&notice.body).expect("a link").as_str());

    browser.goto(&link).await;
    assert_eq!(browser.text("h1").await, asked);
    browser.screenshot(&format!("{lang}-not-me-1-confirm")).await;
    browser.submit().await;
    browser.wait_for_heading(secured).await;
    browser.screenshot(&format!("{lang}-not-me-2-secured")).await;
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), 401);

    browser.goto(&link).await;
    browser.wait_for_heading(used).await;
    browser.screenshot(&format!("{lang}-not-me-3-used")).await;
    let tampered = link.replacen("token=", "token=0", 1);
    browser.goto(&tampered).await;
    browser.wait_for_heading(invalid).await;
    browser.screenshot(&format!("{lang}-not-me-4-invalid")).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_wasnt_me_in_the_browser_in_english() {
    this_wasnt_me_in_the_browser(
        "en",
        [
            "Secure your account?",
            "Your account is secured",
            "This link was already used",
            "This link does not work",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn this_wasnt_me_in_the_browser_in_vietnamese() {
    this_wasnt_me_in_the_browser(
        "vi",
        [
            "Khóa tài khoản để bảo vệ?",
            "Tài khoản của bạn đã được khóa để bảo vệ",
            "Liên kết này đã được sử dụng",
            "Liên kết này không dùng được",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn didnt_ask_for_this_in_the_browser_in_english() {
    cancel_from_the_mail_in_the_browser("en", ["Cancel this recovery?", "Recovery cancelled"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn didnt_ask_for_this_in_the_browser_in_vietnamese() {
    cancel_from_the_mail_in_the_browser("vi", ["Hủy yêu cầu khôi phục?", "Đã hủy yêu cầu khôi phục"]).await;
}
