//! The pages of a "this wasn't me" link (`/ui/report?token=…`). Their `GET`
//! checks the link's signature and changes nothing (mail scanners open
//! links); only the button's `POST` cancels or secures.

use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Page, locale, render, same_origin, token_of};
use crate::error::Error;
use crate::http::error::ApiError;
use crate::http::extract::ClientInfo;
use crate::i18n::{self, Locale};
use crate::report::{self, Outcome};
use crate::services::{Client, Services};
use crate::time::now_ms;

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    page: Page,
    intro: String,
    /// `branding.support_contact`, when set.
    support: Option<String>,
    /// Where the one button posts; none on a page that reports a result.
    action: Option<String>,
    submit: String,
}

fn support(services: &Services, locale: Locale) -> Option<String> {
    let contact = services.settings.branding.support_contact.as_deref()?;
    Some(i18n::text(locale, "ui.report.support", &[("contact", contact)]))
}

fn pause_minutes(services: &Services) -> String {
    services
        .settings
        .recovery
        .pause_after_cancel
        .as_secs()
        .div_ceil(60)
        .to_string()
}

/// A page that only says something: the result, or why the link is no good.
fn said(services: &Services, locale: Locale, status: StatusCode, name: &str) -> Response {
    let minutes = pause_minutes(services);
    render(
        status,
        &ReportPage {
            page: Page::new(services, locale, &format!("ui.report.{name}.title"), None),
            intro: i18n::text(locale, &format!("ui.report.{name}.intro"), &[("minutes", &minutes)]),
            support: support(services, locale),
            action: None,
            submit: String::new(),
        },
    )
}

/// The link's own characters only, for the page's addresses.
fn clean(token: &str) -> String {
    token
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(200)
        .collect()
}

pub(super) async fn page(State(services): State<Services>, client: ClientInfo, RawQuery(query): RawQuery) -> Response {
    let locale = locale(&query, &client);
    let token = clean(&token_of(&query));
    let Ok(opened) = report::open(&services, &token, now_ms()) else {
        return said(&services, locale, StatusCode::UNAUTHORIZED, "invalid");
    };
    match report::spent(&services, &opened).await {
        Ok(true) => return said(&services, locale, StatusCode::OK, "used"),
        Ok(false) => {}
        Err(e) => return ApiError::new(e, locale).into_response(),
    }
    let name = opened.kind.as_str();
    let minutes = pause_minutes(&services);
    render(
        StatusCode::OK,
        &ReportPage {
            page: Page::new(&services, locale, &format!("ui.report.{name}.title"), None).for_link("/ui/report", &token),
            intro: i18n::text(locale, &format!("ui.report.{name}.intro"), &[("minutes", &minutes)]),
            support: support(&services, locale),
            action: Some(format!("/ui/report?lang={locale}&token={token}")),
            submit: i18n::text(locale, &format!("ui.report.{name}.submit"), &[]),
        },
    )
}

pub(super) async fn act(
    State(services): State<Services>,
    client: ClientInfo,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let locale = locale(&query, &client);
    if !same_origin(&headers) {
        return ApiError::new(Error::Forbidden, locale).into_response();
    }
    let who = Client {
        locale,
        ..client.0.clone()
    };
    match report::act(&services, &clean(&token_of(&query)), &who).await {
        Ok(Outcome::Cancelled { .. }) => said(&services, locale, StatusCode::OK, "cancelled"),
        Ok(Outcome::Secured) => said(&services, locale, StatusCode::OK, "secured"),
        Ok(Outcome::AlreadyUsed) => said(&services, locale, StatusCode::OK, "used"),
        Err(Error::Internal(e)) => ApiError::new(Error::Internal(e), locale).into_response(),
        Err(_) => said(&services, locale, StatusCode::UNAUTHORIZED, "invalid"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_report_kind_has_its_page_texts() {
        for kind in [
            crate::report::ReportKind::NotRequested,
            crate::report::ReportKind::NotMe,
        ] {
            for part in ["title", "intro", "submit"] {
                let key = format!("ui.report.{}.{part}", kind.as_str());
                assert_ne!(super::i18n::text(super::Locale::Vi, &key, &[("minutes", "60")]), key);
            }
        }
    }
}
