//! A real HTTP endpoint in the test process standing in for an SMS gateway:
//! it keeps every `{"to","body"}` it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;

#[derive(Clone)]
pub struct SmsSink {
    pub url: String,
    messages: Arc<Mutex<Vec<Value>>>,
}

impl SmsSink {
    pub async fn start() -> SmsSink {
        let messages = Arc::new(Mutex::new(Vec::new()));
        let store = messages.clone();
        let app = Router::new().route(
            "/sms",
            post(move |Json(body): Json<Value>| {
                let store = store.clone();
                async move {
                    store.lock().expect("sink lock").push(body);
                    "queued"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/sms", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, app).await });
        SmsSink { url, messages }
    }

    pub fn to(&self, number: &str) -> Vec<String> {
        self.messages
            .lock()
            .expect("sink lock")
            .iter()
            .filter(|m| m["to"] == number)
            .filter_map(|m| m["body"].as_str().map(str::to_owned))
            .collect()
    }

    pub async fn wait_for(&self, number: &str, count: usize) -> Vec<String> {
        for _ in 0..200 {
            let bodies = self.to(number);
            if bodies.len() >= count {
                return bodies;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {count} SMS to {number}, got {:?}", self.to(number));
    }
}
