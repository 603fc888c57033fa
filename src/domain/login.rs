use super::{EmailAddress, PhoneNumber, Username};

/// What a person types to name their account: an email address, a phone
/// number or a username, told apart by shape (`@` → email; `+`/digits →
/// phone; otherwise username).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    Email(EmailAddress),
    Phone(PhoneNumber),
    Username(Username),
}

/// The most characters a login may have as typed, spaces around it
/// included: the `maxLength` the API documents (`http::v2`).
pub const MAX_CHARS: usize = 320;

impl Login {
    pub fn parse(raw: &str) -> Option<Self> {
        // Before any trimming: a login padded with Unicode spaces (U+0085…)
        // past the documented length is refused, not cut down.
        if raw.chars().count() > MAX_CHARS {
            return None;
        }
        if raw.contains('@') {
            return EmailAddress::parse(raw).map(Login::Email);
        }
        if let Some(phone) = PhoneNumber::parse(raw) {
            return Some(Login::Phone(phone));
        }
        Username::parse(raw).map(Login::Username)
    }

    /// `kind:value`, normalised: the key per-login limits are counted on.
    pub fn limit_key(&self) -> String {
        match self {
            Login::Email(e) => format!("email:{e}"),
            Login::Phone(p) => format!("phone:{p}"),
            Login::Username(u) => format!("username:{u}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Login;

    #[test]
    fn logins_are_told_apart_by_shape() {
        assert!(matches!(Login::parse("A@example.com"), Some(Login::Email(_))));
        assert!(matches!(Login::parse("+84 90 123 4567"), Some(Login::Phone(_))));
        assert!(matches!(Login::parse("alice"), Some(Login::Username(_))));
        assert!(Login::parse("a").is_none());
        assert!(Login::parse("bad@").is_none());
    }

    #[test]
    fn a_login_longer_than_documented_is_refused_before_it_is_trimmed() {
        let padded = format!("lpt1{}", "\u{85}".repeat(super::MAX_CHARS - 4));
        assert!(matches!(Login::parse(&padded), Some(Login::Username(_))));
        assert!(Login::parse(&format!("{padded}\u{85}")).is_none());
        assert!(Login::parse(&format!(" {}@example.com", "a".repeat(super::MAX_CHARS))).is_none());
    }
}
