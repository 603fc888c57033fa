//! End-to-end tests: the real server, a real SQLite file, a real SMTP conversation.

mod admin;
mod cli;
mod errors;
mod helpers;
mod recovery;
mod session;
mod smtp_sink;
