use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

/// Longest password accepted, in bytes (NIST SP 800-63B-4 asks for at least
/// 64 characters; beyond this Argon2 input size is only a denial of service).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// The part of a password the strength estimator reads: its cost grows
/// quickly with length, and past this a password is long enough anyway.
const ESTIMATOR_PREFIX_CHARS: usize = 64;

/// Lowest zxcvbn score (0–4) accepted.
const MIN_STRENGTH_SCORE: u8 = 3;

/// Why a password was refused; the HTTP layer turns this into a localized message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyViolation {
    TooShort { min: usize },
    TooLong { max_bytes: usize },
    TooWeak,
    ContainsIdentifier,
}

#[derive(Debug, Clone, Copy)]
pub struct PasswordPolicy {
    pub min_length: usize,
}

/// A password that passed the policy for a given account. NFKC-normalised
/// (NIST SP 800-63B-4 §3.1.1.2) so the same typed password always hashes the
/// same way.
pub struct NewPassword(SecretString);

/// A password that passed every rule that does not depend on the account:
/// length and strength. The account's rule (`for_account`) comes after, so a
/// flow can refuse a weak password before a code attempt is spent without
/// telling anything about the account behind it.
pub struct StrongPassword(SecretString);

/// The one form a password is hashed and checked in: NFKC, so text typed
/// decomposed (NFD, as some Vietnamese keyboards send it) or in full-width
/// forms is the same password as its composed form.
pub fn normalise_password(raw: &str) -> String {
    raw.nfkc().collect()
}

/// One character as the identifier rule compares it: lowercase, with the
/// look-alike digits and symbols people substitute for letters (zxcvbn's
/// l33t table) folded onto the letter, and `l` onto `i` (both are `1`).
fn fold(c: char) -> char {
    match c {
        '4' | '@' => 'a',
        '8' => 'b',
        '(' | '{' | '[' | '<' => 'c',
        '3' => 'e',
        '6' | '9' => 'g',
        '1' | '!' | '|' | 'l' | 'L' => 'i',
        '0' => 'o',
        '$' | '5' => 's',
        '+' | '7' => 't',
        '%' => 'x',
        '2' => 'z',
        other => other.to_lowercase().next().unwrap_or(other),
    }
}

fn folded(text: &str) -> String {
    text.chars().map(fold).collect()
}

impl PasswordPolicy {
    /// Every rule at once: `strength`, then the account's identifiers.
    pub fn check(&self, raw: &str, identifiers: &[&str]) -> Result<NewPassword, PolicyViolation> {
        self.strength(raw)?.for_account(identifiers)
    }

    /// Length, then zxcvbn's strength estimate: the one time it runs for
    /// this password. zxcvbn sees no account data; `for_account` handles it.
    pub fn strength(&self, raw: &str) -> Result<StrongPassword, PolicyViolation> {
        if raw.len() > MAX_PASSWORD_BYTES {
            return Err(PolicyViolation::TooLong {
                max_bytes: MAX_PASSWORD_BYTES,
            });
        }
        let normalised = normalise_password(raw);
        if normalised.chars().count() < self.min_length.max(1) {
            return Err(PolicyViolation::TooShort {
                min: self.min_length.max(1),
            });
        }
        let prefix: String = normalised.chars().take(ESTIMATOR_PREFIX_CHARS).collect();
        let score = u8::from(zxcvbn::zxcvbn(&prefix, &[]).score());
        if score < MIN_STRENGTH_SCORE {
            return Err(PolicyViolation::TooWeak);
        }
        Ok(StrongPassword(SecretString::from(normalised)))
    }
}

impl StrongPassword {
    /// Refuses a password that contains one of the account's identifiers
    /// (email, its local part, username) of three characters or more —
    /// forwards, backwards or spelled with look-alike digits and symbols.
    /// Where zxcvbn, given the identifiers, would only lower the score, this
    /// refuses outright.
    pub fn for_account(self, identifiers: &[&str]) -> Result<NewPassword, PolicyViolation> {
        let forwards = folded(self.0.expose_secret());
        let backwards: String = forwards.chars().rev().collect();
        let contains_identifier = identifiers
            .iter()
            .map(|i| folded(i.trim()))
            .filter(|i| i.chars().count() >= 3)
            .any(|i| forwards.contains(&i) || backwards.contains(&i));
        if contains_identifier {
            return Err(PolicyViolation::ContainsIdentifier);
        }
        Ok(NewPassword(self.0))
    }
}

impl NewPassword {
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(…)")
    }
}

#[cfg(test)]
mod tests {
    use super::{PasswordPolicy, PolicyViolation};

    const POLICY: PasswordPolicy = PasswordPolicy { min_length: 15 };

    #[test]
    fn a_long_unpredictable_passphrase_is_accepted() {
        assert!(POLICY.check("correct horse battery staple 42", &[]).is_ok());
    }

    #[test]
    fn passwords_shorter_than_the_minimum_are_refused() {
        assert_eq!(
            POLICY.check("Tr0ub4dor&3", &[]).err(),
            Some(PolicyViolation::TooShort { min: 15 })
        );
    }

    #[test]
    fn predictable_long_passwords_are_refused() {
        assert_eq!(
            POLICY.check("aaaaaaaaaaaaaaaaaaaa", &[]).err(),
            Some(PolicyViolation::TooWeak)
        );
        assert_eq!(
            POLICY.check("password12345678", &[]).err(),
            Some(PolicyViolation::TooWeak)
        );
    }

    #[test]
    fn passwords_containing_the_email_or_username_are_refused() {
        assert_eq!(
            POLICY
                .check("xq alice@example.com 93", &["alice@example.com", "alice"])
                .err(),
            Some(PolicyViolation::ContainsIdentifier)
        );
        assert_eq!(
            POLICY
                .check("Alice-rides-purple-zebras", &["alice@example.com", "alice"])
                .err(),
            Some(PolicyViolation::ContainsIdentifier)
        );
    }

    #[test]
    fn identifiers_spelled_backwards_or_with_look_alikes_are_refused() {
        for password in [
            "xq 4l1c3 rides purple zebras",
            "xq ecila rides purple zebras",
            "$ecret-B0B-l0ves-cats",
        ] {
            assert_eq!(
                POLICY.check(password, &["alice@example.com", "alice", "bob"]).err(),
                Some(PolicyViolation::ContainsIdentifier),
                "{password}"
            );
        }
        assert!(POLICY.check("xq 4l1c3 rides purple zebras", &["carol"]).is_ok());
    }

    #[test]
    fn passwords_over_1024_bytes_are_refused() {
        let long = "x".repeat(1025);
        assert!(matches!(POLICY.check(&long, &[]), Err(PolicyViolation::TooLong { .. })));
    }
}
