//! The delivery worker: claims due outbox rows under a lease, delivers them,
//! and records the outcome (sent, retry later with backoff, or given up).
//!
//! A row whose worker died is claimed again when its lease runs out.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::Mailbox;
use tokio::sync::watch;

use super::{CourierHandle, EmailTransport, Message, SmsTransport, Templates};
use crate::audit::{self, Kind};
use crate::config::Settings;
use crate::secrets::ServerSecret;
use crate::services::Client;
use crate::store::{AuditEventRecord, DynStore, OutboxMessageRecord, SentMessage};
use crate::time::{ms, now_ms};

const BATCH: i64 = 16;
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What one `step` did, for tests and metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
}

impl StepOutcome {
    pub fn is_idle(&self) -> bool {
        *self == StepOutcome::default()
    }
}

pub struct Worker {
    store: DynStore,
    secret: ServerSecret,
    email: Arc<EmailTransport>,
    sms: Arc<SmsTransport>,
    from: Mailbox,
    templates: Arc<Templates>,
    settings: Arc<Settings>,
}

enum Delivery {
    /// Sent; the audit event to record with the sent mark.
    Delivered(AuditEventRecord),
    Retry(String),
    GiveUp(String),
}

/// A delivery whose outcome could not be recorded: its lease runs out and it
/// is claimed again, at worst a repeat.
fn unrecorded(message_id: &str, error: &anyhow::Error) {
    tracing::error!(message_id, error = %format!("{error:#}"), "recording delivery outcome failed");
}

/// Delay before attempt `attempts + 1`: 1 s, 2 s, 4 s … capped at 5 minutes.
pub fn backoff(attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    Duration::from_secs(1u64 << exponent).min(MAX_BACKOFF)
}

impl Worker {
    pub fn new(
        store: DynStore,
        secret: ServerSecret,
        handle: &CourierHandle,
        settings: Arc<Settings>,
    ) -> anyhow::Result<Self> {
        let from: Mailbox = settings
            .courier
            .from
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid courier.from {:?}: {e}", settings.courier.from))?;
        let (email, sms) = handle.transports();
        Ok(Self {
            store,
            secret,
            email,
            sms,
            from,
            templates: handle.templates(),
            settings,
        })
    }

    /// The event that records that a message went out (never what it said).
    fn delivery_event(row: &OutboxMessageRecord, message: &Message) -> AuditEventRecord {
        let kind = match message {
            Message::RecoveryCode { .. } | Message::RecoveryCodeSms { .. } => Kind::CodeSent,
            _ => Kind::NoticeSent,
        };
        let detail = serde_json::json!({"message_id": row.outbox_message_id, "channel": row.channel});
        audit::event(kind, row.identity_id.as_deref(), &Client::default(), detail)
    }

    async fn deliver(&self, row: &OutboxMessageRecord) -> Delivery {
        // A claim counts an attempt and a failed send gives up at
        // `max_attempts`, so a row claimed past it is one whose earlier
        // outcomes were never recorded (a worker killed mid-send, or a sent
        // mark refused with its audit event): it is not sent once more.
        if row.attempts > i64::from(self.settings.courier.max_attempts) {
            return Delivery::GiveUp("attempts exhausted: an earlier outcome was not recorded".into());
        }
        let Some(sealed) = &row.sealed_payload else {
            return Delivery::GiveUp("payload missing".into());
        };
        let message = match Message::unseal(&self.secret, sealed) {
            Ok(message) => message,
            Err(e) => return Delivery::GiveUp(format!("{e:#}")),
        };
        let rendered = match message.render(&self.templates, &self.settings) {
            Ok(rendered) => rendered,
            Err(e) => return Delivery::GiveUp(format!("{e:#}")),
        };
        let sent = match message.channel() {
            "sms" => self.sms.send(&rendered).await,
            _ => self.email.send(&self.from, &rendered).await,
        };
        match sent {
            Ok(()) => Delivery::Delivered(Self::delivery_event(row, &message)),
            Err(e) if i64::from(self.settings.courier.max_attempts) <= row.attempts => {
                Delivery::GiveUp(format!("{e:#}"))
            }
            Err(e) => Delivery::Retry(format!("{e:#}")),
        }
    }

    /// Claims one batch of due messages and delivers them concurrently.
    /// Retries and failures are recorded as each happens; deliveries are
    /// marked sent together, whichever have finished when one is collected.
    pub async fn step(self: &Arc<Self>) -> anyhow::Result<StepOutcome> {
        let now = now_ms();
        let rows = self
            .store
            .claim_outbox(now, now + ms(self.settings.courier.lease), BATCH)
            .await?;
        let mut tasks = tokio::task::JoinSet::new();
        for row in rows {
            let worker = Arc::clone(self);
            tasks.spawn(async move {
                let delivery = worker.deliver(&row).await;
                let id = row.outbox_message_id;
                let outcome = match &delivery {
                    Delivery::Delivered(_) => "sent",
                    Delivery::Retry(_) => "retry",
                    Delivery::GiveUp(_) => "failed",
                };
                metrics::counter!("latchkey_courier_deliveries_total", "channel" => row.channel, "outcome" => outcome)
                    .increment(1);
                let recorded = match &delivery {
                    Delivery::Delivered(_) => Ok(()),
                    Delivery::Retry(error) => {
                        tracing::warn!(message_id = %id, attempts = row.attempts, %error, "delivery failed; will retry");
                        let next = now_ms() + ms(backoff(row.attempts));
                        worker.store.mark_outbox_retry(&id, row.attempts, next, error).await
                    }
                    Delivery::GiveUp(error) => {
                        tracing::error!(message_id = %id, attempts = row.attempts, %error, "delivery given up");
                        worker.store.mark_outbox_failed(&id, row.attempts, error).await
                    }
                };
                if let Err(e) = recorded {
                    unrecorded(&id, &e);
                }
                (id, delivery)
            });
        }
        let mut outcome = StepOutcome::default();
        let mut sent = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let mut collect = |done| match done {
                Ok((message_id, Delivery::Delivered(event))) => sent.push(SentMessage {
                    message_id,
                    sent_at: now_ms(),
                    event,
                }),
                Ok((_, Delivery::Retry(_))) => outcome.retried += 1,
                Ok((_, Delivery::GiveUp(_))) => outcome.failed += 1,
                Err(e) => tracing::error!(error = %e, "delivery task panicked"),
            };
            collect(done);
            while let Some(done) = tasks.try_join_next() {
                collect(done);
            }
            if !sent.is_empty() {
                // One mark at a time: deliveries that finish while it runs
                // are marked together by the next. Marks running side by
                // side made five times as many statements and 20 % fewer
                // starts on PostgreSQL (BENCHMARKS.md, eighth sitting).
                // A database that takes seconds per statement makes them
                // wait in line; one that waits past its lease is sent again.
                outcome.delivered += sent.len();
                self.mark_sent(std::mem::take(&mut sent)).await;
            }
        }
        Ok(outcome)
    }

    /// Marks `sent` together, or, if that fails, each alone (at once), so a
    /// message whose mark or event is refused keeps no other unmarked. One
    /// not marked is claimed again when its lease runs out: at worst a repeat.
    async fn mark_sent(&self, sent: Vec<SentMessage>) {
        let error = match self.store.mark_outbox_sent(&sent).await {
            Ok(()) => return,
            Err(e) => e,
        };
        if let [message] = sent.as_slice() {
            return unrecorded(&message.message_id, &error);
        }
        tracing::warn!(messages = sent.len(), error = %format!("{error:#}"), "marking deliveries sent together failed; marking each alone");
        let mut alone = tokio::task::JoinSet::new();
        for message in sent {
            let store = self.store.clone();
            alone.spawn(async move {
                if let Err(e) = store.mark_outbox_sent(std::slice::from_ref(&message)).await {
                    unrecorded(&message.message_id, &e);
                }
            });
        }
        while alone.join_next().await.is_some() {}
    }

    /// Delivers until `shutdown` turns true, waking on `handle` or every poll interval.
    pub async fn run_until_stopped(self: Arc<Self>, handle: CourierHandle, mut shutdown: watch::Receiver<bool>) {
        let notify = handle.notified();
        loop {
            if *shutdown.borrow() {
                return;
            }
            let busy = match self.step().await {
                Ok(outcome) => !outcome.is_idle(),
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "courier step failed");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = notify.notified() => {}
                _ = tokio::time::sleep(self.settings.courier.poll_interval) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
