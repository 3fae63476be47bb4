use lakeport_server::{run, Config};

/// Under glibc's malloc a third of the server's CPU on small puts went to the allocator
/// (arena locks, consolidation of delta-rs' many small log-replay allocations).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            // delta-kernel logs every snapshot at INFO, and an ERROR each time it probes a
            // table that does not exist yet (every first write does); delta-rs logs each commit.
            // None of that helps operators; LAKEPORT_LOG=debug brings it back.
            tracing_subscriber::EnvFilter::try_from_env("LAKEPORT_LOG").unwrap_or_else(|_| {
                "info,deltalake_core=warn,buoyant_kernel=warn,buoyant_kernel::snapshot::builder=off".into()
            }),
        )
        .init();
    let matches = Config::command().get_matches();
    let result = match Config::from_matches(&matches) {
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
