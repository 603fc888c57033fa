//! Values that parse: a value of one of these types is proof it was checked
//! and normalised. Nothing here touches storage, HTTP or the clock.

mod code;
mod email;
mod login;
mod password;
mod phone;
mod secret_token;
mod username;

pub use code::RecoveryCode;
pub use email::EmailAddress;
pub use login::Login;
pub use password::{NewPassword, PasswordPolicy, PolicyViolation, StrongPassword, normalise_password};
pub use phone::PhoneNumber;
pub use secret_token::SecretToken;
pub use username::Username;
