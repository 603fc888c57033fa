//! Webhooks (SPEC §5.4) against a real HTTP receiver that checks every
//! signature with the published `standardwebhooks` library: the events a
//! recovery raises (and the none an unknown address raises), two secrets
//! during a rotation, a receiver that is down and comes back, `Retry-After`,
//! 410 (which stops everything queued and names the endpoint without its
//! path), giving up and replaying, a late finish under a lost lease,
//! orphaned deliveries, a slow endpoint beside a fast one, and two instances
//! that never deliver one event twice, nor dispatch it to two configurations.

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
    let disabled: Vec<_> = audit
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["kind"] == "webhook.disabled")
        .collect();
    assert_eq!(disabled.len(), 1, "{audit}");
    // Named by host and key: the URL's path may hold a credential.
    assert!(!disabled[0].to_string().contains("/hooks"), "{audit}");
    let metrics = app
        .client
        .get(format!("{}/metrics", app.admin_address))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let labelled: Vec<_> = metrics.lines().filter(|l| l.contains("latchkey_webhook")).collect();
    assert!(
        !labelled.is_empty() && labelled.iter().all(|l| !l.contains("/hooks")),
        "{labelled:?}"
    );
    // The 410'd delivery and the one raised while disabled are both listed, neither lost.
    let failed = app.services.store.failed_webhook_deliveries(10).await.expect("failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|f| f.status == "disabled"), "{failed:?}");
    let gone = failed
        .iter()
        .find(|f| f.event_id == receiver.received()[2].id)
        .expect("the 410'd delivery");

    let now = latchkey::time::now_ms();
    let replayed = app
        .services
        .store
        .replay_webhook_delivery(&gone.webhook_delivery_id, now, now + 60_000)
        .await
        .expect("replay");
    assert!(replayed);
    receiver.wait_until("the replay", |r| r.len() >= 4).await;
    assert_eq!(receiver.received()[3].id, receiver.received()[2].id);
    // The other stays disabled until it is replayed too.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 4);
}

/// A 410 in the middle of a batch ends it: nothing queued behind it is sent,
/// and nothing is claimed again until a replay (a 200 afterwards must not
/// turn a disabled delivery into a sent one).
#[tokio::test]
async fn a_410_stops_everything_queued_for_the_endpoint() {
    let secret = new_secret();
    let receiver = Receiver::start(0, vec![secret.clone()]).await;
    receiver.answer(&[(410, None)]);
    let url = receiver.url.clone();
    let app = spawn_app_inner(
        move |s| {
            quick(s);
            s.webhooks = vec![hook(&url, &[secret], &["identity.created"])];
        },
        false,
    )
    .await;
    for n in 0..5 {
        app.create_identity(&format!("queued-{n}@example.com"), None, true)
            .await;
    }
    // One worker, started once all five are queued: they go out in one batch.
    let worker = std::sync::Arc::new(
        latchkey::webhooks::worker::Webhooks::new(app.services.store.clone(), app.services.settings.clone())
            .expect("worker"),
    );
    assert_eq!(worker.dispatch().await.expect("dispatch"), 5);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run_until_stopped(stopped));
    receiver.wait_until("the 410", |r| !r.is_empty()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.send(true).expect("stop");
    running.await.expect("stopped");
    assert_eq!(receiver.received().len(), 1, "sent after a 410");
    let failed = app.services.store.failed_webhook_deliveries(10).await.expect("failed");
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(failed.iter().all(|f| f.status == "disabled"), "{failed:?}");
}

/// A sender whose lease ran out records nothing over the claim that
/// replaced it; a delivery past its window that no lease covers (its
/// endpoint removed from the configuration) is failed, not kept forever.
#[tokio::test]
async fn a_late_finish_cannot_overwrite_a_newer_claim_and_orphans_expire() {
    let secret = new_secret();
    let app = spawn_app_inner(
        move |s| s.webhooks = vec![hook("http://127.0.0.1:9/hooks", &[secret], &["identity.created"])],
        false,
    )
    .await;
    app.create_identity("claimed@example.com", None, true).await;
    let worker = latchkey::webhooks::worker::Webhooks::new(app.services.store.clone(), app.services.settings.clone())
        .expect("worker");
    assert_eq!(worker.dispatch().await.expect("dispatch"), 1);
    let key = latchkey::webhooks::key("http://127.0.0.1:9/hooks");
    let store = &app.services.store;
    let now = latchkey::time::now_ms();
    let first = store
        .claim_webhook_deliveries(&key, now, now + 10, 16)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    // The lease runs out; another instance claims it.
    let later = now + 1_000;
    let second = store
        .claim_webhook_deliveries(&key, later, later + 60_000, 16)
        .await
        .expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, first[0].attempts + 1);
    let sent = latchkey::store::WebhookAttempt::Sent { status: 200 };
    let stale = store
        .finish_webhook_delivery(&first[0].webhook_delivery_id, first[0].attempts, &sent, later)
        .await
        .expect("finish");
    assert!(!stale, "a finish under a lost claim was recorded");
    // Leased: not expired even past its window.
    app.execute_sql("update webhook_delivery set give_up_at = 0").await;
    assert_eq!(store.expire_webhook_deliveries(later).await.expect("expire"), 0);
    let current = store
        .finish_webhook_delivery(
            &second[0].webhook_delivery_id,
            second[0].attempts,
            &latchkey::store::WebhookAttempt::Retry {
                next_attempt_at: later,
                error: "answered 500".into(),
                status: Some(500),
            },
            later,
        )
        .await
        .expect("finish");
    assert!(current);
    assert_eq!(store.expire_webhook_deliveries(later).await.expect("expire"), 1);
    let failed = store.failed_webhook_deliveries(10).await.expect("failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, "failed");
}

/// During a rolling deploy two instances may hold different endpoints: an
/// event goes to the endpoints of the one that dispatched it, never to both
/// sets, however the two race.
#[tokio::test]
async fn two_dispatchers_with_different_endpoints_dispatch_each_event_once() {
    let secret = new_secret();
    let (x, y) = ("http://127.0.0.1:9/x", "http://127.0.0.1:9/y");
    let app = spawn_app_inner(|_| {}, false).await;
    let settings_for = |url: &str| {
        let mut settings = Settings::clone(&app.services.settings);
        settings.webhooks = vec![hook(url, std::slice::from_ref(&secret), &[])];
        std::sync::Arc::new(settings)
    };
    for n in 0..60 {
        app.create_identity(&format!("raced-{n}@example.com"), None, true).await;
    }
    let workers: Vec<_> = [x, y]
        .iter()
        .map(|url| {
            std::sync::Arc::new(
                latchkey::webhooks::worker::Webhooks::new(app.services.store.clone(), settings_for(url))
                    .expect("worker"),
            )
        })
        .collect();
    let mut racing = tokio::task::JoinSet::new();
    for worker in &workers {
        let worker = worker.clone();
        racing.spawn(async move { while worker.dispatch().await.expect("dispatch") > 0 {} });
    }
    racing.join_all().await;
    let store = &app.services.store;
    let to_x = store
        .webhook_queue_depth(&latchkey::webhooks::key(x))
        .await
        .expect("depth");
    let to_y = store
        .webhook_queue_depth(&latchkey::webhooks::key(y))
        .await
        .expect("depth");
    assert_eq!(to_x + to_y, 60, "x {to_x}, y {to_y}");
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
