//! End-to-end tests: the real server, a real SQLite file, a real SMTP
//! conversation. `tests/api_postgres.rs` runs the same modules on PostgreSQL.

pub const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

mod abuse;
mod admin;
mod attacks;
mod browser;
mod cli;
mod contract;
mod crash;
mod diagnostics;
mod errors;
mod helpers;
mod import;
mod messages;
mod recovery;
mod report;
mod scale;
mod session;
mod sms_sink;
mod smtp_sink;
mod token_flow;
mod webhook_receiver;
mod webhooks;
