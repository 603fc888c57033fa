//! Log output: human-readable text or JSON lines, level from `RUST_LOG`
//! (default `info`). Secrets never reach here: they are typed so `Debug`
//! hides them, and access logs name route templates, not raw paths.
//!
//! Each line is written to stderr before the call that logs it returns, so
//! a crash loses none. Colour codes go only to a terminal, and not when
//! `NO_COLOR` is set.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
