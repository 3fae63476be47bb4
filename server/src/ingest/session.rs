//! One DoPut stream through the ingest pipeline. Rows are buffered per Hive partition until
//! the unit is big or old enough, then its files are written while the next unit fills,
//! and units are committed strictly in order, each acknowledged once durable.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::FlightData;
use futures::{Stream, StreamExt, TryStreamExt};
use lakeport_proto::IngestAck;
use parquet::file::properties::WriterProperties;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, info_span, Instrument};

use super::normalize::Normalizer;
use super::partition::{PartitionKey, Partitioner};
use super::rejected::rejected_rows;
use super::IngestError;
use crate::clock::Clock;
use crate::config::IngestConfig;
use crate::datasets::{Dataset, Datasets};
use crate::error::Error;
use crate::lake::files::{write_data_file, writer_properties};
use crate::lake::{CommitOutcome, Lake, LakeError, PendingCommit, SequenceRange, TableHandle};
use crate::names::check_name;

/// Units of one stream that may be writing or waiting for their commit at once.
const MAX_UNITS_IN_FLIGHT: usize = 8;

/// Shared ingest machinery of the server.
#[derive(Debug)]
pub struct Ingestor {
    lake: Arc<Lake>,
    datasets: Arc<Datasets>,
    config: IngestConfig,
    props: WriterProperties,
    clock: Arc<dyn Clock>,
    memory: Arc<Semaphore>,
    memory_permits: usize,
}

/// The tables one DoPut writes to.
#[derive(Debug, Clone)]
pub struct Target {
    pub tenant: String,
    pub dataset: Arc<Dataset>,
    main: Arc<TableHandle>,
    rejected: Arc<TableHandle>,
}

impl Target {
    /// True when the dataset table has been created (has a Delta log).
    pub async fn exists(&self) -> Result<bool, Error> {
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
        clock: Arc<dyn Clock>,
    ) -> Self {
        let memory_permits = (config.memory_limit / 1024).clamp(1, Semaphore::MAX_PERMITS);
        Self {
            lake,
            datasets,
            props: writer_properties(&config),
            config,
            clock,
            memory: Arc::new(Semaphore::new(memory_permits)),
            memory_permits,
        }
    }

    pub async fn target(&self, tenant: &str, dataset: &str) -> Result<Target, Error> {
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

    /// Runs one DoPut stream to its end. Each durable unit is reported on `acks`; an error
    /// is returned (and nothing after it is committed) when a step fails.
    pub async fn ingest<S>(
        self: &Arc<Self>,
        target: Target,
        input: S,
        acks: mpsc::Sender<IngestAck>,
    ) -> Result<IngestSummary, Error>
    where
        S: Stream<Item = Result<FlightData, tonic::Status>> + Send + Unpin + 'static,
    {
        let span = info_span!("ingest", tenant = %target.tenant, dataset = %target.dataset.name);
        let mut stream = StreamState::new(self.clone(), target, acks);
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
            Ok(stream.summary)
        }
        .instrument(span)
        .await
    }
}

/// Rows of one unit, per partition, with what the ack will report.
#[derive(Default)]
struct Unit {
    parts: BTreeMap<PartitionKey, Vec<RecordBatch>>,
    rejected_parts: BTreeMap<PartitionKey, Vec<RecordBatch>>,
    rows: u64,
    rejected: u64,
    duplicates: u64,
    sequences: Option<SequenceRange>,
    rejected_sequences: Option<SequenceRange>,
    bytes: usize,
    permit: Option<OwnedSemaphorePermit>,
    started: Option<Instant>,
}

impl Unit {
    fn is_empty(&self) -> bool {
        self.rows == 0 && self.rejected == 0 && self.duplicates == 0
    }
}

struct StreamState {
    ingestor: Arc<Ingestor>,
    target: Target,
    acks: mpsc::Sender<IngestAck>,
    input_schema: Option<SchemaRef>,
    normalizer: Option<Normalizer>,
    partitioner: Option<Partitioner>,
    rejected_partitioner: Partitioner,
    /// Per producer: highest sequence known committed in the main and the `_rejected` table,
    /// and the highest seen in this stream.
    producers: HashMap<String, ProducerState>,
    unit: Unit,
    /// Units handed over, oldest first: writing files, queued, or committing.
    in_flight: VecDeque<JoinHandle<Result<UnitResult, Error>>>,
    /// Fires once the newest unit has queued its commit; the next unit queues after it.
    last_queued: Option<oneshot::Receiver<()>>,
    /// Set when any unit fails: the committers then refuse this stream's later units.
    failed: Arc<AtomicBool>,
    summary: IngestSummary,
    acked_any: bool,
}

#[derive(Clone, Copy)]
struct ProducerState {
    main: i64,
    rejected: i64,
    seen: i64,
}

struct UnitResult {
    ack: IngestAck,
}

impl StreamState {
    fn new(ingestor: Arc<Ingestor>, target: Target, acks: mpsc::Sender<IngestAck>) -> Self {
        let rejected_dataset = ingestor.datasets.rejected();
        let rejected_schema = rejected_dataset
            .schema
            .clone()
            .unwrap_or_else(|| Arc::new(Schema::empty()));
        let rejected_partitioner = Partitioner::new(&rejected_dataset, &rejected_schema)
            .expect("the _rejected schema has its time column");
        Self {
            ingestor,
            target,
            acks,
            input_schema: None,
            normalizer: None,
            partitioner: None,
            rejected_partitioner,
            producers: HashMap::new(),
            unit: Unit::default(),
            in_flight: VecDeque::new(),
            last_queued: None,
            failed: Arc::new(AtomicBool::new(false)),
            summary: IngestSummary {
                table_version: -1,
                ..Default::default()
            },
            acked_any: false,
        }
    }

    async fn run<S>(&mut self, input: S) -> Result<(), Error>
    where
        S: Stream<Item = Result<FlightData, tonic::Status>> + Send + Unpin + 'static,
    {
        let mut decoder =
            FlightDataDecoder::new(input.map_err(|status| FlightError::Tonic(Box::new(status))));
        let flush_interval = self.ingestor.config.flush_interval;
        loop {
            let deadline = self.unit.started.map(|t| t + flush_interval);
            let next = tokio::select! {
                next = decoder.next() => next,
                _ = sleep_until(deadline) => {
                    self.flush().await?;
                    continue;
                }
            };
            let Some(message) = next else { break };
            let decoded = message.map_err(flight_error)?;
            match decoded.payload {
                DecodedPayload::None => {}
                DecodedPayload::Schema(schema) => self.on_schema(schema).await?,
                DecodedPayload::RecordBatch(batch) => {
                    let meta = super::metadata::parse(&decoded.inner.app_metadata)?;
                    self.on_batch(batch, meta).await?;
                }
            }
            self.collect_finished().await?;
        }
        if self.input_schema.is_none() {
            return Err(IngestError::MissingSchema.into());
        }
        Ok(())
    }

    /// Flushes what is left and waits for every unit; sends a final ack if none was sent.
    async fn drain(&mut self) -> Result<(), Error> {
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

    async fn on_schema(&mut self, schema: SchemaRef) -> Result<(), Error> {
        if let Some(first) = &self.input_schema {
            if first.as_ref() != schema.as_ref() {
                return Err(IngestError::SchemaChanged(first_difference(first, &schema)).into());
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

    async fn producer(&mut self, producer: &str) -> Result<ProducerState, Error> {
        if let Some(state) = self.producers.get(producer) {
            return Ok(*state);
        }
        let main = self
            .target
            .main
            .refresh(Some(producer))
            .await?
            .0
            .unwrap_or(-1);
        let rejected_app = rejected_app_id(&self.target.dataset.name, producer);
        let rejected = self
            .target
            .rejected
            .refresh(Some(&rejected_app))
            .await?
            .0
            .unwrap_or(-1);
        let state = ProducerState {
            main,
            rejected,
            seen: -1,
        };
        self.producers.insert(producer.to_string(), state);
        Ok(state)
    }

    async fn on_batch(
        &mut self,
        batch: RecordBatch,
        meta: Option<(String, i64)>,
    ) -> Result<(), Error> {
        let rows = batch.num_rows() as u64;
        if rows == 0 {
            return Ok(());
        }
        let state = match &meta {
            Some((producer, _)) => {
                let changes = self
                    .unit
                    .sequences
                    .as_ref()
                    .or(self.unit.rejected_sequences.as_ref());
                if changes.is_some_and(|r| {
                    &r.app_id != producer
                        && r.app_id != rejected_app_id(&self.target.dataset.name, producer)
                }) {
                    self.flush().await?;
                }
                Some(self.producer(producer).await?)
            }
            None => None,
        };
        if let (Some((_, seq)), Some(state)) = (&meta, &state) {
            if *seq <= state.seen {
                self.unit.duplicates += rows;
                self.start_unit_clock();
                return Ok(());
            }
        }
        let normalizer = self.normalizer.as_ref().ok_or(IngestError::MissingSchema)?;
        let normalized = normalizer.apply(&batch)?;
        let partitioner = self
            .partitioner
            .as_ref()
            .ok_or(IngestError::MissingSchema)?;
        let dataset_name = self.target.dataset.name.clone();
        let now = self.ingestor.clock.now();

        let main_dup = matches!((&meta, &state), (Some((_, seq)), Some(s)) if *seq <= s.main);
        let rejected_dup =
            matches!((&meta, &state), (Some((_, seq)), Some(s)) if *seq <= s.rejected);
        let mut bytes = 0;
        let main_parts = if main_dup {
            self.unit.duplicates += normalized.batch.num_rows() as u64;
            vec![]
        } else {
            partitioner.split(&normalized.batch)?
        };
        let rejected_parts = if normalized.rejected.is_empty() {
            vec![]
        } else if rejected_dup {
            self.unit.duplicates += normalized.rejected.len() as u64;
            vec![]
        } else {
            let rejected_schema = self.rejected_partitioner.file_schema().clone();
            let rows = rejected_rows(
                &rejected_schema,
                &dataset_name,
                &batch,
                &normalized.rejected,
                meta.as_ref(),
                now,
            )?;
            self.rejected_partitioner.split(&rows)?
        };
        bytes += main_parts
            .iter()
            .chain(&rejected_parts)
            .map(|(_, b)| b.get_array_memory_size())
            .sum::<usize>();
        self.reserve(bytes).await?;

        if let Some((producer, seq)) = &meta {
            if let Some(state) = self.producers.get_mut(producer) {
                state.seen = *seq;
            }
            if !main_parts.is_empty() {
                extend_range(&mut self.unit.sequences, producer, *seq);
            }
            if !rejected_parts.is_empty() {
                extend_range(
                    &mut self.unit.rejected_sequences,
                    &rejected_app_id(&dataset_name, producer),
                    *seq,
                );
            }
        }
        for (key, part) in main_parts {
            self.unit.rows += part.num_rows() as u64;
            self.unit.parts.entry(key).or_default().push(part);
        }
        for (key, part) in rejected_parts {
            self.unit.rejected += part.num_rows() as u64;
            self.unit.rejected_parts.entry(key).or_default().push(part);
        }
        self.unit.bytes += bytes;
        self.start_unit_clock();
        if self.unit.bytes >= self.ingestor.config.flush_size {
            self.flush().await?;
        }
        Ok(())
    }

    fn start_unit_clock(&mut self) {
        self.unit.started.get_or_insert_with(Instant::now);
    }

    /// Takes memory from the server-wide budget; flushes this stream's unit to free some
    /// when the budget is used up, then waits for other streams to free theirs.
    async fn reserve(&mut self, bytes: usize) -> Result<(), Error> {
        let permits = bytes.div_ceil(1024).clamp(1, self.ingestor.memory_permits) as u32;
        let permit = match self.ingestor.memory.clone().try_acquire_many_owned(permits) {
            Ok(permit) => permit,
            Err(_) => {
                // Our own unit's memory returns once its files are written.
                self.flush().await?;
                self.ingestor
                    .memory
                    .clone()
                    .acquire_many_owned(permits)
                    .await
                    .map_err(|_| LakeError::ShuttingDown)?
            }
        };
        match &mut self.unit.permit {
            Some(held) => held.merge(permit),
            None => self.unit.permit = Some(permit),
        }
        Ok(())
    }

    /// Hands the current unit to a task that writes its files, queues its commit after the
    /// previous unit's, and acks it once durable. Units pipeline: the next fills while
    /// earlier ones are written and wait for their commit slot.
    async fn flush(&mut self) -> Result<(), Error> {
        if self.unit.is_empty() {
            self.unit.started = None;
            return Ok(());
        }
        let unit = std::mem::take(&mut self.unit);
        while self.in_flight.len() >= MAX_UNITS_IN_FLIGHT {
            self.collect_oldest().await?;
        }
        let (Some(partitioner), Some(normalizer)) = (&self.partitioner, &self.normalizer) else {
            return Err(IngestError::MissingSchema.into());
        };
        let job = UnitJob {
            ingestor: self.ingestor.clone(),
            target: self.target.clone(),
            file_schema: partitioner.file_schema().clone(),
            data_schema: normalizer.target_schema().clone(),
            rejected_schema: self.rejected_partitioner.file_schema().clone(),
            acks: self.acks.clone(),
            failed: self.failed.clone(),
        };
        let (queued, queued_rx) = oneshot::channel();
        let after = self.last_queued.replace(queued_rx);
        let task = tokio::spawn(job.run(unit, after, queued).in_current_span());
        self.in_flight.push_back(task);
        Ok(())
    }

    /// Collects the units that are done, oldest first; the first failure ends the stream.
    async fn collect_finished(&mut self) -> Result<(), Error> {
        while self.in_flight.front().is_some_and(|t| t.is_finished()) {
            self.collect_oldest().await?;
        }
        Ok(())
    }

    async fn collect_all(&mut self) -> Result<(), Error> {
        let mut first_error = None;
        while !self.in_flight.is_empty() {
            if let Err(e) = self.collect_oldest().await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    async fn collect_oldest(&mut self) -> Result<(), Error> {
        let Some(task) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let result = task
            .await
            .map_err(|e| LakeError::Internal(format!("unit task failed: {e}")))??;
        let ack = result.ack;
        self.summary.rows_committed += ack.rows_committed;
        self.summary.duplicates_skipped += ack.duplicates_skipped;
        self.summary.rows_rejected += ack.rows_rejected;
        self.summary.table_version = self.summary.table_version.max(ack.table_version);
        self.acked_any = true;
        Ok(())
    }
}

struct UnitJob {
    ingestor: Arc<Ingestor>,
    target: Target,
    file_schema: SchemaRef,
    data_schema: SchemaRef,
    /// `_rejected` has no derived columns, so its file and data schemas are one.
    rejected_schema: SchemaRef,
    /// The ack goes out as soon as the unit is durable, not when the stream next moves.
    acks: mpsc::Sender<IngestAck>,
    failed: Arc<AtomicBool>,
}

impl UnitJob {
    async fn run(
        self,
        unit: Unit,
        after: Option<oneshot::Receiver<()>>,
        queued: oneshot::Sender<()>,
    ) -> Result<UnitResult, Error> {
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
    ) -> Result<UnitResult, Error> {
        let main_adds = self
            .write_files(
                &self.target.main,
                &self.file_schema,
                std::mem::take(&mut unit.parts),
            )
            .await?;
        let rejected_adds = self
            .write_files(
                &self.target.rejected,
                &self.rejected_schema,
                std::mem::take(&mut unit.rejected_parts),
            )
            .await?;
        drop(unit.permit.take());
        // Queue after the previous unit so commits keep the stream's order; a failed
        // predecessor (its sender dropped) stops this unit too.
        if let Some(after) = after {
            after.await.map_err(|_| LakeError::EarlierUnitFailed)?;
        }
        if self.failed.load(Ordering::SeqCst) {
            return Err(LakeError::EarlierUnitFailed.into());
        }
        let main = self
            .queue(
                &self.target.main,
                main_adds,
                &unit.sequences,
                &self.data_schema,
            )
            .await?;
        let rejected = self
            .queue(
                &self.target.rejected,
                rejected_adds,
                &unit.rejected_sequences,
                &self.rejected_schema,
            )
            .await?;
        let _ = queued.send(());
        let main = outcome_of(main).await?;
        let rejected = outcome_of(rejected).await?;
        let mut ack = IngestAck {
            tenant: self.target.tenant.clone(),
            dataset: self.target.dataset.name.clone(),
            duplicates_skipped: unit.duplicates,
            table_version: -1,
            last_sequence: unit.sequences.as_ref().map(|r| r.last as u64).unwrap_or(0),
            ..Default::default()
        };
        match main {
            Some(CommitOutcome::Committed { version }) => {
                ack.rows_committed = unit.rows;
                ack.table_version = version;
            }
            Some(CommitOutcome::Duplicate) => ack.duplicates_skipped += unit.rows,
            None => {}
        }
        match rejected {
            Some(CommitOutcome::Committed { .. }) => ack.rows_rejected = unit.rejected,
            Some(CommitOutcome::Duplicate) => ack.duplicates_skipped += unit.rejected,
            None => {}
        }
        debug!(
            rows = ack.rows_committed,
            rejected = ack.rows_rejected,
            duplicates = ack.duplicates_skipped,
            version = ack.table_version,
            "unit committed"
        );
        let _ = self.acks.send(ack.clone()).await;
        Ok(UnitResult { ack })
    }

    /// Queues one table's part of a unit; `None` when the unit has no rows for that table.
    async fn queue(
        &self,
        table: &TableHandle,
        adds: Vec<deltalake::kernel::Add>,
        sequences: &Option<SequenceRange>,
        schema: &SchemaRef,
    ) -> Result<Option<PendingCommit>, Error> {
        if adds.is_empty() {
            return Ok(None);
        }
        let pending = table
            .submit(adds, sequences.clone(), schema.clone(), self.failed.clone())
            .await?;
        Ok(Some(pending))
    }

    async fn write_files(
        &self,
        table: &TableHandle,
        schema: &SchemaRef,
        parts: BTreeMap<PartitionKey, Vec<RecordBatch>>,
    ) -> Result<Vec<deltalake::kernel::Add>, Error> {
        if parts.is_empty() {
            return Ok(vec![]);
        }
        let store = table.object_store().await;
        let parallelism = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let now = self.ingestor.clock.now();
        let writes = parts.into_iter().map(|(key, batches)| {
            let store = store.clone();
            let schema = schema.clone();
            let props = self.ingestor.props.clone();
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

async fn outcome_of(pending: Option<PendingCommit>) -> Result<Option<CommitOutcome>, Error> {
    match pending {
        Some(pending) => Ok(Some(pending.outcome().await?)),
        None => Ok(None),
    }
}

/// The `txn` app id a producer's rows use in the tenant's `_rejected` table.
fn rejected_app_id(dataset: &str, producer: &str) -> String {
    format!("{dataset}/{producer}")
}

fn extend_range(range: &mut Option<SequenceRange>, app_id: &str, seq: i64) {
    match range {
        Some(r) => r.last = r.last.max(seq),
        None => {
            *range = Some(SequenceRange {
                app_id: app_id.to_string(),
                first: seq,
                last: seq,
            })
        }
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

/// Maps decoder failures: transport errors keep their status, bad bytes are the client's.
fn flight_error(e: FlightError) -> Error {
    match e {
        FlightError::Tonic(status) => {
            // tonic's decoder answers OUT_OF_RANGE for one thing only: a message over the
            // configured maximum.
            if status.code() == tonic::Code::OutOfRange {
                IngestError::MessageTooLarge(status.message().to_string()).into()
            } else {
                IngestError::Client(*status).into()
            }
        }
        other => IngestError::BadIpc(other.to_string()).into(),
    }
}
