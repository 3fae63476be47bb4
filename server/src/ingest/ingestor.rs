//! The ingest entry point: resolves the tables a DoPut writes to and runs its stream.

use std::sync::Arc;

use arrow_flight::FlightData;
use futures::Stream;
use lakeport_proto::IngestAck;
use parquet::file::properties::WriterProperties;
use tokio::sync::mpsc;
use tracing::{info, info_span, Instrument};

use super::budget::MemoryBudget;
use super::intake::Intake;
use super::metrics::StreamGauge;
use super::stream::StreamState;
use super::IngestError;
use crate::clock::Clock;
use crate::config::IngestConfig;
use crate::datasets::{Dataset, Datasets};
use crate::lake::{Lake, TableHandle};
use crate::names::check_name;

/// Shared ingest machinery of the server.
#[derive(Debug)]
pub struct Ingestor {
    pub(super) lake: Arc<Lake>,
    pub(super) datasets: Arc<Datasets>,
    pub(super) config: IngestConfig,
    pub(super) props: WriterProperties,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) memory: MemoryBudget,
}

/// The tables one DoPut writes to.
#[derive(Debug, Clone)]
pub struct Target {
    pub tenant: String,
    pub dataset: Arc<Dataset>,
    pub(super) main: Arc<TableHandle>,
    pub(super) rejected: Arc<TableHandle>,
}

impl Target {
    /// True when the dataset table has been created (has a Delta log).
    pub async fn exists(&self) -> Result<bool, IngestError> {
        Ok(self.main.refresh(None).await?.1.is_some())
    }
}

/// What a whole stream did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct IngestSummary {
    pub rows_committed: u64,
    pub duplicates_skipped: u64,
    pub rows_rejected: u64,
    pub table_version: i64,
    /// Arrow bytes of the record batches received (committed or not).
    pub bytes_received: u64,
}

impl Ingestor {
    pub fn new(
        lake: Arc<Lake>,
        datasets: Arc<Datasets>,
        config: IngestConfig,
        memory: MemoryBudget,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            lake,
            datasets,
            props: config.writer_properties(),
            memory,
            config,
            clock,
        }
    }

    pub async fn target(&self, tenant: &str, dataset: &str) -> Result<Target, IngestError> {
        check_name("tenant", tenant)?;
        check_name("dataset", dataset)?;
        let dataset = self.datasets.get(dataset)?;
        let rejected = self.datasets.rejected();
        // Placement and residency are checked for both tables before anything is written.
        let main = self.lake.table(tenant, &dataset)?;
        let rejected = self.lake.table(tenant, &rejected)?;
        self.lake.check_writable(&main)?;
        self.lake.check_writable(&rejected)?;
        Ok(Target {
            tenant: tenant.to_string(),
            main,
            rejected,
            dataset,
        })
    }

    /// Runs one DoPut stream to its end. `intake` holds the memory the gate reserved for
    /// the stream's messages. Each durable unit is reported on `acks`; an error is returned
    /// (and nothing after it is committed) when a step fails.
    pub async fn ingest<S>(
        self: &Arc<Self>,
        target: Target,
        input: S,
        intake: Intake,
        acks: mpsc::Sender<IngestAck>,
    ) -> Result<IngestSummary, IngestError>
    where
        S: Stream<Item = Result<FlightData, tonic::Status>> + Send + Unpin + 'static,
    {
        let (tenant, dataset) = (target.tenant.clone(), target.dataset.name.clone());
        let span = info_span!("ingest", tenant = %tenant, dataset = %dataset);
        let mut gauge = StreamGauge::open(&tenant, &dataset);
        let started = std::time::Instant::now();
        let mut stream = StreamState::new(self.clone(), target, intake, acks);
        async move {
            let result = match stream.run(input).await {
                Ok(()) => stream.drain().await,
                Err(e) => {
                    // The buffered unit is dropped (its rows were never acknowledged); units
                    // already handed over finish, so their acks stay true.
                    let _ = stream.collect_all().await;
                    Err(e)
                }
            };
            gauge.finished(result.is_ok());
            log_stream(&stream.summary(), &result, started.elapsed());
            result.map(|()| stream.summary())
        }
        .instrument(span)
        .await
    }
}

/// The stream's one log line (inside its span, which names tenant and dataset).
fn log_stream(
    summary: &IngestSummary,
    result: &Result<(), IngestError>,
    took: std::time::Duration,
) {
    let status = match result {
        Ok(()) => tonic::Code::Ok,
        Err(e) => crate::error::ingest_code(e),
    };
    info!(
        rows = summary.rows_committed,
        rejected = summary.rows_rejected,
        duplicates = summary.duplicates_skipped,
        bytes = summary.bytes_received,
        version = summary.table_version,
        status = ?status,
        duration_ms = took.as_millis() as u64,
        "ingest stream finished"
    );
}
