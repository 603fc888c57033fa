use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// A phone number in E.164 form (`+` and 8–15 digits). NFKC first (so
/// full-width digits and `＋` from an East Asian keyboard are the same
/// number), then spaces, dots, dashes (the hyphens and dashes of copied
/// text too) and parentheses are dropped, and a
/// leading `00` becomes `+`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(raw: &str) -> Option<Self> {
        let compact: String = raw
            .trim()
            .nfkc()
            .filter(|c| {
                !matches!(
                    c,
                    ' ' | '.' | '-' | '(' | ')' | '\u{a0}' | '\u{2010}' | '\u{2012}' | '\u{2013}'
                )
            })
            .collect();
        let digits = compact.strip_prefix('+').or_else(|| compact.strip_prefix("00"))?;
        let valid =
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        valid.then(|| Self(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::PhoneNumber;

    #[test]
    fn phone_numbers_are_normalised_to_e164() {
        let p = PhoneNumber::parse("+84 90 123 4567").map(|p| p.to_string());
        assert_eq!(p.as_deref(), Some("+84901234567"));
        let p = PhoneNumber::parse("0084-(90)-123.4567").map(|p| p.to_string());
        assert_eq!(p.as_deref(), Some("+84901234567"));
    }

    #[test]
    fn hyphens_and_dashes_from_copied_text_are_dropped() {
        for raw in ["+84\u{2010}90\u{2011}123\u{2012}4567", "+84 90 123\u{2013}4567"] {
            let p = PhoneNumber::parse(raw).map(|p| p.to_string());
            assert_eq!(p.as_deref(), Some("+84901234567"), "{raw:?}");
        }
    }

    #[test]
    fn full_width_digits_are_the_same_number() {
        let p = PhoneNumber::parse("＋８４ ９０ １２３ ４５６７").map(|p| p.to_string());
        assert_eq!(p.as_deref(), Some("+84901234567"));
    }

    #[test]
    fn numbers_without_country_code_or_with_letters_are_refused() {
        for raw in ["0901234567", "+84 90 ABC 4567", "+1234", "+1234567890123456"] {
            assert!(PhoneNumber::parse(raw).is_none(), "{raw:?} was accepted");
        }
    }
}
