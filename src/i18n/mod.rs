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
    pub const ALL: [Locale; 2] = [Locale::En, Locale::Vi];

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

/// A configured duration as a person reads it: "15 minutes", "1 hour",
/// "90 seconds"; "15 phút", "1 giờ", "90 giây".
pub fn duration(locale: Locale, duration: std::time::Duration) -> String {
    let secs = duration.as_secs();
    let (n, unit) = if secs >= 3600 && secs.is_multiple_of(3600) {
        (secs / 3600, ("hour", "giờ"))
    } else if secs >= 60 && secs.is_multiple_of(60) {
        (secs / 60, ("minute", "phút"))
    } else {
        (secs, ("second", "giây"))
    };
    match locale {
        Locale::En if n == 1 => format!("1 {}", unit.0),
        Locale::En => format!("{n} {}s", unit.0),
        Locale::Vi => format!("{n} {}", unit.1),
    }
}

/// A moment (Unix milliseconds) as a person reads it in a notice: in
/// English in UTC, "1 December 2026, 09:30 UTC" (English readers live in
/// every zone); in Vietnamese in Vietnam's one zone, UTC+7 without daylight
/// saving, "16:30 ngày 01/12/2026 (giờ Việt Nam)".
pub fn datetime(locale: Locale, unix_ms: i64) -> String {
    let utc =
        time::OffsetDateTime::from_unix_timestamp(unix_ms.div_euclid(1000)).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    match locale {
        Locale::En => format!(
            "{} {} {}, {:02}:{:02} UTC",
            utc.day(),
            utc.month(),
            utc.year(),
            utc.hour(),
            utc.minute()
        ),
        Locale::Vi => {
            let vietnam = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
            let at = utc.checked_to_offset(vietnam).unwrap_or(utc);
            format!(
                "{:02}:{:02} ngày {:02}/{:02}/{} (giờ Việt Nam)",
                at.hour(),
                at.minute(),
                at.day(),
                u8::from(at.month()),
                at.year()
            )
        }
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

/// A count as a number, so plural variants (`[one]`) can select on it;
/// anything else (a code with a leading zero included) as the text it is.
fn argument(value: &str) -> FluentValue<'_> {
    let counted = !value.is_empty() && value.len() <= 9 && value.bytes().all(|b| b.is_ascii_digit());
    match counted && (value == "0" || !value.starts_with('0')) {
        true => FluentValue::try_number(value),
        false => FluentValue::from(value),
    }
}

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
        .map(|(name, value)| (Cow::Owned((*name).to_owned()), argument(value)))
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
    fn messages_are_filled_in_and_counts_pick_their_plural() {
        assert_eq!(
            text(Locale::Vi, "error.password_too_short", &[("min", "15")]),
            "Mật khẩu phải có ít nhất 15 ký tự."
        );
        assert_eq!(
            text(Locale::En, "error.too_many_requests", &[("seconds", "1")]),
            "Too many requests. Try again in 1 second."
        );
        assert_eq!(
            text(Locale::En, "error.rate_limited", &[("minutes", "42")]),
            "Recovery attempts exceeded. Try again in 42 minutes."
        );
        assert_eq!(
            text(Locale::Vi, "error.conflict", &[("what", "username")]),
            "Tên đăng nhập này đã được sử dụng."
        );
        assert_eq!(text(Locale::Vi, "no.such.key", &[]), "no.such.key");
    }

    /// A Vietnamese message may only fill in numbers and what the person
    /// typed: a value the code supplies as English text (a serde error, the
    /// word "username") would put English inside a Vietnamese sentence.
    #[test]
    fn no_vietnamese_message_interpolates_an_english_word() {
        const NEUTRAL: [&str; 6] = ["min", "max", "minutes", "seconds", "account", "contact"];
        let vi = include_str!("../../locales/vi/latchkey.ftl");
        let mut rest = vi;
        while let Some(at) = rest.find("{ $") {
            let name: String = rest[at + 3..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let after = rest[at + 3 + name.len()..].trim_start();
            // `{ $what -> … }` only selects a Vietnamese phrase.
            if !after.starts_with("->") {
                assert!(NEUTRAL.contains(&name.as_str()), "vi interpolates ${name}");
            }
            rest = &rest[at + 3..];
        }
    }

    /// The English words a text left untranslated would show: none may
    /// appear in a Vietnamese catalog entry, OpenAPI text or message
    /// template, outside code (`recovery.lifespan`), template syntax and URLs.
    #[test]
    fn no_vietnamese_text_is_left_in_english() -> anyhow::Result<()> {
        const ENGLISH: &[&str] = &[
            "the", "and", "your", "you", "with", "for", "this", "that", "not", "was", "has", "are", "from", "please",
            "code", "password", "account", "session", "recovery", "request", "link", "sign", "valid", "error",
            "invalid", "missing", "expired", "wrong", "new", "send", "sent", "reset", "verify", "login", "refresh",
            "family", "revoked", "unknown", "too", "many", "hello", "support", "contact", "minutes", "secured",
        ];
        fn prose(text: &str) -> String {
            // Drop `code`, {{ … }}, {% … %}, { $… } and URLs.
            let mut out = String::new();
            let mut rest = text;
            while let Some(c) = rest.chars().next() {
                let skip = |open: &str, close: &str, rest: &str| {
                    rest.starts_with(open)
                        .then(|| rest[open.len()..].find(close).map(|end| open.len() + end + close.len()))
                        .flatten()
                };
                let jump = skip("`", "`", rest)
                    .or_else(|| skip("{{", "}}", rest))
                    .or_else(|| skip("{%", "%}", rest))
                    .or_else(|| skip("{", "}", rest))
                    .or_else(|| skip("<", ">", rest))
                    .or_else(|| {
                        rest.starts_with("http")
                            .then(|| rest.find(char::is_whitespace).unwrap_or(rest.len()))
                    });
                match jump {
                    Some(n) => {
                        out.push(' ');
                        rest = &rest[n..];
                    }
                    None => {
                        out.push(c);
                        rest = &rest[c.len_utf8()..];
                    }
                }
            }
            out
        }
        let mut texts: Vec<(String, String)> = super::openapi_vi::TEXTS
            .iter()
            .map(|(_, vi)| ("openapi".to_owned(), (*vi).to_owned()))
            .collect();
        for line in include_str!("../../locales/vi/latchkey.ftl").lines() {
            if let Some((id, value)) = line.split_once(" = ") {
                texts.push((id.to_owned(), value.to_owned()));
            }
        }
        for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/messages/vi"))? {
            let path = entry?.path();
            let text = std::fs::read_to_string(&path)?;
            texts.push((path.display().to_string(), text));
        }
        let mut found = Vec::new();
        for (whence, text) in &texts {
            for word in prose(text).split(|c: char| !c.is_alphanumeric()) {
                if ENGLISH.contains(&word.to_lowercase().as_str()) {
                    found.push(format!("{whence}: {word:?} in {text:?}"));
                }
            }
        }
        assert!(found.is_empty(), "English in Vietnamese texts:\n{}", found.join("\n"));
        Ok(())
    }

    #[test]
    fn notices_say_when_in_each_language() {
        let ms = 1_764_581_400_000; // 2025-12-01T09:30:00Z
        assert_eq!(super::datetime(Locale::En, ms), "1 December 2025, 09:30 UTC");
        assert_eq!(super::datetime(Locale::Vi, ms), "16:30 ngày 01/12/2025 (giờ Việt Nam)");
        // Past 17:00 UTC it is the next day in Vietnam.
        let late = ms + 8 * 3600 * 1000;
        assert_eq!(
            super::datetime(Locale::Vi, late),
            "00:30 ngày 02/12/2025 (giờ Việt Nam)"
        );
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
