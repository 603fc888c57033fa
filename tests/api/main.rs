//! End-to-end tests: the real server, a real SQLite file, a real SMTP conversation.

mod abuse;
mod admin;
mod cli;
mod errors;
mod helpers;
mod recovery;
mod session;
mod sms_sink;
mod smtp_sink;
mod timing;
mod token_flow;
