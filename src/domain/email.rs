use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// An email address, trimmed, NFKC-normalised and lower-cased.
///
/// Deliberately permissive in the local part (RFC 5321 allows much), strict
/// about what would make a mail header or a lookup ambiguous.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(raw: &str) -> Option<Self> {
        let normalised: String = raw.trim().nfkc().collect::<String>().to_lowercase();
        if normalised.len() > 254 {
            return None;
        }
        let (local, domain) = normalised.rsplit_once('@')?;
        let bad_char = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
        let local_ok = !local.is_empty() && local.len() <= 64 && !local.chars().any(bad_char);
        let domain_ok = !domain.is_empty()
            && domain.len() <= 253
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain.chars().all(|c| c.is_alphanumeric() || c == '-' || c == '.');
        (local_ok && domain_ok).then_some(Self(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(local, _)| local)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EmailAddress({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::EmailAddress;

    #[test]
    fn addresses_are_normalised_to_lower_case_without_spaces() {
        let email = EmailAddress::parse("  Alice@Example.COM ").map(|e| e.to_string());
        assert_eq!(email.as_deref(), Some("alice@example.com"));
    }

    #[test]
    fn malformed_addresses_are_rejected() {
        for raw in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "a b@example.com",
            "alice@exa..mple.com",
            "alice@example.com\r\nBcc: x@y.z",
        ] {
            assert!(EmailAddress::parse(raw).is_none(), "{raw:?} was accepted");
        }
    }
}
