//! Languages latchkey speaks (English, Vietnamese), choosing one for a
//! request, and the text of every message a person reads.
//!
//! The catalogs are Fluent files (`locales/en`, `locales/vi`) compiled into
//! the binary; a unit test fails when a message exists in one and not the
//! other. This module never decides *what* to say, only how to say it.

mod openapi_vi;

use std::borrow::Cow;
use std::collections::HashMap;

use fluent_templates::fluent_bundle::FluentValue;
use fluent_templates::{LanguageIdentifier, Loader, langid};

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Locale {
    #[default]
    En,
    Vi,
}

impl Locale {
    pub fn parse(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Locale::En),
            "vi" => Some(Locale::Vi),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::Vi => "vi",
        }
    }

    /// Picks the best supported language from an `Accept-Language` header
    /// (quality values honoured, `vi-VN` → `vi`), else `default`.
    pub fn negotiate(accept_language: Option<&str>, default: Locale) -> Locale {
        let Some(header) = accept_language else { return default };
        let mut best: Option<(f32, usize, Locale)> = None;
        for (position, item) in header.split(',').enumerate() {
            let mut parts = item.split(';');
            let tag = parts.next().unwrap_or("").trim();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if quality <= 0.0 {
                continue;
            }
            let Some(locale) = Locale::parse(tag) else { continue };
            // Higher quality wins; on a tie the earlier entry wins.
            let better = match best {
                None => true,
                Some((q, p, _)) => quality > q || (quality == q && position < p),
            };
            if better {
                best = Some((quality, position, locale));
            }
        }
        best.map_or(default, |(_, _, locale)| locale)
    }
}

impl fmt::Display for Locale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The OpenAPI description `english` in `locale` (`None` when untranslated).
pub fn openapi_text(locale: Locale, english: &str) -> Option<&'static str> {
    match locale {
        Locale::En => None,
        Locale::Vi => openapi_vi::TEXTS
            .iter()
            .find(|(en, _)| *en == english)
            .map(|(_, vi)| *vi),
    }
}

fluent_templates::static_loader! {
    static CATALOGS = {
        locales: "./locales",
        fallback_language: "en",
        // Plain text: no Unicode isolation marks around interpolated values.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

const EN: LanguageIdentifier = langid!("en");
const VI: LanguageIdentifier = langid!("vi");

/// The text for `key` (e.g. `error.invalid_code`) in `locale`, with `{ $name }`
/// placeholders filled from `args`. An unknown key falls back to English,
/// then to the key itself.
pub fn text(locale: Locale, key: &str, args: &[(&str, &str)]) -> String {
    let id = key.replace('.', "-");
    let lang = match locale {
        Locale::En => &EN,
        Locale::Vi => &VI,
    };
    let args: HashMap<Cow<'static, str>, FluentValue<'_>> = args
        .iter()
        .map(|(name, value)| (Cow::Owned((*name).to_owned()), FluentValue::from(*value)))
        .collect();
    CATALOGS
        .try_lookup_complete(lang, &id, Some(&args))
        .unwrap_or_else(|| key.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{Locale, text};

    fn message_ids(ftl: &str) -> std::collections::BTreeSet<&str> {
        ftl.lines()
            .filter(|line| line.starts_with(|c: char| c.is_ascii_alphabetic()))
            .filter_map(|line| line.split_once(" =").map(|(id, _)| id.trim()))
            .collect()
    }

    #[test]
    fn every_message_exists_in_both_catalogs() {
        let en = message_ids(include_str!("../../locales/en/latchkey.ftl"));
        let vi = message_ids(include_str!("../../locales/vi/latchkey.ftl"));
        assert!(en.len() > 40, "catalog not read");
        assert_eq!(
            en.difference(&vi).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "missing in vi"
        );
        assert_eq!(
            vi.difference(&en).collect::<Vec<_>>(),
            Vec::<&&str>::new(),
            "missing in en"
        );
    }

    #[test]
    fn messages_are_filled_in_and_multiline_bodies_keep_their_lines() {
        assert_eq!(
            text(Locale::Vi, "error.password_too_short", &[("min", "15")]),
            "Mật khẩu phải có ít nhất 15 ký tự."
        );
        let body = text(
            Locale::En,
            "mail.recovery_code.body",
            &[("code", "123456"), ("minutes", "15")],
        );
        assert!(body.starts_with("Hello,\n\nSomeone"), "{body:?}");
        assert!(body.contains("Your recovery code is: 123456\n"), "{body:?}");
        assert_eq!(text(Locale::Vi, "no.such.key", &[]), "no.such.key");
    }

    #[test]
    fn accept_language_picks_the_highest_quality_supported_language() {
        assert_eq!(
            Locale::negotiate(Some("vi-VN,vi;q=0.9,en;q=0.8"), Locale::En),
            Locale::Vi
        );
        assert_eq!(
            Locale::negotiate(Some("fr, en;q=0.5, vi;q=0.7"), Locale::En),
            Locale::Vi
        );
        assert_eq!(Locale::negotiate(Some("fr"), Locale::Vi), Locale::Vi);
        assert_eq!(Locale::negotiate(Some("vi;q=0, en"), Locale::Vi), Locale::En);
        assert_eq!(Locale::negotiate(None, Locale::En), Locale::En);
    }
}
