//! The courier: messages latchkey sends (recovery codes, notices), sealed
//! into the outbox in the same transaction as the flow that needs them, and
//! a worker that delivers them later with retries.
//!
//! A message's content (recipient, code) exists in plaintext only in memory:
//! sealed at rest, rendered at send time, erased from the row once delivered.

mod device;
pub mod gsm7;
mod quoted_printable;
pub mod templates;
mod transport;
mod worker;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

pub use templates::{Part, Templates, Vars};
pub use transport::{EmailTransport, SmsTransport};
pub use worker::{StepOutcome, Worker};

use crate::config::Settings;
use crate::i18n::{self, Locale};
use crate::secrets::ServerSecret;
use crate::services::Client;
use crate::store::OutboxMessageRecord;

/// When and from where an account change was made, as a notice reports it.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct Origin {
    /// Unix milliseconds.
    pub at: i64,
    pub ip: Option<String>,
    /// Kept only inside the sealed payload; a notice shows `device::describe` of it.
    pub user_agent: Option<String>,
}

impl Origin {
    pub fn of(client: &Client, at: i64) -> Self {
        Self {
            at,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        }
    }
}

/// Something to send. Serialised, then sealed, into the outbox. Fields added
/// later default, so rows queued by an older version still deliver.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum Message {
    RecoveryCode {
        to: String,
        code: String,
        minutes: u64,
        locale: Locale,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cancel_link: Option<String>,
    },
    PasswordChanged {
        to: String,
        locale: Locale,
        #[serde(default)]
        origin: Origin,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report_link: Option<String>,
    },
    RecoveryCodeSms {
        to: String,
        code: String,
        minutes: u64,
        locale: Locale,
    },
    PasswordChangedSms {
        to: String,
        locale: Locale,
        #[serde(default)]
        origin: Origin,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report_link: Option<String>,
    },
    /// Someone asked to recover an account for an address that has none.
    UnknownRecipient {
        to: String,
        locale: Locale,
    },
    /// The account was secured by its owner's "this wasn't me".
    AccountSecured {
        to: String,
        locale: Locale,
        origin: Origin,
    },
    AccountSecuredSms {
        to: String,
        locale: Locale,
        origin: Origin,
    },
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Message::RecoveryCode { .. } => "RecoveryCode",
            Message::PasswordChanged { .. } => "PasswordChanged",
            Message::RecoveryCodeSms { .. } => "RecoveryCodeSms",
            Message::PasswordChangedSms { .. } => "PasswordChangedSms",
            Message::UnknownRecipient { .. } => "UnknownRecipient",
            Message::AccountSecured { .. } => "AccountSecured",
            Message::AccountSecuredSms { .. } => "AccountSecuredSms",
        };
        write!(f, "{name}(…)")
    }
}

/// A message ready for a transport: a mail (subject, text, HTML) or an SMS
/// (`text` only).
pub struct Rendered {
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

impl Message {
    pub fn channel(&self) -> &'static str {
        match self {
            Message::RecoveryCode { .. }
            | Message::PasswordChanged { .. }
            | Message::UnknownRecipient { .. }
            | Message::AccountSecured { .. } => "email",
            Message::RecoveryCodeSms { .. }
            | Message::PasswordChangedSms { .. }
            | Message::AccountSecuredSms { .. } => "sms",
        }
    }

    /// The template's name, the recipient, the language, and the values only
    /// this message has.
    fn parts(&self) -> (&'static str, &str, Locale, Vars) {
        let noticed = |origin: &Origin, locale: Locale| Vars {
            when: Some(i18n::datetime(locale, origin.at)),
            ip: origin.ip.clone(),
            device: device::describe(origin.user_agent.as_deref()),
            ..Vars::default()
        };
        match self {
            Message::RecoveryCode {
                to,
                code,
                minutes,
                locale,
                link,
                cancel_link,
            } => {
                let vars = Vars {
                    code: Some(code.clone()),
                    minutes: Some(*minutes),
                    link: link.clone(),
                    cancel_link: cancel_link.clone(),
                    ..Vars::default()
                };
                ("recovery_code", to, *locale, vars)
            }
            Message::RecoveryCodeSms {
                to,
                code,
                minutes,
                locale,
            } => {
                let vars = Vars {
                    code: Some(code.clone()),
                    minutes: Some(*minutes),
                    ..Vars::default()
                };
                ("recovery_code", to, *locale, vars)
            }
            Message::PasswordChanged {
                to,
                locale,
                origin,
                report_link,
            }
            | Message::PasswordChangedSms {
                to,
                locale,
                origin,
                report_link,
            } => {
                let vars = Vars {
                    report_link: report_link.clone(),
                    ..noticed(origin, *locale)
                };
                ("password_changed", to, *locale, vars)
            }
            Message::UnknownRecipient { to, locale } => ("unknown_recipient", to, *locale, Vars::default()),
            Message::AccountSecured { to, locale, origin } | Message::AccountSecuredSms { to, locale, origin } => {
                ("account_secured", to, *locale, noticed(origin, *locale))
            }
        }
    }

    /// The message in its language, with the operator's branding, through
    /// `templates`; an SMS in the GSM 03.38 alphabet when `courier.sms_gsm7`.
    pub fn render(&self, templates: &Templates, settings: &Settings) -> anyhow::Result<Rendered> {
        let (name, to, locale, own) = self.parts();
        let branding = &settings.branding;
        let vars = Vars {
            product_name: branding.product_name.clone(),
            support_contact: branding.support_contact.clone(),
            logo_url: branding.logo_url.clone(),
            ..own
        };
        let to = to.to_owned();
        if self.channel() == "sms" {
            let mut text = templates.render(locale, name, Part::Sms, &vars)?;
            if settings.courier.sms_gsm7 {
                text = gsm7::transliterate(&text);
            }
            return Ok(Rendered {
                to,
                subject: String::new(),
                text,
                html: None,
            });
        }
        Ok(Rendered {
            to,
            subject: templates.render(locale, name, Part::Subject, &vars)?,
            text: templates.render(locale, name, Part::Text, &vars)?,
            html: Some(templates.render(locale, name, Part::Html, &vars)?),
        })
    }

    /// The outbox row that will deliver this message, payload sealed under
    /// the server secret; `identity_id` is whom it concerns (audit trail).
    pub fn queue(
        &self,
        secret: &ServerSecret,
        identity_id: Option<&str>,
        now: i64,
    ) -> anyhow::Result<OutboxMessageRecord> {
        let plaintext = serde_json::to_vec(self)?;
        Ok(OutboxMessageRecord::new(
            identity_id,
            self.channel(),
            secret.seal(&plaintext)?,
            "pending",
            now,
        ))
    }

    /// A row that costs what `queue` costs but is never sent: the decoy an
    /// unknown login writes so its request does the same work as a real one.
    /// The payload is sealed like a real one's (the same CPU time) and then
    /// dropped: a decoy must not keep the typed address and a code at rest.
    pub fn decoy(&self, secret: &ServerSecret, now: i64) -> anyhow::Result<OutboxMessageRecord> {
        let plaintext = serde_json::to_vec(self)?;
        let sealed = secret.seal(&plaintext)?;
        // Zeros of the sealed length: the row costs the same to write as a
        // real one (a code mail with its links is ~1 KiB), and keeps nothing.
        let row = OutboxMessageRecord::new(None, self.channel(), vec![0; sealed.len()], "void", now);
        Ok(row)
    }

    pub fn unseal(secret: &ServerSecret, sealed: &[u8]) -> anyhow::Result<Self> {
        Ok(serde_json::from_slice(&secret.unseal(sealed)?)?)
    }
}

/// One notice per verified address of an account (NIST SP 800-63B-4 §4.6),
/// sealed for the outbox: `make` writes it for a recipient, told whether the
/// address is a phone.
pub fn to_every_verified(
    secret: &ServerSecret,
    identity_id: &str,
    addresses: &[crate::store::AddressRecord],
    at: i64,
    make: impl Fn(String, bool) -> Message,
) -> anyhow::Result<Vec<OutboxMessageRecord>> {
    addresses
        .iter()
        .filter(|a| a.verified)
        .map(|a| {
            make(a.value.clone(), a.kind == crate::store::AddressKind::Phone.as_str()).queue(
                secret,
                Some(identity_id),
                at,
            )
        })
        .collect()
}

/// The courier as the rest of the process sees it: the transport (shared
/// with the worker) and a bell that wakes the worker when a message was
/// queued, so delivery does not wait for the next poll.
#[derive(Clone)]
pub struct CourierHandle {
    notify: Arc<Notify>,
    email: Arc<EmailTransport>,
    sms: Arc<SmsTransport>,
    templates: Arc<Templates>,
    /// The last readiness answer and when it was found.
    readiness: Arc<tokio::sync::Mutex<Option<(std::time::Instant, bool)>>>,
}

/// How long a readiness answer is reused: anonymous pollers of
/// `/health/ready` cost one SMTP connection per this interval at most.
const READINESS_TTL: std::time::Duration = std::time::Duration::from_secs(10);

impl CourierHandle {
    /// Transports and templates from `settings`; an operator template that
    /// does not parse or render stops the start here.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let default_locale = Locale::parse(&settings.locale.default).unwrap_or_default();
        Ok(Self {
            notify: Arc::new(Notify::new()),
            email: Arc::new(EmailTransport::from_settings(&settings.courier)?),
            sms: Arc::new(SmsTransport::from_settings(&settings.courier)?),
            templates: Arc::new(Templates::load(
                settings.courier.templates_dir.as_deref(),
                default_locale,
            )?),
            readiness: Arc::default(),
        })
    }

    pub(crate) fn transports(&self) -> (Arc<EmailTransport>, Arc<SmsTransport>) {
        (self.email.clone(), self.sms.clone())
    }

    pub fn templates(&self) -> Arc<Templates> {
        self.templates.clone()
    }

    /// Whether the email transport can take mail (readiness check). The
    /// answer is reused for `READINESS_TTL`, and concurrent callers share one
    /// check, so polling cannot make the server open SMTP connections at will.
    pub async fn ready(&self) -> bool {
        let mut cached = self.readiness.lock().await;
        if let Some((at, ready)) = *cached
            && at.elapsed() < READINESS_TTL
        {
            return ready;
        }
        let ready = self.email.ready().await;
        *cached = Some((std::time::Instant::now(), ready));
        ready
    }

    pub fn wake(&self) {
        self.notify.notify_one();
    }

    pub(crate) fn notified(&self) -> Arc<Notify> {
        self.notify.clone()
    }
}
