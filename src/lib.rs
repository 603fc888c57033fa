//! latchkey: a self-hosted account-recovery and authentication server.
//!
//! The binary (`main.rs`) only parses the command line and calls `cli::run`.
//! Layout: `domain` (values that parse), `identity`, `recovery`, `session`,
//! `courier`, `audit` (the capabilities), `store` (persistence), `http` and
//! `admin` (the two listeners), `i18n`, `config`, `startup`.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod admin;
pub mod audit;
pub mod cli;
pub mod config;
pub mod courier;
pub mod domain;
pub mod error;
pub mod http;
pub mod i18n;
pub mod identity;
pub mod observe;
pub mod random;
pub mod recovery;
pub mod report;
pub mod retention;
pub mod secrets;
pub mod services;
pub mod session;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod time;
pub mod tls;
pub mod ui;
pub mod webhooks;
