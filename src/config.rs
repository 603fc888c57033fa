//! Settings: embedded defaults, overlaid by `latchkey.toml` (or `--config`),
//! overlaid by `LATCHKEY_*` environment variables (`__` separates levels).
//!
//! Every key of SPEC §1.2 is accepted here, even those a later capability uses.
//! This module never touches the database or the network.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub database_url: String,
    pub database: DatabaseSettings,
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub public_url: String,
    /// HMAC key material; generated once and kept in the database when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub courier: CourierSettings,
    pub recovery: RecoverySettings,
    pub session: SessionSettings,
    pub password: PasswordSettings,
    pub rate_limit: RateLimitSettings,
    pub admin: AdminSettings,
    pub log: LogSettings,
    pub ui: UiSettings,
    pub locale: LocaleSettings,
    pub trusted_proxies: Vec<String>,
    pub http: HttpSettings,
    pub retention: RetentionSettings,
    pub branding: BrandingSettings,
    pub notice: NoticeSettings,
    /// `[[webhooks]]` endpoints (SPEC §5.4); file only.
    pub webhooks: Vec<WebhookSettings>,
}

/// The webhook event types of SPEC §5.4.
pub const WEBHOOK_EVENTS: [&str; 11] = [
    "identity.created",
    "identity.updated",
    "identity.deleted",
    "recovery.requested",
    "recovery.completed",
    "recovery.locked",
    "password.changed",
    "sessions.revoked",
    "account.frozen",
    "account.unfrozen",
    "login.locked",
];

/// One `[[webhooks]]` endpoint.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSettings {
    /// Where events are POSTed (http or https).
    pub url: String,
    /// `whsec_<base64>`, or a list of them while rotating: each signs every request.
    pub secret: WebhookSecrets,
    /// Event types this endpoint receives; empty or absent: all of them.
    #[serde(default)]
    pub events: Vec<String>,
}

#[derive(Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WebhookSecrets {
    One(String),
    Many(Vec<String>),
}

impl WebhookSecrets {
    pub fn all(&self) -> Vec<&str> {
        match self {
            WebhookSecrets::One(one) => vec![one.as_str()],
            WebhookSecrets::Many(many) => many.iter().map(String::as_str).collect(),
        }
    }
}

impl std::fmt::Debug for WebhookSettings {
    /// Never the secrets, nor the URL's path and query (they may hold a credential).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("endpoint", &crate::webhooks::label(&self.url))
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// The HMAC key of a `whsec_<base64>` secret (Standard Webhooks: 24 to 64 bytes).
pub fn webhook_key(secret: &str) -> anyhow::Result<Vec<u8>> {
    use base64::Engine;
    let encoded = secret
        .strip_prefix("whsec_")
        .ok_or_else(|| anyhow::anyhow!("must start with whsec_"))?;
    let key = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| anyhow::anyhow!("is not whsec_ followed by base64"))?;
    anyhow::ensure!(
        (24..=64).contains(&key.len()),
        "must hold 24 to 64 bytes (it holds {})",
        key.len()
    );
    Ok(key)
}

/// What people see of the operator: the product's name, whom to contact,
/// and a logo for HTML mail and UI pages.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrandingSettings {
    pub product_name: String,
    /// An email address or URL, named in every notice.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub support_contact: Option<String>,
    /// An https image shown at the top of HTML mail and UI pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logo_url: Option<String>,
}

impl Default for BrandingSettings {
    fn default() -> Self {
        Self {
            product_name: "latchkey".into(),
            support_contact: None,
            logo_url: None,
        }
    }
}

/// The "this wasn't me" links that notices carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoticeSettings {
    #[serde(with = "humantime_serde")]
    pub link_lifespan: Duration,
}

impl Default for NoticeSettings {
    fn default() -> Self {
        Self {
            link_lifespan: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// A connection that has not sent a whole request header by then is closed.
    #[serde(with = "humantime_serde")]
    pub header_timeout: Duration,
    /// A request not answered by then gets 503 `overloaded`.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Open connections per listener; further ones wait to be accepted.
    pub max_connections: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 4096,
        }
    }
}

/// How long rows that only matter for a while are kept (0 = forever).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionSettings {
    /// Recovery flows, login throttle rows and spent outbox rows, after their last use.
    #[serde(with = "humantime_serde")]
    pub flows: Duration,
    /// Audit events.
    #[serde(with = "humantime_serde")]
    pub audit: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            flows: Duration::from_secs(7 * 24 * 3600),
            audit: Duration::from_secs(400 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseSettings {
    /// Connections per instance.
    pub max_connections: u32,
    /// Longest a statement may run (PostgreSQL) or wait for a lock (SQLite).
    #[serde(with = "humantime_serde")]
    pub statement_timeout: Duration,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            max_connections: 8,
            statement_timeout: Duration::from_secs(10),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CourierSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,
    pub mail_dir: PathBuf,
    pub sms_dir: PathBuf,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sms_url: Option<String>,
    pub from: String,
    /// How long a worker owns a claimed message before another may take it.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often an idle worker looks for due messages.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Delivery attempts before a message is given up.
    pub max_attempts: u32,
    /// Operator templates (`<locale>/<message>.{subject,txt,html,sms}`) that replace built-in ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates_dir: Option<PathBuf>,
    /// SMS written in the GSM 03.38 alphabet (Vietnamese without diacritics): one segment per code.
    pub sms_gsm7: bool,
    /// The first webhook retry's delay; each further one doubles it, up to an hour.
    #[serde(with = "humantime_serde")]
    pub webhook_backoff: Duration,
    /// How long a webhook request may take before it counts as failed.
    #[serde(with = "humantime_serde")]
    pub webhook_timeout: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecoverySettings {
    #[serde(with = "humantime_serde")]
    pub lifespan: Duration,
    pub max_attempts: u32,
    pub max_starts_per_hour: u32,
    #[serde(with = "humantime_serde")]
    pub sms_lifespan: Duration,
    pub max_wrong_codes_per_day: u32,
    pub reveal_unknown_accounts: bool,
    pub notify_unknown_recipients: bool,
    /// After a person cancels a code they did not ask for, no new code goes to the account for this long.
    #[serde(with = "humantime_serde")]
    pub pause_after_cancel: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionSettings {
    #[serde(with = "humantime_serde")]
    pub lifespan: Duration,
    #[serde(with = "humantime_serde")]
    pub jwt_lifespan: Duration,
    /// The `aud` claim of session JWTs and v2 access tokens; `public_url` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_audience: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordSettings {
    pub min_length: usize,
    /// Argon2 hashes allowed to run at once; 0 = one per CPU.
    pub max_concurrent_hashes: usize,
    /// Longest wait for an Argon2 slot; past it the request gets 503 `overloaded` (0 = no bound).
    #[serde(with = "humantime_serde")]
    pub max_queue_wait: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    pub ip_per_minute: u32,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UiSettings {
    /// Where the UI's "done" page links; `public_url` when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub return_url: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LocaleSettings {
    pub default: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://latchkey.db".into(),
            database: DatabaseSettings::default(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            public_url: "http://127.0.0.1:8080".into(),
            secret: None,
            courier: CourierSettings::default(),
            recovery: RecoverySettings::default(),
            session: SessionSettings::default(),
            password: PasswordSettings::default(),
            rate_limit: RateLimitSettings::default(),
            admin: AdminSettings::default(),
            log: LogSettings::default(),
            ui: UiSettings::default(),
            locale: LocaleSettings::default(),
            trusted_proxies: Vec::new(),
            http: HttpSettings::default(),
            retention: RetentionSettings::default(),
            branding: BrandingSettings::default(),
            notice: NoticeSettings::default(),
            webhooks: Vec::new(),
        }
    }
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        Self { ip_per_minute: 60 }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
        }
    }
}

impl Default for LocaleSettings {
    fn default() -> Self {
        Self { default: "en".into() }
    }
}

impl Default for CourierSettings {
    fn default() -> Self {
        Self {
            smtp_url: None,
            mail_dir: PathBuf::from("./mail"),
            sms_dir: PathBuf::from("./sms"),
            sms_url: None,
            from: "latchkey <no-reply@localhost>".into(),
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            max_attempts: 12,
            templates_dir: None,
            sms_gsm7: false,
            webhook_backoff: Duration::from_secs(5),
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

impl Default for RecoverySettings {
    fn default() -> Self {
        Self {
            lifespan: Duration::from_secs(15 * 60),
            max_attempts: 5,
            max_starts_per_hour: 3,
            sms_lifespan: Duration::from_secs(10 * 60),
            max_wrong_codes_per_day: 20,
            reveal_unknown_accounts: false,
            notify_unknown_recipients: false,
            pause_after_cancel: Duration::from_secs(3600),
        }
    }
}

impl Default for SessionSettings {
    fn default() -> Self {
        Self {
            lifespan: Duration::from_secs(24 * 3600),
            jwt_lifespan: Duration::from_secs(15 * 60),
            jwt_audience: None,
        }
    }
}

impl Default for PasswordSettings {
    fn default() -> Self {
        Self {
            min_length: 15,
            max_concurrent_hashes: 0,
            max_queue_wait: Duration::from_secs(1),
        }
    }
}

/// Whether an unknown variable's key looks like a misspelt credential.
fn looks_like_a_credential(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("token") || key.contains("secret")
}

impl Settings {
    /// Reads defaults ← TOML file ← environment. A missing default file is
    /// fine; a missing file named with `--config` is an error.
    pub fn load(config_path: Option<&Path>) -> anyhow::Result<Self> {
        Ok(Self::load_reporting(config_path)?.0)
    }

    /// As `load`, and also names the `LATCHKEY_*` variables that name no key
    /// (a container platform sets `LATCHKEY_PORT`, `LATCHKEY_SERVICE_HOST`…
    /// for a service called `latchkey`): they are ignored, for the caller to
    /// report once. An unknown key in the file, or a value of the wrong type
    /// anywhere, is still an error naming the key.
    pub fn load_reporting(config_path: Option<&Path>) -> anyhow::Result<(Self, Vec<String>)> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match config_path {
            Some(path) => {
                anyhow::ensure!(path.exists(), "configuration file {} does not exist", path.display());
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("latchkey.toml")),
        }
        // Endpoints and their secrets are a list of tables: the file's
        // shape, which an environment variable would only half express.
        if let Some((name, _)) = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
            .find(|(k, _)| {
                let k = k.to_ascii_uppercase();
                k == "LATCHKEY_WEBHOOKS" || k.starts_with("LATCHKEY_WEBHOOKS__")
            })
        {
            anyhow::bail!(
                "invalid configuration: {name}: webhooks are configured in the file only ([[webhooks]] in latchkey.toml)"
            );
        }
        let mut ignored: Vec<String> = Vec::new();
        loop {
            let skip = ignored.clone();
            // `LATCHKEY_TEST_*` belongs to the test harness, not to the server.
            let env = Env::prefixed("LATCHKEY_")
                .filter(move |key| {
                    let key = key.as_str().to_ascii_lowercase();
                    !key.starts_with("test_") && !skip.contains(&key)
                })
                .split("__");
            let errors = match figment.clone().merge(env).extract::<Settings>() {
                Ok(settings) => {
                    settings.check()?;
                    let names = ignored
                        .iter()
                        .map(|k| format!("LATCHKEY_{}", k.to_ascii_uppercase()))
                        .collect();
                    return Ok((settings, names));
                }
                Err(errors) => errors,
            };
            let unknown_in_env: Vec<String> = errors
                .clone()
                .into_iter()
                .filter_map(|e| match &e.kind {
                    figment::error::Kind::UnknownField(field, _)
                        if e.metadata.as_ref().is_some_and(|m| m.name.contains("environment")) =>
                    {
                        let mut path = e.path.clone();
                        if path.last() != Some(field) {
                            path.push(field.clone());
                        }
                        Some(path.join("__"))
                    }
                    _ => None,
                })
                .filter(|key| !ignored.contains(key))
                .collect();
            if unknown_in_env.is_empty() || ignored.len() > 256 {
                return Err(anyhow::Error::new(errors).context("invalid configuration"));
            }
            // A container platform never injects a name with TOKEN or SECRET in
            // it; such a variable is a misspelt `admin.token` or `secret`, and
            // running without it would open the admin API or keep the secret
            // in the database.
            if let Some(misspelt) = unknown_in_env.iter().find(|k| looks_like_a_credential(k)) {
                anyhow::bail!(
                    "invalid configuration: LATCHKEY_{} names no key (did you mean LATCHKEY_ADMIN__TOKEN or LATCHKEY_SECRET?)",
                    misspelt.to_ascii_uppercase()
                );
            }
            ignored.extend(unknown_in_env);
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            matches!(self.locale.default.as_str(), "en" | "vi"),
            "locale.default must be \"en\" or \"vi\""
        );
        anyhow::ensure!(
            self.public_url.starts_with("http://") || self.public_url.starts_with("https://"),
            "public_url must start with http:// or https://"
        );
        if let Some(secret) = &self.secret {
            anyhow::ensure!(secret.len() >= 32, "secret must be at least 32 characters");
        }
        if let Some(token) = &self.admin.token {
            anyhow::ensure!(token.len() >= 32, "admin.token must be at least 32 characters");
        }
        // Mail clients block or warn on plain-http images, and one would
        // tell any network on the way that the mail was opened.
        if let Some(logo) = &self.branding.logo_url {
            let parsed = reqwest::Url::parse(logo).ok();
            anyhow::ensure!(
                parsed.is_some_and(|u| u.scheme() == "https" && u.host_str().is_some()),
                "branding.logo_url must be an https URL"
            );
        }
        // A zero backoff would retry a failing receiver without pause for a
        // day; a zero timeout would fail every request.
        anyhow::ensure!(
            self.courier.webhook_backoff >= Duration::from_millis(100),
            "courier.webhook_backoff must be at least 100ms"
        );
        anyhow::ensure!(
            self.courier.webhook_timeout >= Duration::from_secs(1),
            "courier.webhook_timeout must be at least 1s"
        );
        for (n, hook) in self.webhooks.iter().enumerate() {
            let url = reqwest::Url::parse(&hook.url)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            anyhow::ensure!(url.is_some(), "webhooks[{n}].url must be an http or https URL");
            anyhow::ensure!(
                self.webhooks[..n].iter().all(|other| other.url != hook.url),
                "webhooks[{n}].url is listed twice"
            );
            let secrets = hook.secret.all();
            anyhow::ensure!(
                !secrets.is_empty(),
                "webhooks[{n}].secret must name at least one secret"
            );
            for secret in secrets {
                webhook_key(secret).map_err(|e| anyhow::anyhow!("webhooks[{n}].secret {e}"))?;
            }
            for event in &hook.events {
                anyhow::ensure!(
                    WEBHOOK_EVENTS.contains(&event.as_str()),
                    "webhooks[{n}].events: unknown event {event:?} (events: {})",
                    WEBHOOK_EVENTS.join(", ")
                );
            }
        }
        Ok(())
    }

    pub fn public_is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// How long a signing key that stops signing still verifies: the
    /// longest life of a token it signed (session JWTs and both kinds of
    /// recovery token), and a minute more.
    pub fn signing_key_overlap(&self) -> Duration {
        [
            self.session.jwt_lifespan,
            self.recovery.lifespan,
            self.recovery.sms_lifespan,
        ]
        .into_iter()
        .max()
        .unwrap_or_default()
            + Duration::from_secs(60)
    }

    /// The `aud` of every session JWT and v2 access token.
    pub fn jwt_audience(&self) -> &str {
        self.session.jwt_audience.as_deref().unwrap_or(&self.public_url)
    }

    pub fn return_url(&self) -> &str {
        self.ui.return_url.as_deref().unwrap_or(&self.public_url)
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure type is fixed by figment.
mod tests {
    use super::Settings;

    #[test]
    fn environment_variables_override_nested_keys_with_human_durations() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("latchkey.toml", "[recovery]\nmax_attempts = 7\n")?;
            jail.set_env("LATCHKEY_RECOVERY__LIFESPAN", "10m");
            jail.set_env("LATCHKEY_SESSION__JWT_LIFESPAN", "2s");
            jail.set_env("LATCHKEY_PUBLIC_URL", "https://auth.example.com");
            jail.set_env("LATCHKEY_TEST_POSTGRES_URL", "ignored by the server");
            let settings = Settings::load(None).map_err(|e| format!("{e:#}"))?;
            assert_eq!(settings.recovery.max_attempts, 7);
            assert_eq!(settings.recovery.lifespan.as_secs(), 600);
            assert_eq!(settings.session.jwt_lifespan.as_secs(), 2);
            assert!(settings.public_is_https());
            assert_eq!(settings.password.min_length, 15);
            Ok(())
        });
    }

    #[test]
    fn a_logo_must_be_served_over_https() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LATCHKEY_BRANDING__LOGO_URL", "http://example.com/logo.png");
            let error = format!("{:#}", Settings::load(None).err().ok_or("an http logo was accepted")?);
            assert!(error.contains("branding.logo_url"), "{error}");
            jail.set_env("LATCHKEY_BRANDING__LOGO_URL", "https://example.com/logo.png");
            Settings::load(None).map_err(|e| format!("{e:#}"))?;
            Ok(())
        });
    }

    #[test]
    fn webhooks_come_from_the_file_only() {
        figment::Jail::expect_with(|jail| {
            // A platform's variables for a service called `latchkey-webhooks` are not a configuration.
            jail.set_env("LATCHKEY_WEBHOOKS_SERVICE_HOST", "10.0.0.7");
            Settings::load(None).map_err(|e| format!("{e:#}"))?;
            jail.set_env(
                "LATCHKEY_WEBHOOKS",
                r#"[{url="http://127.0.0.1:9/h",secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}]"#,
            );
            let error = format!(
                "{:#}",
                Settings::load(None).err().ok_or("accepted from the environment")?
            );
            assert!(
                error.contains("LATCHKEY_WEBHOOKS") && error.contains("file only"),
                "{error}"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_environment_variables_are_ignored_and_named_but_unknown_file_keys_and_bad_values_are_not() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("LATCHKEY_PORT", "tcp://10.0.0.7:8080");
            jail.set_env("LATCHKEY_PORT_8080_TCP_ADDR", "10.0.0.7");
            jail.set_env("LATCHKEY_SERVICE_HOST", "10.0.0.7");
            jail.set_env("LATCHKEY_RECOVERY__LIFESPANN", "5m");
            jail.set_env("LATCHKEY_RECOVERY__MAX_ATTEMPTS", "4");
            let (settings, ignored) = Settings::load_reporting(None).map_err(|e| format!("{e:#}"))?;
            assert_eq!(settings.recovery.max_attempts, 4);
            let mut ignored = ignored;
            ignored.sort();
            assert_eq!(
                ignored,
                [
                    "LATCHKEY_PORT",
                    "LATCHKEY_PORT_8080_TCP_ADDR",
                    "LATCHKEY_RECOVERY__LIFESPANN",
                    "LATCHKEY_SERVICE_HOST"
                ]
            );
            // A misspelt credential is not a platform's variable: it stops the command.
            jail.set_env("LATCHKEY_ADMIN_TOKEN", "operator-token-0123456789abcdef-0123");
            let error = format!(
                "{:#}",
                Settings::load(None).err().ok_or("a misspelt token was ignored")?
            );
            assert!(error.contains("LATCHKEY_ADMIN_TOKEN"), "{error}");
            jail.clear_env();
            jail.set_env("LATCHKEY_ADMIN__TOKEN", "");
            assert!(Settings::load(None).is_err(), "an empty admin token was accepted");
            jail.clear_env();
            jail.set_env("LATCHKEY_RECOVERY__MAX_ATTEMPTS", "many");
            let error = format!("{:#}", Settings::load(None).err().ok_or("a bad value was accepted")?);
            assert!(error.to_lowercase().contains("recovery.max_attempts"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("latchkey.toml", "[recovery]\nlifespann = \"5m\"\n")?;
            assert!(Settings::load(None).is_err());
            Ok(())
        });
    }
}
