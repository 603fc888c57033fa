//! The end-to-end suite of `tests/api/` again, each test in a fresh schema of
//! the PostgreSQL database named by `LATCHKEY_TEST_POSTGRES_URL`. Compiled
//! only when that variable is set (see `build.rs`); under `CI=true` its
//! absence is a failure (`tests/postgres_required.rs`). The CLI tests stay in
//! the SQLite suite: they exercise the binary's embedded defaults.
#![cfg(postgres_tests)]

pub const BACKEND: helpers::Backend = helpers::Backend::Postgres;

#[path = "api/abuse.rs"]
mod abuse;
#[path = "api/admin.rs"]
mod admin;
#[path = "api/attacks.rs"]
mod attacks;
#[path = "api/browser.rs"]
mod browser;
#[path = "api/crash.rs"]
mod crash;
#[path = "api/diagnostics.rs"]
mod diagnostics;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/import.rs"]
mod import;
#[path = "api/messages.rs"]
mod messages;
#[path = "api/recovery.rs"]
mod recovery;
#[path = "api/report.rs"]
mod report;
#[path = "api/scale.rs"]
mod scale;
#[path = "api/session.rs"]
mod session;
#[path = "api/sms_sink.rs"]
mod sms_sink;
#[path = "api/smtp_sink.rs"]
mod smtp_sink;
#[path = "api/token_flow.rs"]
mod token_flow;
#[path = "api/webhook_receiver.rs"]
mod webhook_receiver;
#[path = "api/webhooks.rs"]
mod webhooks;
