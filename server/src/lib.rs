//! lakeport-server: lands multi-tenant event data from Arrow Flight into per-tenant,
//! Hive-partitioned Delta Lake tables.

pub mod auth;
pub mod clock;
pub mod collector;
pub mod config;
pub mod datasets;
pub mod error;
pub mod flight;
pub mod ingest;
pub mod lake;
pub mod lifecycle;
pub mod maintenance;
pub mod names;
pub mod ops;
pub mod quality;
pub mod query;
pub mod readiness;
pub mod server;
pub mod tenants;

pub use config::Config;
pub use error::Error;
pub use server::{Server, StartError};

/// Describes every metric family once (HELP and unit lines on `/metrics`).
pub(crate) fn describe_metrics() {
    ingest::metrics::describe();
    collector::metrics::describe();
    lake::metrics::describe();
    query::metrics::describe();
    tenants::metrics::describe();
    maintenance::metrics::describe();
}

/// Binds the configured address, serves until SIGINT/SIGTERM, then drains in-flight calls.
pub async fn run(config: Config) -> Result<(), StartError> {
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let signal_token = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested; draining in-flight requests");
        signal_token.cancel();
    });
    Server::new(config).serve(listener, shutdown).await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
