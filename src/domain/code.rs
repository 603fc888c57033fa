use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A six-digit one-time recovery code. Its `Debug` never shows the digits.
#[derive(Clone)]
pub struct RecoveryCode(SecretString);

impl RecoveryCode {
    /// A fresh code from the operating system's CSPRNG, uniform over 000000–999999.
    pub fn generate() -> Self {
        let n = crate::random::below(1_000_000);
        Self(SecretString::from(format!("{n:06}")))
    }

    /// Accepts exactly six ASCII digits, ignoring surrounding spaces.
    pub fn parse(raw: &str) -> Option<Self> {
        let trimmed = raw.trim();
        (trimmed.len() == 6 && trimmed.bytes().all(|b| b.is_ascii_digit()))
            .then(|| Self(SecretString::from(trimmed.to_owned())))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(******)")
    }
}

#[cfg(test)]
mod tests {
    use super::RecoveryCode;

    #[test]
    fn generated_codes_are_six_digits() {
        for _ in 0..1000 {
            let code = RecoveryCode::generate();
            assert!(RecoveryCode::parse(code.expose()).is_some());
        }
    }

    #[test]
    fn codes_that_are_not_six_digits_are_rejected() {
        for raw in ["", "12345", "1234567", "12a456", "١٢٣٤٥٦"] {
            assert!(RecoveryCode::parse(raw).is_none(), "{raw:?} was accepted");
        }
    }

    #[test]
    fn debug_output_hides_the_digits() {
        let code = RecoveryCode::parse("123456").map(|c| format!("{c:?}"));
        assert_eq!(code.as_deref(), Some("RecoveryCode(******)"));
    }
}
