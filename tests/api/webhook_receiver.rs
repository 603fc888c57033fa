//! A real HTTP endpoint in the test process standing in for an operator's
//! application: it checks every request's signature with the published
//! `standardwebhooks` library (not latchkey's code), keeps what it received,
//! and answers from a script (200 unless told otherwise; slow if told).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::Value;

/// A secret in the Standard Webhooks form (24 random bytes).
pub fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 24] = std::array::from_fn(|_| rand_byte());
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

fn rand_byte() -> u8 {
    uuid::Uuid::new_v4().as_bytes()[0]
}

/// A status to answer, with a `Retry-After` value.
pub type Answer = (u16, Option<&'static str>);

#[derive(Debug, Clone)]
pub struct Received {
    pub id: String,
    pub body: Value,
    pub raw: String,
    /// Each configured secret that verified the request.
    pub verified_by: Vec<bool>,
    pub at: Instant,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    /// Statuses to answer, in order (then 200), with an optional Retry-After.
    script: Arc<Mutex<VecDeque<Answer>>>,
    delay: Arc<Mutex<Duration>>,
}

impl Receiver {
    /// Listens on `port` (0: any) and verifies with each of `secrets`.
    pub async fn start(port: u16, secrets: Vec<String>) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let receiver = Receiver {
            url: format!("http://{addr}/hooks"),
            received: Arc::default(),
            script: Arc::default(),
            delay: Arc::default(),
        };
        let verifiers: Vec<_> = secrets
            .iter()
            .map(|s| standardwebhooks::Webhook::new(s).expect("a Standard Webhooks secret"))
            .collect();
        let verifiers = Arc::new(verifiers);
        let state = receiver.clone();
        let app = Router::new().route(
            "/hooks",
            post(move |headers: HeaderMap, body: Bytes| {
                let (state, verifiers) = (state.clone(), verifiers.clone());
                async move { state.receive(&verifiers, headers, body).await }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    async fn receive(&self, verifiers: &[standardwebhooks::Webhook], headers: HeaderMap, body: Bytes) -> Response {
        let delay = *self.delay.lock().expect("lock");
        tokio::time::sleep(delay).await;
        let verified_by: Vec<bool> = verifiers.iter().map(|v| v.verify(&body, &headers).is_ok()).collect();
        let raw = String::from_utf8_lossy(&body).into_owned();
        self.received.lock().expect("lock").push(Received {
            id: headers
                .get("webhook-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw,
            verified_by,
            at: Instant::now(),
        });
        let (status, retry_after) = self.script.lock().expect("lock").pop_front().unwrap_or((200, None));
        let mut response = StatusCode::from_u16(status).expect("status").into_response();
        if let Some(after) = retry_after {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static(after));
        }
        response
    }

    /// Answer these statuses to the next requests, in order.
    pub fn answer(&self, statuses: &[Answer]) {
        self.script.lock().expect("lock").extend(statuses.iter().copied());
    }

    /// Wait this long before answering each request.
    pub fn slow_down(&self, delay: Duration) {
        *self.delay.lock().expect("lock") = delay;
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// The requests whose body has this `type`.
    pub fn of_type(&self, event_type: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.body["type"] == event_type)
            .collect()
    }

    /// Waits until `done` holds of what was received (at most 20 s).
    pub async fn wait_until(&self, what: &str, done: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        for _ in 0..400 {
            let received = self.received();
            if done(&received) {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let types: Vec<String> = self.received().iter().map(|r| r.body["type"].to_string()).collect();
        panic!("webhooks: {what} never happened; received {types:?}");
    }
}
