//! Where email goes: a real SMTP server (`courier.smtp_url`) or `.eml`
//! files under `courier.mail_dir`.

use std::time::Duration;

use anyhow::Context;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::Rendered;
use crate::config::CourierSettings;

pub enum EmailTransport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(AsyncFileTransport<Tokio1Executor>),
}

impl EmailTransport {
    pub fn from_settings(settings: &CourierSettings) -> anyhow::Result<Self> {
        match &settings.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .context("invalid courier.smtp_url")?
                    .timeout(Some(Duration::from_secs(10)))
                    .build();
                Ok(Self::Smtp(transport))
            }
            None => {
                std::fs::create_dir_all(&settings.mail_dir)
                    .with_context(|| format!("cannot create mail directory {}", settings.mail_dir.display()))?;
                Ok(Self::File(AsyncFileTransport::new(&settings.mail_dir)))
            }
        }
    }

    pub async fn send(&self, from: &Mailbox, rendered: &Rendered) -> anyhow::Result<()> {
        let to: Mailbox = rendered.to.parse().context("recipient is not a valid mailbox")?;
        let email = lettre::Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&rendered.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(rendered.body.clone())
            .context("building email")?;
        match self {
            Self::Smtp(t) => {
                t.send(email).await.context("SMTP delivery")?;
            }
            Self::File(t) => {
                t.send(email).await.context("writing .eml file")?;
            }
        }
        Ok(())
    }

    /// Whether the transport can take mail now (readiness check).
    pub async fn ready(&self) -> bool {
        match self {
            Self::Smtp(t) => t.test_connection().await.unwrap_or(false),
            Self::File(_) => true,
        }
    }
}
