//! Languages latchkey speaks (English, Vietnamese), choosing one for a
//! request, and the text of every message a person reads.
//!
//! Catalogs are plain tables so a missing key is caught by a unit test; this
//! module never decides *what* to say, only how to say it.

mod catalog;
mod openapi_vi;

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

/// The text for `key` in `locale`, with `{name}` placeholders filled from `args`.
/// An unknown key falls back to English, then to the key itself.
pub fn text(locale: Locale, key: &str, args: &[(&str, &str)]) -> String {
    let template = catalog::lookup(locale, key)
        .or_else(|| catalog::lookup(Locale::En, key))
        .unwrap_or(key);
    let mut out = template.to_owned();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{Locale, catalog};

    #[test]
    fn every_key_exists_in_both_catalogs() {
        let en: Vec<&str> = catalog::EN.iter().map(|(k, _)| *k).collect();
        let vi: Vec<&str> = catalog::VI.iter().map(|(k, _)| *k).collect();
        for key in &en {
            assert!(vi.contains(key), "{key} is missing in vi");
        }
        for key in &vi {
            assert!(en.contains(key), "{key} is missing in en");
        }
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
