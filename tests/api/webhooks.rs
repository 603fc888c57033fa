//! Webhooks (SPEC §5.4) against a real HTTP receiver that checks every
//! signature with the published `standardwebhooks` library: the events a
//! recovery raises (and the none an unknown address raises), two secrets
//! during a rotation, a receiver that is down and comes back, `Retry-After`,
//! 410, giving up and replaying, a slow endpoint beside a fast one, and two
//! instances that never deliver one event twice.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use latchkey::config::{Settings, WebhookSecrets, WebhookSettings};

use crate::helpers::*;
use crate::webhook_receiver::{Receiver, new_secret};

fn hook(url: &str, secrets: &[String], events: &[&str]) -> WebhookSettings {
    WebhookSettings {
        url: url.to_owned(),
        secret: if secrets.len() == 1 {
            WebhookSecrets::One(secrets[0].clone())
        } else {
            WebhookSecrets::Many(secrets.to_vec())
        },
        events: events.iter().map(|e| e.to_string()).collect(),
    }
}

fn quick(settings: &mut Settings) {
    settings.courier.webhook_backoff = Duration::from_millis(100);
    settings.courier.webhook_timeout = Duration::from_secs(2);
}

#[tokio::test]
async fn a_recovery_raises_signed_events_and_an_unknown_address_raises_none() {
    let (old, new) = (new_secret(), new_secret());
    let receiver = Receiver::start(0, vec![old.clone(), new.clone()]).await;
    // Two secrets during a rotation: each signs, and each verifies.
    let url = receiver.url.clone();
    let both = [old, new];
    let app = spawn_app_with(move |s| {
        quick(s);
        s.webhooks = vec![hook(&url, &both, &[])];
    })
    .await;
    let id = app.create_identity("hooked@example.com", Some(PASSWORD), true).await;
    assert_eq!(app.start_recovery("nobody@example.com").await.status(), 200);
    let code_mails = app.mail.mails_to("hooked@example.com").len();
    let cookie = app.started_flow("hooked@example.com").await;
    let code = app.code_from_mail("hooked@example.com", code_mails + 1).await;
    let verified = app.verify(&cookie, &code).await;
    let cookie = recovery_cookie(verified.headers()).expect("cookie");
    assert_eq!(app.reset(&cookie, NEW_PASSWORD).await.status(), 200);

    receiver
        .wait_until("the reset's events", |r| {
            [
                "identity.created",
                "recovery.requested",
                "recovery.completed",
                "password.changed",
                "sessions.revoked",
            ]
            .iter()
            .all(|t| r.iter().any(|x| x.body["type"] == *t))
        })
        .await;
    // Let anything late arrive before counting.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received();
    for r in &received {
        assert_eq!(
            r.verified_by,
            [true, true],
            "each secret's signature verifies: {}",
            r.raw
        );
        assert_eq!(r.body["data"]["identity_id"], id.as_str(), "{}", r.raw);
        assert!(r.body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')));
        for secret in [code.as_str(), PASSWORD, NEW_PASSWORD, cookie.as_str(), "$argon2id$"] {
            assert!(!r.raw.contains(secret), "a webhook carries a secret: {}", r.raw);
        }
        assert!(r.id.starts_with("msg_"), "{}", r.id);
    }
    let requested = receiver.of_type("recovery.requested");
    assert_eq!(requested.len(), 1, "the unknown address raised an event");
    assert_eq!(requested[0].body["data"]["channel"], "email");
    assert_eq!(requested[0].body["data"]["ip"], "127.0.0.1");
    let ids: std::collections::HashSet<_> = receiver.received().iter().map(|r| r.id.clone()).collect();
    assert_eq!(ids.len(), receiver.received().len(), "an event was delivered twice");
}

#[tokio::test]
async fn an_endpoint_receives_only_the_events_it_lists() {
    let secret = new_secret();
    let receiver = Receiver::start(0, vec![secret.clone()]).await;
    let url = receiver.url.clone();
    let app = spawn_app_with(move |s| {
        quick(s);
        s.webhooks = vec![hook(&url, &[secret], &["identity.deleted"])];
    })
    .await;
    let id = app.create_identity("listed@example.com", None, true).await;
    let deleted = app
        .client
        .delete(format!("{}/admin/identities/{id}", app.admin_address))
        .send()
        .await
        .expect("sent");
    assert!(deleted.status().is_success());
    receiver
        .wait_until("identity.deleted", |r| {
            r.iter().any(|x| x.body["type"] == "identity.deleted")
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received());
}

#[tokio::test]
async fn a_receiver_that_is_down_gets_every_event_once_it_is_back() {
    let secret = new_secret();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/hooks");
    let app = spawn_app_with({
        let secret = secret.clone();
        move |s| {
            quick(s);
            s.webhooks = vec![hook(&url, &[secret], &["identity.created"])];
        }
    })
    .await;
    for n in 0..5 {
        app.create_identity(&format!("down-{n}@example.com"), None, true).await;
    }
    // Refused connections for a while: the deliveries are retried.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let receiver = Receiver::start(port, vec![secret]).await;
    let received = receiver.wait_until("five events", |r| r.len() >= 5).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 5, "{received:?}");
    assert!(receiver.received().iter().all(|r| r.verified_by == [true]));
}

#[tokio::test]
async fn retry_after_is_honoured_and_410_disables_the_endpoint_until_a_replay() {
    let secret = new_secret();
    let receiver = Receiver::start(0, vec![secret.clone()]).await;
    receiver.answer(&[(503, Some("2")), (200, None)]);
    let url = receiver.url.clone();
    let app = spawn_app_with(move |s| {
        quick(s);
        s.webhooks = vec![hook(&url, &[secret], &["identity.created"])];
    })
    .await;
    app.create_identity("later@example.com", None, true).await;
    let both = receiver.wait_until("a retry", |r| r.len() >= 2).await;
    let waited = both[1].at - both[0].at;
    assert!(
        waited >= Duration::from_millis(1900),
        "Retry-After: 2 was not honoured ({waited:?})"
    );
    assert_eq!(both[0].id, both[1].id, "a retry keeps its webhook-id");

    receiver.answer(&[(410, None)]);
    app.create_identity("gone@example.com", None, true).await;
    receiver.wait_until("the 410", |r| r.len() >= 3).await;
    app.create_identity("after-gone@example.com", None, true).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 3, "a disabled endpoint still receives");
    let audit = app.admin_json("/admin/audit").await;
    assert!(
        audit
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["kind"] == "webhook.disabled"),
        "{audit}"
    );
    let failed = app.services.store.failed_webhook_deliveries(10).await.expect("failed");
    assert_eq!(failed.len(), 1, "the 410'd delivery is listed: {failed:?}");
    assert_eq!(failed[0].status, "disabled");

    let now = latchkey::time::now_ms();
    let replayed = app
        .services
        .store
        .replay_webhook_delivery(&failed[0].webhook_delivery_id, now, now + 60_000)
        .await
        .expect("replay");
    assert!(replayed);
    receiver.wait_until("the replay", |r| r.len() >= 4).await;
    assert_eq!(receiver.received()[3].id, receiver.received()[2].id);
}

#[tokio::test]
async fn a_delivery_failing_past_its_day_is_given_up_and_listed() {
    let secret = new_secret();
    let receiver = Receiver::start(0, vec![secret.clone()]).await;
    receiver.answer(&[(500, None); 3]);
    let url = receiver.url.clone();
    let app = spawn_app_with(move |s| {
        quick(s);
        s.webhooks = vec![hook(&url, &[secret], &["identity.created"])];
    })
    .await;
    // Its day is over before the first retry is due.
    app.execute_sql("update webhook_delivery set give_up_at = 0").await;
    app.create_identity("doomed@example.com", None, true).await;
    receiver.wait_until("one attempt", |r| !r.is_empty()).await;
    app.execute_sql("update webhook_delivery set give_up_at = 0").await;
    let mut failed = Vec::new();
    for _ in 0..100 {
        failed = app.services.store.failed_webhook_deliveries(10).await.expect("failed");
        if !failed.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, "failed");
    assert_eq!(failed[0].last_status, Some(500));
}

#[tokio::test]
async fn a_slow_endpoint_delays_neither_a_recovery_nor_another_endpoint() {
    let (slow_secret, fast_secret) = (new_secret(), new_secret());
    let slow = Receiver::start(0, vec![slow_secret.clone()]).await;
    slow.slow_down(Duration::from_secs(5));
    let fast = Receiver::start(0, vec![fast_secret.clone()]).await;
    let (slow_url, fast_url) = (slow.url.clone(), fast.url.clone());
    let app = spawn_app_with(move |s| {
        quick(s);
        s.webhooks = vec![
            hook(&slow_url, &[slow_secret], &[]),
            hook(&fast_url, &[fast_secret], &[]),
        ];
    })
    .await;
    for n in 0..3 {
        app.create_identity(&format!("slow-{n}@example.com"), None, true).await;
    }
    let began = Instant::now();
    fast.wait_until("three events at the fast endpoint", |r| r.len() >= 3)
        .await;
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "the fast endpoint waited for the slow one"
    );
    let began = Instant::now();
    assert_eq!(app.start_recovery("slow-0@example.com").await.status(), 200);
    assert!(began.elapsed() < Duration::from_secs(1), "a start waited for a webhook");
}

#[tokio::test]
async fn two_instances_never_deliver_one_event_twice() {
    let secret = new_secret();
    let receiver = Receiver::start(0, vec![secret.clone()]).await;
    let url = receiver.url.clone();
    let first = spawn_app_with(move |s| {
        quick(s);
        s.webhooks = vec![hook(&url, &[secret], &["identity.created"])];
    })
    .await;
    let second = spawn_peer(&first, true).await;
    assert!(!second.services.settings.webhooks.is_empty());
    let mut creating = tokio::task::JoinSet::new();
    for n in 0..40 {
        let services = if n % 2 == 0 {
            first.services.clone()
        } else {
            second.services.clone()
        };
        creating.spawn(async move {
            let new =
                latchkey::admin::parse_new_identity(&format!("twice-{n}@example.com"), None, None, vec![], true, None)
                    .expect("valid");
            latchkey::identity::create(&services, new).await.expect("created");
        });
    }
    creating.join_all().await;
    receiver.wait_until("forty events", |r| r.len() >= 40).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in receiver.received() {
        *seen.entry(r.id).or_default() += 1;
    }
    assert_eq!(seen.len(), 40);
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
}
