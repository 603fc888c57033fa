use std::process::ExitCode;

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
