//! Several instances on one database: limits, single use and delivery hold
//! wherever a request lands.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;

use crate::helpers::*;

/// A start for `email` on `app`, to run in a task of its own: its status.
fn start(app: &TestApp, email: &str) -> impl std::future::Future<Output = u16> + Send + 'static {
    let request = start_request(app, email);
    async move { request.send().await.expect("sent").status().as_u16() }
}

fn start_request(app: &TestApp, email: &str) -> reqwest::RequestBuilder {
    app.client
        .post(app.url("/api/auth/recovery/start"))
        .json(&json!({ "email": email }))
}

#[tokio::test]
async fn the_start_limit_holds_across_two_instances() {
    let a = spawn_app().await;
    let b = spawn_peer(&a, true).await;
    a.create_identity("alice@example.com", Some(PASSWORD), true).await;

    for app in [&a, &b, &a] {
        assert_eq!(app.start_recovery("alice@example.com").await.status(), 200);
    }
    let fourth = b.start_recovery("alice@example.com").await;

    assert_eq!(fourth.status(), 429);
    assert_eq!(json(fourth).await["error"], "rate_limited");
}

/// Starts that arrive together are committed together (SQLite's group
/// commit) or queue on the login's lock (PostgreSQL): either way the limit
/// holds exactly, every admitted start has its flow, audit event and message,
/// and only the newest flow's code is alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_simultaneous_starts_for_one_login_admit_exactly_the_limit() {
    let a = spawn_app().await;
    let b = spawn_peer(&a, true).await;
    a.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..20 {
        tasks.spawn(start(if i % 2 == 0 { &a } else { &b }, "alice@example.com"));
    }
    let mut statuses = tasks.join_all().await;
    statuses.sort_unstable();
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(admitted, 3, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");

    let mails = a.mail.wait_for("alice@example.com", 3).await;
    assert_eq!(mails.len(), 3);
    let flows = a.dump_table("recovery_flow").await;
    assert_eq!(
        flows.matches(r#"state=Some("sent")"#).count(),
        1,
        "one live code: {flows}"
    );
    let audit = a.dump_table("audit_event").await;
    assert_eq!(audit.matches("recovery.requested").count(), 3, "{audit}");
    assert_eq!(audit.matches("recovery.rate_limited").count(), 17, "{audit}");
}

/// Starts refused in a burst say when to retry as a start alone would: an
/// hour after the oldest admitted one, not at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_refused_in_a_burst_are_told_to_retry_in_an_hour() {
    let app = spawn_app().await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let request = start_request(&app, "alice@example.com");
        tasks.spawn(async move {
            let response = request.send().await.expect("sent");
            let retry_after = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            (response.status().as_u16(), retry_after)
        });
    }
    let answers = tasks.join_all().await;
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 3, "{answers:?}");
    for (status, retry_after) in &answers {
        if *status == 429 {
            let secs = retry_after.expect("a refused start says when to retry");
            assert!((3500..=3600).contains(&secs), "{answers:?}");
        }
    }
}

/// Starts for one login that arrive together are written together (in one
/// transaction; on PostgreSQL by one statement). Each still supersedes the
/// ones before it, in its group too: one code stays alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_simultaneous_starts_for_one_login_leave_one_live_code() {
    let app = spawn_app_with(|s| s.recovery.max_starts_per_hour = 0).await;
    app.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..30 {
        tasks.spawn(start(&app, "alice@example.com"));
    }
    let statuses = tasks.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let flows = app.dump_table("recovery_flow").await;
    assert_eq!(flows.matches("recovery_flow_id=").count(), 30, "{flows}");
    assert_eq!(
        flows.matches(r#"state=Some("sent")"#).count(),
        1,
        "one live flow: {flows}"
    );
    assert_eq!(flows.matches("code_hash=Some(").count(), 1, "one live code: {flows}");
    let audit = app.dump_table("audit_event").await;
    assert_eq!(audit.matches("recovery.requested").count(), 30, "{audit}");
}

/// A group of starts that finds one of its flows locked past its lock
/// timeout (here by another transaction holding alice's live flow) gives
/// way: it is rolled back and each start runs again alone. Every start is
/// still answered, each login keeps one live code, and nothing is written
/// twice. (Carol's held flow keeps both batchers busy while alice's and
/// bob's starts queue up, so they meet alice's lock as one group.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_starts_that_waits_on_a_locked_flow_gives_way_and_each_start_still_lands() {
    if !matches!(crate::BACKEND, Backend::Postgres) {
        return;
    }
    let app = spawn_app_with(|s| s.recovery.max_starts_per_hour = 0).await;
    let pool = sqlx::PgPool::connect(&app.database_url).await.expect("open db");
    let mut holders = Vec::new();
    for who in ["carol", "alice", "bob"] {
        let email = format!("{who}@example.com");
        app.create_identity(&email, Some(PASSWORD), true).await;
        assert_eq!(app.start_recovery(&email).await.status(), 200);
        if who == "bob" {
            continue;
        }
        let mut holder = pool.begin().await.expect("begin");
        sqlx::query("select 1 from recovery_flow where state = 'sent' order by created_at desc limit 1 for update")
            .execute(&mut *holder)
            .await
            .expect("lock the newest live flow");
        holders.push(holder);
    }
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..2 {
        tasks.spawn(start(&app, "carol@example.com"));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    for i in 0..10 {
        tasks.spawn(start(
            &app,
            if i % 2 == 0 {
                "alice@example.com"
            } else {
                "bob@example.com"
            },
        ));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    let alice_holder = holders.pop().expect("alice's holder");
    holders
        .pop()
        .expect("carol's holder")
        .commit()
        .await
        .expect("release carol's flow");
    tokio::time::sleep(Duration::from_millis(400)).await;
    alice_holder.commit().await.expect("release alice's flow");
    let statuses = tasks.join_all().await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");

    let (flows, live): (i64, i64) =
        sqlx::query_as("select count(*), count(*) filter (where state = 'sent') from recovery_flow")
            .fetch_one(&pool)
            .await
            .expect("count flows");
    assert_eq!((flows, live), (15, 3), "every start wrote one flow, one live per login");
    let (requested,): (i64,) = sqlx::query_as("select count(*) from audit_event where kind = 'recovery.requested'")
        .fetch_one(&pool)
        .await
        .expect("count events");
    assert_eq!(requested, 15);
    pool.close().await;
}

#[tokio::test]
async fn the_attempt_cap_holds_across_instances() {
    let a = spawn_app().await;
    let b = spawn_peer(&a, false).await;
    a.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = a.started_flow("alice@example.com").await;
    let code = a.code_from_mail("alice@example.com", 1).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };

    for app in [&a, &b, &a, &b, &a] {
        app.verify(&cookie, wrong).await;
    }

    assert_eq!(b.verify(&cookie, &code).await.status(), 429);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_resets_on_two_instances_let_exactly_one_succeed() {
    let a = spawn_app().await;
    let b = spawn_peer(&a, false).await;
    a.create_identity("alice@example.com", Some(PASSWORD), true).await;
    let cookie = a.verified_flow("alice@example.com").await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..8 {
        let app = if i % 2 == 0 { &a } else { &b };
        let request = app
            .client
            .post(app.url("/api/auth/recovery/reset-password"))
            .header("cookie", format!("latchkey_recovery={cookie}"))
            .json(&json!({ "password": format!("purple elephants dance quietly {i}") }));
        tasks.spawn(async move { request.send().await.expect("sent").status().as_u16() });
    }
    let statuses = tasks.join_all().await;

    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_couriers_deliver_a_thousand_queued_messages_exactly_once() {
    const MESSAGES: usize = 1000;
    // Queue everything first, with no courier running anywhere.
    let front = spawn_app_inner(|s| s.recovery.max_starts_per_hour = 0, false).await;
    seed_accounts(&front.services, "bulk", MESSAGES, None).await;
    for n in 0..MESSAGES {
        assert_eq!(
            front.start_recovery(&format!("bulk-{n}@example.com")).await.status(),
            200
        );
    }

    let couriers = [
        spawn_peer(&front, true).await,
        spawn_peer(&front, true).await,
        spawn_peer(&front, true).await,
    ];
    let mut delivered = 0;
    for _ in 0..600 {
        delivered = front.mail.mails().len();
        if delivered >= MESSAGES {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for mail in front.mail.mails() {
        for to in mail.to {
            *per_recipient.entry(to).or_default() += 1;
        }
    }
    assert_eq!(delivered, MESSAGES, "not every message was delivered");
    assert_eq!(per_recipient.len(), MESSAGES);
    let twice: Vec<_> = per_recipient.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    drop(couriers);
}

#[tokio::test]
async fn a_message_whose_worker_died_is_delivered_when_its_lease_runs_out() {
    let front = spawn_app_inner(|_| {}, false).await;
    front.create_identity("alice@example.com", Some(PASSWORD), true).await;
    assert_eq!(front.start_recovery("alice@example.com").await.status(), 200);
    // A worker claims the message for 1.5 s and dies without a word.
    let now = latchkey::time::now_ms();
    let claimed = front
        .services
        .store
        .claim_outbox(now, now + 1500, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);

    let _courier = spawn_peer(&front, true).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        front.mail.mails().is_empty(),
        "delivered while another worker held the lease"
    );

    let mails = front.mail.wait_for("alice@example.com", 1).await;
    assert_eq!(mails.len(), 1);
}

/// Thirty concurrent starts, half for accounts and half for addresses
/// without one, each distinct: PostgreSQL reads their logins' identities in
/// groups, and each start still finds its own account, or none. A row
/// attributed to another login of its group would turn a known address
/// into a decoy (no mail) or send one account's code to another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_starts_for_different_logins_each_find_their_own_account() {
    let app = spawn_app().await;
    let known: Vec<String> = (0..15).map(|n| format!("known-{n}@example.com")).collect();
    for email in &known {
        app.create_identity(email, Some(PASSWORD), true).await;
    }
    let mut burst = tokio::task::JoinSet::new();
    for (n, email) in known.iter().enumerate() {
        burst.spawn(start(&app, email));
        burst.spawn(start(&app, &format!("unknown-{n}@example.com")));
    }
    assert!(burst.join_all().await.iter().all(|s| *s == 200));

    for email in &known {
        let mails = app.mail.wait_for(email, 1).await;
        assert_eq!(mails.len(), 1, "{email}: {mails:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = app.mail.mails();
    assert_eq!(mails.len(), known.len(), "{mails:?}");
}
