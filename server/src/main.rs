use lakeport_server::{run, Config};

/// Under glibc's malloc a third of the server's CPU on small puts went to the allocator
/// (arena locks, consolidation of delta-rs' many small log-replay allocations).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let matches = Config::command().get_matches();
    let result = match Config::from_matches(&matches) {
        Ok(config) => {
            lakeport_server::ops::logging::init(config.operations.log_format);
            run(config).await
        }
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
