use std::process::ExitCode;

/// mimalloc instead of glibc's malloc: a request allocates a hundred small
/// buffers or more, and glibc spent 15–17 % of the server's CPU on them
/// (BENCHMARKS.md, 2026-12-06, fourth sitting).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    match latchkey::cli::run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, as the CLI contract asks.
            let line = format!("{e:#}").replace('\n', " ");
            eprintln!("latchkey: {line}");
            ExitCode::FAILURE
        }
    }
}
