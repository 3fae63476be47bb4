//! `lakeport`: the command-line client (see `cli/`).

mod cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    use clap::Parser;
    match cli::run(cli::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lakeport: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
