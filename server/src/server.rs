//! Wiring: build the services from a `Config` and serve them on a bound listener until
//! the cancellation token fires, draining in-flight calls.

use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tower::util::MapRequestLayer;
use tracing::info;

use crate::auth::Authenticator;
use crate::clock::{Clock, SystemClock};
use crate::collector::{self, otlp, Doors};
use crate::config::{Config, ConfigError};
use crate::datasets::{DatasetError, Datasets};
use crate::flight::intake_gate::IntakeGate;
use crate::flight::{Actions, FlightEndpoint, SqlService};
use crate::ingest::budget::MemoryBudget;
use crate::ingest::Ingestor;
use crate::lake::{Lake, LakeError, LakeTables, SystemTable};
use crate::lifecycle::Lifecycle;
use crate::maintenance::{Maintenance, MaintenanceTable};
use crate::ops::{side_port, Health};
use crate::quality::{Quality, QualityLog, QualityTable};
use crate::query::{QueryEngine, QueryRetention};
use crate::readiness::{Readiness, ReadinessTable};
use crate::tenants::{StorageTable, Tenants, TenantsError, TenantsTable};

/// What keeps the server from starting, or ends it: printed by `main`, never sent to a
/// client (a call's errors are `error::Error`).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Dataset(#[from] DatasetError),
    #[error(transparent)]
    Lake(#[from] LakeError),
    #[error(transparent)]
    Tenants(Box<TenantsError>),
    #[error("refusing to start without credentials on {0}: configure [auth] admin_token (or LAKEPORT_ADMIN_TOKEN) or [[tenants]] tokens, or listen on a loopback address")]
    OpenNonLoopback(String),
    #[error("{0}; set operations.metrics_listen (--metrics-listen) to a free HOST:PORT")]
    SidePort(String),
    #[error("{0}; set collector.listen (--collector-listen) to a free HOST:PORT")]
    CollectorPort(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("transport error: {0}")]
    Transport(#[from] tonic::transport::Error),
}

impl From<TenantsError> for StartError {
    fn from(e: TenantsError) -> Self {
        StartError::Tenants(Box::new(e))
    }
}

/// Everything a running server needs besides its socket.
pub struct Server {
    config: Config,
    clock: Arc<dyn Clock>,
}

impl Server {
    pub fn new(config: Config) -> Self {
        Self {
            config,
            clock: Arc::new(SystemClock),
        }
    }

    /// Replaces the wall clock (tests pin file names and rejection times with it).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Serves on `listener` until `shutdown` is cancelled, then waits for in-flight calls.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), StartError> {
        // Installed before anything records: a metric recorded earlier would be lost.
        crate::ops::recorder::spawn_upkeep(shutdown.clone());
        let addr = listener.local_addr()?;
        let auth = Arc::new(
            Authenticator::new(&self.config.auth.credentials()).with_clock(self.clock.clone()),
        );
        if auth.is_open() && !addr.ip().is_loopback() {
            return Err(StartError::OpenNonLoopback(addr.to_string()));
        }
        // Bound before the lake opens, so a taken port fails the start at once.
        let side_listener = match self.config.operations.metrics_address() {
            Some(address) => {
                let side = TcpListener::bind(&address).await.map_err(|e| {
                    StartError::SidePort(format!("cannot bind metrics_listen {address}: {e}"))
                })?;
                info!(addr = %side.local_addr()?, "metrics, /healthz and /readyz serving");
                Some(side)
            }
            None => None,
        };
        let collector_listener = match self.config.collector.address() {
            Some(address) => {
                let port = TcpListener::bind(&address).await.map_err(|e| {
                    StartError::CollectorPort(format!(
                        "cannot bind collector.listen {address}: {e}"
                    ))
                })?;
                info!(addr = %port.local_addr()?, "collector doors serving");
                Some(port)
            }
            None => None,
        };
        let datasets = Arc::new(Datasets::new(&self.config.dataset_specs())?);
        let lake = Lake::open(self.config.lake_settings()?).await?;
        let memory = MemoryBudget::new(self.config.ingest.memory_limit);
        let memory_gauge = memory.clone();
        let door_memory = memory.clone();
        let gate = IntakeGate::new(memory.clone(), self.config.ingest.max_message_size);
        let tenants = Tenants::open(
            lake.clone(),
            auth.clone(),
            self.config.tenants_config(),
            self.clock.clone(),
        )
        .await?;
        let ingestor = Arc::new(Ingestor::new(
            lake.clone(),
            datasets.clone(),
            self.config.ingest_settings(),
            memory,
            self.clock.clone(),
            tenants.clone(),
            crate::error::ingest_code,
        ));
        tenants.spawn(shutdown.clone());
        let (grpc_health, health_service) = tonic_health::server::health_reporter();
        let health = Health::new(grpc_health);
        spawn_registry_watch(&tenants, &health);
        health.spawn_store_probe(
            lake.clone(),
            self.config.operations.store_probe_interval,
            shutdown.clone(),
        );
        let maintenance_settings = self.config.maintenance_settings();
        let tables = Arc::new(
            LakeTables::new(lake.clone(), datasets, tenants.clone()).with_health_settings(
                maintenance_settings.targets.clone(),
                self.config.maintenance.checkpoint_interval as u64,
            ),
        );
        let maintenance = Arc::new(Maintenance::new(
            tables.clone(),
            maintenance_settings,
            self.clock.clone(),
            tenants.clone(),
        ));
        maintenance.spawn_schedule(shutdown.clone());
        let publish = metric_gauges(&tenants, &memory_gauge);
        let readiness = Readiness::new(tables.clone());
        let quality_log = Arc::new(QualityLog::default());
        let system: Vec<Arc<dyn SystemTable>> = vec![
            Arc::new(MaintenanceTable::new(maintenance.log())),
            Arc::new(QualityTable::new(quality_log.clone())),
            Arc::new(ReadinessTable::new(readiness.clone())),
            Arc::new(StorageTable::new(tenants.clone(), tables.clone())),
            Arc::new(TenantsTable::new(tenants.clone())),
        ];
        let retention = QueryRetention {
            policy: tenants.clone(),
            clock: self.clock.clone(),
        };
        let engine = Arc::new(QueryEngine::new(
            tables.clone(),
            self.config.query_settings(),
            system,
            retention,
        ));
        let lifecycle = Arc::new(Lifecycle::new(tables.clone()));
        let quality = Arc::new(Quality::new(
            engine.clone(),
            tables,
            tenants.clone(),
            self.config.quality_expectations(),
            quality_log,
            self.clock.clone(),
        ));
        quality.spawn_schedule(self.config.operations.quality_interval, shutdown.clone());
        let doors = Doors::new(
            ingestor.clone(),
            tenants.clone(),
            auth.clone(),
            door_memory,
            self.config.collector_settings(),
        );
        let actions = Arc::new(Actions {
            maintenance,
            readiness,
            tenants,
            quality,
            lifecycle,
        });
        let sql = Arc::new(SqlService::new(ingestor, engine, actions, auth.clone()));
        let endpoint = FlightEndpoint::new(sql, auth.clone());
        // tonic answers an oversize message with OUT_OF_RANGE; the endpoint and the ingest
        // decoder turn that into RESOURCE_EXHAUSTED, what gRPC specifies for it.
        let max = self.config.ingest.max_message_size;
        let service = FlightServiceServer::new(endpoint)
            .max_decoding_message_size(max)
            .max_encoding_message_size(usize::MAX);

        let (otlp_logs, otlp_traces, otlp_metrics) = otlp::services(doors.clone(), max);

        let side_stop = CancellationToken::new();
        health.door_open("flight", addr.to_string());
        let collector = collector_listener.map(|port| {
            let (health, stop) = (health.clone(), side_stop.clone());
            if let Ok(address) = port.local_addr() {
                health.door_open("collector", address.to_string());
            }
            tokio::spawn(async move {
                let served = collector::serve(port, doors, stop.clone()).await;
                if !stop.is_cancelled() {
                    let why = served
                        .err()
                        .map_or("its listener ended".into(), |e| e.to_string());
                    health.door_failed("collector", why).await;
                }
            })
        });
        let side_port = side_listener.map(|side| {
            tokio::spawn(side_port::serve(
                side,
                health.clone(),
                publish,
                side_stop.clone(),
            ))
        });
        let stop = drain_after(shutdown, health, self.config.operations.shutdown_delay);

        if let Some(path) = &self.config.addr_file {
            write_addr_file(path, addr)?;
        }
        info!(%addr, lake = %lake.default_store().root, open = auth.is_open(), "lakeport serving");
        let served = tonic::transport::Server::builder()
            .layer(MapRequestLayer::new(move |request| gate.admit(request)))
            .add_service(health_service)
            .add_service(service)
            .add_service(otlp_logs)
            .add_service(otlp_traces)
            .add_service(otlp_metrics)
            .serve_with_incoming_shutdown(
                // Without TCP_NODELAY small responses (a FlightInfo, the last batch) wait
                // for the peer's delayed ACK: ~40 ms per call.
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                stop.cancelled_owned(),
            )
            .await;
        lake.close();
        side_stop.cancel();
        if let Some(side_port) = side_port {
            let _ = side_port.await;
        }
        if let Some(collector) = collector {
            let _ = collector.await;
        }
        served?;
        info!("lakeport stopped");
        Ok(())
    }
}

/// Marks the server ready for the registry once it was read in full.
fn spawn_registry_watch(tenants: &Arc<Tenants>, health: &Arc<Health>) {
    let mut loaded = tenants.loaded();
    let health = health.clone();
    tokio::spawn(async move {
        if loaded.wait_for(|loaded| *loaded).await.is_ok() {
            health.registry_loaded().await;
        }
    });
}

/// The token the Flight server stops on: `shutdown`, after the server turned not ready
/// and waited `delay` (load balancers stop sending first).
fn drain_after(
    shutdown: CancellationToken,
    health: Arc<Health>,
    delay: std::time::Duration,
) -> CancellationToken {
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        health.draining().await;
        tokio::time::sleep(delay).await;
        stopping.cancel();
    });
    stop
}

/// Gauges read at scrape time rather than counted as things happen.
fn metric_gauges(tenants: &Arc<Tenants>, memory: &MemoryBudget) -> side_port::Publish {
    let (tenants, memory) = (tenants.clone(), memory.clone());
    Arc::new(move || {
        tenants.publish_metrics();
        crate::ingest::metrics::buffer_memory(memory.in_use());
    })
}

/// Writes atomically so a watcher never reads a half-written address.
fn write_addr_file(path: &std::path::Path, addr: SocketAddr) -> Result<(), StartError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, addr.to_string())?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
