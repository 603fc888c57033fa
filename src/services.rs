//! The handles every operation needs — store, secret, hasher, keys, courier,
//! settings — and who is asking (`Client`). Built once by `startup`.

use std::sync::Arc;

use crate::config::Settings;
use crate::courier::CourierHandle;
use crate::i18n::Locale;
use crate::identity::PasswordHasher;
use crate::secrets::ServerSecret;
use crate::session::KeyRing;
use crate::store::DynStore;

/// Every handle, shared: cloning `Services` (axum does for each request) is
/// one reference count, not one per handle.
#[derive(Clone)]
pub struct Services(Arc<Handles>);

impl Services {
    pub fn new(handles: Handles) -> Self {
        Self(Arc::new(handles))
    }
}

impl std::ops::Deref for Services {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.0
    }
}

pub struct Handles {
    pub settings: Arc<Settings>,
    pub store: DynStore,
    pub secret: ServerSecret,
    pub hasher: PasswordHasher,
    pub keys: KeyRing,
    pub courier: CourierHandle,
    /// Which import the password hash census has seen.
    pub census: crate::identity::census::Covered,
    /// Recent request latencies, for the diagnostics API.
    pub latency: crate::observe::LatencyLog,
}

impl Services {
    pub fn default_locale(&self) -> Locale {
        Locale::parse(&self.settings.locale.default).unwrap_or_default()
    }
}

/// Who is asking: recorded on sessions and audit events, never trusted for
/// anything else.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub locale: Locale,
    /// Who acted, for operator actions: `admin_token`, `admin_loopback` or `cli`.
    pub actor: Option<&'static str>,
}

/// How an operator's request was let in (a request extension set by the
/// admin guard), recorded as the actor of what it does.
#[derive(Debug, Clone, Copy)]
pub struct Actor(pub &'static str);
