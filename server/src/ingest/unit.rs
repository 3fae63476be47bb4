//! A unit: the rows one stream buffered between two flushes, per partition. Once flushed,
//! its job writes the files, queues the commit after the stream's previous unit, and sends
//! the ack once the commit is durable.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use deltalake::kernel::Add;
use futures::{StreamExt, TryStreamExt};
use lakeport_proto::IngestAck;
use parquet::file::properties::WriterProperties;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tracing::debug;

use super::budget::Reservation;
use super::target::Target;
use super::IngestError;
use crate::clock::Clock;
use crate::lake::files::write_data_file;
use crate::lake::{
    CommitOutcome, IncomingUnit, LakeError, PartitionKey, PendingCommit, SequenceRange,
    TableHandle, UnitFiles, UnitRows,
};

/// The rows a unit holds for one table, with the producer range its commit records.
#[derive(Default)]
pub(super) struct TableRows {
    pub(super) parts: BTreeMap<PartitionKey, Vec<RecordBatch>>,
    pub(super) rows: u64,
    pub(super) sequences: Option<SequenceRange>,
    /// Announced to the table's committer once the unit holds rows for it.
    announced: Option<IncomingUnit>,
}

impl TableRows {
    pub(super) fn add(&mut self, table: &TableHandle, parts: Vec<(PartitionKey, RecordBatch)>) {
        if parts.is_empty() {
            return;
        }
        self.announced.get_or_insert_with(|| table.announce_unit());
        for (key, part) in parts {
            self.rows += part.num_rows() as u64;
            self.parts.entry(key).or_default().push(part);
        }
    }
}

/// Rows of one unit, per table and partition, with what the ack will report.
#[derive(Default)]
pub(super) struct Unit {
    pub(super) main: TableRows,
    /// Rows for the tenant's `_rejected` table.
    pub(super) rejected: TableRows,
    pub(super) duplicates: u64,
    /// Rows past the table's retention, dropped, and why.
    pub(super) expired: u64,
    pub(super) expired_reason: String,
    pub(super) bytes: usize,
    pub(super) memory: Reservation,
    /// When the first row (or duplicate) arrived; `flush_interval` counts from here.
    pub(super) started: Option<Instant>,
}

impl Unit {
    pub(super) fn is_empty(&self) -> bool {
        self.main.rows == 0 && self.rejected.rows == 0 && self.duplicates == 0 && self.expired == 0
    }

    pub(super) fn start_clock(&mut self) {
        self.started.get_or_insert_with(Instant::now);
    }
}

/// Everything a flushed unit needs to reach its ack.
pub(super) struct UnitJob {
    pub(super) target: Target,
    pub(super) file_schema: SchemaRef,
    pub(super) data_schema: SchemaRef,
    /// `_rejected` has no derived columns, so its file and data schemas are one.
    pub(super) rejected_schema: SchemaRef,
    pub(super) props: WriterProperties,
    /// A unit smaller than this hands its rows to the committer to share files.
    pub(super) share_files_below: usize,
    pub(super) clock: Arc<dyn Clock>,
    /// The ack goes out as soon as the unit is durable, not when the stream next moves.
    pub(super) acks: mpsc::Sender<IngestAck>,
    /// Set when any unit of the stream fails: later units are then refused.
    pub(super) failed: Arc<AtomicBool>,
}

impl UnitJob {
    /// `after` fires once the stream's previous unit is queued; `queued` fires when this
    /// one is, so commits keep the stream's order.
    pub(super) async fn run(
        self,
        unit: Unit,
        after: Option<oneshot::Receiver<()>>,
        queued: oneshot::Sender<()>,
    ) -> Result<IngestAck, IngestError> {
        let result = self.write_and_commit(unit, after, queued).await;
        if result.is_err() {
            self.failed.store(true, Ordering::SeqCst);
        }
        result
    }

    async fn write_and_commit(
        &self,
        mut unit: Unit,
        after: Option<oneshot::Receiver<()>>,
        queued: oneshot::Sender<()>,
    ) -> Result<IngestAck, IngestError> {
        let (main_files, rejected_files) = if unit.bytes < self.share_files_below {
            self.rows_to_share(&mut unit)
        } else {
            let main = self
                .write_files(
                    &self.target.main,
                    &self.file_schema,
                    std::mem::take(&mut unit.main.parts),
                )
                .await?;
            let rejected = self
                .write_files(
                    &self.target.rejected,
                    &self.rejected_schema,
                    std::mem::take(&mut unit.rejected.parts),
                )
                .await?;
            drop(std::mem::take(&mut unit.memory));
            (UnitFiles::Written(main), UnitFiles::Written(rejected))
        };
        // A failed predecessor (its sender dropped) stops this unit too.
        if let Some(after) = after {
            after.await.map_err(|_| LakeError::EarlierUnitFailed)?;
        }
        if self.failed.load(Ordering::SeqCst) {
            return Err(LakeError::EarlierUnitFailed.into());
        }
        let main = self
            .queue(
                &self.target.main,
                main_files,
                &unit.main.sequences,
                &self.data_schema,
                unit.main.announced.take(),
            )
            .await?;
        let rejected = self
            .queue(
                &self.target.rejected,
                rejected_files,
                &unit.rejected.sequences,
                &self.rejected_schema,
                unit.rejected.announced.take(),
            )
            .await?;
        let _ = queued.send(());
        let main = outcome_of(main).await?;
        let rejected = outcome_of(rejected).await?;
        let ack = self.ack(&unit, main, rejected);
        debug!(
            rows = ack.rows_committed,
            rejected = ack.rows_rejected,
            duplicates = ack.duplicates_skipped,
            version = ack.table_version,
            "unit committed"
        );
        super::metrics::unit_acknowledged(&ack, unit.bytes);
        let _ = self.acks.send(ack.clone()).await;
        Ok(ack)
    }

    fn ack(
        &self,
        unit: &Unit,
        main: Option<CommitOutcome>,
        rejected: Option<CommitOutcome>,
    ) -> IngestAck {
        let mut ack = IngestAck {
            tenant: self.target.tenant.clone(),
            dataset: self.target.dataset.name.clone(),
            duplicates_skipped: unit.duplicates,
            rows_expired: unit.expired,
            expired_reason: unit.expired_reason.clone(),
            table_version: -1,
            last_sequence: unit
                .main
                .sequences
                .as_ref()
                .map(|r| r.last as u64)
                .unwrap_or(0),
            ..Default::default()
        };
        match main {
            Some(CommitOutcome::Committed { version }) => {
                ack.rows_committed = unit.main.rows;
                ack.table_version = version;
            }
            Some(CommitOutcome::Duplicate) => ack.duplicates_skipped += unit.main.rows,
            None => {}
        }
        match rejected {
            Some(CommitOutcome::Committed { .. }) => ack.rows_rejected = unit.rejected.rows,
            Some(CommitOutcome::Duplicate) => ack.duplicates_skipped += unit.rejected.rows,
            None => {}
        }
        ack
    }

    /// A small unit's rows, for the committers to write into files shared with the other
    /// units of their commits; the unit's memory stays reserved until they are written.
    fn rows_to_share(&self, unit: &mut Unit) -> (UnitFiles, UnitFiles) {
        let flushed_at = self.clock.now();
        let mut memory = Some(std::mem::take(&mut unit.memory));
        let mut rows = |table: &mut TableRows, schema: &SchemaRef| {
            let hold: Box<dyn std::any::Any + Send + Sync> = match table.rows {
                0 => Box::new(()),
                _ => Box::new(memory.take()),
            };
            UnitFiles::Rows(Box::new(UnitRows {
                parts: std::mem::take(&mut table.parts),
                file_schema: schema.clone(),
                rows: table.rows,
                props: self.props.clone(),
                flushed_at,
                hold,
            }))
        };
        let main = rows(&mut unit.main, &self.file_schema);
        let rejected = rows(&mut unit.rejected, &self.rejected_schema);
        (main, rejected)
    }

    /// Queues one table's part of a unit; `None` when the unit has no rows for that table.
    async fn queue(
        &self,
        table: &TableHandle,
        files: UnitFiles,
        sequences: &Option<SequenceRange>,
        schema: &SchemaRef,
        announced: Option<IncomingUnit>,
    ) -> Result<Option<PendingCommit>, IngestError> {
        if files.is_empty() {
            return Ok(None);
        }
        let pending = table
            .submit(
                files,
                sequences.clone(),
                schema.clone(),
                self.failed.clone(),
                announced,
            )
            .await?;
        Ok(Some(pending))
    }

    /// Encodes the partitions' files on blocking threads, as many at once as there are
    /// cores, each streamed to the store.
    async fn write_files(
        &self,
        table: &TableHandle,
        schema: &SchemaRef,
        parts: BTreeMap<PartitionKey, Vec<RecordBatch>>,
    ) -> Result<Vec<Add>, IngestError> {
        if parts.is_empty() {
            return Ok(vec![]);
        }
        let store = table.object_store().await;
        let parallelism = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let now = self.clock.now();
        let writes = parts.into_iter().map(|(key, batches)| {
            let store = store.clone();
            let schema = schema.clone();
            let props = self.props.clone();
            async move {
                write_data_file(store, &key, schema, batches, props, now)
                    .await
                    .map_err(|e| e.in_store(&table.store.name))
            }
        });
        let adds = futures::stream::iter(writes)
            .buffer_unordered(parallelism)
            .try_collect::<Vec<_>>()
            .await?;
        Ok(adds)
    }
}

async fn outcome_of(pending: Option<PendingCommit>) -> Result<Option<CommitOutcome>, LakeError> {
    match pending {
        Some(pending) => Ok(Some(pending.outcome().await?)),
        None => Ok(None),
    }
}
