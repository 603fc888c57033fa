use std::fmt;

use unicode_normalization::UnicodeNormalization;

use super::PhoneNumber;

/// A username: NFKC, lower-cased, 3–64 characters of letters, digits, `.`, `_`, `-`.
/// Never contains `@` (so it cannot be confused with an email), is not all
/// digits and is nothing a login would read as a phone number
/// (`0049-170-1234567`): such a username could never sign in.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Option<Self> {
        let normalised: String = raw.trim().nfkc().collect::<String>().to_lowercase();
        let length = normalised.chars().count();
        let allowed = normalised
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'));
        let numeric = normalised.chars().all(|c| c.is_ascii_digit());
        let phone = PhoneNumber::parse(&normalised).is_some();
        ((3..=64).contains(&length) && allowed && !numeric && !phone).then_some(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Username({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Username;

    #[test]
    fn usernames_are_case_insensitive_and_nfkc_normalised() {
        let a = Username::parse("Ａlice_01").map(|u| u.to_string());
        assert_eq!(a.as_deref(), Some("alice_01"));
    }

    #[test]
    fn usernames_that_look_like_emails_or_phones_are_refused() {
        for raw in [
            "a@b.c",
            "12345678",
            "ab",
            "with space",
            "0049-170-1234567",
            "0084.90.123.4567",
            "００４９-１７０-１２３４５６７",
        ] {
            assert!(Username::parse(raw).is_none(), "{raw:?} was accepted");
        }
    }
}
