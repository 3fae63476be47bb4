//! One DoPut stream: decode → normalize → partition → buffer, flushing a unit when it is big
//! (`flush_size`) or old (`flush_interval`) enough. A flushed unit's job runs while the next
//! fills; its result is collected in order, and the first failure ends the stream.

use std::collections::VecDeque;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use futures::{Stream, StreamExt};
use lakeport_proto::IngestAck;
use parquet::file::properties::WriterProperties;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use super::budget::MemoryBudget;
use super::dedupe::{rejected_app_id, BatchFate, ProducerState, Producers};
use super::expiry::keep_retained;
use super::input::{Incoming, Refused};
use super::intake::Intake;
use super::normalize::Normalizer;
use super::partition::Partitioner;
use super::rejected::{rejected_rows, set_aside};
use super::target::{IngestSummary, Target};
use super::unit::{Unit, UnitJob};
use super::IngestError;
use crate::clock::Clock;
use crate::datasets::Dataset;
use crate::lake::{LakeError, PartitionKey, RetentionPolicy, SequenceRange};

/// Units of one stream that may be writing or waiting for their commit at once.
const MAX_UNITS_IN_FLIGHT: usize = 8;

/// What a stream needs of the server's ingest machinery.
#[derive(Debug)]
pub(super) struct StreamContext {
    pub(super) flush_size: usize,
    pub(super) flush_interval: std::time::Duration,
    pub(super) share_files_below: usize,
    pub(super) props: WriterProperties,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) memory: MemoryBudget,
    /// The dead-letter dataset.
    pub(super) rejected: Arc<Dataset>,
    /// Rows of hours past their table's retention are not written.
    pub(super) retention: Arc<dyn RetentionPolicy>,
}

pub(super) struct StreamState {
    context: Arc<StreamContext>,
    target: Target,
    acks: mpsc::Sender<IngestAck>,
    input_schema: Option<SchemaRef>,
    normalizer: Option<Normalizer>,
    partitioner: Option<Partitioner>,
    rejected_partitioner: Partitioner,
    producers: Producers,
    unit: Unit,
    /// Units handed over, oldest first: writing files, queued, or committing.
    in_flight: VecDeque<JoinHandle<Result<IngestAck, IngestError>>>,
    /// Fires once the newest unit has queued its commit; the next unit queues after it.
    last_queued: Option<oneshot::Receiver<()>>,
    /// Set when any unit fails: the committers then refuse this stream's later units.
    failed: Arc<AtomicBool>,
    summary: IngestSummary,
    acked_any: bool,
    /// Memory the intake gate reserved for messages that arrived since the last batch.
    intake: Intake,
}

/// A batch's rows, split for the two tables.
struct Split {
    main: Vec<(PartitionKey, RecordBatch)>,
    rejected: Vec<(PartitionKey, RecordBatch)>,
}

impl StreamState {
    pub(super) fn new(
        context: Arc<StreamContext>,
        target: Target,
        intake: Intake,
        acks: mpsc::Sender<IngestAck>,
    ) -> Self {
        let rejected_dataset = context.rejected.clone();
        let rejected_schema = rejected_dataset
            .schema
            .clone()
            .unwrap_or_else(|| Arc::new(Schema::empty()));
        let rejected_partitioner = Partitioner::new(&rejected_dataset, &rejected_schema)
            .expect("the _rejected schema has its time column");
        Self {
            context,
            target,
            acks,
            input_schema: None,
            normalizer: None,
            partitioner: None,
            rejected_partitioner,
            producers: Producers::default(),
            unit: Unit::default(),
            in_flight: VecDeque::new(),
            last_queued: None,
            failed: Arc::new(AtomicBool::new(false)),
            summary: IngestSummary {
                table_version: -1,
                ..Default::default()
            },
            acked_any: false,
            intake,
        }
    }

    pub(super) fn summary(&self) -> IngestSummary {
        self.summary.clone()
    }

    pub(super) async fn run<S>(&mut self, mut input: S) -> Result<(), IngestError>
    where
        S: Stream<Item = Result<Incoming, IngestError>> + Send + Unpin + 'static,
    {
        let flush_interval = self.context.flush_interval;
        let intake = self.intake.clone();
        loop {
            let deadline = self.unit.started.map(|t| t + flush_interval);
            let next = tokio::select! {
                next = input.next() => next,
                _ = sleep_until(deadline) => {
                    self.flush().await?;
                    continue;
                }
                // The gate waits for memory before passing our next message on: our own
                // unit's memory comes back once its files are written.
                _ = intake.starved() => {
                    self.flush().await?;
                    continue;
                }
            };
            let Some(message) = next else { break };
            match message? {
                Incoming::Schema(schema) => self.on_schema(schema).await?,
                Incoming::Batch {
                    batch,
                    sequence,
                    refused,
                } => self.on_batch(batch, sequence, refused).await?,
            }
            self.collect_finished().await?;
        }
        if self.input_schema.is_none() {
            return Err(IngestError::MissingSchema);
        }
        Ok(())
    }

    /// Flushes what is left and waits for every unit; sends a final ack if none was sent.
    pub(super) async fn drain(&mut self) -> Result<(), IngestError> {
        self.flush().await?;
        self.collect_all().await?;
        if !self.acked_any {
            let ack = IngestAck {
                tenant: self.target.tenant.clone(),
                dataset: self.target.dataset.name.clone(),
                table_version: -1,
                ..Default::default()
            };
            let _ = self.acks.send(ack).await;
        }
        Ok(())
    }

    async fn on_schema(&mut self, schema: SchemaRef) -> Result<(), IngestError> {
        if let Some(first) = &self.input_schema {
            if first.as_ref() != schema.as_ref() {
                return Err(IngestError::SchemaChanged(first_difference(first, &schema)));
            }
            return Ok(());
        }
        let dataset = self.target.dataset.clone();
        let table_schema = if dataset.is_custom() {
            self.target.main.refresh(None).await?.1
        } else {
            None
        };
        let normalizer = Normalizer::new(&dataset, table_schema.as_deref(), &schema)?;
        self.partitioner = Some(Partitioner::new(&dataset, normalizer.output_schema())?);
        self.normalizer = Some(normalizer);
        self.input_schema = Some(schema);
        Ok(())
    }

    /// The producer's state, read from both tables' `txn` actions the first time.
    async fn producer(&mut self, producer: &str) -> Result<ProducerState, IngestError> {
        if let Some(state) = self.producers.get(producer) {
            return Ok(state);
        }
        let main = self.target.main.refresh(Some(producer)).await?.0;
        let rejected_app = rejected_app_id(&self.target.dataset.name, producer);
        let rejected = self.target.rejected.refresh(Some(&rejected_app)).await?.0;
        let state = ProducerState::new(main.unwrap_or(-1), rejected.unwrap_or(-1));
        self.producers.insert(producer, state);
        Ok(state)
    }

    async fn on_batch(
        &mut self,
        batch: RecordBatch,
        meta: Option<(String, i64)>,
        refused: Vec<Refused>,
    ) -> Result<(), IngestError> {
        // What the gate reserved for this message; released here unless its rows are kept.
        let intake = self.intake.take();
        let rows = (batch.num_rows() + refused.len()) as u64;
        if rows == 0 {
            return Ok(());
        }
        let fate = match &meta {
            Some((producer, seq)) => {
                // One unit records one producer's range per table.
                if self.unit_has_other_producer(producer) {
                    self.flush().await?;
                }
                self.producer(producer).await?.fate(*seq)
            }
            None => BatchFate::Take {
                main_committed: false,
                rejected_committed: false,
            },
        };
        self.unit.start_clock();
        let BatchFate::Take {
            main_committed,
            rejected_committed,
        } = fate
        else {
            self.unit.duplicates += rows;
            return Ok(());
        };
        let split = self.split(
            &batch,
            refused,
            meta.as_ref(),
            main_committed,
            rejected_committed,
        )?;
        let bytes = split
            .main
            .iter()
            .chain(&split.rejected)
            .map(|(_, b)| b.get_array_memory_size())
            .sum::<usize>();
        // The message's reservation goes to the unit that holds its rows (after any flush
        // above) and covers the batch's partitioned copy (the decoded batch is dropped with
        // this call). A copy larger than it takes more if the budget has it, but never waits
        // while holding memory, so streams cannot wait on each other.
        let reserved = intake.bytes();
        self.unit.memory.merge(intake);
        if let Some(more) = bytes
            .checked_sub(reserved)
            .and_then(|more| self.context.memory.try_reserve(more))
        {
            self.unit.memory.merge(more);
        }

        if let Some((producer, seq)) = &meta {
            self.producers.took(producer, *seq);
            if !split.main.is_empty() {
                SequenceRange::extend(&mut self.unit.main.sequences, producer, *seq);
            }
            if !split.rejected.is_empty() {
                let app = rejected_app_id(&self.target.dataset.name, producer);
                SequenceRange::extend(&mut self.unit.rejected.sequences, &app, *seq);
            }
        }
        self.unit.main.add(&self.target.main, split.main);
        self.unit
            .rejected
            .add(&self.target.rejected, split.rejected);
        self.unit.bytes += bytes;
        self.summary.bytes_received += bytes as u64;
        if self.unit.bytes >= self.context.flush_size {
            self.flush().await?;
        }
        Ok(())
    }

    fn unit_has_other_producer(&self, producer: &str) -> bool {
        let rejected_app = rejected_app_id(&self.target.dataset.name, producer);
        let recorded = self
            .unit
            .main
            .sequences
            .as_ref()
            .or(self.unit.rejected.sequences.as_ref());
        recorded.is_some_and(|r| r.app_id != producer && r.app_id != rejected_app)
    }

    /// Normalizes a batch and splits it by partition; rows a table has committed already
    /// are counted as duplicates instead.
    fn split(
        &mut self,
        batch: &RecordBatch,
        refused: Vec<Refused>,
        meta: Option<&(String, i64)>,
        main_committed: bool,
        rejected_committed: bool,
    ) -> Result<Split, IngestError> {
        let normalizer = self.normalizer.as_ref().ok_or(IngestError::MissingSchema)?;
        let partitioner = self
            .partitioner
            .as_ref()
            .ok_or(IngestError::MissingSchema)?;
        let normalized = normalizer.apply(batch)?;
        let main = if main_committed {
            self.unit.duplicates += normalized.batch.num_rows() as u64;
            vec![]
        } else {
            let parts = partitioner.split(&normalized.batch)?;
            self.drop_expired(parts)
        };
        let mut set_aside = set_aside(batch, &normalized.rejected)?;
        set_aside.extend(refused);
        let rejected = if set_aside.is_empty() {
            vec![]
        } else if rejected_committed {
            self.unit.duplicates += set_aside.len() as u64;
            vec![]
        } else {
            let rows = rejected_rows(
                self.rejected_partitioner.file_schema(),
                &self.target.dataset.name,
                &set_aside,
                meta,
                self.context.clock.now(),
            )?;
            self.rejected_partitioner.split(&rows)?
        };
        Ok(Split { main, rejected })
    }

    /// The parts whose hour the table's retention keeps; the others are counted as expired.
    fn drop_expired(
        &mut self,
        parts: Vec<(PartitionKey, RecordBatch)>,
    ) -> Vec<(PartitionKey, RecordBatch)> {
        let dataset = &self.target.dataset;
        let retention = self
            .context
            .retention
            .retention(&self.target.tenant, &dataset.name);
        let now = self.context.clock.now();
        let (kept, expired) = keep_retained(parts, retention, now, &dataset.time_column);
        if let Some(expired) = expired {
            self.unit.expired += expired.rows;
            self.unit.expired_reason = expired.reason;
        }
        kept
    }

    /// Hands the current unit to a task that writes its files, queues its commit after the
    /// previous unit's, and acks it once durable.
    async fn flush(&mut self) -> Result<(), IngestError> {
        if self.unit.is_empty() {
            self.unit = Unit::default();
            return Ok(());
        }
        let unit = std::mem::take(&mut self.unit);
        while self.in_flight.len() >= MAX_UNITS_IN_FLIGHT {
            self.collect_oldest().await?;
        }
        let (Some(partitioner), Some(normalizer)) = (&self.partitioner, &self.normalizer) else {
            return Err(IngestError::MissingSchema);
        };
        let job = UnitJob {
            target: self.target.clone(),
            file_schema: partitioner.file_schema().clone(),
            data_schema: normalizer.target_schema().clone(),
            rejected_schema: self.rejected_partitioner.file_schema().clone(),
            props: self.context.props.clone(),
            share_files_below: self.context.share_files_below,
            clock: self.context.clock.clone(),
            acks: self.acks.clone(),
            failed: self.failed.clone(),
        };
        let (queued, queued_rx) = oneshot::channel();
        let after = self.last_queued.replace(queued_rx);
        let task = tokio::spawn(job.run(unit, after, queued).in_current_span());
        self.in_flight.push_back(task);
        Ok(())
    }

    async fn collect_finished(&mut self) -> Result<(), IngestError> {
        while self.in_flight.front().is_some_and(|t| t.is_finished()) {
            self.collect_oldest().await?;
        }
        Ok(())
    }

    pub(super) async fn collect_all(&mut self) -> Result<(), IngestError> {
        let mut first_error = None;
        while !self.in_flight.is_empty() {
            if let Err(e) = self.collect_oldest().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn collect_oldest(&mut self) -> Result<(), IngestError> {
        let Some(task) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let ack = task
            .await
            .map_err(|e| LakeError::Internal(format!("unit task failed: {e}")))??;
        self.summary.rows_committed += ack.rows_committed;
        self.summary.duplicates_skipped += ack.duplicates_skipped;
        self.summary.rows_rejected += ack.rows_rejected;
        self.summary.rows_expired += ack.rows_expired;
        self.summary.table_version = self.summary.table_version.max(ack.table_version);
        self.acked_any = true;
        Ok(())
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn first_difference(a: &Schema, b: &Schema) -> String {
    for (i, field) in b.fields().iter().enumerate() {
        match a.fields().get(i) {
            Some(old) if old == field => continue,
            _ => return field.name().clone(),
        }
    }
    a.fields()
        .get(b.fields().len())
        .map(|f| f.name().clone())
        .unwrap_or_else(|| "<metadata>".into())
}
