//! The browser UI for recovery (`/ui/recovery`): address → code → new
//! password → done. Server-rendered, works without JavaScript, localized by
//! `?lang=` (kept for the whole flow) or `Accept-Language`, and driven by the
//! same domain functions, limits and courier as the JSON API.
//!
//! Pages carry a strict CSP, `X-Frame-Options: DENY` and `Referrer-Policy:
//! no-referrer`; form posts must come from this origin (`Origin` /
//! `Sec-Fetch-Site`) and the flow cookie is `SameSite=Strict`.

mod report;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::domain::{EmailAddress, Login};
use crate::error::Error;
use crate::http::error::{ApiError, message_of, status_of};
use crate::http::extract::ClientInfo;
use crate::http::flow_cookie::FlowCookie;
use crate::i18n::{self, Locale};
use crate::recovery::{self, Unknown};
use crate::services::{Client, Services};

const COOKIE: FlowCookie = FlowCookie {
    name: "latchkey_ui",
    path: "/ui/recovery",
};
/// The address a browser typed, sealed under the server secret, for "send a
/// new code"; it lives as long as a flow.
const LOGIN_COOKIE: FlowCookie = FlowCookie {
    name: "latchkey_ui_login",
    path: "/ui/recovery",
};
/// The pages' CSP: nothing but this origin, and the logo's origin for images.
fn csp(settings: &crate::config::Settings) -> HeaderValue {
    let logo = logo_of(settings)
        .and_then(https_origin)
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    let policy = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'{logo}; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
}

pub fn router(settings: &crate::config::Settings) -> Router<Services> {
    Router::new()
        .route("/ui/recovery", get(start_page))
        .route("/ui/recovery/start", post(start))
        .route("/ui/recovery/code", get(code_page))
        .route("/ui/recovery/resend", post(resend))
        .route("/ui/recovery/link", get(link_page).post(link))
        .route("/ui/recovery/continue", get(continue_page).post(continue_link))
        .route("/ui/report", get(report::page).post(report::act))
        .route("/ui/recovery/verify", post(verify))
        .route("/ui/recovery/password", get(password_page))
        .route("/ui/recovery/reset", post(reset))
        .route("/ui/recovery/done", get(done_page))
        .route("/ui/static/style.css", get(style))
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            csp(settings),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// What every page shows: the language, the title, an error if any.
pub struct Page {
    pub lang: &'static str,
    /// The page's own address and query up to `lang=`, for the language switcher.
    pub here: String,
    pub title: String,
    pub error: Option<String>,
    /// `branding.product_name`, and `branding.logo_url` when it is https.
    pub product: String,
    pub logo: Option<String>,
    locale: Locale,
}

/// The logo a page may show: an https URL only (the CSP allows its origin).
fn logo_of(settings: &crate::config::Settings) -> Option<&str> {
    settings
        .branding
        .logo_url
        .as_deref()
        .filter(|url| https_origin(url).is_some())
}

/// `https://host[:port]` of an https URL without credentials or odd characters.
fn https_origin(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    let plain = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':');
    (!host.is_empty() && host.chars().all(plain)).then(|| &url[..8 + end])
}

impl Page {
    fn new(services: &Services, locale: Locale, title_key: &str, error: Option<String>) -> Self {
        let here = match title_key {
            "ui.code.title" => "/ui/recovery/code",
            "ui.password.title" => "/ui/recovery/password",
            "ui.done.title" => "/ui/recovery/done",
            _ => "/ui/recovery",
        };
        Self {
            lang: locale.as_str(),
            here: format!("{here}?"),
            title: i18n::text(locale, title_key, &[]),
            error,
            product: services.settings.branding.product_name.clone(),
            logo: logo_of(&services.settings).map(str::to_owned),
            locale,
        }
    }

    /// A page opened by a link: its language switcher keeps the link's token.
    fn for_link(mut self, path: &str, token: &str) -> Self {
        self.here = format!("{path}?token={token}&");
        self
    }

    /// A localized string, for the templates.
    pub fn t(&self, key: &str) -> String {
        i18n::text(self.locale, key, &[])
    }
}

#[derive(Template)]
#[template(path = "start.html")]
struct StartPage {
    page: Page,
}

#[derive(Template)]
#[template(path = "code.html")]
struct CodePage {
    page: Page,
    intro: String,
}

impl CodePage {
    /// The code page, saying how long the code lives (`recovery.lifespan`).
    fn new(services: &Services, page: Page) -> Self {
        let minutes = services.settings.recovery.lifespan.as_secs().div_ceil(60).to_string();
        let intro = i18n::text(page.locale, "ui.code.intro", &[("minutes", &minutes)]);
        Self { page, intro }
    }
}

#[derive(Template)]
#[template(path = "link.html")]
struct LinkPage {
    page: Page,
    intro: String,
    /// Whose recovery this is, when the page may say so.
    account: Option<String>,
    /// Where the one button posts.
    action: String,
    submit: String,
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    page: Page,
    /// Whose password this sets, masked, when the browser's flow is verified.
    account: Option<String>,
    policy: String,
    min_length: usize,
}

#[derive(Template)]
#[template(path = "done.html")]
struct DonePage {
    page: Page,
    return_url: String,
}

fn render(status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            ApiError::new(Error::Internal(anyhow::anyhow!("template")), Locale::En).into_response()
        }
    }
}

/// A page answering `error`: the status the API would give it, and its
/// `Retry-After` where the API's answer carries one.
fn render_failure(error: &Error, template: &impl Template) -> Response {
    let mut response = render(status_of(error), template);
    if let Some(secs) = error.retry_after_secs() {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// `?lang=` when it names a supported language, else the client's `Accept-Language`.
fn locale(query: &Option<String>, client: &ClientInfo) -> Locale {
    query
        .as_deref()
        .and_then(|q| form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "lang"))
        .and_then(|(_, v)| Locale::parse(&v))
        .unwrap_or(client.0.locale)
}

fn client_in(client: &ClientInfo, locale: Locale) -> Client {
    Client {
        locale,
        ..client.0.clone()
    }
}

fn field(body: &Bytes, name: &str) -> String {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// A form post must come from a page of this origin. Browsers say where a
/// request comes from with `Sec-Fetch-Site`; older ones only with `Origin`
/// (which our `no-referrer` policy turns into `null` for form posts, so it is
/// only consulted when `Sec-Fetch-Site` is absent). A request with neither is
/// not a browser's, and cannot ride a victim's cookies.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin" || site == "none";
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => host.is_some_and(|host| {
            origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .is_some_and(|o| o.eq_ignore_ascii_case(host))
        }),
    }
}

fn redirect_with_cookie(services: &Services, to: String, cookie: Option<&str>) -> Response {
    let mut response = Redirect::to(&to).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, COOKIE.set(services, cookie));
    response
}

fn failure(error: &Error, locale: Locale) -> Option<String> {
    if let Error::Internal(cause) = error {
        tracing::error!(error = %format!("{cause:#}"), "UI request failed");
    }
    Some(message_of(error, locale))
}

async fn start_page(State(services): State<Services>, client: ClientInfo, RawQuery(query): RawQuery) -> Response {
    let locale = locale(&query, &client);
    render(
        StatusCode::OK,
        &StartPage {
            page: Page::new(&services, locale, "ui.start.title", None),
        },
    )
}

async fn start(
    State(services): State<Services>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let locale = locale(&query, &client);
    if !same_origin(&headers) {
        return ApiError::new(Error::Forbidden, locale).into_response();
    }
    start_for(&services, &client, locale, &field(&body, "email")).await
}

/// Starts a flow for a typed address and moves on to the code page, keeping
/// the address (sealed) so "send a new code" does not make the person type it
/// again.
async fn start_for(services: &Services, client: &ClientInfo, locale: Locale, typed: &str) -> Response {
    let outcome = match EmailAddress::parse(typed) {
        None => Err(Error::invalid("error.invalid_email")),
        Some(email) => recovery::start(
            services,
            &Login::Email(email.clone()),
            &client_in(client, locale),
            Unknown::Conceal,
        )
        .await
        .map(|started| (started, email)),
    };
    match outcome {
        Ok((started, email)) => {
            let mut response = redirect_with_cookie(
                services,
                format!("/ui/recovery/code?lang={locale}"),
                Some(started.secret.expose()),
            );
            if let Ok(sealed) = services.secret.seal(email.as_str().as_bytes()) {
                let value = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, sealed);
                response
                    .headers_mut()
                    .append(header::SET_COOKIE, LOGIN_COOKIE.set(services, Some(&value)));
            }
            response
        }
        Err(e) => render_failure(
            &e,
            &StartPage {
                page: Page::new(services, locale, "ui.start.title", failure(&e, locale)),
            },
        ),
    }
}

/// "Send a new code" on the code page: a new start for the address this
/// browser typed, or the address page when it has none (or it expired).
async fn resend(
    State(services): State<Services>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let locale = locale(&query, &client);
    if !same_origin(&headers) {
        return ApiError::new(Error::Forbidden, locale).into_response();
    }
    let typed = LOGIN_COOKIE
        .read(&headers)
        .and_then(|v| base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v).ok())
        .and_then(|sealed| services.secret.unseal(&sealed).ok())
        .and_then(|plain| String::from_utf8(plain).ok());
    match typed {
        Some(typed) => start_for(&services, &client, locale, &typed).await,
        None => Redirect::to(&format!("/ui/recovery?lang={locale}")).into_response(),
    }
}

async fn code_page(State(services): State<Services>, client: ClientInfo, RawQuery(query): RawQuery) -> Response {
    let locale = locale(&query, &client);
    render(
        StatusCode::OK,
        &CodePage::new(&services, Page::new(&services, locale, "ui.code.title", None)),
    )
}

fn token_of(query: &Option<String>) -> String {
    field(&Bytes::from(query.clone().unwrap_or_default()), "token")
}

fn expired_link(services: &Services, locale: Locale) -> Response {
    let error = Error::RecoverySessionExpired;
    render_failure(
        &error,
        &StartPage {
            page: Page::new(services, locale, "ui.start.title", failure(&error, locale)),
        },
    )
}

/// The link support staff give out with a code (`recovery_link` of the admin
/// API). Its `GET` changes nothing (mail scanners open links): it shows
/// whose recovery this is and one button, whose `POST` binds the browser.
/// Only support-issued flows are accepted.
async fn link_page(State(services): State<Services>, client: ClientInfo, RawQuery(query): RawQuery) -> Response {
    let locale = locale(&query, &client);
    let token = token_of(&query);
    let secret = recovery::token::open(&services, &token);
    match recovery::support_flow_account(&services, secret.as_deref()).await {
        Ok(account) => render(
            StatusCode::OK,
            &LinkPage {
                page: Page::new(&services, locale, "ui.link.title", None).for_link("/ui/recovery/link", &token),
                intro: i18n::text(locale, "ui.link.intro", &[("account", &account)]),
                account: Some(account),
                action: format!("/ui/recovery/link?lang={locale}&token={token}"),
                submit: i18n::text(locale, "ui.link.submit", &[]),
            },
        ),
        Err(_) => expired_link(&services, locale),
    }
}

async fn link(
    State(services): State<Services>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let locale = locale(&query, &client);
    if !same_origin(&headers) {
        return ApiError::new(Error::Forbidden, locale).into_response();
    }
    let secret = recovery::token::open(&services, &token_of(&query));
    match recovery::support_flow_account(&services, secret.as_deref()).await {
        Ok(_) => redirect_with_cookie(&services, format!("/ui/recovery/code?lang={locale}"), secret.as_deref()),
        Err(_) => expired_link(&services, locale),
    }
}

/// The link in a code mail. Its `GET` (and `HEAD`) reads nothing and
/// changes nothing — corporate mail scanners open every link — and shows one
/// button; only the button's `POST` proves the code and binds this browser.
async fn continue_page(State(services): State<Services>, client: ClientInfo, RawQuery(query): RawQuery) -> Response {
    let locale = locale(&query, &client);
    let token = token_of(&query);
    let token: String = token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(128)
        .collect();
    render(
        StatusCode::OK,
        &LinkPage {
            page: Page::new(&services, locale, "ui.continue.title", None).for_link("/ui/recovery/continue", &token),
            intro: i18n::text(locale, "ui.continue.intro", &[]),
            account: None,
            action: format!("/ui/recovery/continue?lang={locale}&token={token}"),
            submit: i18n::text(locale, "ui.continue.submit", &[]),
        },
    )
}

async fn continue_link(
    State(services): State<Services>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let locale = locale(&query, &client);
    if !same_origin(&headers) {
        return ApiError::new(Error::Forbidden, locale).into_response();
    }
    match recovery::continue_by_link(&services, &token_of(&query), &client_in(&client, locale)).await {
        Ok(secret) => redirect_with_cookie(
            &services,
            format!("/ui/recovery/password?lang={locale}"),
            Some(secret.expose()),
        ),
        Err(Error::Internal(e)) => ApiError::new(Error::Internal(e), locale).into_response(),
        Err(_) => expired_link(&services, locale),
    }
}

async fn verify(
    State(services): State<Services>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let locale = locale(&query, &client);
    if !same_origin(&headers) {
        return ApiError::new(Error::Forbidden, locale).into_response();
    }
    let cookie = COOKIE.read(&headers);
    let code = field(&body, "code");
    match recovery::verify(&services, cookie.as_deref(), &code, &client_in(&client, locale)).await {
        Ok(secret) => redirect_with_cookie(
            &services,
            format!("/ui/recovery/password?lang={locale}"),
            Some(secret.expose()),
        ),
        Err(e) => render_failure(
            &e,
            &CodePage::new(
                &services,
                Page::new(&services, locale, "ui.code.title", failure(&e, locale)),
            ),
        ),
    }
}

/// The new-password page for the flow `cookie` opens, blank or answering `error`.
async fn password_page_for(
    services: &Services,
    locale: Locale,
    cookie: Option<&str>,
    error: Option<&Error>,
) -> Response {
    let min_length = services.settings.password.min_length;
    let account = recovery::verified_flow_account(services, cookie)
        .await
        .ok()
        .map(|account| i18n::text(locale, "ui.password.account", &[("account", &account)]));
    let page = PasswordPage {
        page: Page::new(
            services,
            locale,
            "ui.password.title",
            error.and_then(|e| failure(e, locale)),
        ),
        account,
        policy: i18n::text(locale, "ui.password.policy", &[("min", &min_length.to_string())]),
        min_length,
    };
    match error {
        Some(error) => render_failure(error, &page),
        None => render(StatusCode::OK, &page),
    }
}

async fn password_page(
    State(services): State<Services>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let cookie = COOKIE.read(&headers);
    password_page_for(&services, locale(&query, &client), cookie.as_deref(), None).await
}

async fn reset(
    State(services): State<Services>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let locale = locale(&query, &client);
    if !same_origin(&headers) {
        return ApiError::new(Error::Forbidden, locale).into_response();
    }
    let cookie = COOKIE.read(&headers);
    let password = field(&body, "password");
    match recovery::reset(&services, cookie.as_deref(), &password, &client_in(&client, locale)).await {
        Ok(_) => {
            let mut done = redirect_with_cookie(&services, format!("/ui/recovery/done?lang={locale}"), None);
            let forget = LOGIN_COOKIE.set(&services, None);
            done.headers_mut().append(header::SET_COOKIE, forget);
            done
        }
        // The flow is still verified: the person tries again on this page,
        // after a pause when the server was too busy to hash.
        Err(e @ (Error::PasswordPolicy(_) | Error::Overloaded { .. })) => {
            password_page_for(&services, locale, cookie.as_deref(), Some(&e)).await
        }
        Err(e) => render_failure(
            &e,
            &StartPage {
                page: Page::new(&services, locale, "ui.start.title", failure(&e, locale)),
            },
        ),
    }
}

async fn done_page(State(services): State<Services>, client: ClientInfo, RawQuery(query): RawQuery) -> Response {
    let locale = locale(&query, &client);
    render(
        StatusCode::OK,
        &DonePage {
            page: Page::new(&services, locale, "ui.done.title", None),
            return_url: services.settings.return_url().to_owned(),
        },
    )
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("style.css"),
    )
}
