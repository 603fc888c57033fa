//! `spawn_app()`: the real server on free ports, with a fresh SQLite file and
//! a real SMTP server in the test process, plus helpers for the flows.

use std::time::Duration;

use latchkey::config::Settings;
use latchkey::services::Services;
use latchkey::startup::Application;
use regex::Regex;
use reqwest::header::{HeaderMap, SET_COOKIE};
use secrecy::SecretString;
use serde_json::Value;

pub use super::smtp_sink::SmtpSink;

pub const PASSWORD: &str = "correct horse battery staple 42";
pub const NEW_PASSWORD: &str = "purple elephants dance quietly 7";

pub struct TestApp {
    pub address: String,
    pub admin_address: String,
    pub client: reqwest::Client,
    pub mail: SmtpSink,
    pub services: Services,
    /// The URL this app's database is reachable at (a fresh file or schema).
    pub database_url: String,
    _dir: tempfile::TempDir,
}

/// Which database the suite runs on: the SQLite suite (`tests/api/main.rs`)
/// or the PostgreSQL one (`tests/api_postgres.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database no other test touches: a new SQLite file, or a new schema in
/// the PostgreSQL database named by `LATCHKEY_TEST_POSTGRES_URL`.
pub async fn fresh_database(dir: &std::path::Path) -> String {
    match super::BACKEND {
        Backend::Sqlite => format!("sqlite://{}", dir.join("latchkey.db").display()),
        Backend::Postgres => {
            let base = std::env::var("LATCHKEY_TEST_POSTGRES_URL").expect("LATCHKEY_TEST_POSTGRES_URL is set");
            let schema = format!("lk_{}", uuid::Uuid::new_v4().simple());
            let pool = sqlx::PgPool::connect(&base).await.expect("connect to PostgreSQL");
            sqlx::query(sqlx::AssertSqlSafe(format!("create schema {schema}")))
                .execute(&pool)
                .await
                .expect("create schema");
            pool.close().await;
            let separator = if base.contains('?') { '&' } else { '?' };
            format!("{base}{separator}options=-c%20search_path%3D{schema}")
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server with test settings, adjusted by `configure`.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_inner(configure, true).await
}

pub async fn spawn_app_inner(configure: impl FnOnce(&mut Settings), run_courier: bool) -> TestApp {
    latchkey::tls::install_crypto_provider();
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = fresh_database(dir.path()).await;
    spawn_instance(dir, database_url, SmtpSink::start().await, configure, run_courier).await
}

/// Another instance on `first`'s database and SMTP server, as a second
/// `latchkey serve` behind the same load balancer would be.
pub async fn spawn_peer(first: &TestApp, run_courier: bool) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    // The same webhooks, as instances sharing one configuration file would have.
    let (webhooks, backoff) = (
        first.services.settings.webhooks.clone(),
        first.services.settings.courier.webhook_backoff,
    );
    let configure = move |s: &mut Settings| {
        s.webhooks = webhooks;
        s.courier.webhook_backoff = backoff;
    };
    spawn_instance(
        dir,
        first.database_url.clone(),
        first.mail.clone(),
        configure,
        run_courier,
    )
    .await
}

async fn spawn_instance(
    dir: tempfile::TempDir,
    database_url: String,
    mail: SmtpSink,
    configure: impl FnOnce(&mut Settings),
    run_courier: bool,
) -> TestApp {
    let mut settings = Settings {
        database_url: database_url.clone(),
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: "127.0.0.1:0".parse().expect("addr"),
        ..Settings::default()
    };
    settings.courier.smtp_url = Some(format!("smtp://127.0.0.1:{}", mail.port));
    settings.courier.poll_interval = Duration::from_millis(100);
    // Tests send many requests from 127.0.0.1; the per-client budget has its own test.
    settings.rate_limit.ip_per_minute = 0;
    settings.courier.mail_dir = dir.path().join("mail");
    settings.courier.sms_dir = dir.path().join("sms");
    configure(&mut settings);
    let app = Application::build(settings, run_courier)
        .await
        .expect("application builds");
    let address = format!("http://{}", app.public_addr().expect("public addr"));
    let admin_address = format!("http://{}", app.admin_addr().expect("admin addr"));
    let services = app.services().clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address,
        admin_address,
        client: http_client_builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        mail,
        services,
        database_url,
        _dir: dir,
    }
}

/// The value of the recovery cookie a response sets, if any.
pub fn recovery_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("latchkey_recovery="))
        .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
}

/// The whole `Set-Cookie` header of the recovery cookie.
pub fn recovery_set_cookie(headers: &HeaderMap) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("latchkey_recovery="))
        .unwrap_or("")
        .to_owned()
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn post_json(&self, path: &str, body: &Value, cookie: Option<&str>) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(cookie) = cookie {
            request = request.header("cookie", format!("latchkey_recovery={cookie}"));
        }
        request.send().await.expect("request sent")
    }

    /// Creates an account directly through the domain (as the CLI does).
    pub async fn create_identity(&self, email: &str, password: Option<&str>, verified: bool) -> String {
        self.create_identity_with(email, None, None, verified, password).await
    }

    /// An account with a password and, optionally, a username and a phone, all verified.
    pub async fn create_full_identity(&self, email: &str, username: Option<&str>, phone: Option<&str>) -> String {
        self.create_identity_with(email, username, phone, true, Some(PASSWORD))
            .await
    }

    async fn create_identity_with(
        &self,
        email: &str,
        username: Option<&str>,
        phone: Option<&str>,
        verified: bool,
        password: Option<&str>,
    ) -> String {
        let new = latchkey::admin::parse_new_identity(
            email,
            username,
            phone,
            vec![],
            verified,
            password.map(|p| SecretString::from(p.to_owned())),
        )
        .expect("valid identity");
        latchkey::identity::create(&self.services, new)
            .await
            .expect("identity created")
            .id()
            .to_owned()
    }

    /// A GET on the admin listener (no token), as JSON.
    pub async fn admin_json(&self, path: &str) -> Value {
        self.admin_call(reqwest::Method::GET, path).await
    }

    /// A GET on the admin listener (no token), as text (`/metrics`).
    pub async fn admin_text(&self, path: &str) -> String {
        self.client
            .get(format!("{}{path}", self.admin_address))
            .send()
            .await
            .expect("sent")
            .text()
            .await
            .expect("text")
    }

    /// A request without a body on the admin listener (no token), as JSON.
    pub async fn admin_call(&self, method: reqwest::Method, path: &str) -> Value {
        let response = self
            .client
            .request(method, format!("{}{path}", self.admin_address))
            .send()
            .await
            .expect("sent");
        response.json().await.expect("JSON body")
    }

    /// A DELETE on the admin listener (no token).
    pub async fn admin_delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(format!("{}{path}", self.admin_address))
            .send()
            .await
            .expect("sent")
    }

    /// A JSON POST on the admin listener (no token).
    pub async fn admin_post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.admin_address))
            .json(body)
            .send()
            .await
            .expect("sent")
    }

    pub async fn start_recovery(&self, email: &str) -> reqwest::Response {
        self.post_json("/api/auth/recovery/start", &serde_json::json!({ "email": email }), None)
            .await
    }

    /// The code in the newest recovery mail to `email`, once at least `nth` mails arrived.
    pub async fn code_from_mail(&self, email: &str, nth: usize) -> String {
        let mails = self.mail.wait_for(email, nth).await;
        let pattern = Regex::new(r"(?:code is|của bạn là): (\d{6})").expect("regex");
        // The newest mail that carries a code (notices carry none).
        mails
            .iter()
            .rev()
            .find_map(|mail| pattern.captures(&mail.body).map(|c| c[1].to_owned()))
            .unwrap_or_else(|| panic!("no code in mails: {mails:?}"))
    }

    /// Starts a flow and returns its cookie.
    pub async fn started_flow(&self, email: &str) -> String {
        let response = self.start_recovery(email).await;
        assert_eq!(response.status(), 200);
        recovery_cookie(response.headers()).expect("recovery cookie")
    }

    pub async fn verify(&self, cookie: &str, code: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/recovery/verify",
            &serde_json::json!({ "code": code }),
            Some(cookie),
        )
        .await
    }

    pub async fn reset(&self, cookie: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/recovery/reset-password",
            &serde_json::json!({ "password": password }),
            Some(cookie),
        )
        .await
    }

    /// Starts and verifies a flow for an existing, verified account; returns the rotated cookie.
    pub async fn verified_flow(&self, email: &str) -> String {
        let already = self.mail.mails_to(email).len();
        let cookie = self.started_flow(email).await;
        let code = self.code_from_mail(email, already + 1).await;
        let response = self.verify(&cookie, &code).await;
        assert_eq!(response.status(), 200);
        recovery_cookie(response.headers()).expect("rotated cookie")
    }

    pub async fn login(&self, identifier: &str, password: &str) -> reqwest::Response {
        self.post_json(
            "/api/auth/login",
            &serde_json::json!({ "identifier": identifier, "password": password }),
            None,
        )
        .await
    }

    pub async fn session_with_jwt(&self, jwt: &str) -> reqwest::Response {
        self.client
            .get(self.url("/api/auth/session"))
            .bearer_auth(jwt)
            .send()
            .await
            .expect("request sent")
    }

    /// Every value of every column of a table, as text (for "nothing in plaintext" checks).
    pub async fn dump_table(&self, table: &str) -> String {
        let sql = format!("select * from {table}");
        let mut out = String::new();
        match super::BACKEND {
            Backend::Sqlite => {
                let path = self.database_url.trim_start_matches("sqlite://");
                let conn = rusqlite::Connection::open(path).expect("open db");
                let mut statement = conn.prepare(&sql).expect("read table");
                let names: Vec<String> = statement.column_names().iter().map(|n| n.to_string()).collect();
                let mut rows = statement.query([]).expect("read table");
                while let Some(row) = rows.next().expect("read row") {
                    for (i, name) in names.iter().enumerate() {
                        let value = match row.get_ref(i).expect("a column") {
                            rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => {
                                Some(String::from_utf8_lossy(b).into_owned())
                            }
                            _ => None,
                        };
                        out.push_str(&format!("{name}={value:?}\n"));
                    }
                }
            }
            Backend::Postgres => {
                use sqlx::{Column, Row};
                let pool = sqlx::PgPool::connect(&self.database_url).await.expect("open db");
                for row in sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .fetch_all(&pool)
                    .await
                    .expect("read table")
                {
                    for (i, column) in row.columns().iter().enumerate() {
                        let text: Option<String> = row.try_get::<Option<String>, _>(i).ok().flatten();
                        let blob: Option<Vec<u8>> = row.try_get::<Option<Vec<u8>>, _>(i).ok().flatten();
                        let value = text.or_else(|| blob.map(|b| String::from_utf8_lossy(&b).into_owned()));
                        out.push_str(&format!("{}={:?}\n", column.name(), value));
                    }
                }
                pool.close().await;
            }
        }
        out
    }
}

/// The number of rows a `select count(*) …` finds in `database_url`, read
/// behind the server's back (to wait for a state no response shows).
pub async fn count_rows(database_url: &str, sql: &str) -> i64 {
    match super::BACKEND {
        Backend::Sqlite => {
            let path = database_url.trim_start_matches("sqlite://");
            let conn = rusqlite::Connection::open(path).expect("open db");
            conn.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
            conn.query_row(sql, [], |row| row.get(0)).expect("count")
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(database_url).await.expect("open db");
            let count: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
                .fetch_one(&pool)
                .await
                .expect("count");
            pool.close().await;
            count
        }
    }
}

impl TestApp {
    /// Runs one statement on this app's database, behind the server's back
    /// (to put seeded rows into a state, as an earlier request would have).
    pub async fn execute_sql(&self, sql: &str) {
        match super::BACKEND {
            Backend::Sqlite => {
                let path = self.database_url.trim_start_matches("sqlite://");
                let conn = rusqlite::Connection::open(path).expect("open db");
                conn.busy_timeout(Duration::from_secs(5)).expect("busy timeout");
                conn.execute_batch(sql).expect("statement runs");
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.database_url).await.expect("open db");
                sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&pool)
                    .await
                    .expect("statement runs");
                pool.close().await;
            }
        }
    }
}

/// Starts a recovery for `email` from a browser speaking `lang`; the flow's cookie.
pub async fn start_in(app: &TestApp, email: &str, lang: &str) -> String {
    let response = app
        .client
        .post(app.url("/api/auth/recovery/start"))
        .header("accept-language", lang)
        .json(&serde_json::json!({ "email": email }))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    recovery_cookie(response.headers()).expect("cookie")
}

pub async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("JSON body")
}

/// Inserts `count` verified accounts `{prefix}-N@example.com` straight into
/// the store, all with one password hash (or none): fast enough for the
/// load, timing and crash tests, which need hundreds.
pub async fn seed_accounts(services: &Services, prefix: &str, count: usize, password_hash: Option<String>) {
    for n in 0..count {
        let item = seeded_account(prefix, n, password_hash.clone());
        services
            .store
            .create_identity(&item.identity, &item.addresses, &item.audit)
            .await
            .expect("seeded");
    }
}

#[allow(dead_code)] // the timing tests use it
/// Imports `count` verified accounts `{prefix}-N@example.com` with one
/// password hash straight through the store, as `latchkey identity import`
/// does from another process: the running app takes no census for them.
pub async fn import_accounts(services: &Services, prefix: &str, count: usize, password_hash: &str) {
    let items: Vec<_> = (0..count)
        .map(|n| seeded_account(prefix, n, Some(password_hash.to_owned())))
        .collect();
    let outcomes = services.store.import_identities(&items, true).await.expect("imported");
    assert!(outcomes.iter().all(Option::is_none), "{outcomes:?}");
}

/// The verified account `{prefix}-{n}@example.com`, with its `identity.created` event (by the CLI).
fn seeded_account(prefix: &str, n: usize, password_hash: Option<String>) -> latchkey::store::ImportedIdentityRecord {
    use latchkey::store::{AddressRecord, IdentityRecord, ImportedIdentityRecord};
    let now = latchkey::time::now_ms();
    let identity_id = uuid::Uuid::new_v4().to_string();
    let client = latchkey::services::Client {
        actor: Some("cli"),
        ..Default::default()
    };
    ImportedIdentityRecord {
        identity: IdentityRecord {
            identity_id: identity_id.clone(),
            username: None,
            password_hash,
            roles: "[]".into(),
            created_at: now,
            updated_at: now,
            credential_epoch: 0,
            frozen_at: None,
            recovery_paused_until: None,
        },
        audit: latchkey::audit::event(
            latchkey::audit::Kind::IdentityCreated,
            Some(&identity_id),
            &client,
            serde_json::json!({}),
        ),
        addresses: vec![AddressRecord {
            address_id: uuid::Uuid::new_v4().to_string(),
            identity_id,
            kind: "email".into(),
            value: format!("{prefix}-{n}@example.com"),
            verified: true,
            created_at: now,
        }],
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// An HTTP client for the tests, with rustls's ring provider installed first
/// (reqwest is built without a provider of its own).
pub fn http_client_builder() -> reqwest::ClientBuilder {
    latchkey::tls::install_crypto_provider();
    reqwest::Client::builder()
}

pub fn http_client() -> reqwest::Client {
    http_client_builder().build().expect("HTTP client")
}

/// Makes the database refuse to insert audit events of `kind` that meet
/// `condition` (SQL over `new`), as a full disk or a lost connection would:
/// what the write they belong to does then.
pub async fn refuse_audit_events(app: &TestApp, kind: &str, condition: &str) {
    match super::BACKEND {
        Backend::Sqlite => {
            app.execute_sql(&format!(
                "create trigger refuse_events before insert on audit_event \
                 when new.kind = '{kind}' and ({condition}) begin select raise(abort, 'refused'); end"
            ))
            .await
        }
        Backend::Postgres => {
            app.execute_sql(
                "create function refuse_events() returns trigger language plpgsql \
                 as $$ begin raise exception 'refused'; end $$",
            )
            .await;
            app.execute_sql(&format!(
                "create trigger refuse_events before insert on audit_event for each row \
                 when (new.kind = '{kind}' and ({condition})) execute function refuse_events()"
            ))
            .await;
        }
    }
}

/// Undoes `refuse_audit_events`.
pub async fn allow_audit_events(app: &TestApp) {
    match super::BACKEND {
        Backend::Sqlite => app.execute_sql("drop trigger refuse_events").await,
        Backend::Postgres => app.execute_sql("drop trigger refuse_events on audit_event").await,
    }
}
