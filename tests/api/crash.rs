//! kill -9 in the middle of a load of starts loses nothing: every start that
//! was answered 200 has its flow and its message, and the courier of the
//! restarted server delivers them.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use latchkey::config::Settings;
use serde_json::json;

use crate::helpers::{SmtpSink, free_port, fresh_database, seed_accounts};

const BIN: &str = env!("CARGO_BIN_EXE_latchkey");
const STARTS: usize = 200;

fn serve(dir: &std::path::Path, database_url: &str, smtp_port: u16, port: u16, courier: bool) -> Child {
    let mut command = Command::new(BIN);
    command.arg("serve");
    if !courier {
        command.arg("--no-courier");
    }
    command
        .current_dir(dir)
        .env("LATCHKEY_DATABASE_URL", database_url)
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_ADMIN_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("LATCHKEY_COURIER__SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}"))
        .env("LATCHKEY_COURIER__POLL_INTERVAL", "100ms")
        .env("LATCHKEY_RATE_LIMIT__IP_PER_MINUTE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts")
}

async fn wait_until_up(base: &str) {
    let client = crate::helpers::http_client();
    for _ in 0..150 {
        if client.get(format!("{base}/health/alive")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server at {base} did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_load_loses_no_answered_start() {
    let dir = tempfile::tempdir().expect("dir");
    let database_url = fresh_database(dir.path()).await;
    {
        // Migrate, create the shared secret and keys, and seed the accounts.
        let settings = Settings {
            database_url: database_url.clone(),
            ..Settings::default()
        };
        let services = latchkey::startup::build_services(settings).await.expect("services");
        seed_accounts(&services, "crash", STARTS, None).await;
    }
    let sink = SmtpSink::start().await;
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = serve(dir.path(), &database_url, sink.port, port, false);
    wait_until_up(&base).await;

    // A steady load over about a second; kill -9 once a third was answered.
    let client = crate::helpers::http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..STARTS {
        let request = client
            .post(format!("{base}/api/auth/recovery/start"))
            .json(&json!({ "email": format!("crash-{n}@example.com") }));
        let done = done.clone();
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(5 * n as u64)).await;
            let answered = matches!(request.send().await, Ok(r) if r.status() == 200);
            if answered {
                done.fetch_add(1, Ordering::SeqCst);
            }
            (n, answered)
        });
    }
    while done.load(Ordering::SeqCst) < STARTS / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("kill -9");
    let _ = server.wait();
    let answered: Vec<usize> = tasks
        .join_all()
        .await
        .into_iter()
        .filter_map(|(n, ok)| ok.then_some(n))
        .collect();
    assert!(!answered.is_empty(), "no start was answered before the kill");

    // Restart with a courier: every answered start's code arrives, once.
    let port = free_port();
    let mut server = serve(dir.path(), &database_url, sink.port, port, true);
    wait_until_up(&format!("http://127.0.0.1:{port}")).await;
    for n in &answered {
        let mails = sink.wait_for(&format!("crash-{n}@example.com"), 1).await;
        assert_eq!(mails.len(), 1, "crash-{n} got {} mails", mails.len());
    }
    server.kill().expect("stop");
    let _ = server.wait();
    assert!(
        answered.len() < STARTS,
        "the kill came after the load: nothing was in flight"
    );
    println!(
        "{} of {STARTS} starts answered before the kill; all delivered after restart",
        answered.len()
    );
}

/// kill -9 between an event and its delivery loses nothing: the identity
/// created while the receiver was down reaches it after a restart, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_before_a_webhook_was_delivered_delivers_it_after_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let database_url = fresh_database(dir.path()).await;
    let secret = crate::webhook_receiver::new_secret();
    let hook_port = free_port();
    std::fs::write(
        dir.path().join("latchkey.toml"),
        format!(
            "[courier]\nwebhook_backoff = \"5s\"\n\n[[webhooks]]\nurl = \"http://127.0.0.1:{hook_port}/hooks\"\n\
             secret = \"{secret}\"\nevents = [\"identity.created\"]\n"
        ),
    )
    .expect("config");
    let sink = SmtpSink::start().await;
    let (port, admin_port) = (free_port(), free_port());
    let start = |port: u16, admin_port: u16| {
        Command::new(BIN)
            .arg("serve")
            .current_dir(dir.path())
            .env("LATCHKEY_DATABASE_URL", &database_url)
            .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
            .env("LATCHKEY_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
            .env("LATCHKEY_COURIER__SMTP_URL", format!("smtp://127.0.0.1:{}", sink.port))
            .env("LATCHKEY_COURIER__POLL_INTERVAL", "100ms")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts")
    };
    let mut server = start(port, admin_port);
    wait_until_up(&format!("http://127.0.0.1:{port}")).await;
    let created = crate::helpers::http_client()
        .post(format!("http://127.0.0.1:{admin_port}/admin/identities"))
        .json(&json!({"email": "killed@example.com"}))
        .send()
        .await
        .expect("created");
    assert_eq!(created.status(), 201);
    // The receiver is down: the first attempt fails and its claim is let go
    // (a claim held by a killed server would wait out its lease, minutes),
    // then the server dies before the retry, due 5 s later.
    let failed_once = "select count(*) from webhook_delivery where attempts >= 1 and lease_until is null";
    for _ in 0..400 {
        if crate::helpers::count_rows(&database_url, failed_once).await > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        crate::helpers::count_rows(&database_url, failed_once).await > 0,
        "the first attempt never failed"
    );
    server.kill().expect("kill -9");
    let _ = server.wait();

    let receiver = crate::webhook_receiver::Receiver::start(hook_port, vec![secret]).await;
    let mut server = start(free_port(), free_port());
    receiver
        .wait_until("the event after the restart", |r| !r.is_empty())
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.kill().expect("stop");
    let _ = server.wait();
    let received = receiver.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].body["type"], "identity.created");
    assert_eq!(received[0].verified_by, [true]);
}

/// kill -9 in the middle of a load of operator changes leaves no change
/// without its audit event, and no event without its change: the event is
/// what a webhook is made from, so one written after the change's commit
/// could be lost to a crash between the two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_change_keeps_every_change_with_its_event() {
    const CHANGES: usize = 150;
    let dir = tempfile::tempdir().expect("dir");
    let database_url = fresh_database(dir.path()).await;
    let sink = SmtpSink::start().await;
    let (port, admin_port) = (free_port(), free_port());
    let mut server = Command::new(BIN)
        .args(["serve", "--no-courier"])
        .current_dir(dir.path())
        .env("LATCHKEY_DATABASE_URL", &database_url)
        .env("LATCHKEY_LISTEN", format!("127.0.0.1:{port}"))
        .env("LATCHKEY_ADMIN_LISTEN", format!("127.0.0.1:{admin_port}"))
        .env("LATCHKEY_COURIER__SMTP_URL", format!("smtp://127.0.0.1:{}", sink.port))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve starts");
    wait_until_up(&format!("http://127.0.0.1:{port}")).await;

    // Each task creates an identity, adds a phone number and deletes every
    // other one, over about a second; kill -9 once a third has finished.
    let client = crate::helpers::http_client_builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let admin = format!("http://127.0.0.1:{admin_port}/admin/identities");
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..CHANGES {
        let (client, admin, done) = (client.clone(), admin.clone(), done.clone());
        tasks.spawn(async move {
            tokio::time::sleep(Duration::from_millis(7 * n as u64)).await;
            let email = format!("changed-{n}@example.com");
            let Ok(created) = client.post(&admin).json(&json!({ "email": email })).send().await else {
                return;
            };
            let Ok(body) = created.json::<serde_json::Value>().await else {
                return;
            };
            let Some(id) = body["id"].as_str() else { return };
            let phone = json!({"kind": "phone", "value": format!("+8490{n:07}")});
            if client
                .post(format!("{admin}/{id}/addresses"))
                .json(&phone)
                .send()
                .await
                .is_err()
            {
                return;
            }
            if n % 2 == 0 && client.delete(format!("{admin}/{id}")).send().await.is_err() {
                return;
            }
            done.fetch_add(1, Ordering::SeqCst);
        });
    }
    while done.load(Ordering::SeqCst) < CHANGES / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill().expect("kill -9");
    let _ = server.wait();
    tasks.join_all().await;
    assert!(
        done.load(Ordering::SeqCst) < CHANGES,
        "the kill came after the load: nothing was in flight"
    );

    let count = |sql: &'static str| crate::helpers::count_rows(&database_url, sql);
    let placeholder = latchkey::store::PLACEHOLDER_IDENTITY_ID;
    let identities = format!("select count(*) from identity where identity_id <> '{placeholder}'");
    let identities = crate::helpers::count_rows(&database_url, &identities).await;
    assert!(identities > 0, "nothing was created before the kill");
    assert_eq!(
        count(
            "select count(*) from identity i where not exists (select 1 from audit_event a \
             where a.identity_id = i.identity_id and a.kind = 'identity.created') \
             and i.identity_id <> '00000000-0000-0000-0000-000000000000'"
        )
        .await,
        0,
        "an identity without its identity.created event"
    );
    assert_eq!(
        count(
            "select count(*) from audit_event c where c.kind = 'identity.created' \
             and not exists (select 1 from identity i where i.identity_id = c.identity_id) \
             and not exists (select 1 from audit_event d where d.identity_id = c.identity_id \
             and d.kind = 'identity.deleted')"
        )
        .await,
        0,
        "an identity gone without its identity.deleted event"
    );
    assert_eq!(
        count(
            "select count(*) from address p join identity i on i.identity_id = p.identity_id \
             where p.kind = 'phone' and not exists (select 1 from audit_event a \
             where a.identity_id = p.identity_id and a.kind = 'address.added')"
        )
        .await,
        0,
        "a phone number without its address.added event"
    );
    assert_eq!(
        count(
            "select count(*) from audit_event a where a.kind in ('identity.created', 'address.added') \
             and exists (select 1 from identity i where i.identity_id = a.identity_id) \
             and a.identity_id not in (select identity_id from address where kind = 'phone') \
             and a.kind = 'address.added'"
        )
        .await,
        0,
        "an address.added event for an address that was never added"
    );
    println!(
        "{} of {CHANGES} changes finished before the kill; {identities} identities, each with its events",
        done.load(Ordering::SeqCst)
    );
}
