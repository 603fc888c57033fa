//! Delivering webhooks: the dispatcher turns new audit events into
//! deliveries, and one loop per endpoint claims that endpoint's due
//! deliveries under a lease and POSTs them, so a slow or dead receiver
//! delays only its own deliveries — never a request, a mail, or another
//! endpoint. A 2xx ends a delivery; 410 disables the endpoint (audited);
//! anything else is retried with exponential backoff, honouring
//! `Retry-After`, until its day is over, then it is marked failed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::json;
use tokio::sync::watch;

use super::{Endpoint, RETRY_WINDOW, deliveries};
use crate::audit::{self, Kind};
use crate::config::Settings;
use crate::services::Client;
use crate::store::{DynStore, WebhookAttempt, WebhookDeliveryRecord, WebhookEndpointRecord};
use crate::time::{ms, now_ms};

/// Audit events dispatched per transaction.
const DISPATCH_BATCH: i64 = 256;
/// Deliveries one endpoint sends at once.
const BATCH: i64 = 16;
/// How often pending deliveries past their retry window are failed (and
/// events too old to dispatch are skipped).
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How often an endpoint's queue depth is counted for its gauge.
const DEPTH_INTERVAL: Duration = Duration::from_secs(10);
/// The longest delay between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Delay before attempt `attempts + 1`: `base`, doubled per attempt, at most an hour.
pub fn backoff(base: Duration, attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
    base.saturating_mul(1u32 << exponent.min(20)).min(MAX_BACKOFF)
}

/// `Retry-After` as seconds or an HTTP date, as a delay from now.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

enum Outcome {
    Sent(u16),
    Gone,
    Failed {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
    },
}

pub struct Webhooks {
    store: DynStore,
    settings: Arc<Settings>,
    endpoints: Vec<Endpoint>,
    client: reqwest::Client,
}

impl Webhooks {
    pub fn new(store: DynStore, settings: Arc<Settings>) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(settings.courier.webhook_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION"), " (webhooks)"))
            .build()
            .context("building the webhook client")?;
        Ok(Self {
            endpoints: Endpoint::all(&settings)?,
            store,
            settings,
            client,
        })
    }

    /// Dispatches one batch of new audit events; how many were read.
    pub async fn dispatch(&self) -> anyhow::Result<usize> {
        let events = self.store.undispatched_events(DISPATCH_BATCH).await?;
        if events.is_empty() {
            return Ok(0);
        }
        let now = now_ms();
        let planned: Vec<_> = events
            .iter()
            .map(|event| (event.audit_event_id.clone(), deliveries(event, &self.endpoints, now)))
            .collect();
        self.store.dispatch_events(&planned).await?;
        Ok(events.len())
    }

    /// Claims and sends one batch of `endpoint`'s due deliveries; how many.
    /// A 410 ends the batch: the endpoint and all it had queued are disabled.
    pub async fn deliver(&self, endpoint: &Endpoint) -> anyhow::Result<usize> {
        let now = now_ms();
        let key = endpoint.key();
        // One at a time, in order: the lease covers a whole batch of timeouts.
        let lease = self.settings.courier.webhook_timeout.saturating_mul(BATCH as u32) + Duration::from_secs(30);
        let claimed = self
            .store
            .claim_webhook_deliveries(&key, now, now + ms(lease), BATCH)
            .await?;
        let count = claimed.len();
        let timeout = ms(self.settings.courier.webhook_timeout);
        for delivery in claimed {
            // Never past the lease: by then another instance may have claimed it again.
            if delivery.lease_until.is_none_or(|until| now_ms() + timeout >= until) {
                break;
            }
            let outcome = self.send(endpoint, &delivery).await;
            let gone = matches!(outcome, Outcome::Gone);
            match self.record(endpoint, &delivery, outcome).await {
                // A 410, or a claim lost meanwhile (a 410 seen by another
                // instance, an expired lease): the rest of the batch is not ours to send.
                Ok(held) if held && !gone => {}
                Ok(_) => break,
                Err(e) => {
                    // The lease runs out and it is sent again: at worst a repeat, which `webhook-id` names.
                    tracing::error!(delivery = %delivery.webhook_delivery_id, error = %format!("{e:#}"), "recording a webhook delivery failed");
                }
            }
        }
        Ok(count)
    }

    /// Sets the queue-depth gauge of `endpoint`.
    async fn measure(&self, endpoint: &Endpoint) -> anyhow::Result<()> {
        let depth = self.store.webhook_queue_depth(&endpoint.key()).await?;
        metrics::gauge!("latchkey_webhook_queue_depth", "endpoint" => endpoint.label()).set(depth as f64);
        Ok(())
    }

    async fn send(&self, endpoint: &Endpoint, delivery: &WebhookDeliveryRecord) -> Outcome {
        let timestamp = now_ms() / 1000;
        let signature = endpoint.signature(&delivery.event_id, timestamp, &delivery.payload);
        let sent = self
            .client
            .post(&endpoint.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &delivery.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(delivery.payload.clone())
            .send()
            .await;
        match sent {
            Ok(answer) if answer.status().is_success() => Outcome::Sent(answer.status().as_u16()),
            Ok(answer) if answer.status() == reqwest::StatusCode::GONE => Outcome::Gone,
            Ok(answer) => Outcome::Failed {
                status: Some(answer.status().as_u16()),
                error: format!("answered {}", answer.status()),
                retry_after: retry_after(answer.headers()),
            },
            Err(e) => Outcome::Failed {
                status: None,
                error: if e.is_timeout() {
                    "timed out".to_owned()
                } else if e.is_connect() {
                    "could not connect".to_owned()
                } else {
                    "the request failed".to_owned()
                },
                retry_after: None,
            },
        }
    }

    /// Records what became of an attempt; false when the claim it was sent
    /// under is no longer the delivery's.
    async fn record(
        &self,
        endpoint: &Endpoint,
        delivery: &WebhookDeliveryRecord,
        outcome: Outcome,
    ) -> anyhow::Result<bool> {
        let now = now_ms();
        let id = &delivery.webhook_delivery_id;
        let (label, attempt) = match outcome {
            Outcome::Sent(status) => ("sent", WebhookAttempt::Sent { status: status.into() }),
            Outcome::Gone => {
                let disabled = WebhookEndpointRecord {
                    endpoint: endpoint.key(),
                    disabled_at: now,
                    reason: "answered 410 Gone".into(),
                };
                let event = audit::event(
                    Kind::WebhookDisabled,
                    None,
                    &Client::default(),
                    json!({"endpoint": endpoint.label(), "delivery": id}),
                );
                if self.store.disable_webhook_endpoint(&disabled, &event).await? {
                    tracing::warn!(endpoint = %endpoint.label(), "webhook endpoint answered 410 Gone; disabled");
                }
                metrics::counter!("latchkey_webhook_deliveries_total", "endpoint" => endpoint.label(), "outcome" => "disabled")
                    .increment(1);
                return Ok(false);
            }
            Outcome::Failed {
                status,
                error,
                retry_after,
            } => {
                let delay = backoff(self.settings.courier.webhook_backoff, delivery.attempts)
                    .max(retry_after.unwrap_or_default().min(MAX_BACKOFF));
                let next = now + ms(delay);
                let status = status.map(i64::from);
                if next > delivery.give_up_at {
                    tracing::error!(delivery = %id, endpoint = %endpoint.label(), %error, "webhook delivery given up");
                    ("failed", WebhookAttempt::Failed { error, status })
                } else {
                    tracing::warn!(delivery = %id, endpoint = %endpoint.label(), attempts = delivery.attempts, %error, "webhook delivery failed; will retry");
                    (
                        "retry",
                        WebhookAttempt::Retry {
                            next_attempt_at: next,
                            error,
                            status,
                        },
                    )
                }
            }
        };
        metrics::counter!("latchkey_webhook_deliveries_total", "endpoint" => endpoint.label(), "outcome" => label)
            .increment(1);
        let held = self.store.finish_webhook_delivery(delivery, &attempt, now).await?;
        if !held {
            // Its lease ran out and another claim (or a 410, or the expiry) has it now.
            tracing::info!(delivery = %id, endpoint = %endpoint.label(), "a webhook attempt finished after its claim had passed");
        }
        Ok(held)
    }

    /// Counts deliveries the sweep failed as `outcome="failed"`, under the
    /// label of their endpoint (`#key` for one no longer configured).
    fn count_expired(&self, expired: &[String]) {
        let mut per_endpoint: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        for key in expired {
            *per_endpoint.entry(key.as_str()).or_default() += 1;
        }
        for (key, count) in per_endpoint {
            let label = self
                .endpoints
                .iter()
                .find(|e| e.key() == key)
                .map_or_else(|| format!("#{key}"), Endpoint::label);
            metrics::counter!("latchkey_webhook_deliveries_total", "endpoint" => label, "outcome" => "failed")
                .increment(count);
        }
    }

    /// Dispatches and delivers until `shutdown` turns true: one task
    /// dispatching, one per endpoint delivering. Without endpoints nothing
    /// runs: an instance configured without webhooks leaves events to one
    /// that has them (an event dispatched here would reach none).
    pub async fn run_until_stopped(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        if self.endpoints.is_empty() {
            return;
        }
        let poll = self.settings.courier.poll_interval;
        let mut tasks = tokio::task::JoinSet::new();
        let (me, mut stop) = (self.clone(), shutdown.clone());
        tasks.spawn(async move {
            let mut swept: Option<Instant> = None;
            loop {
                if swept.is_none_or(|at| at.elapsed() >= SWEEP_INTERVAL) {
                    swept = Some(Instant::now());
                    let now = now_ms();
                    match me.store.expire_webhook_deliveries(now, now - ms(RETRY_WINDOW)).await {
                        Ok(expired) if expired.is_empty() => {}
                        Ok(expired) => {
                            tracing::warn!(deliveries = expired.len(), "webhook deliveries expired undelivered");
                            me.count_expired(&expired);
                        }
                        Err(e) => tracing::error!(error = %format!("{e:#}"), "expiring webhook deliveries failed"),
                    }
                }
                let busy = match me.dispatch().await {
                    Ok(n) => n > 0,
                    Err(e) => {
                        tracing::error!(error = %format!("{e:#}"), "dispatching webhook events failed");
                        false
                    }
                };
                if *stop.borrow() || (!busy && idle(poll, &mut stop).await) {
                    return;
                }
            }
        });
        for n in 0..self.endpoints.len() {
            let (me, mut stop) = (self.clone(), shutdown.clone());
            tasks.spawn(async move {
                let endpoint = &me.endpoints[n];
                let mut measured: Option<Instant> = None;
                loop {
                    let busy = match me.deliver(endpoint).await {
                        Ok(n) => n > 0,
                        Err(e) => {
                            tracing::error!(endpoint = %endpoint.label(), error = %format!("{e:#}"), "delivering webhooks failed");
                            false
                        }
                    };
                    if measured.is_none_or(|at| at.elapsed() >= DEPTH_INTERVAL) {
                        measured = Some(Instant::now());
                        if let Err(e) = me.measure(endpoint).await {
                            tracing::error!(endpoint = %endpoint.label(), error = %format!("{e:#}"), "counting webhook deliveries failed");
                        }
                    }
                    if *stop.borrow() || (!busy && idle(poll, &mut stop).await) {
                        return;
                    }
                }
            });
        }
        tasks.join_all().await;
    }
}

/// Waits one poll interval; true when told to stop meanwhile.
async fn idle(poll: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(poll) => false,
        _ = stop.changed() => true,
    }
}
