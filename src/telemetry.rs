//! Log output: human-readable text or JSON lines, level from `RUST_LOG`
//! (default `info`). Secrets never reach here: they are typed so `Debug`
//! hides them, and access logs name route templates, not raw paths.
//!
//! Lines are formatted on the thread that logs them and written to stderr
//! by a thread of their own, in batches: a request never waits for the
//! write, and nothing is dropped (a full queue makes loggers wait instead).

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Lines waiting for the writer before a logger waits for room.
const QUEUED_LINES: usize = 64 * 1024;

/// Installs the subscriber. Keep the guard until the process ends: dropping
/// it writes out what is still queued.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The writer thread flushes whenever its queue runs dry, so the buffer
    // only gathers lines that arrive together.
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(QUEUED_LINES)
        .thread_name("latchkey-log")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    guard
}
