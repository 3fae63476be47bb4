//! The ingest entry point: resolves the tables a DoPut writes to and runs its stream.

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use lakeport_proto::IngestAck;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use tokio::sync::mpsc;
use tracing::{info, info_span, Instrument};

use super::budget::MemoryBudget;
use super::input::Incoming;
use super::intake::Intake;
use super::metrics::StreamGauge;
use super::stream::{StreamContext, StreamState};
use super::target::{IngestSummary, Target};
use super::IngestError;
use crate::clock::Clock;
use crate::datasets::Datasets;
use crate::lake::{Lake, RetentionPolicy};
use crate::names::check_name;

/// How streams buffer and write (from `[ingest]`).
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Arrow data a stream buffers before it writes files and commits.
    pub flush_size: usize,
    /// Longest rows wait in a stream's buffer.
    pub flush_interval: Duration,
    /// A flushed unit smaller than this shares its files with the other units of its commit.
    pub share_files_below: usize,
    pub compression: Compression,
    pub row_group_rows: usize,
}

impl IngestSettings {
    /// Parquet settings shared by every data file ingest writes.
    pub fn writer_properties(&self) -> WriterProperties {
        WriterProperties::builder()
            .set_compression(self.compression)
            .set_max_row_group_row_count(Some(self.row_group_rows))
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_created_by(format!("lakeport {}", env!("CARGO_PKG_VERSION")))
            .build()
    }
}

/// The status code a door answers an ingest failure with, named in the stream's log line
/// (the wiring hands in the surface's one status map).
pub type StatusOf = fn(&IngestError) -> tonic::Code;

/// Shared ingest machinery of the server.
#[derive(Debug)]
pub struct Ingestor {
    lake: Arc<Lake>,
    datasets: Arc<Datasets>,
    context: Arc<StreamContext>,
    status_of: StatusOf,
}

impl Ingestor {
    pub fn new(
        lake: Arc<Lake>,
        datasets: Arc<Datasets>,
        settings: IngestSettings,
        memory: MemoryBudget,
        clock: Arc<dyn Clock>,
        retention: Arc<dyn RetentionPolicy>,
        status_of: StatusOf,
    ) -> Self {
        let context = StreamContext {
            flush_size: settings.flush_size,
            flush_interval: settings.flush_interval,
            share_files_below: settings.share_files_below,
            props: settings.writer_properties(),
            clock,
            memory,
            rejected: datasets.rejected(),
            retention,
        };
        Self {
            lake,
            datasets,
            context: Arc::new(context),
            status_of,
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

    /// Runs one stream of a door to its end. `intake` holds the memory the door reserved
    /// for the stream's messages. Each durable unit is reported on `acks`; an error is returned
    /// (and nothing after it is committed) when a step fails.
    pub async fn ingest<S>(
        &self,
        target: Target,
        input: S,
        intake: Intake,
        acks: mpsc::Sender<IngestAck>,
    ) -> Result<IngestSummary, IngestError>
    where
        S: Stream<Item = Result<Incoming, IngestError>> + Send + Unpin + 'static,
    {
        let (tenant, dataset) = (target.tenant.clone(), target.dataset.name.clone());
        let span = info_span!("ingest", tenant = %tenant, dataset = %dataset);
        let mut gauge = StreamGauge::open(&tenant, &dataset);
        let started = std::time::Instant::now();
        let mut stream = StreamState::new(self.context.clone(), target, intake, acks);
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
            let status = match &result {
                Ok(()) => tonic::Code::Ok,
                Err(e) => (self.status_of)(e),
            };
            log_stream(&stream.summary(), status, started.elapsed());
            result.map(|()| stream.summary())
        }
        .instrument(span)
        .await
    }
}

/// The stream's one log line (inside its span, which names tenant and dataset).
fn log_stream(summary: &IngestSummary, status: tonic::Code, took: Duration) {
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
