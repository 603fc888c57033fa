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
    let deleted = app.admin_delete(&format!("/admin/identities/{id}")).await;
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
    let metrics = app.admin_text("/metrics").await;
    let labelled: Vec<_> = metrics.lines().filter(|l| l.contains("latchkey_webhook")).collect();
    assert!(
        !labelled.is_empty() && labelled.iter().all(|l| !l.contains("/hooks")),
        "{labelled:?}"
    );
    // The 410'd delivery and the one raised while disabled are both listed, neither lost.
    let failed = app.services.store.failed_webhook_deliveries(10).await.expect("failed");
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(failed.iter().all(|f| f.status == "disabled"), "{failed:?}");
    let errors: Vec<_> = failed.iter().filter_map(|f| f.last_error.as_deref()).collect();
    assert!(errors.contains(&"the endpoint answered 410 Gone"), "{failed:?}");
    assert!(errors.contains(&"the endpoint is disabled"), "{failed:?}");
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
/// replaced it — whether another instance re-claimed it or a 410 and a
/// replay came in between (a replay starts `attempts` again) — but a 2xx
/// on a delivery disabled meanwhile is recorded, so a replay does not send
/// it twice. A delivery past its window that no lease covers (its endpoint
/// removed from the configuration) is failed, not kept forever.
#[tokio::test]
async fn a_late_finish_cannot_overwrite_a_newer_claim_and_orphans_expire() {
    use latchkey::store::{AuditEventRecord, WebhookAttempt, WebhookEndpointRecord};
    let url = "http://127.0.0.1:9/hooks";
    let secret = new_secret();
    let app = spawn_app_inner(
        move |s| s.webhooks = vec![hook(url, &[secret], &["identity.created"])],
        false,
    )
    .await;
    app.create_identity("claimed@example.com", None, true).await;
    let worker = latchkey::webhooks::worker::Webhooks::new(app.services.store.clone(), app.services.settings.clone())
        .expect("worker");
    assert_eq!(worker.dispatch().await.expect("dispatch"), 1);
    let key = &latchkey::webhooks::key(url);
    let store = &app.services.store;
    let now = latchkey::time::now_ms();
    let claim = |at: i64| async move {
        let mut claimed = store
            .claim_webhook_deliveries(key, at, at + 10, 16)
            .await
            .expect("claim");
        assert_eq!(claimed.len(), 1);
        claimed.remove(0)
    };
    let sent = WebhookAttempt::Sent { status: 200 };
    let retry = |at: i64| WebhookAttempt::Retry {
        next_attempt_at: at,
        error: "answered 500".into(),
        status: Some(500),
    };

    // The lease runs out; another instance claims it.
    let first = claim(now).await;
    let second = claim(now + 1_000).await;
    assert_eq!(second.attempts, first.attempts + 1);
    assert!(!store.finish_webhook_delivery(&first, &sent, now).await.expect("finish"));

    // A 410 (another instance), a replay, a new claim: the same `attempts` as the first.
    let disabled = WebhookEndpointRecord {
        endpoint: latchkey::webhooks::key(url),
        disabled_at: now,
        reason: "answered 410 Gone".into(),
    };
    let event = || AuditEventRecord {
        audit_event_id: uuid::Uuid::new_v4().to_string(),
        identity_id: None,
        kind: "webhook.disabled".into(),
        ip_address: None,
        user_agent: None,
        detail: "{}".into(),
        created_at: now,
    };
    assert!(
        store
            .disable_webhook_endpoint(&disabled, &event())
            .await
            .expect("disable")
    );
    let id = second.webhook_delivery_id.clone();
    assert!(
        store
            .replay_webhook_delivery(&id, now + 2_000, now + 60_000)
            .await
            .expect("replay")
    );
    let third = claim(now + 2_000).await;
    assert_eq!(third.attempts, first.attempts, "a replay counts again from zero");
    assert!(!store.finish_webhook_delivery(&first, &sent, now).await.expect("finish"));
    assert!(
        !store
            .finish_webhook_delivery(&second, &retry(now), now)
            .await
            .expect("finish")
    );

    // Disabled while the third was being sent, and the receiver said 2xx: sent, not replayable.
    assert!(
        store
            .disable_webhook_endpoint(&disabled, &event())
            .await
            .expect("disable")
    );
    assert!(store.finish_webhook_delivery(&third, &sent, now).await.expect("finish"));
    assert!(store.failed_webhook_deliveries(10).await.expect("failed").is_empty());

    // An orphan: pending past its window, its endpoint gone from every configuration.
    app.execute_sql("update webhook_delivery set status = 'pending', give_up_at = 0, lease_until = null")
        .await;
    app.execute_sql("delete from webhook_endpoint").await;
    let leased = claim(now + 3_000).await;
    assert_eq!(
        store.expire_webhook_deliveries(now + 3_005, 0).await.expect("expire"),
        Vec::<String>::new(),
        "a leased delivery expired"
    );
    assert!(
        store
            .finish_webhook_delivery(&leased, &retry(now), now)
            .await
            .expect("finish")
    );
    assert_eq!(
        store
            .expire_webhook_deliveries(now + 3_005, 0)
            .await
            .expect("expire")
            .len(),
        1
    );
    let failed = store.failed_webhook_deliveries(10).await.expect("failed");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, "failed");
}

/// An instance configured without webhooks dispatches nothing (it would
/// dispatch events to no endpoint, and one that has them would never see
/// them); events older than a delivery's day when webhooks are first
/// enabled are skipped, not sent as a backlog.
#[tokio::test]
async fn an_instance_without_webhooks_leaves_events_to_one_that_has_them() {
    let app = spawn_app().await;
    app.create_identity("early@example.com", None, true).await;
    app.create_identity("old@example.com", None, true).await;
    let empty = std::sync::Arc::new(
        latchkey::webhooks::worker::Webhooks::new(app.services.store.clone(), app.services.settings.clone())
            .expect("worker"),
    );
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::time::timeout(Duration::from_secs(5), empty.run_until_stopped(stopped))
        .await
        .expect("a worker without endpoints returns at once");

    let old = latchkey::time::now_ms() - 2 * 24 * 3600 * 1000;
    app.execute_sql(&format!(
        "update audit_event set created_at = {old} where identity_id in \
         (select identity_id from address where value = 'old@example.com')"
    ))
    .await;
    let url = "http://127.0.0.1:9/hooks";
    let mut settings = Settings::clone(&app.services.settings);
    settings.webhooks = vec![hook(url, &[new_secret()], &["identity.created"])];
    let store = &app.services.store;
    let now = latchkey::time::now_ms();
    store
        .expire_webhook_deliveries(now, now - 24 * 3600 * 1000)
        .await
        .expect("sweep");
    let worker =
        latchkey::webhooks::worker::Webhooks::new(store.clone(), std::sync::Arc::new(settings)).expect("worker");
    worker.dispatch().await.expect("dispatch");
    let queued = store
        .webhook_queue_depth(&latchkey::webhooks::key(url))
        .await
        .expect("depth");
    assert_eq!(queued, 1, "the recent event, not the old one");
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

/// `login.locked` once, from the failure that starts the lock: neither
/// from each failure before it nor from each attempt refused while it holds.
#[tokio::test]
async fn login_locked_is_raised_once_per_streak() {
    let secret = new_secret();
    let receiver = Receiver::start(0, vec![secret.clone()]).await;
    let url = receiver.url.clone();
    let app = spawn_app_with(move |s| {
        quick(s);
        s.webhooks = vec![hook(&url, &[secret], &["login.locked"])];
    })
    .await;
    app.create_identity("locked@example.com", Some(PASSWORD), true).await;
    for _ in 0..8 {
        let status = app
            .login("locked@example.com", "not the password at all")
            .await
            .status();
        assert_eq!(status, 401);
    }
    let locked = receiver.wait_until("login.locked", |r| !r.is_empty()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(receiver.received().len(), 1, "{:?}", receiver.received());
    assert_eq!(locked[0].body["type"], "login.locked");
}

/// The events of operator changes, a locked flow, a freeze ("this wasn't
/// me") and an unfreeze reach the receiver with their actor; and the
/// delivery counter names the endpoint by host and key.
#[tokio::test]
async fn operator_changes_a_locked_flow_a_freeze_and_an_unfreeze_raise_their_events() {
    let secret = new_secret();
    let receiver = Receiver::start(0, vec![secret.clone()]).await;
    let url = receiver.url.clone();
    let listed = [
        "identity.updated",
        "password.changed",
        "sessions.revoked",
        "recovery.locked",
        "account.frozen",
        "account.unfrozen",
        "identity.deleted",
    ];
    let endpoint = latchkey::webhooks::label(&url);
    let app = spawn_app_with(move |s| {
        quick(s);
        s.webhooks = vec![hook(&url, &[secret], &listed)];
    })
    .await;
    let email = "ops@example.com";
    let id = app.create_identity(email, Some(PASSWORD), true).await;
    let path = format!("/admin/identities/{id}");
    let admin =
        |method: reqwest::Method, path: &str| app.client.request(method, format!("{}{path}", app.admin_address));
    let patched = admin(reqwest::Method::PATCH, &path)
        .json(&serde_json::json!({"roles": ["support"]}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let password = serde_json::json!({"password": "an operator's new passphrase"});
    let patched = admin(reqwest::Method::PATCH, &path)
        .json(&password)
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let phone = serde_json::json!({"kind": "phone", "value": "+84901234567"});
    assert_eq!(app.admin_post(&format!("{path}/addresses"), &phone).await.status(), 201);

    // Five wrong codes lock the flow.
    let cookie = app.started_flow(email).await;
    let code = app.code_from_mail(email, 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        app.verify(&cookie, wrong).await;
    }
    // A reset, then "this wasn't me" from its notice freezes the account.
    let cookie = app.verified_flow(email).await;
    assert_eq!(app.reset(&cookie, NEW_PASSWORD).await.status(), 200);
    let notice = app.mail.wait_for(email, 3).await.remove(2);
    let link = crate::report::report_link(&notice);
    let secured = crate::report::open_link(&app, reqwest::Method::POST, &link).await;
    assert_eq!(secured.status(), 200);
    let unfrozen = app
        .admin_post(&format!("{path}/unfreeze"), &serde_json::json!({}))
        .await;
    assert_eq!(unfrozen.status(), 200);
    let deleted = admin(reqwest::Method::DELETE, &path).send().await.expect("delete");
    assert_eq!(deleted.status(), 204);

    receiver
        .wait_until("every listed event", |r| {
            listed.iter().all(|t| r.iter().any(|x| x.body["type"] == *t))
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let count = |t: &str| receiver.of_type(t).len();
    // Roles, password, address; each with the operator as its actor.
    assert_eq!(count("identity.updated"), 3, "{:?}", receiver.received());
    for updated in receiver.of_type("identity.updated") {
        assert_eq!(updated.body["data"]["actor"], "admin_loopback", "{}", updated.raw);
    }
    // The operator's new password and the reset.
    assert_eq!(count("password.changed"), 2);
    for once in [
        "recovery.locked",
        "account.frozen",
        "account.unfrozen",
        "identity.deleted",
    ] {
        assert_eq!(count(once), 1, "{once}: {:?}", receiver.received());
    }
    for r in receiver.received() {
        assert_eq!(r.body["data"]["identity_id"], id.as_str(), "{}", r.raw);
        assert_eq!(r.verified_by, [true]);
    }

    let metrics = app.admin_text("/metrics").await;
    let sent = format!("latchkey_webhook_deliveries_total{{endpoint=\"{endpoint}\",outcome=\"sent\"}}");
    let line = metrics
        .lines()
        .find(|l| l.starts_with(&sent))
        .unwrap_or_else(|| panic!("{sent} in {metrics}"));
    let delivered: usize = line.rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a count");
    assert_eq!(delivered, receiver.received().len(), "{line}");
    assert!(
        metrics.contains(&format!("latchkey_webhook_queue_depth{{endpoint=\"{endpoint}\"}}")),
        "{metrics}"
    );
}

/// A delivery the minute's sweep gives up (its endpoint was removed from
/// the configuration) is counted as failed, under the endpoint's key.
#[tokio::test]
async fn a_delivery_the_sweep_gives_up_is_counted_as_failed() {
    let app = spawn_app().await;
    app.create_identity("swept@example.com", None, true).await;
    let removed = "http://127.0.0.1:9/removed";
    let with = |url: &str| {
        let mut settings = Settings::clone(&app.services.settings);
        settings.webhooks = vec![hook(url, &[new_secret()], &["identity.created"])];
        latchkey::webhooks::worker::Webhooks::new(app.services.store.clone(), std::sync::Arc::new(settings))
            .expect("worker")
    };
    assert_eq!(with(removed).dispatch().await.expect("dispatch"), 1);
    app.execute_sql("update webhook_delivery set give_up_at = 0").await;

    // A worker configured with another endpoint sweeps at its start.
    let worker = std::sync::Arc::new(with("http://127.0.0.1:9/kept"));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let running = tokio::spawn(worker.run_until_stopped(stopped));
    let failed = loop {
        let failed = app.services.store.failed_webhook_deliveries(10).await.expect("failed");
        if !failed.is_empty() {
            break failed;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    stop.send(true).expect("stop");
    running.await.expect("stopped");
    assert_eq!(failed.len(), 1);
    let metrics = app.admin_text("/metrics").await;
    let counted = format!(
        "latchkey_webhook_deliveries_total{{endpoint=\"#{}\",outcome=\"failed\"}} 1",
        latchkey::webhooks::key(removed)
    );
    assert!(metrics.contains(&counted), "{counted} not in {metrics}");
}
