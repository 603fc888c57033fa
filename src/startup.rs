//! Building and running the server: open the store, migrate, load the shared
//! secret and signing keys, bind both listeners, run the courier, stop
//! gracefully on SIGINT/SIGTERM.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Settings;
use crate::courier::{CourierHandle, Worker};
use crate::http::serve::serve;
use crate::identity::PasswordHasher;
use crate::secrets::ServerSecret;
use crate::services::Services;
use crate::session::KeyRing;
use crate::store;
use crate::time::now_ms;

/// How often an instance re-reads the shared signing keys.
const KEY_RELOAD_INTERVAL: std::time::Duration = std::time::Duration::from_secs(30);

/// The `setting` row a generated secret is kept in.
pub const SECRET_SETTING: &str = "secret";

/// A server reachable over https must not keep its own key in the database
/// it protects: a stolen copy or backup would then unseal its signing keys.
fn require_configured_secret(settings: &Settings) -> anyhow::Result<()> {
    anyhow::ensure!(
        !settings.public_is_https() || settings.secret.is_some(),
        "secret: must be set in the configuration file or LATCHKEY_SECRET when public_url is https \
         (generate one with `latchkey secret generate`; see docs/deploy.md to move a generated one out of the database)"
    );
    Ok(())
}

/// Opens (and migrates) the store and assembles the shared handles.
pub async fn build_services(settings: Settings) -> anyhow::Result<Services> {
    crate::observe::prometheus();
    crate::tls::install_crypto_provider();
    let store = store::connect(&settings).await?;
    store.migrate().await?;
    let material = match &settings.secret {
        Some(configured) => configured.clone(),
        None => match store.stored_setting(SECRET_SETTING).await? {
            Some(stored) => stored,
            None => {
                // Keys exist but no secret: it was moved out (`secret forget`);
                // generating a new one would orphan every key and token.
                anyhow::ensure!(
                    store.signing_keys().await?.is_empty(),
                    "secret: this database's secret was moved out of it; set `secret` or LATCHKEY_SECRET"
                );
                store
                    .setting_or_insert(SECRET_SETTING, &ServerSecret::generate_material(), now_ms())
                    .await?
            }
        },
    };
    let secret = ServerSecret::new(&material);
    let keys = KeyRing::load_or_create(&store, &secret, &settings.public_url).await?;
    let hasher = PasswordHasher::new(
        settings.password.max_concurrent_hashes,
        settings.password.max_queue_wait,
    )
    .await?;
    let courier = CourierHandle::from_settings(&settings)?;
    Ok(Services::new(crate::services::Handles {
        settings: Arc::new(settings),
        store,
        secret,
        hasher,
        keys,
        courier,
        census: Default::default(),
        latency: crate::observe::LatencyLog::default(),
    }))
}

pub struct Application {
    services: Services,
    public: TcpListener,
    admin: TcpListener,
    run_courier: bool,
}

impl Application {
    /// Binds the listeners (port 0 picks a free port) without serving yet.
    pub async fn build(settings: Settings, run_courier: bool) -> anyhow::Result<Self> {
        require_configured_secret(&settings)?;
        let services = build_services(settings).await?;
        let public = TcpListener::bind(services.settings.listen)
            .await
            .with_context(|| format!("cannot listen on {}", services.settings.listen))?;
        let admin = TcpListener::bind(services.settings.admin_listen)
            .await
            .with_context(|| format!("cannot listen on {}", services.settings.admin_listen))?;
        Ok(Self {
            services,
            public,
            admin,
            run_courier,
        })
    }

    pub fn public_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.public.local_addr()?)
    }

    pub fn admin_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.admin.local_addr()?)
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then finishes in-flight requests and
    /// lets the courier finish its current batch.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        tokio::spawn(async move {
            stop.await;
            let _ = stop_tx.send(true);
        });
        let worker = if self.run_courier {
            let worker = Arc::new(Worker::new(
                self.services.store.clone(),
                self.services.secret.clone(),
                &self.services.courier,
                self.services.settings.clone(),
            )?);
            Some(tokio::spawn(
                worker.run_until_stopped(self.services.courier.clone(), stop_rx.clone()),
            ))
        } else {
            None
        };
        // Webhooks run where the courier does: both are deliveries from the database.
        let webhooks = if self.run_courier {
            let webhooks = Arc::new(crate::webhooks::worker::Webhooks::new(
                self.services.store.clone(),
                self.services.settings.clone(),
            )?);
            Some(tokio::spawn(webhooks.run_until_stopped(stop_rx.clone())))
        } else {
            None
        };
        // Pick up keys rotated by `latchkey keys rotate` or another instance.
        let (keys, store, secret) = (
            self.services.keys.clone(),
            self.services.store.clone(),
            self.services.secret.clone(),
        );
        let mut reload_stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(KEY_RELOAD_INTERVAL) => {}
                    _ = reload_stop.changed() => return,
                }
                if let Err(e) = keys.reload(&store, &secret).await {
                    tracing::warn!(error = %format!("{e:#}"), "reloading signing keys failed");
                }
            }
        });
        // The password hash census, before the first login it protects, then each minute.
        if let Err(e) = crate::identity::census::take(&self.services).await {
            tracing::warn!(error = %e, "taking the password hash census failed");
        }
        let (counting, mut census_stop) = (self.services.clone(), stop_rx.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(crate::identity::census::INTERVAL) => {}
                    _ = census_stop.changed() => return,
                }
                if let Err(e) = crate::identity::census::take(&counting).await {
                    tracing::warn!(error = %e, "taking the password hash census failed");
                }
            }
        });
        // Retention: delete what only mattered for a while.
        let (purging, mut purge_stop) = (self.services.clone(), stop_rx.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(crate::retention::PURGE_INTERVAL) => {}
                    _ = purge_stop.changed() => return,
                }
                match crate::retention::purge(&purging).await {
                    Ok(purged) => tracing::info!(?purged, "purged old rows"),
                    Err(e) => tracing::warn!(error = %e, "purging old rows failed"),
                }
            }
        });
        tracing::info!(public = %self.public.local_addr()?, admin = %self.admin.local_addr()?, "latchkey is listening");
        let http = self.services.settings.http.clone();
        let public = serve(
            self.public,
            crate::http::app(self.services.clone())?,
            http.clone(),
            stop_rx.clone(),
        );
        let admin = serve(self.admin, crate::admin::app(self.services.clone()), http, stop_rx);
        let (public, admin) = tokio::join!(public, admin);
        public.context("public listener")?;
        admin.context("admin listener")?;
        if let Some(worker) = worker {
            worker.await.context("courier worker")?;
        }
        if let Some(webhooks) = webhooks {
            webhooks.await.context("webhook worker")?;
        }
        Ok(())
    }
}

/// Runs only the courier worker until SIGINT/SIGTERM (`latchkey courier`).
pub async fn run_courier(settings: Settings) -> anyhow::Result<()> {
    require_configured_secret(&settings)?;
    let services = build_services(settings).await?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let worker = Arc::new(Worker::new(
        services.store.clone(),
        services.secret.clone(),
        &services.courier,
        services.settings.clone(),
    )?);
    let webhooks = Arc::new(crate::webhooks::worker::Webhooks::new(
        services.store.clone(),
        services.settings.clone(),
    )?);
    tokio::join!(
        worker.run_until_stopped(services.courier.clone(), stop_rx.clone()),
        webhooks.run_until_stopped(stop_rx)
    );
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
