use clap::Parser;
use lakeport_server::{run, Args, Config};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAKEPORT_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    let result = match Config::load(Args::parse()) {
        Ok(config) => run(config).await,
        Err(e) => Err(e.into()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lakeport-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
