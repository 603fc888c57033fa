//! The courier: messages latchkey sends (recovery codes, notices), sealed
//! into the outbox in the same transaction as the flow that needs them, and
//! a worker that delivers them later with retries.
//!
//! A message's content (recipient, code) exists in plaintext only in memory:
//! sealed at rest, rendered at send time, erased from the row once delivered.

mod transport;
mod worker;

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

pub use transport::{EmailTransport, SmsTransport};
pub use worker::{StepOutcome, Worker};

use crate::i18n::{self, Locale};
use crate::secrets::ServerSecret;
use crate::store::OutboxMessageRecord;

/// Something to send. Serialised, then sealed, into the outbox.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "template", rename_all = "snake_case")]
pub enum Message {
    RecoveryCode {
        to: String,
        code: String,
        minutes: u64,
        locale: Locale,
    },
    PasswordChanged {
        to: String,
        locale: Locale,
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
    },
    /// Someone asked to recover an account for an address that has none.
    UnknownRecipient {
        to: String,
        locale: Locale,
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
        };
        write!(f, "{name}(…)")
    }
}

/// A message ready for a transport.
pub struct Rendered {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Message {
    pub fn channel(&self) -> &'static str {
        match self {
            Message::RecoveryCode { .. } | Message::PasswordChanged { .. } | Message::UnknownRecipient { .. } => {
                "email"
            }
            Message::RecoveryCodeSms { .. } | Message::PasswordChangedSms { .. } => "sms",
        }
    }

    pub fn render(&self) -> Rendered {
        match self {
            Message::RecoveryCode {
                to,
                code,
                minutes,
                locale,
            } => Rendered {
                to: to.clone(),
                subject: i18n::text(*locale, "mail.recovery_code.subject", &[]),
                body: i18n::text(
                    *locale,
                    "mail.recovery_code.body",
                    &[("code", code), ("minutes", &minutes.to_string())],
                ),
            },
            Message::PasswordChanged { to, locale } => Rendered {
                to: to.clone(),
                subject: i18n::text(*locale, "mail.password_changed.subject", &[]),
                body: i18n::text(*locale, "mail.password_changed.body", &[]),
            },
            Message::UnknownRecipient { to, locale } => Rendered {
                to: to.clone(),
                subject: i18n::text(*locale, "mail.unknown_recipient.subject", &[]),
                body: i18n::text(*locale, "mail.unknown_recipient.body", &[]),
            },
            Message::RecoveryCodeSms {
                to,
                code,
                minutes,
                locale,
            } => Rendered {
                to: to.clone(),
                subject: String::new(),
                body: i18n::text(
                    *locale,
                    "sms.recovery_code",
                    &[("code", code), ("minutes", &minutes.to_string())],
                ),
            },
            Message::PasswordChangedSms { to, locale } => Rendered {
                to: to.clone(),
                subject: String::new(),
                body: i18n::text(*locale, "sms.password_changed", &[]),
            },
        }
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
        std::hint::black_box(secret.seal(&plaintext)?);
        let mut row = OutboxMessageRecord::new(None, self.channel(), Vec::new(), "void", now);
        row.sealed_payload = None;
        Ok(row)
    }

    pub fn unseal(secret: &ServerSecret, sealed: &[u8]) -> anyhow::Result<Self> {
        Ok(serde_json::from_slice(&secret.unseal(sealed)?)?)
    }
}

/// The courier as the rest of the process sees it: the transport (shared
/// with the worker) and a bell that wakes the worker when a message was
/// queued, so delivery does not wait for the next poll.
#[derive(Clone)]
pub struct CourierHandle {
    notify: Arc<Notify>,
    email: Arc<EmailTransport>,
    sms: Arc<SmsTransport>,
    /// The last readiness answer and when it was found.
    readiness: Arc<tokio::sync::Mutex<Option<(std::time::Instant, bool)>>>,
}

/// How long a readiness answer is reused: anonymous pollers of
/// `/health/ready` cost one SMTP connection per this interval at most.
const READINESS_TTL: std::time::Duration = std::time::Duration::from_secs(10);

impl CourierHandle {
    pub fn from_settings(settings: &crate::config::CourierSettings) -> anyhow::Result<Self> {
        Ok(Self {
            notify: Arc::new(Notify::new()),
            email: Arc::new(EmailTransport::from_settings(settings)?),
            sms: Arc::new(SmsTransport::from_settings(settings)?),
            readiness: Arc::default(),
        })
    }

    pub(crate) fn transports(&self) -> (Arc<EmailTransport>, Arc<SmsTransport>) {
        (self.email.clone(), self.sms.clone())
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
