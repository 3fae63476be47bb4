//! The ingest entry point: resolves the tables a DoPut writes to and runs its stream.

use std::sync::Arc;

use arrow_flight::FlightData;
use futures::Stream;
use lakeport_proto::IngestAck;
use parquet::file::properties::WriterProperties;
use tokio::sync::mpsc;
use tracing::{info_span, Instrument};

use super::budget::MemoryBudget;
use super::intake::Intake;
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
        let span = info_span!("ingest", tenant = %target.tenant, dataset = %target.dataset.name);
        let mut stream = StreamState::new(self.clone(), target, intake, acks);
        async move {
            match stream.run(input).await {
                Ok(()) => stream.drain().await?,
                Err(e) => {
                    // The buffered unit is dropped (its rows were never acknowledged); units
                    // already handed over finish, so their acks stay true.
                    let _ = stream.collect_all().await;
                    return Err(e);
                }
            }
            Ok(stream.summary())
        }
        .instrument(span)
        .await
    }
}
