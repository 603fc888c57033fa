//! Where messages go. Email: a real SMTP server (`courier.smtp_url`) or
//! `.eml` files under `courier.mail_dir`. SMS: an HTTP webhook
//! (`courier.sms_url`, JSON `{"to","body"}`) or JSON files under `courier.sms_dir`.

use std::time::Duration;

use anyhow::Context;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, MultiPart, SinglePart};
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
        // The Message-ID names the sender's domain, as receivers expect of it.
        let message_id = format!("<{}@{}>", uuid::Uuid::new_v4().simple(), from.email.domain());
        let builder = lettre::Message::builder()
            .from(from.clone())
            .to(to)
            .subject(&rendered.subject)
            .message_id(Some(message_id))
            .date_now();
        let text = part(ContentType::TEXT_PLAIN, &rendered.text);
        let email = match &rendered.html {
            Some(html) => builder.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(part(ContentType::TEXT_HTML, html)),
            ),
            None => builder.singlepart(text),
        }
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

/// A body part, quoted-printable (`super::quoted_printable` says why).
fn part(kind: ContentType, text: &str) -> SinglePart {
    let body = Body::dangerous_pre_encoded(
        super::quoted_printable::encode(text),
        ContentTransferEncoding::QuotedPrintable,
    );
    SinglePart::builder().header(kind).body(body)
}

pub enum SmsTransport {
    Webhook { client: reqwest::Client, url: String },
    File(std::path::PathBuf),
}

impl SmsTransport {
    pub fn from_settings(settings: &CourierSettings) -> anyhow::Result<Self> {
        match &settings.sms_url {
            Some(url) => {
                anyhow::ensure!(
                    url.starts_with("http://") || url.starts_with("https://"),
                    "courier.sms_url must be an http(s) URL"
                );
                crate::tls::install_crypto_provider();
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .context("building the SMS webhook client")?;
                Ok(Self::Webhook {
                    client,
                    url: url.clone(),
                })
            }
            None => {
                std::fs::create_dir_all(&settings.sms_dir)
                    .with_context(|| format!("cannot create SMS directory {}", settings.sms_dir.display()))?;
                Ok(Self::File(settings.sms_dir.clone()))
            }
        }
    }

    pub async fn send(&self, rendered: &Rendered) -> anyhow::Result<()> {
        let payload = serde_json::json!({ "to": rendered.to, "body": rendered.text });
        match self {
            Self::Webhook { client, url } => {
                let response = client
                    .post(url)
                    .json(&payload)
                    .send()
                    .await
                    // reqwest names the URL in its errors, and a gateway's
                    // key is often in its query or path: never in a log line
                    // or the outbox's last_error.
                    .map_err(|e| anyhow::Error::new(e.without_url()).context("SMS webhook request"))?;
                anyhow::ensure!(
                    response.status().is_success(),
                    "SMS webhook answered {}",
                    response.status()
                );
            }
            Self::File(dir) => {
                // Written aside, then renamed: a reader never sees half a message.
                let name = uuid::Uuid::new_v4();
                let (partial, path) = (dir.join(format!(".{name}.tmp")), dir.join(format!("{name}.json")));
                tokio::fs::write(&partial, serde_json::to_vec_pretty(&payload)?)
                    .await
                    .with_context(|| format!("writing {}", partial.display()))?;
                tokio::fs::rename(&partial, &path)
                    .await
                    .with_context(|| format!("renaming {}", path.display()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Rendered, SmsTransport};
    use crate::config::CourierSettings;

    #[tokio::test]
    async fn a_failed_sms_request_does_not_name_the_gateway_url() -> anyhow::Result<()> {
        let settings = CourierSettings {
            // A closed port: the request fails before any answer.
            sms_url: Some("http://127.0.0.1:1/send/T0KEN-IN-PATH?api_key=SECRETKEY123".into()),
            ..CourierSettings::default()
        };
        let transport = SmsTransport::from_settings(&settings)?;
        let rendered = Rendered {
            to: "+15555550100".into(),
            subject: String::new(),
            text: "code".into(),
            html: None,
        };
        let Err(error) = transport.send(&rendered).await else {
            anyhow::bail!("nothing listens on port 1, yet the request succeeded");
        };
        let shown = format!("{error:#} {error:?}");
        assert!(shown.contains("SMS webhook request"), "{shown}");
        for secret in ["SECRETKEY123", "T0KEN-IN-PATH", "127.0.0.1:1"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        Ok(())
    }
}
