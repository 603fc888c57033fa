//! The OpenAPI 3 document, generated from the routes and types themselves
//! (utoipa) so it cannot drift from the code, and served in English
//! (`/openapi.json`, `/openapi.en.json`) and Vietnamese (`/openapi.vi.json`),
//! as the seed publishes `openapi.oms.en.json` and `openapi.oms.vi.json`.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::Value;
use utoipa::OpenApi;

use super::{diagnostics, error, health, recovery, session, v2};
use crate::config::Settings;
use crate::i18n::{self, Locale};
use crate::services::Services;

#[derive(OpenApi)]
#[openapi(
    info(title = "latchkey", description = "Account recovery and authentication API."),
    paths(
        recovery::start, recovery::verify, recovery::reset_password,
        session::login, session::current, session::refresh, session::logout, session::jwks,
        v2::request, v2::confirm, v2::login, v2::refresh, v2::logout,
        health::alive, health::ready, diagnostics::latency,
    ),
    components(schemas(error::AuthError)),
    tags(
        (name = "Authentication", description = "Account authentication and password recovery."),
        (name = "System & Diagnostics", description = "Health and latency endpoints."),
    )
)]
struct ApiDoc;

pub fn router() -> axum::Router<Services> {
    axum::Router::new()
        .route("/openapi.json", get(default_language))
        .route(
            "/openapi.en.json",
            get(|State(services): State<Services>| async move { Json(document(Locale::En, &services.settings)) }),
        )
        .route(
            "/openapi.vi.json",
            get(|State(services): State<Services>| async move { Json(document(Locale::Vi, &services.settings)) }),
        )
}

async fn default_language(State(services): State<Services>) -> Json<Value> {
    Json(document(services.default_locale(), &services.settings))
}

/// The document with every `summary` and `description` in `locale`, and
/// this configuration's lifespans where a text names one.
pub fn document(locale: Locale, settings: &Settings) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or(Value::Null);
    if locale != Locale::En {
        translate(&mut doc, locale);
    }
    let values = [
        (
            "{recovery_lifespan}",
            i18n::duration(locale, settings.recovery.lifespan),
        ),
        ("{sms_lifespan}", i18n::duration(locale, settings.recovery.sms_lifespan)),
    ];
    fill(&mut doc, &values);
    doc
}

fn fill(value: &mut Value, values: &[(&str, String)]) {
    match value {
        Value::String(text) if text.contains('{') => {
            for (name, with) in values {
                *text = text.replace(name, with);
            }
        }
        Value::Object(map) => map.values_mut().for_each(|child| fill(child, values)),
        Value::Array(items) => items.iter_mut().for_each(|item| fill(item, values)),
        _ => {}
    }
}

fn translate(value: &mut Value, locale: Locale) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(text) if key == "description" || key == "summary" => {
                        if let Some(translated) = i18n::openapi_text(locale, text) {
                            *text = translated.to_owned();
                        }
                    }
                    _ => translate(child, locale),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| translate(item, locale)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::document;
    use crate::i18n::{self, Locale};

    /// Every English description in the document has a Vietnamese one.
    #[test]
    fn every_description_has_a_vietnamese_translation() {
        fn walk(value: &serde_json::Value, missing: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (key, child) in map {
                        match child.as_str() {
                            Some(text) if key == "description" || key == "summary" => {
                                if i18n::openapi_text(Locale::Vi, text).is_none() {
                                    missing.push(text.to_owned());
                                }
                            }
                            _ => walk(child, missing),
                        }
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, missing)),
                _ => {}
            }
        }
        let mut missing = Vec::new();
        let english = serde_json::to_value(<super::ApiDoc as utoipa::OpenApi>::openapi()).unwrap_or_default();
        walk(&english, &mut missing);
        assert!(missing.is_empty(), "untranslated: {missing:#?}");
    }

    /// A lifespan in the document is the configured one, in each language.
    #[test]
    fn lifespans_are_the_configured_ones() {
        let settings = crate::config::Settings {
            recovery: crate::config::RecoverySettings {
                lifespan: std::time::Duration::from_secs(20 * 60),
                sms_lifespan: std::time::Duration::from_secs(5 * 60),
                ..Default::default()
            },
            ..Default::default()
        };
        for (locale, recovery, sms) in [
            (Locale::En, "20 minutes", "5 minutes"),
            (Locale::Vi, "20 phút", "5 phút"),
        ] {
            let text = document(locale, &settings).to_string();
            assert!(
                !text.contains("{recovery_lifespan}") && !text.contains("{sms_lifespan}"),
                "{text}"
            );
            assert!(text.contains(recovery) && text.contains(sms), "{locale:?}");
            assert!(!text.contains("15 minutes") && !text.contains("15 phút"), "{locale:?}");
        }
    }
}
